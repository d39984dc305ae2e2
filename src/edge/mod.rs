//! The worker: routes requests, and hosts one [`room_object::RoomObject`] per room.

mod env;
mod health;
mod http;
mod room_object;
mod sql_store;

use crate::api::{validate_room_name, ApiError};
use worker::{event, Context, Env, Request, Response, Result};

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
    let path = req.path();
    match path.as_str() {
        "/" => http::json(&serde_json::json!({
            "name": "TandemX",
            "version": env!("CARGO_PKG_VERSION"),
            "rooms": "ws://<this host>/rooms/<room> (the y-websocket provider: new WebsocketProvider('ws://<this host>/rooms', room, doc))",
            "health": "/health",
        })),
        "/health" => health::check(env).await,
        _ => match path.strip_prefix("/rooms/") {
            Some(room) => connect_room(req, env, room).await,
            None => Err(ApiError::NotFound),
        },
    }
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
    let stub = env
        .durable_object(env::ROOMS)
        .and_then(|ns| ns.get_by_name(&format!("room:{room}")))
        .map_err(http::internal("room stub"))?;
    stub.fetch_with_request(req)
        .await
        .map_err(http::internal("room fetch"))
}
