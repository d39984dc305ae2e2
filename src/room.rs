//! A room: one Yjs document, the presence of its connections, and the rules of the y-websocket
//! server, with no I/O. The edge hands it frames and sends what it returns.
//!
//! The behaviour mirrors the reference server (`@y/websocket-server`, `utils.js`): greet with
//! SyncStep1 and the known awareness states; answer SyncStep1 with SyncStep2; apply SyncStep2 and
//! Update and send the resulting change to every other connection; re-broadcast awareness changes
//! to every connection, the sender included; remove a connection's awareness states when it
//! closes. One difference is deliberate: a change is written to the [`RoomStore`] before it is
//! returned for sending, so nothing leaves the room that storage does not hold.

use crate::auth::Role;
use crate::presence::{Presence, PresenceLimits};
use crate::protocol::{self, FrameError, Incoming};
use crate::ratelimit::{Meter, Rates, USER_MULTIPLIER};
use crate::storage::{RoomStore, StoreError, Stored};
use serde::{Deserialize, Serialize};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeSet, HashMap};
use thiserror::Error;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Limits a room enforces. Documented in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest frame accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Most connections one room holds at once.
    pub max_connections: usize,
    /// Most awareness states present in the room; a new state over it is ignored.
    pub max_awareness_states: usize,
    /// Largest awareness state (its JSON text) in bytes; a larger one is ignored.
    pub max_awareness_state_bytes: usize,
    /// Write a checkpoint after this many updates since the last one...
    pub compact_after_updates: usize,
    /// ...or after this many bytes of updates, whichever comes first.
    pub compact_after_bytes: usize,
    /// Traffic one connection may send (a user gets a multiple of it).
    pub rates: Rates,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 8 * 1024 * 1024,
            max_connections: 1000,
            // Twice a full room of stock clients (one state each); with the size cap below,
            // presence holds 16 MiB at most.
            max_awareness_states: 2048,
            // Cursors, names and selections take hundreds of bytes.
            max_awareness_state_bytes: 8 * 1024,
            compact_after_updates: 2000,
            compact_after_bytes: 4 * 1024 * 1024,
            rates: Rates::default(),
        }
    }
}

impl Limits {
    fn presence(&self) -> PresenceLimits {
        PresenceLimits {
            max_states: self.max_awareness_states,
            max_state_bytes: self.max_awareness_state_bytes,
        }
    }
}

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

/// WebSocket close codes the room uses (RFC 6455 section 7.4.1).
pub mod close {
    /// The frame type or message type is not one the server speaks.
    pub const UNSUPPORTED: u16 = 1003;
    /// The message did not decode or the update did not apply.
    pub const INVALID: u16 = 1007;
    /// The frame is larger than the room accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The room could not load or store the document.
    pub const INTERNAL: u16 = 1011;
    /// The connection's token expired: fetch a fresh one and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4401;
    /// The connection or its user sent more than the rate limits allow.
    pub const RATE_LIMITED: u16 = 4429;
}

/// Why a connection is closed. The reason goes to the client; `detail` only to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// WebSocket close code.
    pub code: u16,
    /// Short reason sent in the close frame (at most 123 bytes by RFC 6455).
    pub reason: &'static str,
    /// Full cause, for the log.
    pub detail: String,
}

impl Rejection {
    fn new(code: u16, reason: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            code,
            reason,
            detail: detail.into(),
        }
    }
}

impl From<FrameError> for Rejection {
    fn from(e: FrameError) -> Self {
        if e.is_unsupported() {
            Rejection::new(
                close::UNSUPPORTED,
                "unsupported message type",
                e.to_string(),
            )
        } else {
            Rejection::new(close::INVALID, "malformed message", e.to_string())
        }
    }
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
}

/// One collaborative document and the connections editing it.
pub struct Room<S: RoomStore> {
    /// The document, or why the stored bytes do not make one. Decoded on first use when the
    /// room loaded from a checkpoint alone (see [`Room::load`]); until then `full` holds it.
    doc: OnceCell<Result<Doc, String>>,
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
        let (doc, full) = if stored.updates.is_empty() && stored.snapshot.is_some() {
            (OnceCell::new(), stored.snapshot.take())
        } else {
            (OnceCell::from(Ok(doc_from(&stored)?)), None)
        };
        Ok(Room {
            doc,
            presence: Presence::new(limits.presence()),
            log_updates: stored.updates.len(),
            log_bytes: stored.updates.iter().map(Vec::len).sum(),
            store,
            limits,
            meters: HashMap::new(),
            user_meters: HashMap::new(),
            full: RefCell::new(full),
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
                // Not decoded yet: `full` holds the checkpoint (nothing takes it before the
                // document exists).
                let full = self.full.borrow();
                let stored = Stored {
                    snapshot: full.clone(),
                    updates: Vec::new(),
                };
                doc_from(&stored).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| RoomError::Corrupt(e.clone()))
    }

    /// Whether the document is decoded (it always is, unless the room loaded from a checkpoint
    /// alone and nothing has needed it since).
    pub fn is_decoded(&self) -> bool {
        self.doc.get().is_some_and(Result::is_ok)
    }

    /// The store (for tests and diagnostics).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Number of present awareness states.
    pub fn presence_len(&self) -> usize {
        self.presence.len()
    }

    /// Frames for a connection that just joined: SyncStep1, then every known awareness state.
    /// While the document is not decoded ([`Room::is_decoded`]) there is no SyncStep1: the
    /// caller sends [`Room::wake_greeting`]'s SyncStep1 once it is, so the client sends what the
    /// room lacks. (A new client's own SyncStep1 is answered without decoding.)
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

    /// Frames for connections that survived hibernation, sent when the room wakes: SyncStep1 so
    /// each re-sends anything the room lacks, and a query so each re-announces awareness states
    /// (the room's in-memory presence did not survive).
    pub fn wake_greeting(&self) -> Result<Vec<Vec<u8>>, RoomError> {
        Ok(vec![self.sync_step1()?, protocol::query_awareness()])
    }

    /// The room's SyncStep1 (its state vector), which makes a client send what the room lacks.
    pub fn sync_step1(&self) -> Result<Vec<u8>, RoomError> {
        Ok(protocol::sync_step1(&self.doc()?.transact().state_vector()))
    }

    /// Re-registers a connection that survived hibernation, so its awareness ids stay its own.
    pub fn restore(&mut self, conn: &Connection) {
        self.presence.restore(conn.id, &conn.owned);
    }

    /// Handles one frame from `conn`. On `Err` the connection must be closed with the rejection;
    /// the document, the store and every other connection are untouched.
    pub fn receive(
        &mut self,
        conn: &mut Connection,
        frame: Frame<'_>,
        now_ms: u64,
    ) -> Result<Outbox, Rejection> {
        if conn.expired(now_ms) {
            return Err(Rejection::new(
                close::TOKEN_EXPIRED,
                "token expired",
                format!("token of {} expired", conn.sub),
            ));
        }
        let len = match frame {
            Frame::Binary(b) => b.len(),
            Frame::Text(t) => t.len(),
        };
        let rates = self.limits.rates;
        let conn_ok = self
            .meters
            .entry(conn.id)
            .or_insert_with(|| Meter::new(&rates, 1.0, now_ms))
            .charge(len, now_ms);
        let user_ok = self
            .user_meters
            .entry(conn.sub.clone())
            .or_insert_with(|| Meter::new(&rates, USER_MULTIPLIER, now_ms))
            .charge(len, now_ms);
        if !(conn_ok && user_ok) {
            let who = if conn_ok { "user" } else { "connection" };
            return Err(Rejection::new(
                close::RATE_LIMITED,
                "rate limit exceeded",
                format!("{who} rate limit exceeded by {} ({})", conn.id, conn.sub),
            ));
        }
        let bytes = match frame {
            Frame::Text(_) => {
                return Err(Rejection::new(
                    close::UNSUPPORTED,
                    "text frames are not supported",
                    "text frame",
                ))
            }
            Frame::Binary(b) => b,
        };
        if bytes.len() > self.limits.max_frame_bytes {
            return Err(Rejection::new(
                close::TOO_BIG,
                "frame too large",
                format!(
                    "frame of {} bytes over the limit of {}",
                    bytes.len(),
                    self.limits.max_frame_bytes
                ),
            ));
        }
        let messages = protocol::decode(bytes)?;
        // Decode every update before applying any, so a bad frame changes nothing.
        let mut updates = Vec::new();
        for msg in &messages {
            if let Incoming::SyncStep2(u) | Incoming::Update(u) = msg {
                let update = Update::decode_v1(u).map_err(|e| {
                    Rejection::new(close::INVALID, "malformed update", e.to_string())
                })?;
                updates.push(Some(update));
            }
        }
        let mut updates = updates.into_iter();
        let mut out = Outbox::default();
        for msg in messages {
            match msg {
                Incoming::SyncStep1(sv) => {
                    let diff = if sv.is_empty() {
                        self.full_state()
                    } else {
                        self.doc()
                            .map(|doc| doc.transact().encode_state_as_update_v1(&sv))
                    };
                    out.reply
                        .push(protocol::sync_step2(diff.map_err(unavailable)?));
                }
                Incoming::SyncStep2(_) | Incoming::Update(_) => {
                    let update = updates.next().flatten().expect("decoded above");
                    if conn.can_write() {
                        if let Some(change) = self.apply(update, now_ms, &conn.author())? {
                            out.others.push(protocol::update(change));
                            out.document_changed = true;
                        }
                    } else if !update.is_empty() {
                        // y-protocols auth: tell the client, as the reference server's
                        // permission hook would; nothing is applied, stored or broadcast.
                        out.reply.push(protocol::permission_denied(
                            "read-only: your role cannot change this document",
                        ));
                    }
                }
                Incoming::Awareness(update) => {
                    let owned = conn.owned.len();
                    let change = self.presence.apply_from(conn.id, &mut conn.owned, &update);
                    out.connection_changed |= conn.owned.len() != owned;
                    out.awareness_ignored += change.ignored;
                    if !change.is_empty() {
                        out.everyone
                            .push(protocol::awareness(self.presence.encode(&change.all())));
                    }
                }
                Incoming::QueryAwareness => {
                    if let Some(states) = self.presence.snapshot() {
                        out.reply.push(protocol::awareness(states));
                    }
                }
                Incoming::Auth => {}
            }
        }
        Ok(out)
    }

    /// Applies a decoded update, stores the change it made, and returns that change (`None` when
    /// it added nothing new). If storing fails the in-memory document is reloaded from storage,
    /// so memory never runs ahead of what is durable.
    fn apply(
        &mut self,
        update: Update,
        now_ms: u64,
        author: &str,
    ) -> Result<Option<Vec<u8>>, Rejection> {
        let change = {
            let mut txn = self.doc().map_err(unavailable)?.transact_mut();
            if let Err(e) = txn.apply_update(update) {
                drop(txn);
                self.reload_after_failure();
                return Err(Rejection::new(
                    close::INVALID,
                    "update does not apply",
                    e.to_string(),
                ));
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
        if let Err(e) = self.store.append(&change, now_ms, author) {
            self.reload_after_failure();
            return Err(Rejection::new(
                close::INTERNAL,
                "storage failure",
                e.to_string(),
            ));
        }
        self.log_updates += 1;
        self.log_bytes += change.len();
        Ok(Some(change))
    }

    fn reload_after_failure(&mut self) {
        self.full.get_mut().take();
        if let Ok(doc) = self
            .store
            .load()
            .map_err(RoomError::from)
            .and_then(|s| doc_from(&s))
        {
            self.doc = OnceCell::from(Ok(doc));
        }
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
        let decoded = Update::decode_v1(update)
            .map_err(|e| Rejection::new(close::INVALID, "malformed update", e.to_string()))?;
        let change = self.apply(decoded, now_ms, author)?;
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
        let snapshot = self.full_state()?;
        self.store.checkpoint(&snapshot)?;
        self.log_updates = 0;
        self.log_bytes = 0;
        Ok(())
    }
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
