//! The awareness (presence) states a room relays, with the update rules of y-protocols.
//!
//! The server keeps no awareness state of its own and needs no clock: remote states expire on the
//! clients (y-protocols `outdatedTimeout`), and the server removes a connection's states when the
//! connection closes. Rules follow `applyAwarenessUpdate` in y-protocols `awareness.js`: a state
//! with a higher clock wins; a `null` state with the same clock removes a present state.

use std::collections::HashMap;
use std::sync::Arc;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::ClientID;

/// JSON text of a removed state on the wire.
const NULL: &str = "null";

#[derive(Debug, Clone)]
struct Entry {
    clock: u32,
    /// `None` once removed; the clock is kept so an older update cannot bring it back.
    state: Option<Arc<str>>,
}

/// Awareness states of one room, keyed by awareness client id.
#[derive(Debug, Default)]
pub struct Presence {
    states: HashMap<u64, Entry>,
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
}

impl PresenceChange {
    /// Whether nothing changed (an outdated or repeated update).
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
    /// Applies an update received from a client.
    pub fn apply(&mut self, update: &AwarenessUpdate) -> PresenceChange {
        let mut change = PresenceChange::default();
        for (client, entry) in &update.clients {
            let id = client.get();
            let new = (entry.json.as_ref() != NULL).then(|| entry.json.clone());
            match self.states.get_mut(&id) {
                Some(cur) => {
                    let is_removal =
                        cur.clock == entry.clock && new.is_none() && cur.state.is_some();
                    if cur.clock < entry.clock || is_removal {
                        match (&cur.state, &new) {
                            (Some(_), None) => change.removed.push(id),
                            (None, None) => {}
                            (None, Some(_)) => change.added.push(id),
                            (Some(_), Some(_)) => change.updated.push(id),
                        }
                        cur.clock = entry.clock;
                        cur.state = new;
                    }
                }
                None => {
                    if new.is_some() {
                        change.added.push(id);
                    }
                    self.states.insert(
                        id,
                        Entry {
                            clock: entry.clock,
                            state: new,
                        },
                    );
                }
            }
        }
        change
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

    /// Removes the states of `ids` (a closed connection's clients) and returns the update that
    /// tells everyone else, as y-protocols `removeAwarenessStates` does: clock + 1, state `null`.
    pub fn remove(&mut self, ids: &[u64]) -> Option<AwarenessUpdate> {
        let mut removed = Vec::new();
        for id in ids {
            if let Some(e) = self.states.get_mut(id) {
                if e.state.is_some() {
                    e.state = None;
                    e.clock = e.clock.wrapping_add(1);
                    removed.push(*id);
                }
            }
        }
        (!removed.is_empty()).then(|| self.encode(&removed))
    }

    /// Number of present states.
    pub fn len(&self) -> usize {
        self.states.values().filter(|e| e.state.is_some()).count()
    }

    /// Whether no state is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn newer_clock_wins_and_older_is_ignored() {
        let mut p = Presence::default();
        let c = p.apply(&upd(&[(1, 1, r#"{"n":"a"}"#)]));
        assert_eq!(c.added, vec![1]);
        let c = p.apply(&upd(&[(1, 2, r#"{"n":"b"}"#)]));
        assert_eq!(c.updated, vec![1]);
        let c = p.apply(&upd(&[(1, 1, r#"{"n":"old"}"#)]));
        assert!(c.is_empty());
        let e = &p.encode(&[1]).clients[&ClientID::new(1)];
        assert_eq!((e.clock, e.json.as_ref()), (2, r#"{"n":"b"}"#));
    }

    #[test]
    fn null_with_same_clock_removes_and_stays_removed() {
        let mut p = Presence::default();
        p.apply(&upd(&[(1, 4, "{}")]));
        let c = p.apply(&upd(&[(1, 4, "null")]));
        assert_eq!(c.removed, vec![1]);
        assert!(p.is_empty());
        assert!(p.snapshot().is_none());
        // A replay of the old state cannot resurrect it.
        assert!(p.apply(&upd(&[(1, 4, "{}")])).is_empty());
        assert!(p.apply(&upd(&[(1, 5, "{}")])).added == vec![1]);
    }

    #[test]
    fn remove_bumps_clock_so_clients_accept_it() {
        let mut p = Presence::default();
        p.apply(&upd(&[(1, 7, "{}"), (2, 1, "{}")]));
        let u = p.remove(&[1, 99]).expect("one removal");
        assert_eq!(u.clients.len(), 1);
        let e = &u.clients[&ClientID::new(1)];
        assert_eq!((e.clock, e.json.as_ref()), (8, "null"));
        assert_eq!(p.len(), 1);
        assert!(p.remove(&[1]).is_none(), "already removed");
        let snap = p.snapshot().unwrap();
        assert_eq!(
            snap.clients.keys().map(|c| c.get()).collect::<Vec<_>>(),
            vec![2]
        );
    }
}
