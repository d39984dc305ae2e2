//! A room: one Yjs document, the presence of its connections, and the rules of the y-websocket
//! server, with no I/O. The edge hands it frames and sends what it returns.
//!
//! The behaviour mirrors the reference server (`@y/websocket-server`, `utils.js`): greet with
//! SyncStep1 and the known awareness states; answer SyncStep1 with SyncStep2; apply SyncStep2 and
//! Update and send the resulting change to every other connection; re-broadcast awareness changes
//! to every connection, the sender included; remove a connection's awareness states when it
//! closes. One difference is deliberate: a change is written to the [`RoomStore`] before it is
//! returned for sending, so nothing leaves the room that storage does not hold.
//!
//! Input is bounded before anything acts on it (`room/frame.rs`): a frame holds at most
//! [`MAX_MESSAGES_PER_FRAME`](protocol::MAX_MESSAGES_PER_FRAME) messages, every payload passes
//! the [`prescan`] before yrs reads it, read-only roles never have an update decoded, awareness
//! ids belong to the connection that introduced them, and a frame is applied whole or not at
//! all. The bounds are [`Limits`], the close codes [`close`].

mod commit;
mod frame;
mod limits;

pub use commit::{CommitFailure, Durability, Send, To, BURST_ROWS};
pub use limits::{close, Limits, Refusal, Rejection};

use crate::auth::Role;
use crate::prescan;
use crate::presence::Presence;
use crate::protocol;
use crate::ratelimit::Meter;
use crate::storage::{RoomStore, StoreError, Stored};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeSet, HashMap};
use thiserror::Error;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Per-connection state. The edge keeps it in the WebSocket attachment so that it survives
/// hibernation; it must stay small (attachments are limited to 2 KiB). Nothing a client sends
/// grows it past [`presence::MAX_IDS_PER_CONNECTION`](crate::presence::MAX_IDS_PER_CONNECTION)
/// awareness ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Identifier of the connection, unique within the room.
    pub id: u64,
    /// Awareness client ids this connection introduced; removed when it closes.
    #[serde(default)]
    pub owned: BTreeSet<u64>,
    /// The user (`sub` of the token); rate limits are per connection and per user.
    #[serde(default)]
    pub sub: String,
    /// Role in the room; document updates apply only for editors and owners.
    pub role: Role,
    /// When the connection's token expires, unix seconds.
    #[serde(default)]
    pub exp: Option<u64>,
    /// What admitted it (key, signing key, token id), so that a revocation finds it.
    #[serde(default)]
    pub cred: crate::room_call::Credential,
    /// It asked for conversation events (see `docs/protocol.md`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub events: bool,
}

impl Connection {
    /// A new connection for user `sub` with `role`.
    pub fn new(id: u64, sub: impl Into<String>, role: Role, exp: Option<u64>) -> Self {
        Connection {
            id,
            owned: BTreeSet::new(),
            sub: sub.into(),
            role,
            exp,
            cred: Default::default(),
            events: false,
        }
    }

    /// Whether the connection's document updates are applied.
    pub fn can_write(&self) -> bool {
        self.role.can_write()
    }

    /// How the connection's user appears in the history and in webhook events: `user:<sub>`,
    /// as the audit log names users (API keys appear as their id, the admin as `admin`).
    pub fn author(&self) -> String {
        format!("user:{}", self.sub)
    }

    /// Whether the connection's token has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.exp.is_some_and(|exp| now_ms / 1000 >= exp)
    }
}

/// A frame as it arrived on the socket.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// A binary frame: one or more y-protocols messages.
    Binary(&'a [u8]),
    /// A text frame, which the protocol does not use.
    Text(&'a str),
}

/// Frames to send after a message was handled, in order: replies, then the others, then all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Frames for the connection that sent the message.
    pub reply: Vec<Vec<u8>>,
    /// Frames for every other connection.
    pub others: Vec<Vec<u8>>,
    /// Frames for every connection, the sender included.
    pub everyone: Vec<Vec<u8>>,
    /// Whether [`Connection`] changed and must be saved back to its attachment.
    pub connection_changed: bool,
    /// Whether the document changed (and the change was stored).
    pub document_changed: bool,
    /// Awareness entries ignored (another connection's id, or over a presence bound): for the
    /// log, since the client is not told.
    pub awareness_ignored: usize,
}

/// Errors of loading and compacting a room.
#[derive(Debug, Error)]
pub enum RoomError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored bytes do not decode or apply: the room refuses to serve rather than overwrite them.
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    /// Log rows are pending: commit them first.
    #[error("{0} log rows wait for their commit")]
    Pending(usize),
}

/// One collaborative document and the connections editing it.
pub struct Room<S: RoomStore> {
    /// The document, or why the stored bytes do not make one. Decoded on first use (see
    /// [`Room::load`]); until then `full` (a checkpoint alone) or `undecoded` (a checkpoint and
    /// the updates logged after it) holds it.
    doc: OnceCell<Result<Doc, String>>,
    /// The stored rows, kept as read until the document is first needed.
    undecoded: RefCell<Option<Stored>>,
    /// Set when the document was decoded, until [`Room::take_decoded`] reads it.
    decoded_now: Cell<bool>,
    /// Whether the room woke from hibernation and has not relearned the awareness states of its
    /// surviving connections ([`Room::woke`]).
    presence_stale: bool,
    presence: Presence,
    store: S,
    limits: Limits,
    log_updates: usize,
    log_bytes: usize,
    /// Traffic meters per connection id and per user.
    meters: HashMap<u64, Meter>,
    user_meters: HashMap<String, Meter>,
    /// The whole document as one v1 update, kept from when it was last encoded until the next
    /// update: every client that joins with an empty document needs exactly this, and encoding
    /// a long history costs milliseconds (tens in wasm) each time.
    full: RefCell<Option<Vec<u8>>>,
    /// Changes not written yet, and the frames that wait for them (`room/commit.rs`).
    pending: commit::Pending,
    /// Whether connections were greeted without SyncStep1 (the document was not decoded) and
    /// still wait for it ([`Room::settle`]).
    owes_settle: bool,
    /// The log position the next change takes.
    next_seq: u64,
}

impl<S: RoomStore> Room<S> {
    /// Loads the room from `store`. A stored blob that does not decode or apply is an error, and
    /// the store is left as it was.
    ///
    /// A checkpoint with nothing logged after it is the whole document already: it is kept as
    /// it is and decoded only when something needs the document itself (see [`Room::doc`]), so
    /// a client joining a room that was idle gets the stored bytes without the room decoding
    /// them and encoding them again. Until then the room has no state vector to greet with
    /// ([`Room::greeting`]); a corrupt checkpoint is found when it is decoded.
    pub fn load(store: S, limits: Limits) -> Result<Self, RoomError> {
        let mut stored = store.load()?;
        let log_updates = stored.updates.len();
        let log_bytes = stored.updates.iter().map(Vec::len).sum();
        let (full, undecoded) = if stored.updates.is_empty() {
            (stored.snapshot.take(), None)
        } else {
            (None, Some(stored))
        };
        Ok(Room {
            doc: OnceCell::new(),
            undecoded: RefCell::new(undecoded),
            decoded_now: Cell::new(false),
            presence_stale: false,
            presence: Presence::new(limits.presence()),
            log_updates,
            log_bytes,
            next_seq: store.head() + 1,
            store,
            limits,
            meters: HashMap::new(),
            user_meters: HashMap::new(),
            full: RefCell::new(full),
            pending: commit::Pending::default(),
            owes_settle: false,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The document (read it; change it only through [`Room::receive`]), decoded now if the
    /// room has not needed it since it loaded. An error means the stored checkpoint is corrupt:
    /// the room can serve nothing that needs the document, and writes nothing.
    pub fn doc(&self) -> Result<&Doc, RoomError> {
        self.doc
            .get_or_init(|| {
                self.decoded_now.set(true);
                // Not decoded yet: the rows as read, or `full` holding the checkpoint alone
                // (nothing takes it before the document exists).
                let stored = self
                    .undecoded
                    .borrow_mut()
                    .take()
                    .unwrap_or_else(|| Stored {
                        snapshot: self.full.borrow().clone(),
                        updates: Vec::new(),
                    });
                doc_from(&stored).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| RoomError::Corrupt(e.clone()))
    }

    /// Whether the document was decoded since the last call (for the log and the metrics: a
    /// room that only relays awareness never decodes it).
    pub fn take_decoded(&self) -> bool {
        self.decoded_now.replace(false)
    }

    /// Whether the document is decoded: not until something needs the document itself (a
    /// sync, an update, an API read), so a room woken from hibernation for an awareness
    /// renewal relays it without decoding.
    pub fn is_decoded(&self) -> bool {
        self.doc.get().is_some_and(Result::is_ok)
    }

    /// The store (for tests and diagnostics).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, to change (tests switch failures on and off through it).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Number of present awareness states.
    pub fn presence_len(&self) -> usize {
        self.presence.len()
    }

    /// Frames for a connection that just joined: SyncStep1, then every known awareness state.
    /// While the document is not decoded ([`Room::is_decoded`]) there is no SyncStep1: the
    /// room settles ([`Room::settle`]) once it is, so the client sends what the room lacks. (A
    /// new client's own SyncStep1 is answered without decoding when the room holds a
    /// checkpoint alone.)
    pub fn greeting(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(Ok(doc)) = self.doc.get() {
            out.push(protocol::sync_step1(&doc.transact().state_vector()));
        }
        if let Some(states) = self.presence.snapshot() {
            out.push(protocol::awareness(states));
        }
        out
    }

    /// [`Room::greeting`] for a connection that joins now. Without the document decoded the
    /// room owes every connection its SyncStep1 from then on ([`Room::settle`]): the caller
    /// settles after the next message, or [`SETTLE_FALLBACK_MS`] from now if none comes.
    pub fn join(&mut self) -> Vec<Vec<u8>> {
        if !self.is_decoded() {
            self.owes_settle = true;
        }
        self.greeting()
    }

    /// After [`Room::join`]: if the room woke from hibernation and has not relearned its
    /// connections' awareness states, the query that makes every client re-announce them (for
    /// everyone; the newcomer then sees them relayed). Asked once.
    pub fn presence_query(&mut self) -> Option<Vec<u8>> {
        std::mem::take(&mut self.presence_stale).then(protocol::query_awareness)
    }

    /// Whether connections still wait for the room's SyncStep1 ([`Room::join`]).
    pub fn owes_settle(&self) -> bool {
        self.owes_settle
    }

    /// When the room should settle after a message: at once if the message made it decode the
    /// document, else right after this event (once the answer, the stored bytes a new client
    /// asked for, is out). `None` when nothing is owed.
    pub fn settle_after_message(&self) -> Option<u64> {
        self.owes_settle.then_some(0)
    }

    /// Decodes the document if needed and sends its SyncStep1 to every connection, so clients
    /// that hold changes the room lacks send them. `Err` when the stored checkpoint does not
    /// decode: the room can serve nobody.
    pub fn settle(&mut self) -> Result<Vec<Send>, RoomError> {
        if !std::mem::take(&mut self.owes_settle) {
            return Ok(Vec::new());
        }
        let step1 = self.sync_step1()?;
        Ok(self.send(To::All, &[step1]))
    }

    /// The room woke from hibernation with surviving connections (re-registered with
    /// [`Room::restore`]). They are in sync: every change reached the room, was stored and sent
    /// before it went idle, so nothing is sent and the document stays undecoded. Their awareness
    /// states did not survive in memory: they come back with each client's next renewal, and
    /// at once (a query to everyone) when a newcomer joins ([`Room::presence_query`]) or a
    /// connection closes before its states were seen again ([`Room::leave`]).
    pub fn woke(&mut self) {
        self.presence_stale = true;
    }

    /// The room's SyncStep1 (its state vector), which makes a client send what the room lacks.
    pub fn sync_step1(&self) -> Result<Vec<u8>, RoomError> {
        Ok(protocol::sync_step1(&self.doc()?.transact().state_vector()))
    }

    /// Re-registers a connection that survived hibernation, so its awareness ids stay its own.
    pub fn restore(&mut self, conn: &Connection) {
        self.presence.restore(conn.id, &conn.owned);
    }

    /// Applies decoded updates in one transaction, logs the one change they made together (a
    /// pending row, written by [`Room::commit`]), and returns it (`None` when they added
    /// nothing new). If one does not apply, the in-memory document is reloaded from storage and
    /// the pending rows (which hold nothing of these).
    fn apply(
        &mut self,
        updates: Vec<Update>,
        now_ms: u64,
        author: &str,
    ) -> Result<Option<Vec<u8>>, Rejection> {
        let change = {
            let mut txn = self.doc().map_err(unavailable)?.transact_mut();
            for update in updates {
                // yrs has no rollback: what applied before the failure stays in memory until
                // the reload.
                if let Err(e) = txn.apply_update(update) {
                    drop(txn);
                    self.reload_after_failure();
                    return Err(Rejection::new(
                        close::INVALID,
                        "update does not apply",
                        e.to_string(),
                    ));
                }
            }
            let unchanged = txn.insert_set().is_empty() && txn.delete_set().is_empty();
            // The whole-document encoding carries parts waiting for what they depend on too, so
            // it is kept only when the update neither changed the document nor left parts
            // waiting (every joining client sends an empty or known update: that must not
            // cost the next one a fresh encoding).
            if !unchanged || txn.has_missing_updates() {
                self.full.borrow_mut().take();
            }
            if unchanged {
                return Ok(None);
            }
            txn.encode_update_v1()
        };
        self.log(change.clone(), now_ms, author);
        Ok(Some(change))
    }

    /// Replaces the document with what storage holds and the pending rows. If that fails the
    /// room serves nothing that needs the document (1011) rather than one it does not hold.
    fn reload_after_failure(&mut self) {
        self.full.get_mut().take();
        let reloaded = self
            .store
            .load()
            .map_err(RoomError::from)
            .map(|mut s| {
                s.updates.extend(self.pending_updates().map(<[u8]>::to_vec));
                s
            })
            .and_then(|s| doc_from(&s))
            .map_err(|e| format!("reload after a failed write: {e}"));
        self.doc = OnceCell::from(reloaded);
    }

    /// Applies an update by `author` that came from outside the protocol (the HTTP API: document
    /// writes, restores, merges). Returns the frames for every connection (none when the update
    /// added nothing) and the stored change, if any.
    pub fn apply_external(
        &mut self,
        update: &[u8],
        now_ms: u64,
        author: &str,
    ) -> Result<(Outbox, Option<Vec<u8>>), Rejection> {
        let change = self.apply(vec![decode_update(update)?], now_ms, author)?;
        let mut out = Outbox::default();
        if let Some(change) = &change {
            out.everyone.push(protocol::update(change.clone()));
            out.document_changed = true;
        }
        Ok((out, change))
    }

    /// The whole document as one v1 update.
    pub fn full_state(&self) -> Result<Vec<u8>, RoomError> {
        if let Some(full) = &*self.full.borrow() {
            return Ok(full.clone());
        }
        let encoded = self
            .doc()?
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        *self.full.borrow_mut() = Some(encoded.clone());
        Ok(encoded)
    }

    /// The document as a v1 update, or only what a peer at `sv` lacks; v2 encoding on request.
    pub fn encode_state(&self, sv: &StateVector, v2: bool) -> Result<Vec<u8>, RoomError> {
        let txn = self.doc()?.transact();
        Ok(if v2 {
            txn.encode_state_as_update_v2(sv)
        } else {
            txn.encode_state_as_update_v1(sv)
        })
    }

    /// Called when `conn` has closed: forgets its awareness states and returns the frames that
    /// tell every remaining connection.
    pub fn leave(&mut self, conn: &Connection) -> Outbox {
        self.meters.remove(&conn.id);
        let mut out = Outbox::default();
        if let Some(removal) = self.presence.leave(conn.id, &conn.owned) {
            out.others.push(protocol::awareness(removal));
        }
        // Woken for this close without having seen its states again: the others echo them on
        // this query, and the room answers each echo with its removal (`Presence::leave`).
        if self.presence_stale && !conn.owned.is_empty() {
            out.others.push(protocol::query_awareness());
        }
        out
    }

    /// Whether enough updates were logged since the last checkpoint to write a new one.
    pub fn compaction_due(&self) -> bool {
        self.log_updates >= self.limits.compact_after_updates
            || self.log_bytes >= self.limits.compact_after_bytes
    }

    /// Updates logged since the checkpoint the room would load from (a room that went idle with
    /// some writes a checkpoint, so that its next load reads one blob and decodes it only when
    /// needed).
    pub fn logged_since_checkpoint(&self) -> usize {
        self.log_updates
    }

    /// Writes the current state as the checkpoint the room loads from, atomically. The log keeps
    /// its entries: they are the document's history.
    pub fn compact(&mut self) -> Result<(), RoomError> {
        self.require_committed()?;
        let snapshot = self.full_state()?;
        self.store.checkpoint(&snapshot)?;
        self.log_updates = 0;
        self.log_bytes = 0;
        Ok(())
    }
}

/// How long after greeting a connection without SyncStep1 the room settles anyway when the
/// client has sent nothing (a y-websocket client sends its own SyncStep1 at once, and the room
/// settles right after answering it).
pub const SETTLE_FALLBACK_MS: u64 = 1000;

/// Pre-scans and decodes a v1 update from a client or the HTTP API.
fn decode_update(update: &[u8]) -> Result<Update, Rejection> {
    let malformed = |e: String| Rejection::new(close::INVALID, "malformed update", e);
    prescan::check_update_v1(update).map_err(|e| malformed(e.to_string()))?;
    Update::decode_v1(update).map_err(|e| malformed(e.to_string()))
}

/// The rejection of a connection whose message needs a document the room cannot decode.
fn unavailable(e: RoomError) -> Rejection {
    Rejection::new(close::INTERNAL, "room unavailable", e.to_string())
}

/// Builds a document from stored bytes, failing on anything that does not decode or apply.
fn doc_from(stored: &Stored) -> Result<Doc, RoomError> {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let blobs = stored.snapshot.iter().chain(stored.updates.iter());
        for (i, blob) in blobs.enumerate() {
            let update = Update::decode_v1(blob)
                .map_err(|e| RoomError::Corrupt(format!("blob {i}: {e}")))?;
            txn.apply_update(update)
                .map_err(|e| RoomError::Corrupt(format!("blob {i}: {e}")))?;
        }
    }
    Ok(doc)
}
