//! The room's Durable Object: glue between the runtime and a platform-free [`Room`]. It wires
//! hibernatable WebSockets, the typed calls of the worker, the object's SQLite storage and its
//! alarm to the room; every rule that matters — what a greeting sends and when the room settles,
//! which frames may leave before their rows are stored, when the alarm fires, what a webhook
//! window gathers — lives in core types a native test reaches (`Room`, `room/commit.rs`,
//! [`Upkeep`], [`Changes`]).
//!
//! Hibernation (<https://developers.cloudflare.com/durable-objects/best-practices/websockets/>):
//! sockets are accepted with `accept_web_socket`, so an idle room can be evicted from memory while
//! its connections stay open. Per-connection state lives in each socket's attachment; on wake the
//! room reloads from storage, re-registers the surviving connections and re-syncs them. While
//! the object is in memory its live connections are also kept in [`sockets::Live`], so that a
//! message reads neither `get_websockets()` nor an attachment.

mod assets;
mod bindings;
mod calls;
mod connect;
mod conversations;
mod document;
mod history_calls;
mod revocation;
mod sockets;
mod upkeep;
mod webhook;

use super::env;
use super::http;
use super::log::{self, Emit, Line};
use super::sql_store::SqlRoomStore;
use crate::api::ApiError;
use crate::changes::Changes;
use crate::room::{close, Connection, Frame, Room, RoomError};
use crate::upkeep::{expiry_alarm_ms, Intervals, Upkeep, Wish};
use sockets::Live;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{
    DurableObject, Env, Method, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage,
};

/// The Durable Object class bound as `ROOMS`. Its JavaScript methods are in [`bindings`].
#[worker::wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct RoomObject {
    state: State,
    env: Env,
    room: Rc<RefCell<Loaded>>,
    /// The connections of this instance, in memory (see the module documentation).
    live: Rc<RefCell<Live>>,
    /// The alarm, as this instance knows it, and what asked for it.
    upkeep: Rc<RefCell<Upkeep>>,
    /// Changes gathered for the next `document.updated` webhook event.
    changes: RefCell<Changes>,
    /// Whether the room's names are known to be stored (see [`RoomObject::remember_info`]).
    info_stored: Cell<bool>,
    /// `AUTO_VERSION_SECONDS` and `ASSET_USAGE_SECONDS` in ms, read once.
    intervals: Intervals,
    /// Revocations this room refuses at admission, when read from storage.
    refused: RefCell<Option<revocation::Refused>>,
    /// When this room marked itself live in D1 (`None`: it has not, or has no connections).
    live_since: Cell<Option<u64>>,
    /// The room's project and name, once a call, an admission or storage told this instance:
    /// for its log lines ([`RoomObject::here`]).
    names: RefCell<Option<RoomInfo>>,
}

/// Where the room is, for its webhook events and R2 keys; stored from the first call or
/// admission the worker sends.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct RoomInfo {
    project: String,
    room: String,
}

enum Loaded {
    /// Not read from storage yet (a new object, or one that woke from hibernation).
    No,
    Ready(Box<Room<SqlRoomStore>>),
    /// Storage could not be read; the room serves nobody and writes nothing.
    Failed,
}

/// Does what `wish` asks of the runtime's alarm (see [`Upkeep::wish`]).
async fn schedule_alarm(
    storage: &worker::Storage,
    upkeep: &RefCell<Upkeep>,
    wish: Wish,
) -> Result<()> {
    let at = match wish {
        Wish::Nothing => return Ok(()),
        Wish::Set(at) => at,
        Wish::Check(at) => {
            let pending = storage.get_alarm().await?.map(|ms| ms as u64);
            match upkeep.borrow_mut().known(pending, at, now_ms()) {
                Some(at) => at,
                None => return Ok(()),
            }
        }
    };
    storage.set_alarm(super::alarm_at(at)).await
}

use super::platform::now_ms;

/// What an API request gets when the room's stored checkpoint does not decode.
fn unavailable(e: RoomError) -> ApiError {
    log::error("room.unavailable")
        .message("room unavailable")
        .cause(e)
        .emit();
    ApiError::RoomUnavailable
}

/// A connection id: random, and within JavaScript's safe integers so the attachment keeps it.
fn new_connection_id() -> u64 {
    super::platform::random_safe_id()
}

impl RoomObject {
    /// `line` with the room's project and name, where this instance knows them.
    fn here(&self, line: Line) -> Line {
        match &*self.names.borrow() {
            Some(info) => line.project(&info.project).room(&info.room),
            None => line,
        }
    }

    /// Remembers the room's names for its log lines (see [`RoomObject::here`]).
    fn learn_names(&self, info: &RoomInfo) {
        if self.names.borrow().is_none() {
            *self.names.borrow_mut() = Some(info.clone());
        }
    }

    /// Makes sure the alarm fires by `at_ms`.
    async fn schedule_at(&self, at_ms: u64) -> Result<()> {
        let wish = self.upkeep.borrow_mut().wish(at_ms, now_ms());
        schedule_alarm(&self.state.storage(), &self.upkeep, wish).await
    }

    /// [`RoomObject::schedule_at`] when an alarm is wanted.
    async fn schedule(&self, at_ms: Option<u64>) -> Result<()> {
        match at_ms {
            Some(at) => self.schedule_at(at).await,
            None => Ok(()),
        }
    }

    /// Loads the room on first use. On wake from hibernation the surviving connections are
    /// re-registered and re-synced.
    fn load(&self) {
        if !matches!(*self.room.borrow(), Loaded::No) {
            return;
        }
        let survivors = self.state.get_websockets();
        let loaded = SqlRoomStore::open(self.state.storage().sql())
            .map_err(Into::into)
            .and_then(|store| Room::load(store, env::limits(&self.env)));
        // Surviving connections are in sync (see `Room::woke`): nothing is sent to them, and the
        // document stays undecoded until something needs it.
        let mut room = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let line = log::error("room.load_failed")
                    .message("room failed to load; serving nobody")
                    .cause(e);
                self.here(line).emit();
                *self.room.borrow_mut() = Loaded::Failed;
                return;
            }
        };
        let mut live = Live::new();
        for ws in &survivors {
            if let Ok(Some(conn)) = ws.deserialize_attachment::<Connection>() {
                room.restore(&conn);
                live.insert(ws, conn);
            }
        }
        let woke_with_connections = live.len() > 0;
        if woke_with_connections {
            room.woke();
            // A warning, printed by `wrangler dev` at the tests' log level: they count the lines
            // with this message.
            let line = log::warn("room.woke")
                .message("room woke from hibernation")
                .field("connections", live.len());
            self.here(line).emit();
        }
        *self.live.borrow_mut() = live;
        *self.room.borrow_mut() = Loaded::Ready(Box::new(room));
        if woke_with_connections {
            self.restore_live_mark();
        }
    }

    /// The connection id of `ws`: from memory, or from its attachment (then remembered) if this
    /// instance has not seen the socket yet.
    fn connection_id(&self, ws: &WebSocket) -> Result<Option<u64>> {
        let mut live = self.live.borrow_mut();
        if let Some(id) = live.id_of(ws) {
            if live.conns.contains_key(&id) {
                return Ok(Some(id));
            }
        }
        let conn = ws.deserialize_attachment::<Connection>()?;
        Ok(conn.map(|conn| {
            let id = conn.id;
            live.insert(ws, conn);
            id
        }))
    }

    /// The connection on `ws`, if it is known here.
    fn connection(&self, ws: &WebSocket) -> Result<Option<Connection>> {
        let Some(id) = self.connection_id(ws)? else {
            return Ok(None);
        };
        Ok(self.live.borrow().conns.get(&id).map(|(_, c)| c.clone()))
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
        let sends = match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => {
                let out = room.leave(&conn);
                room.dispatch(conn.id, &out)
            }
            _ => return,
        };
        sockets::send_all(&self.live, &sends);
        sockets::schedule_commit(&self.room, &self.live);
    }
}

impl DurableObject for RoomObject {
    fn new(state: State, env: Env) -> Self {
        let coalesce_ms = env::number_or(&env, env::WEBHOOK_COALESCE_SECONDS, 2) as u64 * 1000;
        let intervals = Intervals {
            version_ms: env::history_policy(&env).interval_ms,
            assets_ms: env::number_or(&env, env::ASSET_USAGE_SECONDS, 30) as u64 * 1000,
        };
        RoomObject {
            state,
            env,
            room: Rc::new(RefCell::new(Loaded::No)),
            live: Rc::new(RefCell::new(Live::new())),
            upkeep: Rc::new(RefCell::new(Upkeep::default())),
            changes: RefCell::new(Changes::new(coalesce_ms)),
            info_stored: Cell::new(false),
            intervals,
            refused: RefCell::new(None),
            live_since: Cell::new(None),
            names: RefCell::new(None),
        }
    }

    /// The worker's two ways in: a typed call, or a WebSocket upgrade with its admission.
    /// Nothing else is served.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let answer = match (req.method(), req.path().as_str()) {
            (Method::Post, "/call") => self.call(req).await,
            (Method::Get, "/connect") if http::is_websocket_upgrade(&req) => {
                self.connect(&req).await
            }
            _ => return http::problem(&ApiError::NotFound, None),
        };
        self.note_decoded("a call or a connection");
        answer
    }

    /// Sends the gathered webhook event, keeps the history (checkpoint, automatic version,
    /// retention), records the assets the document references, closes connections whose token
    /// has expired, then waits for the next of these.
    async fn alarm(&self) -> Result<Response> {
        let emptied = self.upkeep.borrow_mut().fired();
        let now = now_ms();
        self.load();
        // Everything pending is written first: the upkeep reads the log.
        self.flush_now()?;
        let window = self.flush_changes(now).await?;
        let room_empty = emptied && self.live.borrow().len() == 0;
        let history = self.history_upkeep(now, room_empty).await?;
        let assets = self.assets_upkeep(now, room_empty).await;
        let mut expiries = None;
        for ws in self.state.get_websockets() {
            let Ok(Some(conn)) = ws.deserialize_attachment::<Connection>() else {
                continue;
            };
            if conn.expired(now) {
                let _ = ws.close(Some(close::TOKEN_EXPIRED), Some("token expired"));
                self.leave(&ws);
            } else if let Some(exp) = conn.exp {
                expiries = Upkeep::earliest([expiries, Some(expiry_alarm_ms(exp))]);
            }
        }
        self.after_leave().await;
        self.schedule(Upkeep::earliest([window, history, assets, expiries]))
            .await?;
        self.note_decoded("the alarm");
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
            let at = self.upkeep.borrow_mut().emptied(now_ms());
            self.schedule_at(at).await?;
        }
        self.after_leave().await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        self.here(log::warn("socket.error").cause(error)).emit();
        self.leave(&ws);
        self.after_leave().await;
        Ok(())
    }
}

impl RoomObject {
    /// Logs that the document was decoded during this event (`what` caused it), if it was: an
    /// idle room's wakes should not decode it (the hibernation test counts these lines).
    fn note_decoded(&self, what: &str) {
        let decoded = match &*self.room.borrow() {
            Loaded::Ready(room) => room.take_decoded(),
            _ => false,
        };
        if decoded {
            self.decoded_for(what, None);
        }
    }

    /// The line [`RoomObject::note_decoded`] writes: a warning, so that `wrangler dev` prints it.
    fn decoded_for(&self, what: &str, frame: Option<String>) {
        let mut line = log::warn("room.decoded")
            .message("room decoded its document")
            .field("for", what);
        if let Some(frame) = frame {
            line = line.field("frame", frame);
        }
        self.here(line).emit();
    }

    /// A WebSocket message, handled synchronously: applies it, sends what it causes, schedules
    /// its commit, and returns what the alarm needs if that changed (the caller does it). Only
    /// that last step needs a promise, and most messages need none.
    fn on_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<Option<Wish>> {
        self.load();
        let Some(id) = self.connection_id(&ws)? else {
            let line =
                log::error("socket.no_attachment").message("socket without attachment; closing it");
            self.here(line).emit();
            ws.close(Some(close::INTERNAL), Some("connection state lost"))?;
            return Ok(None);
        };
        let now = now_ms();
        let frame = match &message {
            WebSocketIncomingMessage::Binary(b) => Frame::Binary(b),
            WebSocketIncomingMessage::String(s) => Frame::Text(s),
        };
        let mut loaded = self.room.borrow_mut();
        let Loaded::Ready(room) = &mut *loaded else {
            drop(loaded);
            ws.close(Some(close::INTERNAL), Some("room unavailable"))?;
            return Ok(None);
        };
        // A window's first change needs the document before it (once per window, and only in
        // projects with webhook subscriptions).
        let rendered = match frame {
            Frame::Binary(b)
                if self.changes.borrow().wants_before(now)
                    && crate::protocol::may_change_document(b) =>
            {
                room.doc().ok().map(crate::document::render_json)
            }
            _ => None,
        };
        let received = {
            let mut live = self.live.borrow_mut();
            let Some((_, conn)) = live.conns.get_mut(&id) else {
                return Ok(None);
            };
            match room.receive(conn, frame, now) {
                Ok(out) => {
                    if out.connection_changed {
                        ws.serialize_attachment(&*conn)?;
                    }
                    let author = out.document_changed.then(|| conn.author());
                    Ok((room.dispatch(id, &out), author))
                }
                Err(rejection) => Err(rejection),
            }
        };
        let (sends, author) = match received {
            Ok(received) => received,
            Err(rejection) => {
                drop(loaded);
                let line = log::warn("room.frame_rejected")
                    .message("rejected a connection's frame; closing it")
                    .field("connection", id)
                    .field("code", rejection.code)
                    .field("reason", rejection.reason)
                    .cause(&rejection.detail);
                self.here(line).emit();
                // A refused frame changed nothing (the room checks a whole frame first).
                let _ = ws.close(Some(rejection.code), Some(rejection.reason));
                self.leave(&ws);
                return Ok(None);
            }
        };
        let settle = room.settle_after_message();
        let decoded = room.is_decoded();
        let decoded_now = room.take_decoded();
        let checkpoint_due = room.compaction_due();
        drop(loaded);
        if decoded_now {
            let kind = match &message {
                WebSocketIncomingMessage::Binary(b) => crate::protocol::describe(b),
                WebSocketIncomingMessage::String(_) => "text".into(),
            };
            self.decoded_for("a message", Some(kind));
        }
        sockets::send_all(&self.live, &sends);
        if settle.is_some() {
            match decoded {
                true => sockets::settle(&self.room, &self.live),
                false => sockets::schedule_settle(&self.room, &self.live, 0),
            }
        }
        sockets::schedule_commit(&self.room, &self.live);
        let Some(author) = author else {
            self.changes.borrow_mut().unchanged(rendered);
            return Ok(None);
        };
        let window = self.changes.borrow_mut().changed(&author, rendered, now);
        let mut upkeep = self.upkeep.borrow_mut();
        let history = upkeep.after_change(checkpoint_due, self.intervals, now);
        Ok(Upkeep::earliest([window, history])
            .map(|at| upkeep.wish(at, now))
            .filter(|wish| *wish != Wish::Nothing))
    }
}
