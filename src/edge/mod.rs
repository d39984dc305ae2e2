//! The worker: routes requests, and hosts one [`room_object::RoomObject`] per room.

mod access;
mod d1;
mod env;
mod health;
mod http;
mod room_client;
mod room_object;
mod sql_store;
mod v1;
mod versions;
mod webhook_queue;

use crate::api::ApiError;
use crate::names::RoomName;
use crate::openapi;
use crate::room_call::{Admission, ADMISSION_HEADER, CONNECT_URL};
use crate::routes::{self, RouteId};
use access::TokenSource;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Result};

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
        RouteId::Health => health::check(&req, env).await,
        RouteId::OpenApi => http::json(&openapi::document()),
        RouteId::Room => {
            let room = matched.params.document()?.clone();
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

/// Hands a WebSocket upgrade for `room` to the room's Durable Object. The token is checked
/// here, so a bad one never wakes the room; the room gets a fresh request with the
/// [`Admission`] the worker established, and none of the client's headers. A document that
/// was never registered is registered once the room has accepted the connection.
async fn connect_room(
    req: Request,
    env: &Env,
    room: &RoomName,
) -> std::result::Result<Response, ApiError> {
    if !http::is_websocket_upgrade(&req) {
        return Err(ApiError::UpgradeRequired);
    }
    let (token, source) = access::room_token(&req)?;
    let admitted = access::authorize_room(env, &token, room).await?;
    let admission = Admission {
        project: admitted.project.clone(),
        room: room.clone(),
        sub: admitted.verified.sub.clone(),
        role: admitted.verified.claims.role,
        exp: admitted.verified.exp,
        protocol: match source {
            TokenSource::Protocol { echo } => Some(echo),
            TokenSource::Query => None,
        },
        webhooks: admitted.access.has_webhooks != 0,
    };
    let headers = Headers::new();
    let json = serde_json::to_string(&admission).map_err(|e| {
        worker::console_error!("admission: {e}");
        ApiError::Internal
    })?;
    for (name, value) in [("upgrade", "websocket"), (ADMISSION_HEADER, json.as_str())] {
        headers
            .set(name, value)
            .map_err(http::internal("headers"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let forwarded =
        Request::new_with_init(CONNECT_URL, &init).map_err(http::internal("forward request"))?;
    let resp = room_client::stub(env, &admitted.project, room)?
        .fetch_with_request(forwarded)
        .await
        .map_err(http::internal("room fetch"))?;
    if resp.status_code() == 101 && admitted.access.doc_exists == 0 {
        // The connection is open either way; a failed registration is tried again at the next
        // connection (admissions of unregistered documents are not cached).
        let by = format!("user:{}", admitted.verified.sub);
        match v1::documents::register(env, &admitted.project, room, &by, "connect").await {
            Ok(_) => admitted.registered(),
            Err(e) => worker::console_error!("registering document {room}: {e:?}"),
        }
    }
    Ok(resp)
}
