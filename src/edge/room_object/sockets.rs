//! The room's sockets: which are live in this instance, sending the frames the room releases
//! ([`Send`]) to them, and running the commits the room asks for (`room/commit.rs` holds the
//! rule; this only schedules and delivers).

use super::{now_ms, Loaded};
use crate::edge::log::{self, Emit};
use crate::room::{close, CommitFailure, Connection, Send, To};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::js_sys::{ArrayBuffer, Object, Uint8Array, WeakMap};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::WebSocket;

/// Live connections: each socket with its connection state. A socket is found by identity
/// through a JavaScript `WeakMap` (one call, no copy; weak, so a socket object the runtime
/// replaces is never kept alive by it); state is read and written in Rust.
pub(super) struct Live {
    /// Socket object -> connection id.
    ids: WeakMap,
    /// Connection id -> socket and state.
    pub(super) conns: HashMap<u64, (WebSocket, Connection)>,
}

impl Live {
    pub(super) fn new() -> Self {
        Live {
            ids: WeakMap::new(),
            conns: HashMap::new(),
        }
    }

    pub(super) fn insert(&mut self, ws: &WebSocket, conn: Connection) {
        self.ids
            .set(socket_key(ws), &JsValue::from_f64(conn.id as f64));
        self.conns.insert(conn.id, (ws.clone(), conn));
    }

    /// The connection id of `ws`, if it is live here.
    pub(super) fn id_of(&self, ws: &WebSocket) -> Option<u64> {
        self.ids.get(socket_key(ws)).as_f64().map(|id| id as u64)
    }

    pub(super) fn remove(&mut self, ws: &WebSocket) -> Option<Connection> {
        let id = self.id_of(ws)?;
        self.ids.delete(socket_key(ws));
        self.conns.remove(&id).map(|(_, conn)| conn)
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    /// How many connections `sub` holds here.
    pub(super) fn of_user(&self, sub: &str) -> usize {
        self.conns.values().filter(|(_, c)| c.sub == sub).count()
    }

    /// The sockets `to` names.
    fn sockets<'a>(&'a self, to: To) -> impl Iterator<Item = &'a WebSocket> + 'a {
        self.conns
            .iter()
            .filter(move |(_, (_, conn))| to.includes(conn))
            .map(|(_, (ws, _))| ws)
    }
}

/// The socket as the key of [`Live::ids`].
fn socket_key(ws: &WebSocket) -> &Object {
    let value: &JsValue = ws.as_ref();
    value.unchecked_ref()
}

/// A frame copied out of wasm memory once, to send to any number of sockets. The copy is needed
/// (the runtime sends asynchronously, after the Rust buffer is gone: see `send_with_bytes`), but
/// one per frame is enough: nothing writes to the buffer afterwards, so every socket can share it.
fn js_frame(frame: &[u8]) -> ArrayBuffer {
    Uint8Array::from(frame).buffer()
}

fn send_js(ws: &WebSocket, frame: &ArrayBuffer) {
    let socket: &worker::web_sys::WebSocket = ws.as_ref();
    // A socket may be closing while the room sends; its close event cleans it up.
    if let Err(e) = socket.send_with_array_buffer(frame) {
        log::debug("socket.send_failed")
            .message("send to a closing socket failed")
            .cause(format!("{e:?}"))
            .emit();
    }
}

/// Sends each frame to its recipients among the live sockets, in order. A recipient that has
/// gone since is skipped.
pub(super) fn send_all(live: &RefCell<Live>, sends: &[Send]) {
    if sends.is_empty() {
        return;
    }
    let live = live.borrow();
    for send in sends {
        let frame = js_frame(&send.frame);
        for ws in live.sockets(send.to) {
            send_js(ws, &frame);
        }
    }
}

/// Closes the sockets `targets` name, with `code` and `reason`.
pub(super) fn close_all(live: &RefCell<Live>, targets: &[To], code: u16, reason: &str) {
    let live = live.borrow();
    for to in targets {
        for ws in live.sockets(*to) {
            let _ = ws.close(Some(code), Some(reason));
        }
    }
}

/// Runs the room's commit now and sends what it releases; after a failed one, closes the
/// connections whose frames were dropped (their clients send again what the room lacks).
/// Returns the failure, if any.
pub(super) fn commit(room: &RefCell<Loaded>, live: &RefCell<Live>) -> Option<CommitFailure> {
    let result = match &mut *room.borrow_mut() {
        Loaded::Ready(room) => room.commit(now_ms()),
        _ => return None,
    };
    match result {
        Ok(released) => {
            send_all(live, &released);
            None
        }
        Err(failure) => {
            log::error("room.commit_failed")
                .message("log write failed; closing the waiting recipients")
                .field("recipients", failure.close.len())
                .cause(&failure.error)
                .emit();
            close_all(live, &failure.close, close::INTERNAL, "storage failure");
            Some(failure)
        }
    }
}

/// Schedules the commit the room asks for, if it asks: from a task after this event, so that
/// everything that arrives before it runs shares one commit. The output gate holds the frames
/// it releases until the write is durable.
pub(super) fn schedule_commit(room: &Rc<RefCell<Loaded>>, live: &Rc<RefCell<Live>>) {
    let delay = match &mut *room.borrow_mut() {
        Loaded::Ready(r) => r.commit_after(now_ms()),
        _ => None,
    };
    let Some(ms) = delay else {
        return;
    };
    let (room, live) = (room.clone(), live.clone());
    worker::wasm_bindgen_futures::spawn_local(async move {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
        commit(&room, &live);
        // Rows that arrived while it ran (relaxed durability, a retry) ask again.
        schedule_commit(&room, &live);
    });
}

/// Settles the room now (`Room::settle`): its SyncStep1 to every connection. A checkpoint
/// that does not decode takes the room down: its connections are closed and it serves nobody.
pub(super) fn settle(room: &Rc<RefCell<Loaded>>, live: &Rc<RefCell<Live>>) {
    let result = match &mut *room.borrow_mut() {
        Loaded::Ready(r) => r.settle(),
        _ => return,
    };
    match result {
        Ok(sends) => {
            send_all(live, &sends);
            schedule_commit(room, live);
        }
        Err(e) => {
            log::error("room.load_failed")
                .message("room failed to load; serving nobody")
                .cause(e)
                .emit();
            *room.borrow_mut() = Loaded::Failed;
            close_all(live, &[To::All], close::INTERNAL, "room unavailable");
        }
    }
}

/// [`settle`] `ms` from now.
pub(super) fn schedule_settle(room: &Rc<RefCell<Loaded>>, live: &Rc<RefCell<Live>>, ms: u64) {
    let (room, live) = (room.clone(), live.clone());
    worker::wasm_bindgen_futures::spawn_local(async move {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
        settle(&room, &live);
    });
}
