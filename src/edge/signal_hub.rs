//! y-webrtc signalling: `GET /signal`, authorised here in the worker, and the `SignalHub`
//! Durable Object (one per project, bound as `SIGNALS`) that wires hibernatable sockets to a
//! platform-free [`Hub`]. See docs/signalling.md.
//!
//! The hub keeps nothing in storage: each connection's subscriptions live in its socket's
//! attachment, and a hub that wakes from hibernation rebuilds its topics from them. The exact
//! `{"type":"ping"}` frame of y-webrtc's client is answered by the runtime's WebSocket
//! auto-response (<https://developers.cloudflare.com/durable-objects/api/state/#setwebsocketautoresponse>),
//! so an idle client never wakes the hub. Each instance logs `signal hub started` once: a
//! test counts those lines to see what woke it.

use super::access::{self, TokenSource};
use super::log::{self, Emit};
use super::platform::{now_ms, random_safe_id};
use super::{env, http};
use crate::api::ApiError;
use crate::names::Id;
use crate::ratelimit::Meter;
use crate::room::close;
use crate::room_call::{Revocation, Verdict, ADMISSION_HEADER};
use crate::signal::{Admission, Hub, Limits, Peer, CONNECT_URL, EXPIRED, PING, PONG, REVOKE_URL};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    State, Stub, WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

/// The hub of `project`. One per project, so a topic never reaches another project; every
/// topic of a connection is in the same hub, as one socket serves them all.
fn stub(env: &Env, project: &Id) -> std::result::Result<Stub, ApiError> {
    env.durable_object(env::SIGNALS)
        .and_then(|ns| ns.get_by_name(&format!("signal:{project}")))
        .map_err(http::internal("signal hub stub"))
}

/// `GET /signal`: checks the token (signature, expiry, project live, key and token not
/// revoked, member not removed) before the hub is woken, then hands the upgrade to the hub of
/// the token's project with the [`Admission`] the worker established.
pub async fn connect(req: Request, env: &Env) -> std::result::Result<Response, ApiError> {
    if !http::is_websocket_upgrade(&req) {
        return Err(ApiError::UpgradeRequired);
    }
    let (token, source) = access::room_token(&req)?;
    let admitted = access::authorize_project(env, &token).await?;
    let admission = Admission {
        project: admitted.project.clone(),
        sub: admitted.verified.sub,
        role: admitted.role,
        publish: admitted.publish,
        call_limit: admitted.call_limit,
        room: admitted.verified.claims.room,
        exp: admitted.verified.exp,
        cred: admitted.credential,
        protocol: match source {
            TokenSource::Protocol { echo } => Some(echo),
            TokenSource::Query => None,
        },
    };
    let json = serde_json::to_string(&admission).map_err(http::internal("signal admission"))?;
    let headers = Headers::new();
    for (name, value) in [("upgrade", "websocket"), (ADMISSION_HEADER, json.as_str())] {
        headers
            .set(name, value)
            .map_err(http::internal("headers"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let forwarded =
        Request::new_with_init(CONNECT_URL, &init).map_err(http::internal("forward request"))?;
    stub(env, &admitted.project)?
        .fetch_with_request(forwarded)
        .await
        .map_err(http::internal("signal hub fetch"))
}

/// Tells the hub of `project` about `revocation`: it closes the connections concerned (4403).
pub async fn revoke(env: &Env, project: &Id, revocation: &Revocation) {
    let told = async {
        let body = serde_json::to_string(revocation).map_err(http::internal("revocation"))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req = Request::new_with_init(REVOKE_URL, &init).map_err(http::internal("revoke"))?;
        stub(env, project)?
            .fetch_with_request(req)
            .await
            .map_err(http::internal("signal hub revoke"))
    };
    if let Err(e) = told.await {
        log::error("revocation.undelivered")
            .message("revocation did not reach the signal hub")
            .project(project)
            .cause(format!("{e:?}"))
            .emit();
    }
}

/// A connection of this instance.
struct Live {
    ws: WebSocket,
    peer: Peer,
    meter: Meter,
}

/// The Durable Object class bound as `SIGNALS`.
#[durable_object]
pub struct SignalHub {
    state: State,
    /// `None` until this instance has read its sockets.
    hub: RefCell<Option<Hub>>,
    live: RefCell<HashMap<u64, Live>>,
}

impl SignalHub {
    /// Reads the surviving sockets' attachments once per instance (a new hub, or one that
    /// woke from hibernation) and rebuilds the topics from them.
    fn load(&self) {
        if self.hub.borrow().is_some() {
            return;
        }
        let mut hub = Hub::new(Limits::default());
        let mut live = self.live.borrow_mut();
        let now = now_ms();
        for ws in self.state.get_websockets() {
            if let Ok(Some(peer)) = ws.deserialize_attachment::<Peer>() {
                hub.restore(&peer);
                let meter = hub.meter(now);
                live.insert(peer.id, Live { ws, peer, meter });
            }
        }
        if !live.is_empty() {
            log::warn("signal_hub.loaded")
                .message("signal hub loaded its sockets")
                .field("sockets", live.len())
                .emit();
        }
        *self.hub.borrow_mut() = Some(hub);
    }

    /// The connection id of `ws` (its one tag).
    fn id_of(&self, ws: &WebSocket) -> Option<u64> {
        self.state.get_tags(ws).first()?.parse().ok()
    }

    /// Forgets the connection on `ws`, if it is known, and tells the others in its calls.
    fn leave(&self, ws: &WebSocket) {
        self.load();
        let Some(id) = self.id_of(ws) else { return };
        let gone = self.live.borrow_mut().remove(&id);
        if let Some(gone) = gone {
            self.forget(&gone.peer);
        }
    }

    /// Closes the connection `id` with `code` and forgets it.
    fn drop_peer(&self, id: u64, code: u16, reason: &str) {
        let gone = self.live.borrow_mut().remove(&id);
        if let Some(gone) = gone {
            let _ = gone.ws.close(Some(code), Some(reason));
            self.forget(&gone.peer);
        }
    }

    /// Takes a gone connection out of the hub and sends the `call-peer-left` notices.
    fn forget(&self, peer: &Peer) {
        let notices = match self.hub.borrow_mut().as_mut() {
            Some(hub) => hub.leave(peer),
            None => Vec::new(),
        };
        self.send_all(&notices);
    }

    /// Sends each frame to its connections of this hub.
    fn send_all(&self, frames: &[(Vec<u64>, String)]) {
        let live = self.live.borrow();
        for (to, frame) in frames {
            for conn in to.iter().filter_map(|id| live.get(id)) {
                // A socket may be closing; its close event cleans it up.
                let _ = conn.ws.send_with_str(frame);
            }
        }
    }

    async fn accept(&self, req: &Request) -> Result<Response> {
        let admission = req
            .headers()
            .get(ADMISSION_HEADER)?
            .and_then(|json| serde_json::from_str::<Admission>(&json).ok());
        let Some(admission) = admission else {
            log::error("signal_hub.no_admission")
                .message("signal hub reached without an admission")
                .emit();
            return http::problem(&ApiError::Internal, None);
        };
        self.load();
        let limit = Limits::default().max_connections;
        if self.live.borrow().len() >= limit {
            return http::problem(&ApiError::RoomFull { limit }, None);
        }
        let protocol = admission.protocol.clone();
        let id = random_safe_id();
        let peer = Peer::new(id, admission);
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[&id.to_string()]);
        pair.server.serialize_attachment(&peer)?;
        // The alarm closes connections whose token expired (4401).
        let exp_ms = peer.exp.saturating_mul(1000);
        let storage = self.state.storage();
        if storage
            .get_alarm()
            .await?
            .is_none_or(|at| at as u64 > exp_ms)
        {
            storage.set_alarm(super::alarm_at(exp_ms)).await?;
        }
        let meter = self.hub.borrow().as_ref().map(|h| h.meter(now_ms()));
        let Some(meter) = meter else {
            return http::problem(&ApiError::Internal, None);
        };
        let ws = pair.server;
        self.live.borrow_mut().insert(id, Live { ws, peer, meter });
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = protocol {
            let headers = Headers::new();
            headers.set("sec-websocket-protocol", &protocol)?;
            return Ok(resp.with_headers(headers));
        }
        Ok(resp)
    }

    async fn revoke(&self, mut req: Request) -> Result<Response> {
        let revocation: Revocation = req.json().await?;
        self.load();
        let mut hit: Vec<u64> = Vec::new();
        {
            let mut live = self.live.borrow_mut();
            let mut hub = self.hub.borrow_mut();
            for l in live.values_mut() {
                match revocation.verdict(&l.peer.sub, l.peer.role, &l.peer.cred) {
                    Verdict::Keep => {}
                    Verdict::Close => hit.push(l.peer.id),
                    Verdict::Downgrade(role) => {
                        let kept = hub.as_mut().is_some_and(|h| h.downgrade(&mut l.peer, role));
                        if kept {
                            l.ws.serialize_attachment(&l.peer)?;
                        } else {
                            hit.push(l.peer.id);
                        }
                    }
                }
            }
        }
        for id in &hit {
            self.drop_peer(*id, close::REVOKED, "revoked");
        }
        Response::ok(hit.len().to_string())
    }
}

impl DurableObject for SignalHub {
    fn new(state: State, _env: Env) -> Self {
        // Registered by every instance; the runtime answers the exact frame while the hub
        // sleeps (and while it is awake, without an event).
        match WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => log::error("signal_hub.auto_response_failed")
                .cause(format!("{e:?}"))
                .emit(),
        }
        // A warning so that `wrangler dev` prints it at the tests' `--log-level info` (where it
        // drops console.log); tests count the lines with this message.
        log::warn("signal_hub.started")
            .message("signal hub started")
            .emit();
        SignalHub {
            state,
            hub: RefCell::new(None),
            live: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Get, "/connect") if http::is_websocket_upgrade(&req) => {
                self.accept(&req).await
            }
            (Method::Post, "/revoke") => self.revoke(req).await,
            _ => http::problem(&ApiError::NotFound, None),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        self.load();
        let Some(id) = self.id_of(&ws) else {
            ws.close(Some(close::INTERNAL), Some("connection state lost"))?;
            return Ok(());
        };
        let frame = match &message {
            WebSocketIncomingMessage::String(s) => s.as_bytes(),
            WebSocketIncomingMessage::Binary(b) => b.as_slice(),
        };
        let result = {
            let mut live = self.live.borrow_mut();
            let mut hub = self.hub.borrow_mut();
            let (Some(conn), Some(hub)) = (live.get_mut(&id), hub.as_mut()) else {
                drop(live);
                ws.close(Some(close::INTERNAL), Some("connection state lost"))?;
                return Ok(());
            };
            let result = hub.receive(&mut conn.peer, &mut conn.meter, frame, now_ms());
            if matches!(&result, Ok(out) if out.changed) {
                conn.ws.serialize_attachment(&conn.peer)?;
            }
            result
        };
        let out = match result {
            Ok(out) => out,
            Err(refused) => {
                log::warn("signal.connection_closed")
                    .message("signal connection refused a frame; closing it")
                    .field("connection", id)
                    .field("code", refused.code)
                    .field("reason", refused.reason)
                    .emit();
                self.drop_peer(id, refused.code, refused.reason);
                return Ok(());
            }
        };
        for reply in &out.replies {
            let _ = ws.send_with_str(reply);
        }
        if let Some(publish) = out.publish {
            self.send_all(&[publish]);
        }
        self.send_all(&out.sends);
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.leave(&ws);
        let code = if code == 1005 || code == 1006 {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.leave(&ws);
        Ok(())
    }

    /// Closes the connections whose token expired, then waits for the next expiry.
    async fn alarm(&self) -> Result<Response> {
        self.load();
        let now = now_ms();
        let (expired, next): (Vec<u64>, Vec<u64>) = {
            let live = self.live.borrow();
            let expired = live.values().filter(|l| l.peer.expired(now));
            let next = live.values().filter(|l| !l.peer.expired(now));
            (
                expired.map(|l| l.peer.id).collect(),
                next.map(|l| l.peer.exp.saturating_mul(1000)).collect(),
            )
        };
        for id in expired {
            self.drop_peer(id, EXPIRED.code, EXPIRED.reason);
        }
        if let Some(at) = next.into_iter().min() {
            self.state.storage().set_alarm(super::alarm_at(at)).await?;
        }
        Response::ok("")
    }
}
