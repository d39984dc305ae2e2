//! The awareness (presence) states a room relays, with the update rules of y-protocols.
//!
//! The server keeps no awareness state of its own and needs no clock: remote states expire on the
//! clients (y-protocols `outdatedTimeout`), and the server removes a connection's states when the
//! connection closes. Rules follow `applyAwarenessUpdate` in y-protocols `awareness.js`: a state
//! with a higher clock wins; a `null` state with the same clock removes a present state.
//!
//! Each awareness client id belongs to the connection that introduced it (as in y-partyserver,
//! the ids live in the connection's WebSocket attachment): only that connection may change or
//! remove its state, and what one client can make the room hold is bounded
//! ([`MAX_IDS_PER_CONNECTION`], [`PresenceLimits`]).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::ClientID;

/// JSON text of a removed state on the wire.
const NULL: &str = "null";

/// Most awareness client ids one connection may introduce. A stock client has one (its
/// `doc.clientID`), and y-sweet takes exactly one; a few are allowed because the room cannot
/// tell which id of a multi-entry update is the sender's own: after a wake, a stock client
/// answers the awareness query with every state it knows, in hash order, and ids whose
/// connection has left are nobody's, so a cap of one could bind a connection to such an id
/// and drop its own. The ids live in the connection's WebSocket attachment (2 KiB at most on
/// Cloudflare), which this bound keeps small; an id stays its connection's until it closes, so
/// removing a state does not free a place for another id.
pub const MAX_IDS_PER_CONNECTION: usize = 4;

/// Bounds on the presence of one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceLimits {
    /// Most present states; a new state over it is ignored. Also how many removed states of
    /// departed connections are remembered.
    pub max_states: usize,
    /// Largest state (its JSON text) in bytes; a larger one is ignored.
    pub max_state_bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    clock: u32,
    /// `None` once removed; the clock is kept so an older update cannot bring it back.
    state: Option<Arc<str>>,
}

/// Awareness states of one room, keyed by awareness client id, and the connection that owns
/// each id.
#[derive(Debug)]
pub struct Presence {
    states: HashMap<u64, Entry>,
    /// Awareness client id -> id of the connection that introduced it.
    owners: HashMap<u64, u64>,
    /// Number of entries with a state.
    present: usize,
    /// Ids whose connection left, oldest first. Their removed entries are kept so that a late
    /// echo of an older state cannot bring them back, but only the newest `max_states` of
    /// them: connections come and go for as long as the room lives.
    departed: VecDeque<u64>,
    /// Ids of connections that closed while the room did not know their states (it woke from
    /// hibernation for the close): their clocks are unknown, so the next echo of such an id
    /// from another client is answered with its removal instead of being adopted.
    lost: HashSet<u64>,
    limits: PresenceLimits,
}

/// What applying an awareness update changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PresenceChange {
    /// Client ids seen for the first time with a state.
    pub added: Vec<u64>,
    /// Client ids whose state or clock moved forward.
    pub updated: Vec<u64>,
    /// Client ids whose state was removed.
    pub removed: Vec<u64>,
    /// Entries ignored: another connection's id, an id over [`MAX_IDS_PER_CONNECTION`], a
    /// state over [`PresenceLimits`], or a removal of an id the sender does not own.
    pub ignored: usize,
}

impl PresenceChange {
    /// Whether nothing changed (an outdated, repeated or ignored update).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    /// Every changed client id, the set to re-broadcast.
    pub fn all(&self) -> Vec<u64> {
        let mut all =
            Vec::with_capacity(self.added.len() + self.updated.len() + self.removed.len());
        all.extend(&self.added);
        all.extend(&self.updated);
        all.extend(&self.removed);
        all
    }
}

impl Presence {
    /// No presence yet, with `limits`.
    pub fn new(limits: PresenceLimits) -> Self {
        Presence {
            states: HashMap::new(),
            owners: HashMap::new(),
            present: 0,
            departed: VecDeque::new(),
            lost: HashSet::new(),
            limits,
        }
    }

    /// Applies an update from connection `conn`, whose ids are `owned` (grown here when it
    /// introduces one). Only entries for the connection's own ids, or for ids nobody owns that
    /// it may still claim, are applied.
    pub fn apply_from(
        &mut self,
        conn: u64,
        owned: &mut BTreeSet<u64>,
        update: &AwarenessUpdate,
    ) -> PresenceChange {
        let mut change = PresenceChange::default();
        for (client, entry) in &update.clients {
            let id = client.get();
            let state = (entry.json.as_ref() != NULL).then(|| entry.json.clone());
            if state.is_some() && !self.owners.contains_key(&id) && self.lost.remove(&id) {
                // A state of a connection that closed while the room slept, echoed by a
                // client that still holds it: removed, one clock past the echo, for everyone
                // (its own client, should it come back, renews with a higher clock).
                self.states.insert(
                    id,
                    Entry {
                        clock: entry.clock.wrapping_add(1),
                        state: None,
                    },
                );
                change.removed.push(id);
                continue;
            }
            let mine = match self.owners.get(&id) {
                Some(owner) => *owner == conn,
                // Nobody's: claimable with a state, within the connection's share.
                None => state.is_some() && owned.len() < MAX_IDS_PER_CONNECTION,
            };
            let fits = state.as_ref().is_none_or(|s| {
                s.len() <= self.limits.max_state_bytes
                    && (self.present < self.limits.max_states || self.is_present(id))
            });
            if !(mine && fits) {
                change.ignored += 1;
                continue;
            }
            if self.apply_entry(id, entry.clock, state, &mut change) && !owned.contains(&id) {
                self.owners.insert(id, conn);
                owned.insert(id);
            }
        }
        change
    }

    /// Applies one entry with the rules of y-protocols; returns whether it now has a state.
    fn apply_entry(
        &mut self,
        id: u64,
        clock: u32,
        new: Option<Arc<str>>,
        change: &mut PresenceChange,
    ) -> bool {
        let Some(cur) = self.states.get_mut(&id) else {
            let present = new.is_some();
            if present {
                change.added.push(id);
                self.present += 1;
            }
            self.states.insert(id, Entry { clock, state: new });
            return present;
        };
        let is_removal = cur.clock == clock && new.is_none() && cur.state.is_some();
        if cur.clock < clock || is_removal {
            match (&cur.state, &new) {
                (Some(_), None) => {
                    change.removed.push(id);
                    self.present -= 1;
                }
                (None, Some(_)) => {
                    change.added.push(id);
                    self.present += 1;
                }
                (Some(_), Some(_)) => change.updated.push(id),
                (None, None) => {}
            }
            cur.clock = clock;
            cur.state = new;
        }
        cur.state.is_some()
    }

    fn is_present(&self, id: u64) -> bool {
        self.states.get(&id).is_some_and(|e| e.state.is_some())
    }

    /// Re-registers the ids of a connection that survived hibernation as its own.
    pub fn restore(&mut self, conn: u64, owned: &BTreeSet<u64>) {
        for id in owned {
            self.owners.insert(*id, conn);
        }
    }

    /// Encodes the current entries of `ids` (removed ones as `null`) for broadcasting.
    pub fn encode(&self, ids: &[u64]) -> AwarenessUpdate {
        let mut clients = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self.states.get(id) {
                clients.insert(
                    ClientID::new(*id),
                    AwarenessUpdateEntry {
                        clock: e.clock,
                        json: e.state.clone().unwrap_or_else(|| Arc::from(NULL)),
                    },
                );
            }
        }
        AwarenessUpdate { clients }
    }

    /// Every present state, as sent to a connection that just joined.
    pub fn snapshot(&self) -> Option<AwarenessUpdate> {
        let ids: Vec<u64> = self
            .states
            .iter()
            .filter(|(_, e)| e.state.is_some())
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| self.encode(&ids))
    }

    /// Connection `conn` has closed: removes the states of its ids `owned` and returns the
    /// update that tells everyone else, as y-protocols `removeAwarenessStates` does: clock + 1,
    /// state `null`.
    pub fn leave(&mut self, conn: u64, owned: &BTreeSet<u64>) -> Option<AwarenessUpdate> {
        let mut removed = Vec::new();
        for id in owned {
            match self.owners.get(id) {
                Some(owner) if *owner == conn => {}
                Some(_) => continue,
                None => {
                    // The room woke for this close and never saw the connection's states.
                    if !self.is_present(*id) && self.lost.len() < self.limits.max_states {
                        self.lost.insert(*id);
                    }
                    continue;
                }
            }
            self.owners.remove(id);
            self.departed.push_back(*id);
            match self.states.get_mut(id) {
                Some(e) if e.state.is_some() => {
                    e.state = None;
                    e.clock = e.clock.wrapping_add(1);
                    self.present -= 1;
                    removed.push(*id);
                }
                // Owned but never seen since the room woke (its ownership came back from the
                // socket's attachment): the clock is unknown, as for an id nobody owns.
                Some(_) => {}
                None => {
                    if self.lost.len() < self.limits.max_states {
                        self.lost.insert(*id);
                    }
                }
            }
        }
        let update = (!removed.is_empty()).then(|| self.encode(&removed));
        while self.departed.len() > self.limits.max_states {
            let Some(id) = self.departed.pop_front() else {
                break;
            };
            // Unless the id was claimed again since.
            if !self.owners.contains_key(&id) && !self.is_present(id) {
                self.states.remove(&id);
            }
        }
        update
    }

    /// Number of present states.
    pub fn len(&self) -> usize {
        self.present
    }

    /// Whether no state is present.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// Number of entries kept, removed ones included.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
        AwarenessUpdate {
            clients: entries
                .iter()
                .map(|(id, clock, json)| {
                    (
                        ClientID::new(*id),
                        AwarenessUpdateEntry {
                            clock: *clock,
                            json: Arc::from(*json),
                        },
                    )
                })
                .collect(),
        }
    }

    const LIMITS: PresenceLimits = PresenceLimits {
        max_states: 8,
        max_state_bytes: 32,
    };

    /// A room's presence and one connection (id 1) with its owned ids.
    fn one() -> (Presence, BTreeSet<u64>) {
        (Presence::new(LIMITS), BTreeSet::new())
    }

    #[test]
    fn newer_clock_wins_and_older_is_ignored() {
        let (mut p, mut owned) = one();
        let c = p.apply_from(1, &mut owned, &upd(&[(1, 1, r#"{"n":"a"}"#)]));
        assert_eq!(c.added, vec![1]);
        let c = p.apply_from(1, &mut owned, &upd(&[(1, 2, r#"{"n":"b"}"#)]));
        assert_eq!(c.updated, vec![1]);
        let c = p.apply_from(1, &mut owned, &upd(&[(1, 1, r#"{"n":"old"}"#)]));
        assert!(c.is_empty());
        let e = &p.encode(&[1]).clients[&ClientID::new(1)];
        assert_eq!((e.clock, e.json.as_ref()), (2, r#"{"n":"b"}"#));
    }

    #[test]
    fn null_with_same_clock_removes_and_stays_removed() {
        let (mut p, mut owned) = one();
        p.apply_from(1, &mut owned, &upd(&[(1, 4, "{}")]));
        let c = p.apply_from(1, &mut owned, &upd(&[(1, 4, "null")]));
        assert_eq!(c.removed, vec![1]);
        assert!(p.is_empty());
        assert!(p.snapshot().is_none());
        // A replay of the old state cannot resurrect it.
        assert!(p
            .apply_from(1, &mut owned, &upd(&[(1, 4, "{}")]))
            .is_empty());
        assert_eq!(
            p.apply_from(1, &mut owned, &upd(&[(1, 5, "{}")])).added,
            vec![1]
        );
    }

    #[test]
    fn leave_bumps_clock_so_clients_accept_it() {
        let (mut p, mut owned) = one();
        p.apply_from(1, &mut owned, &upd(&[(1, 7, "{}")]));
        let mut other = BTreeSet::new();
        p.apply_from(2, &mut other, &upd(&[(2, 1, "{}")]));
        let u = p.leave(1, &owned).expect("one removal");
        assert_eq!(u.clients.len(), 1);
        let e = &u.clients[&ClientID::new(1)];
        assert_eq!((e.clock, e.json.as_ref()), (8, "null"));
        assert_eq!(p.len(), 1);
        assert!(p.leave(1, &owned).is_none(), "already removed");
        let snap = p.snapshot().unwrap();
        assert_eq!(
            snap.clients.keys().map(|c| c.get()).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn another_connections_id_is_neither_applied_nor_removed() {
        let (mut p, mut a) = one();
        let mut b = BTreeSet::new();
        p.apply_from(1, &mut a, &upd(&[(1, 1, r#"{"n":"a"}"#)]));
        let c = p.apply_from(2, &mut b, &upd(&[(1, 9, r#"{"n":"b"}"#), (2, 1, "{}")]));
        assert_eq!((c.added, c.ignored), (vec![2], 1));
        let c = p.apply_from(2, &mut b, &upd(&[(1, 1, "null")]));
        assert_eq!((c.is_empty(), c.ignored), (true, 1));
        let e = &p.encode(&[1]).clients[&ClientID::new(1)];
        assert_eq!((e.clock, e.json.as_ref()), (1, r#"{"n":"a"}"#));
        assert_eq!(b, BTreeSet::from([2]));
    }

    #[test]
    fn a_connection_introduces_at_most_four_ids_for_its_lifetime() {
        let (mut p, mut owned) = one();
        let many: Vec<(u64, u32, &str)> = (10..20).map(|id| (id, 1, "{}")).collect();
        let c = p.apply_from(1, &mut owned, &upd(&many));
        assert_eq!((c.added.len(), c.ignored), (MAX_IDS_PER_CONNECTION, 6));
        assert_eq!(owned.len(), MAX_IDS_PER_CONNECTION);
        // Removing its states does not make room for other ids.
        let ids: Vec<u64> = owned.iter().copied().collect();
        let nulls: Vec<(u64, u32, &str)> = ids.iter().map(|id| (*id, 1, "null")).collect();
        assert_eq!(p.apply_from(1, &mut owned, &upd(&nulls)).removed.len(), 4);
        assert!(p
            .apply_from(1, &mut owned, &upd(&[(99, 1, "{}")]))
            .is_empty());
        assert_eq!(owned.len(), MAX_IDS_PER_CONNECTION);
    }

    #[test]
    fn states_over_the_room_cap_or_the_size_cap_are_ignored() {
        let mut p = Presence::new(LIMITS);
        let big = format!("\"{}\"", "x".repeat(31));
        let mut owned = BTreeSet::new();
        let c = p.apply_from(1, &mut owned, &upd(&[(1, 1, &big)]));
        assert_eq!((c.is_empty(), c.ignored), (true, 1));
        assert!(owned.is_empty());
        for conn in 0..LIMITS.max_states as u64 + 3 {
            let mut owned = BTreeSet::new();
            p.apply_from(conn, &mut owned, &upd(&[(100 + conn, 1, "{}")]));
        }
        assert_eq!(p.len(), LIMITS.max_states);
        // A present state may still change, within the size cap.
        let mut first = BTreeSet::from([100]);
        assert_eq!(
            p.apply_from(0, &mut first, &upd(&[(100, 2, "[]")])).updated,
            vec![100]
        );
    }

    #[test]
    fn removals_of_ids_nobody_owns_create_nothing() {
        let (mut p, mut owned) = one();
        let nulls: Vec<(u64, u32, &str)> = (0..100).map(|id| (id, 1, "null")).collect();
        let c = p.apply_from(1, &mut owned, &upd(&nulls));
        assert_eq!(c.ignored, 100);
        assert_eq!(p.entries(), 0);
    }

    #[test]
    fn a_connection_closed_while_the_room_slept_leaves_no_ghost() {
        // The room woke for the close: it knows survivor 1 (restored) but no state.
        let mut p = Presence::new(LIMITS);
        p.restore(1, &BTreeSet::from([10]));
        assert!(
            p.leave(2, &BTreeSet::from([20])).is_none(),
            "nothing known to remove"
        );
        // The same when the closing socket's ownership was restored too.
        p.restore(4, &BTreeSet::from([40]));
        assert!(p.leave(4, &BTreeSet::from([40])).is_none());
        // The survivor answers the wake's query with every state it knows, the ghost's too.
        let mut owned = BTreeSet::from([10]);
        let c = p.apply_from(
            1,
            &mut owned,
            &upd(&[(10, 3, "{}"), (20, 5, r#"{"n":"gone"}"#), (40, 1, "{}")]),
        );
        assert_eq!(c.added, vec![10]);
        let mut removed = c.removed.clone();
        removed.sort();
        assert_eq!(removed, vec![20, 40], "the ghosts are removed for everyone");
        assert!(!owned.contains(&20), "and not adopted by the survivor");
        let e = &p.encode(&[20]).clients[&ClientID::new(20)];
        assert_eq!(
            (e.clock, e.json.as_ref()),
            (6, "null"),
            "one clock past the echo"
        );
        assert_eq!(p.len(), 1);
        // The departed client itself may come back: its renewal has a higher clock.
        let mut back = BTreeSet::new();
        let c = p.apply_from(3, &mut back, &upd(&[(20, 7, "{}")]));
        assert_eq!(c.added, vec![20]);
        assert!(back.contains(&20));
    }

    #[test]
    fn departed_connections_leave_a_bounded_trail() {
        let mut p = Presence::new(LIMITS);
        for conn in 0..100 {
            let mut owned = BTreeSet::new();
            p.apply_from(conn, &mut owned, &upd(&[(1000 + conn, 1, "{}")]));
            p.leave(conn, &owned);
        }
        assert_eq!(p.len(), 0);
        assert_eq!(p.entries(), LIMITS.max_states);
    }
}
