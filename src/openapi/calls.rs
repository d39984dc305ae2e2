//! The OpenAPI shapes of calls (docs/calls.md): the ICE servers a participant is handed.

use super::schemas::object;
use super::{schema, Value};
use crate::ice::{MAX_SERVERS, MAX_URLS, MAX_URL_CHARS, TTL_RANGE};
use crate::routes::RouteId;
use serde_json::json;

/// Request body and success response of a call route.
pub(super) fn shape(_id: RouteId) -> (Option<Value>, (String, Value)) {
    (
        None,
        (
            "200".into(),
            json!({ "description": "ICE servers for RTCPeerConnection: the configured STUN servers, and TURN with credentials that expire at expires_at (none when no TURN is configured)",
                "headers": { "Cache-Control": { "schema": { "type": "string", "const": "no-store" } } },
                "content": { "application/json": { "schema": schema("IceServers") } } }),
        ),
    )
}

/// The schemas of call routes.
pub(super) fn schemas() -> Value {
    let url = json!({ "type": "string", "maxLength": MAX_URL_CHARS, "pattern": "^(stun|stuns|turn|turns):[!-~]+$" });
    json!({
        "IceServer": object(json!({
            "urls": { "type": "array", "items": url, "minItems": 1, "maxItems": MAX_URLS },
            "username": { "type": "string" },
            "credential": { "type": "string" } }), &["urls"]),
        "IceServers": object(json!({
            "iceServers": { "type": "array", "items": schema("IceServer"), "maxItems": MAX_SERVERS + 1 },
            "ttl": { "type": "integer", "minimum": TTL_RANGE.start(), "maximum": TTL_RANGE.end(),
                "description": "Seconds the TURN credentials are valid" },
            "expires_at": { "type": "integer", "minimum": 0, "description": "When the TURN credentials expire, unix ms" } }),
            &["iceServers", "ttl", "expires_at"]),
    })
}
