//! The room's Durable Object: wires hibernatable WebSockets to a [`Room`] and persists it in the
//! object's SQLite storage. All protocol decisions are the room's; this file only moves bytes.
//!
//! Hibernation (<https://developers.cloudflare.com/durable-objects/best-practices/websockets/>):
//! sockets are accepted with `accept_web_socket`, so an idle room can be evicted from memory while
//! its connections stay open. Per-connection state lives in each socket's attachment; on wake the
//! room reloads from storage, re-registers the surviving connections and re-syncs them.
//!
//! While the object is in memory, its live connections are also kept in [`Live`], so that a
//! message reads neither `get_websockets()` nor an attachment (each a trip into JavaScript and a
//! deserialization); attachments stay the record that survives hibernation, written whenever a
//! connection's state changes, and `Live` is rebuilt from them on wake.

mod bindings;
mod document;
mod history;
mod revocation;
mod upkeep;

use super::env;
use super::http;
use super::sql_store::SqlRoomStore;
use crate::api::ApiError;
use crate::names::{Id, RoomName};
use crate::room::{close, Connection, Frame, Outbox, Refusal, Room, RoomError};
use crate::room_call::{Admission, RoomCall, RoomRequest, ADMISSION_HEADER};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use worker::js_sys::{ArrayBuffer, Date, Math, Object, Uint8Array, WeakMap};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{
    DurableObject, Env, Headers, Method, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// The Durable Object class bound as `ROOMS`. Its JavaScript methods are in [`bindings`].
#[worker::wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct RoomObject {
    state: State,
    env: Env,
    room: Rc<RefCell<Loaded>>,
    /// The connections of this instance, in memory (see the module documentation).
    live: Rc<RefCell<Live>>,
    /// Whether connections were greeted without SyncStep1 (the document was not decoded yet;
    /// see [`RoomObject::settle`]).
    owes_sync_step1: Rc<Cell<bool>>,
    /// Changes gathered for the next `document.updated` webhook event.
    pending: RefCell<Option<Pending>>,
    /// Whether the alarm is set for a due checkpoint (so a burst of messages sets it once).
    checkpoint_scheduled: Cell<bool>,
    /// Whether the alarm is set for the next automatic version.
    version_scheduled: Cell<bool>,
    /// Whether the last connection left since the alarm last ran (a version is due then).
    emptied: Cell<bool>,
    /// When the pending alarm fires, as this instance set it (`None`: not known here).
    alarm_known: Rc<Cell<Option<u64>>>,
    /// Whether the room's names are known to be stored (see [`RoomObject::remember_info`]).
    info_stored: Cell<bool>,
    /// Strict durability: frames that wait for the log rows written before them (see
    /// [`RoomObject::emit`]).
    held: Rc<RefCell<Vec<(WebSocket, ArrayBuffer)>>>,
    /// When (ms) the flush task last wrote log rows, and how many (for `COMMIT_GAP_MS`).
    last_commit: Rc<Cell<(u64, usize)>>,
    /// Whether `DURABILITY=relaxed`.
    relaxed: bool,
    /// How long waiting log rows may wait: `RELAXED_FLUSH_MS` when relaxed, else 0 (next turn).
    flush_ms: u64,
    /// `COMMIT_GAP_MS` (strict durability, during a burst).
    commit_gap_ms: u64,
    /// Whether the project has webhook subscriptions, and when (ms) that was learned.
    webhooks: Cell<Option<(bool, u64)>>,
    /// The document as JSON as it is now, when known: the last event's "after", which is the
    /// next event's "before" as long as the document has not changed since. Every change takes it.
    rendered: RefCell<Option<serde_json::Value>>,
    /// Revocations this room refuses at admission, when read from storage.
    refused: RefCell<Option<revocation::Refused>>,
    /// When this room marked itself live in D1 (`None`: it has not, or has no connections).
    live_since: Cell<Option<u64>>,
}

/// How long a room trusts what it learned about its project's webhook subscriptions. A
/// subscription added later reaches a busy room within this time (or at its next connection,
/// which brings a fresh answer); until then the room tracks no changes for it.
const WEBHOOKS_TTL_MS: u64 = 30_000;

/// Changes since the last `document.updated` event. Kept in memory for the few seconds of a
/// coalescing window (a room is not evicted while its alarm is due that soon).
struct Pending {
    since_ms: u64,
    before: serde_json::Value,
    authors: std::collections::BTreeSet<String>,
}

/// Where the room is, for its webhook events and R2 keys; stored from the first call or
/// admission the worker sends.
#[derive(serde::Serialize, serde::Deserialize)]
struct RoomInfo {
    project: String,
    room: String,
}

/// Whether a frame starts with a sync step 2 or update: the only messages that change the
/// document, so the only ones worth a "before" rendering for the webhook summary.
fn may_change_document(frame: &WebSocketIncomingMessage) -> bool {
    matches!(frame, WebSocketIncomingMessage::Binary(b) if b.first() == Some(&0) && matches!(b.get(1), Some(1 | 2)))
}

enum Loaded {
    /// Not read from storage yet (a new object, or one that woke from hibernation).
    No,
    Ready(Box<Room<SqlRoomStore>>),
    /// Storage could not be read; the room serves nobody and writes nothing.
    Failed,
}

/// Live connections: each socket with its connection state. A socket is found by identity
/// through a JavaScript `WeakMap` (one call, no copy; weak, so a socket object the runtime
/// replaces is never kept alive by it); state is read and written in Rust.
struct Live {
    /// Socket object -> connection id.
    ids: WeakMap,
    /// Connection id -> socket and state.
    conns: HashMap<u64, (WebSocket, Connection)>,
}

impl Live {
    fn new() -> Self {
        Live {
            ids: WeakMap::new(),
            conns: HashMap::new(),
        }
    }

    fn insert(&mut self, ws: &WebSocket, conn: Connection) {
        self.ids
            .set(socket_key(ws), &JsValue::from_f64(conn.id as f64));
        self.conns.insert(conn.id, (ws.clone(), conn));
    }

    /// The connection id of `ws`, if it is live here.
    fn id_of(&self, ws: &WebSocket) -> Option<u64> {
        self.ids.get(socket_key(ws)).as_f64().map(|id| id as u64)
    }

    fn remove(&mut self, ws: &WebSocket) -> Option<Connection> {
        let id = self.id_of(ws)?;
        self.ids.delete(socket_key(ws));
        self.conns.remove(&id).map(|(_, conn)| conn)
    }

    fn len(&self) -> usize {
        self.conns.len()
    }
}

/// Makes sure the alarm fires by `at_ms`: keeps an earlier pending alarm, else sets it.
/// `known` is the pending alarm as this instance last set it (`None`: not known, read it), so
/// that the connections and messages that each want an alarm do not each read it back.
async fn schedule_alarm(
    storage: &worker::Storage,
    known: &Cell<Option<u64>>,
    at_ms: u64,
) -> Result<()> {
    let current = match known.get() {
        Some(current) => Some(current),
        None => storage.get_alarm().await?.map(|ms| ms as u64),
    };
    match current {
        Some(current) if current <= at_ms && current > now_ms() => {
            known.set(Some(current));
            Ok(())
        }
        _ => {
            storage.set_alarm(super::alarm_at(at_ms)).await?;
            known.set(Some(at_ms));
            Ok(())
        }
    }
}

/// The earlier of two wanted alarm times.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The socket as the key of [`Live::ids`].
fn socket_key(ws: &WebSocket) -> &Object {
    let value: &JsValue = ws.as_ref();
    value.unchecked_ref()
}

/// When the alarm closes a connection whose token expires at `exp` (unix seconds): just after.
/// Saturating: an `exp` from a token is bounded when verified, but no arithmetic on it may
/// wrap (a wrapped time would set an alarm in the past, which fires again at once, forever).
fn expiry_alarm_ms(exp: u64) -> u64 {
    exp.saturating_mul(1000).saturating_add(50)
}

fn now_ms() -> u64 {
    Date::now() as u64
}

/// What an API request gets when the room's stored checkpoint does not decode.
fn unavailable(e: RoomError) -> ApiError {
    worker::console_error!("room unavailable: {e}");
    ApiError::RoomUnavailable
}

/// A connection id: random, and within JavaScript's safe integers so the attachment keeps it.
fn new_connection_id() -> u64 {
    (Math::random() * 9_007_199_254_740_991.0) as u64
}

/// A frame copied out of wasm memory once, to send to any number of sockets. The copy is needed
/// (the runtime sends asynchronously, after the Rust buffer is gone: see `send_with_bytes`), but
/// one per frame is enough: nothing writes to the buffer afterwards, so every socket can share it.
fn js_frame(frame: &[u8]) -> ArrayBuffer {
    Uint8Array::from(frame).buffer()
}

pub(super) fn send_js(ws: &WebSocket, frame: &ArrayBuffer) {
    let socket: &worker::web_sys::WebSocket = ws.as_ref();
    // A socket may be closing while the room sends; its close event cleans it up.
    if let Err(e) = socket.send_with_array_buffer(frame) {
        worker::console_debug!("send to a closing socket failed: {e:?}");
    }
}

/// [`RoomObject::emit`], for a task that outlives the event that spawned it.
fn emit_with(
    room: &RefCell<Loaded>,
    held: &RefCell<Vec<(WebSocket, ArrayBuffer)>>,
    relaxed: bool,
    ws: &WebSocket,
    frame: &ArrayBuffer,
) {
    if !relaxed {
        let pending = match room.try_borrow() {
            Ok(loaded) => match &*loaded {
                Loaded::Ready(room) => room.store().has_pending(),
                _ => false,
            },
            Err(_) => true,
        };
        let mut held = held.borrow_mut();
        if pending || !held.is_empty() {
            held.push((ws.clone(), frame.clone()));
            return;
        }
    }
    send_js(ws, frame);
}

/// How long after greeting a connection without SyncStep1 the room decodes its document anyway
/// when the client has sent nothing that needs it (a y-websocket client sends its own SyncStep1
/// at once, and the room settles right after answering it).
const SETTLE_FALLBACK_MS: u64 = 1000;

/// A room that loaded from a checkpoint alone greets and answers new clients from the stored
/// bytes (`Room::load`); once that answer is out, this decodes the document and sends its
/// SyncStep1 to every connection, so clients that hold changes the room lacks send them. A
/// checkpoint that does not decode takes the room down, as a failed load does: its connections
/// are closed and it serves nobody.
fn settle(
    room: &RefCell<Loaded>,
    live: &RefCell<Live>,
    held: &RefCell<Vec<(WebSocket, ArrayBuffer)>>,
    relaxed: bool,
    owes: &Cell<bool>,
) {
    if !owes.replace(false) {
        return;
    }
    let step1 = match &*room.borrow() {
        Loaded::Ready(room) => room.sync_step1(),
        _ => return,
    };
    match step1 {
        Ok(frame) => {
            let frame = js_frame(&frame);
            for (ws, _) in live.borrow().conns.values() {
                emit_with(room, held, relaxed, ws, &frame);
            }
        }
        Err(e) => {
            worker::console_error!("room failed to load; serving nobody: {e}");
            *room.borrow_mut() = Loaded::Failed;
            for (ws, _) in live.borrow().conns.values() {
                let _ = ws.close(Some(close::INTERNAL), Some("room unavailable"));
            }
        }
    }
}

/// Sends the frames held for log rows that are now written, in order.
pub(super) fn send_held(held: &RefCell<Vec<(WebSocket, ArrayBuffer)>>) {
    for (ws, frame) in held.borrow_mut().drain(..) {
        send_js(&ws, &frame);
    }
}

impl RoomObject {
    /// Sends a frame, or with strict durability holds it while log rows written before it wait
    /// for their commit: the flush task writes them, then sends what it holds, and the output
    /// gate keeps those frames back until the commit is durable. So no frame leaves before a
    /// change it may depend on is stored, and frames keep their order.
    fn emit(&self, ws: &WebSocket, frame: &ArrayBuffer) {
        emit_with(&self.room, &self.held, self.relaxed, ws, frame);
    }

    /// After a message while connections wait for the room's SyncStep1: sends it now if the
    /// message made the room decode its document, else right after this event, once the answer
    /// (the stored bytes, to a new client) is out.
    fn settle_after_message(&self) {
        let decoded = matches!(&*self.room.borrow(), Loaded::Ready(room) if room.is_decoded());
        if decoded {
            settle(
                &self.room,
                &self.live,
                &self.held,
                self.relaxed,
                &self.owes_sync_step1,
            );
        } else {
            self.schedule_settle(0);
        }
    }

    /// After a greeting without SyncStep1: settles the room `ms` from now (see [`settle`]).
    fn schedule_settle(&self, ms: u64) {
        let room = self.room.clone();
        let live = self.live.clone();
        let held = self.held.clone();
        let owes = self.owes_sync_step1.clone();
        let relaxed = self.relaxed;
        worker::wasm_bindgen_futures::spawn_local(async move {
            worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            settle(&room, &live, &held, relaxed, &owes);
        });
    }

    /// Writes waiting log rows now and sends the frames held for them (the output gate holds
    /// them, and whatever this event sends after, until the commit is durable). For answers
    /// that must not leave before a change is stored, such as an HTTP write's response.
    pub(super) fn flush_now(&self) -> Result<()> {
        if let Loaded::Ready(room) = &*self.room.borrow() {
            room.store()
                .flush()
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
        }
        send_held(&self.held);
        Ok(())
    }

    /// Loads the room on first use. On wake from hibernation the surviving connections are
    /// re-registered and re-synced.
    fn load(&self) {
        if !matches!(*self.room.borrow(), Loaded::No) {
            return;
        }
        let survivors = self.state.get_websockets();
        // Log rows are written from a task after the event, several per commit; with strict
        // durability the frames that follow them wait for that task (`emit`).
        let loaded = SqlRoomStore::open(self.state.storage().sql())
            .map_err(Into::into)
            .and_then(|store| Room::load(store, env::limits(&self.env)));
        // Surviving connections are re-synced at once: that needs the document decoded.
        let loaded = loaded.and_then(|room| match survivors.is_empty() {
            true => Ok((room, Vec::new())),
            false => room.wake_greeting().map(|frames| (room, frames)),
        });
        let next = match loaded {
            Ok((mut room, greeting)) => {
                if !survivors.is_empty() {
                    worker::console_warn!(
                        "room woke from hibernation with {} connections; re-syncing them",
                        survivors.len()
                    );
                }
                let greeting: Vec<ArrayBuffer> = greeting.iter().map(|f| js_frame(f)).collect();
                let mut live = Live::new();
                for ws in &survivors {
                    if let Ok(Some(conn)) = ws.deserialize_attachment::<Connection>() {
                        room.restore(&conn);
                        live.insert(ws, conn);
                    }
                    for frame in &greeting {
                        self.emit(ws, frame);
                    }
                }
                let woke_with_connections = live.len() > 0;
                *self.live.borrow_mut() = live;
                *self.room.borrow_mut() = Loaded::Ready(Box::new(room));
                if woke_with_connections {
                    self.restore_live_mark();
                }
                return;
            }
            Err(e) => {
                worker::console_error!("room failed to load; serving nobody: {e}");
                Loaded::Failed
            }
        };
        *self.room.borrow_mut() = next;
    }

    /// Sends `out`: replies to `from` (connection `from_id`), then to every live connection the
    /// frames for the others and for everyone. Each frame is copied out of wasm memory once.
    fn deliver(&self, from: &WebSocket, from_id: u64, out: &Outbox) {
        for frame in &out.reply {
            self.emit(from, &js_frame(frame));
        }
        if out.others.is_empty() && out.everyone.is_empty() {
            return;
        }
        let others: Vec<ArrayBuffer> = out.others.iter().map(|f| js_frame(f)).collect();
        let everyone: Vec<ArrayBuffer> = out.everyone.iter().map(|f| js_frame(f)).collect();
        for (id, (ws, _)) in &self.live.borrow().conns {
            if *id != from_id {
                for frame in &others {
                    self.emit(ws, frame);
                }
            }
            for frame in &everyone {
                self.emit(ws, frame);
            }
        }
    }

    /// Sends `frames` to every live connection.
    fn broadcast(&self, frames: &[Vec<u8>]) {
        if frames.is_empty() {
            return;
        }
        let frames: Vec<ArrayBuffer> = frames.iter().map(|f| js_frame(f)).collect();
        for (ws, _) in self.live.borrow().conns.values() {
            for frame in &frames {
                self.emit(ws, frame);
            }
        }
    }

    /// The id and state of the connection on `ws`: from memory, or from its attachment (then
    /// remembered) if this instance has not seen the socket yet.
    fn connection(&self, ws: &WebSocket) -> Result<Option<Connection>> {
        let mut live = self.live.borrow_mut();
        if let Some(id) = live.id_of(ws) {
            if let Some((_, conn)) = live.conns.get(&id) {
                return Ok(Some(conn.clone()));
            }
        }
        let conn = ws.deserialize_attachment::<Connection>()?;
        if let Some(conn) = &conn {
            live.insert(ws, conn.clone());
        }
        Ok(conn)
    }

    /// Forgets a closed connection and tells the others its awareness states are gone.
    fn leave(&self, ws: &WebSocket) {
        self.load();
        let known = self.live.borrow_mut().remove(ws);
        let conn = match known {
            Some(conn) => conn,
            // Not found by identity: go by the attachment's id.
            None => match ws.deserialize_attachment::<Connection>() {
                Ok(Some(conn)) => {
                    self.live.borrow_mut().conns.remove(&conn.id);
                    conn
                }
                _ => return,
            },
        };
        let out = match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => room.leave(&conn),
            _ => return,
        };
        self.deliver(ws, conn.id, &out);
    }

    fn health(&self) -> std::result::Result<Response, ApiError> {
        self.state
            .storage()
            .sql()
            .exec("SELECT 1", None)
            .map_err(http::internal("room health"))?;
        http::json(&serde_json::json!({ "ok": true }))
    }
}

impl DurableObject for RoomObject {
    fn new(state: State, env: Env) -> Self {
        let relaxed = env::relaxed_durability(&env);
        let flush_ms = if relaxed {
            env::number_or(&env, env::RELAXED_FLUSH_MS, 10) as u64
        } else {
            0
        };
        let commit_gap_ms = env::count_or(&env, env::COMMIT_GAP_MS, 2) as u64;
        RoomObject {
            state,
            env,
            room: Rc::new(RefCell::new(Loaded::No)),
            live: Rc::new(RefCell::new(Live::new())),
            owes_sync_step1: Rc::new(Cell::new(false)),
            pending: RefCell::new(None),
            checkpoint_scheduled: Cell::new(false),
            version_scheduled: Cell::new(false),
            emptied: Cell::new(false),
            alarm_known: Rc::new(Cell::new(None)),
            info_stored: Cell::new(false),
            held: Rc::new(RefCell::new(Vec::new())),
            last_commit: Rc::new(Cell::new((0, 0))),
            relaxed,
            flush_ms,
            commit_gap_ms,
            webhooks: Cell::new(None),
            rendered: RefCell::new(None),
            refused: RefCell::new(None),
            live_since: Cell::new(None),
        }
    }

    /// The worker's two ways in: a typed call, or a WebSocket upgrade with its admission.
    /// Nothing else is served.
    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/call") => self.call(req).await,
            (Method::Get, "/connect") if http::is_websocket_upgrade(&req) => {
                self.connect(&req).await
            }
            _ => http::problem(&ApiError::NotFound),
        }
    }

    /// Closes connections whose token has expired, sends the gathered webhook event, keeps the
    /// history (checkpoint, automatic version, retention), then waits for the next of these.
    async fn alarm(&self) -> Result<Response> {
        // The alarm that fired is no longer pending.
        self.alarm_known.set(None);
        let now = now_ms();
        self.load();
        self.flush_changes(now).await?;
        let mut next: Option<u64> = self.history_upkeep(now).await?;
        for ws in self.state.get_websockets() {
            let Ok(Some(conn)) = ws.deserialize_attachment::<Connection>() else {
                continue;
            };
            if conn.expired(now) {
                let _ = ws.close(Some(close::TOKEN_EXPIRED), Some("token expired"));
                self.leave(&ws);
            } else if let Some(exp) = conn.exp {
                let at = expiry_alarm_ms(exp);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        self.after_leave().await;
        if let Some(at) = next {
            self.schedule_at(at).await?;
        }
        Response::ok("")
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.leave(&ws);
        // Complete the closing handshake; the socket may already be closed.
        let code = if code == 1005 || code == 1006 {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some("closed"));
        // The last one out: the alarm takes a version of what the session changed.
        if self.live.borrow().len() == 0 {
            self.emptied.set(true);
            self.schedule_at(now_ms()).await?;
        }
        self.after_leave().await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        worker::console_warn!("websocket error: {error}");
        self.leave(&ws);
        self.after_leave().await;
        Ok(())
    }
}

impl RoomObject {
    /// Accepts a WebSocket for the connection the worker admitted (its [`Admission`]).
    async fn connect(&self, req: &Request) -> Result<Response> {
        let admission = req
            .headers()
            .get(ADMISSION_HEADER)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str::<Admission>(&json).ok());
        let Some(mut admission) = admission else {
            worker::console_error!("room reached without an admission");
            return http::problem(&ApiError::Internal);
        };
        self.remember_info(&admission.project, &admission.room)
            .await?;
        self.webhooks.set(Some((admission.webhooks, now_ms())));
        self.load();
        let (greeting, decoded, limits) = match &*self.room.borrow() {
            Loaded::Ready(room) => (room.greeting(), room.is_decoded(), *room.limits()),
            _ => return http::problem(&ApiError::RoomUnavailable),
        };
        let admitted = {
            let live = self.live.borrow();
            let of_user = live
                .conns
                .values()
                .filter(|(_, c)| c.sub == admission.sub)
                .count();
            limits.admit(live.len(), of_user)
        };
        if let Err(refusal) = admitted {
            worker::console_warn!("refusing a connection: {refusal}");
            return http::problem(&match refusal {
                Refusal::RoomFull { limit } => ApiError::RoomFull { limit },
                Refusal::UserLimit { limit } => ApiError::TooManyConnections { limit },
            });
        }
        if let Err(e) = self.admit(&mut admission).await {
            return http::problem(&e);
        }
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let mut conn = Connection::new(
            new_connection_id(),
            admission.sub,
            admission.role,
            Some(admission.exp),
        );
        conn.cred = admission.credential;
        pair.server.serialize_attachment(&conn)?;
        self.live.borrow_mut().insert(&pair.server, conn);
        for frame in greeting {
            self.emit(&pair.server, &js_frame(&frame));
        }
        if !decoded {
            self.owes_sync_step1.set(true);
            self.schedule_settle(SETTLE_FALLBACK_MS);
        }
        self.schedule_expiry(admission.exp).await?;
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = admission.protocol {
            let headers = Headers::new();
            headers.set("sec-websocket-protocol", &protocol)?;
            return Ok(resp.with_headers(headers));
        }
        Ok(resp)
    }

    /// A WebSocket message, handled synchronously: applies it, sends what it causes, schedules
    /// its write, and returns when the alarm must come back if that changed (the caller sets
    /// it). Only that last step needs a promise, and most messages need none.
    fn on_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<Option<u64>> {
        self.load();
        let mut conn = match self.connection(&ws)? {
            Some(conn) => conn,
            None => {
                worker::console_error!("socket without attachment; closing it");
                ws.close(Some(close::INTERNAL), Some("connection state lost"))?;
                return Ok(None);
            }
        };
        let now = now_ms();
        let tracking = self.tracks_changes(now);
        let result = {
            let mut loaded = self.room.borrow_mut();
            let room = match &mut *loaded {
                Loaded::Ready(room) => room,
                Loaded::Failed | Loaded::No => {
                    drop(loaded);
                    ws.close(Some(close::INTERNAL), Some("room unavailable"))?;
                    return Ok(None);
                }
            };
            let frame = match &message {
                WebSocketIncomingMessage::Binary(b) => Frame::Binary(b),
                WebSocketIncomingMessage::String(s) => Frame::Text(s),
            };
            // A window's first change needs the document before it; the last rendering serves
            // when there is one, so this renders only after a wake or an untracked change.
            let rendered = (tracking
                && self.pending.borrow().is_none()
                && self.rendered.borrow().is_none()
                && may_change_document(&message))
            .then(|| room.doc().ok().map(crate::document::render_json))
            .flatten();
            room.receive(&mut conn, frame, now)
                .map(|out| (out, rendered))
        };
        match result {
            Ok((out, rendered)) => {
                if out.connection_changed {
                    ws.serialize_attachment(&conn)?;
                    if let Some((_, live)) = self.live.borrow_mut().conns.get_mut(&conn.id) {
                        live.clone_from(&conn);
                    }
                }
                self.deliver(&ws, conn.id, &out);
                if self.owes_sync_step1.get() {
                    self.settle_after_message();
                }
                if out.document_changed {
                    let before = self.rendered.borrow_mut().take().or(rendered);
                    let noted = if tracking {
                        self.note_change(&conn.author(), before)
                    } else {
                        None
                    };
                    Ok(earliest(noted, self.changed()))
                } else {
                    if rendered.is_some() {
                        *self.rendered.borrow_mut() = rendered;
                    }
                    Ok(None)
                }
            }
            Err(rejection) => {
                worker::console_warn!(
                    "rejected connection {}: close {} {}: {}",
                    conn.id,
                    rejection.code,
                    rejection.reason,
                    rejection.detail
                );
                // A refused frame changed nothing (the room checks a whole frame first).
                let _ = ws.close(Some(rejection.code), Some(rejection.reason));
                self.leave(&ws);
                Ok(None)
            }
        }
    }
}

impl RoomObject {
    /// Makes sure the alarm fires by the time a connection's token expires.
    async fn schedule_expiry(&self, exp: u64) -> Result<()> {
        self.schedule_at(expiry_alarm_ms(exp)).await
    }

    /// Before a change made through the HTTP API: the cached rendering is stale from now on,
    /// and the `document.updated` event needs the rendering before the change (when the project
    /// has webhooks and no event window is open yet).
    fn before_change(&self, doc: &yrs::Doc) -> Option<serde_json::Value> {
        let cached = self.rendered.borrow_mut().take();
        if !self.tracks_changes(now_ms()) || self.pending.borrow().is_some() {
            return None;
        }
        cached.or_else(|| Some(crate::document::render_json(doc)))
    }

    /// What follows a change stored through the HTTP API (document writes, restores, merges,
    /// forks): the webhook event, the history upkeep, and the write itself in this event, since
    /// the answer says the change is stored. Only the write's failure fails the request.
    async fn after_api_write(&self, author: &str, before: Option<serde_json::Value>) -> Result<()> {
        let noted = if self.tracks_changes(now_ms()) {
            self.note_change(author, before)
        } else {
            None
        };
        let alarm = earliest(noted, self.changed());
        if let Err(e) = self.schedule(alarm).await {
            worker::console_warn!("could not schedule the alarm after a change: {e}");
        }
        self.flush_now()
    }

    /// Serves one typed call from the worker ([`crate::room_call`]). The envelope is decoded
    /// before anything else; a malformed or unknown call is refused and changes nothing.
    async fn call(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await?;
        let (request, payload) = match RoomRequest::decode(&body) {
            Ok(decoded) => decoded,
            Err(e) => {
                worker::console_error!("refused a room call: {e}");
                return http::problem(&ApiError::InvalidBody("malformed room call".into()));
            }
        };
        let RoomRequest {
            project,
            room,
            author,
            call,
        } = request;
        let answer = match call {
            RoomCall::Health => self.health(),
            RoomCall::Delete => self.delete().await,
            RoomCall::Revoke {
                revocation,
                refuse_for_ms,
            } => self.revoke(revocation, refuse_for_ms).await,
            call => {
                self.load();
                self.remember_info(&project, &room).await?;
                match call {
                    RoomCall::ReadJson
                    | RoomCall::ReadUpdate { .. }
                    | RoomCall::WriteUpdate
                    | RoomCall::WriteEdits { .. } => self.document(call, payload, &author).await,
                    call => self.history(call, payload, &author).await,
                }
            }
        };
        match answer {
            Ok(resp) => Ok(resp),
            Err(e) => http::problem(&e),
        }
    }

    /// Stores the project and room names, once (this instance reads whether they are stored
    /// once, too).
    async fn remember_info(&self, project: &Id, room: &RoomName) -> Result<()> {
        if self.info_stored.get() {
            return Ok(());
        }
        let storage = self.state.storage();
        if storage.get::<RoomInfo>("info").await?.is_none() {
            let info = RoomInfo {
                project: project.to_string(),
                room: room.to_string(),
            };
            storage.put("info", info).await?;
        }
        self.info_stored.set(true);
        Ok(())
    }

    /// Records a change by `author` for the next `document.updated` event; the first change of
    /// a window takes `before` (the rendering before it) and sets the alarm that ends it.
    fn note_change(&self, author: &str, before: Option<serde_json::Value>) -> Option<u64> {
        let window = env::number_or(&self.env, env::WEBHOOK_COALESCE_SECONDS, 2) as u64 * 1000;
        let started = {
            let mut pending = self.pending.borrow_mut();
            match &mut *pending {
                Some(p) => {
                    p.authors.insert(author.to_owned());
                    None
                }
                None => {
                    let before = before?;
                    let now = now_ms();
                    *pending = Some(Pending {
                        since_ms: now,
                        before,
                        authors: [author.to_owned()].into_iter().collect(),
                    });
                    Some(now)
                }
            }
        };
        started.map(|now| now + window)
    }

    /// Sends `document.updated` when the coalescing window has ended.
    async fn flush_changes(&self, now: u64) -> Result<()> {
        let window = env::number_or(&self.env, env::WEBHOOK_COALESCE_SECONDS, 2) as u64 * 1000;
        let ends = self.pending.borrow().as_ref().map(|p| p.since_ms + window);
        match ends {
            None => return Ok(()),
            Some(at) if at > now => return self.schedule_at(at).await,
            Some(_) => {}
        }
        let Some(pending) = self.pending.borrow_mut().take() else {
            return Ok(());
        };
        self.load();
        let (changes, sv) = match &*self.room.borrow() {
            Loaded::Ready(room) => {
                use yrs::updates::encoder::Encode;
                use yrs::{ReadTxn, Transact};
                let doc = match room.doc() {
                    Ok(doc) => doc,
                    Err(e) => {
                        worker::console_error!("no document.updated event: {e}");
                        return Ok(());
                    }
                };
                let sv = doc.transact().state_vector().encode_v1();
                let after = crate::document::render_json(doc);
                let changes = crate::webhooks::summarize(&pending.before, &after);
                // Kept before any await: the next window's "before", unless a change comes first.
                *self.rendered.borrow_mut() = Some(after);
                (changes, sv)
            }
            _ => return Ok(()),
        };
        let Some(info) = self.state.storage().get::<RoomInfo>("info").await? else {
            worker::console_warn!("room without stored project and name; no webhook event");
            return Ok(());
        };
        if !self.webhooks_fresh(now) && !self.refresh_webhooks(&info.project, now).await {
            return Ok(());
        }
        use jwt_simple::prelude::Base64;
        use jwt_simple::reexports::ct_codecs::Encoder;
        let data = serde_json::json!({
            "project": info.project,
            "document": info.room,
            "authors": pending.authors,
            "changes": changes,
            "state_vector": Base64::encode_to_string(&sv).unwrap_or_default(),
            "since": pending.since_ms,
            "until": now,
        });
        super::webhook_queue::emit(&self.env, &info.project, "document.updated", data, None).await;
        Ok(())
    }

    /// Whether changes are tracked for webhooks at `now`: unless the project is known, recently,
    /// to have no subscription.
    fn tracks_changes(&self, now: u64) -> bool {
        !matches!(self.webhooks.get(), Some((false, _))) || !self.webhooks_fresh(now)
    }

    fn webhooks_fresh(&self, now: u64) -> bool {
        self.webhooks
            .get()
            .is_some_and(|(_, at)| now.saturating_sub(at) < WEBHOOKS_TTL_MS)
    }

    /// Asks D1 whether `project` has webhook subscriptions and remembers the answer; on error
    /// assumes it has (the queue filters anyway).
    async fn refresh_webhooks(&self, project: &str, now: u64) -> bool {
        let answer = match super::access::db(&self.env) {
            Ok(db) => super::d1::has_webhooks(&db, project).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(has) => {
                self.webhooks.set(Some((has, now)));
                has
            }
            Err(e) => {
                worker::console_warn!("checking webhook subscriptions: {e:?}");
                true
            }
        }
    }

    /// Makes sure the alarm fires by `at_ms`.
    async fn schedule_at(&self, at_ms: u64) -> Result<()> {
        schedule_alarm(&self.state.storage(), &self.alarm_known, at_ms).await
    }

    /// [`RoomObject::schedule_at`] when an alarm is wanted.
    async fn schedule(&self, at_ms: Option<u64>) -> Result<()> {
        match at_ms {
            Some(at) => self.schedule_at(at).await,
            None => Ok(()),
        }
    }

    /// Deletes the room: closes every connection and erases its storage.
    async fn delete(&self) -> std::result::Result<Response, ApiError> {
        self.erase().await.map_err(http::internal("room delete"))?;
        http::json(&serde_json::json!({ "deleted": true }))
    }

    async fn erase(&self) -> Result<()> {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(4404), Some("document deleted"));
        }
        // Write (then erase with the rest) what waits, so no later flush brings it back.
        self.flush_now()?;
        *self.room.borrow_mut() = Loaded::No;
        self.delete_history_objects().await?;
        *self.live.borrow_mut() = Live::new();
        *self.rendered.borrow_mut() = None;
        self.state.storage().delete_alarm().await?;
        self.alarm_known.set(None);
        self.state.storage().delete_all().await?;
        self.info_stored.set(false);
        Ok(())
    }

    /// Writes a checkpoint when enough was logged since the last one, or, when the room is
    /// `idle` (its last connection left), when anything was: the next load then reads one blob
    /// and answers its first client without decoding it (`Room::load`).
    fn compact_if_due(&self, idle: bool) {
        if let Loaded::Ready(room) = &mut *self.room.borrow_mut() {
            if room.compaction_due() || (idle && room.logged_since_checkpoint() > 0) {
                if let Err(e) = room.compact() {
                    // The log still holds every update; compaction is retried on the next one.
                    worker::console_error!("compaction failed: {e}");
                }
            }
        }
    }
}
