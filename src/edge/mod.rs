//! The worker: routes requests, and hosts one [`room_object::RoomObject`] per room.

mod access;
mod branches;
mod d1;
mod env;
mod health;
mod history_api;
mod http;
mod room_object;
mod sql_store;
mod v1;
mod versions;
mod webhook_queue;

use crate::api::{validate_room_name, ApiError};
use crate::openapi;
use crate::routes::{self, RouteId};
use access::TokenSource;
use worker::{event, Context, Env, Headers, Request, RequestInit, Response, Result, Stub};

/// Request headers through which the worker tells a room who is connecting. The room trusts
/// them because only the worker can reach it; the worker drops any a client sent.
pub mod identity {
    /// The user (`sub`).
    pub const SUB: &str = "x-tandemx-sub";
    /// The role.
    pub const ROLE: &str = "x-tandemx-role";
    /// Token expiry, unix seconds.
    pub const EXP: &str = "x-tandemx-exp";
    /// The `Sec-WebSocket-Protocol` to select in the response, when the token came that way.
    pub const PROTOCOL: &str = "x-tandemx-protocol";
    /// The project the room belongs to.
    pub const PROJECT: &str = "x-tandemx-project";
    /// The room's name.
    pub const ROOM: &str = "x-tandemx-room";
    /// `1` when the project has webhook subscriptions, `0` when it has none (as read from D1
    /// while authorizing the connection).
    pub const WEBHOOKS: &str = "x-tandemx-webhooks";
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match route(req, &env).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::problem(&e),
    }
}

async fn route(req: Request, env: &Env) -> std::result::Result<Response, ApiError> {
    let matched = routes::match_route(req.method().as_ref(), &req.path())?;
    match matched.id {
        RouteId::Index => http::json(&serde_json::json!({
            "name": "TandemX",
            "version": env!("CARGO_PKG_VERSION"),
            "rooms": "ws://<this host>/rooms/<room>?token=<room token> (the y-websocket provider: new WebsocketProvider('ws://<this host>/rooms', room, doc, { params: { token } }))",
            "api": "/v1/openapi.json",
            "health": "/health",
        })),
        RouteId::Health => health::check(env).await,
        RouteId::OpenApi => http::json(&openapi::document()),
        RouteId::Room => {
            let room = matched.params[0].clone();
            connect_room(req, env, &room).await
        }
        _ => v1::dispatch(req, env, matched).await,
    }
}

/// An alarm time at `ms` unix milliseconds. (An integer given to `set_alarm` directly would be
/// read as an offset from now.)
pub fn alarm_at(ms: u64) -> worker::ScheduledTime {
    let date = worker::js_sys::Date::new(&worker::wasm_bindgen::JsValue::from_f64(ms as f64));
    worker::ScheduledTime::new(date)
}

/// The Durable Object of `room` in `project`.
pub fn room_stub(env: &Env, project: &str, room: &str) -> std::result::Result<Stub, ApiError> {
    env.durable_object(env::ROOMS)
        .and_then(|ns| ns.get_by_name(&format!("room:{project}:{room}")))
        .map_err(http::internal("room stub"))
}

/// Hands a WebSocket upgrade for `room` to the room's Durable Object.
async fn connect_room(
    req: Request,
    env: &Env,
    room: &str,
) -> std::result::Result<Response, ApiError> {
    validate_room_name(room)?;
    if !http::is_websocket_upgrade(&req) {
        return Err(ApiError::UpgradeRequired);
    }
    // The token is checked here, so a bad one never wakes the room.
    let (token, source) = access::room_token(&req)?;
    let (verified, room_access) = access::authorize_room_access(env, &token, room).await?;
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if !name.starts_with("x-tandemx-") {
            headers
                .append(&name, &value)
                .map_err(http::internal("headers"))?;
        }
    }
    let set = |name: &str, value: &str| headers.set(name, value).map_err(http::internal("headers"));
    set(identity::SUB, &verified.sub)?;
    set(identity::ROLE, verified.claims.role.as_str())?;
    set(identity::EXP, &verified.exp.to_string())?;
    set(identity::PROJECT, &verified.claims.prj)?;
    set(identity::ROOM, room)?;
    let webhooks = if room_access.has_webhooks != 0 {
        "1"
    } else {
        "0"
    };
    set(identity::WEBHOOKS, webhooks)?;
    if let TokenSource::Protocol { echo } = source {
        set(identity::PROTOCOL, &echo)?;
    }
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    let forwarded = Request::new_with_init(&req.inner().url(), &init)
        .map_err(http::internal("forward request"))?;
    room_stub(env, &verified.claims.prj, room)?
        .fetch_with_request(forwarded)
        .await
        .map_err(http::internal("room fetch"))
}
