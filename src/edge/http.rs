//! HTTP helpers shared by the routes: JSON bodies and problem responses.

use crate::api::ApiError;
use serde::Serialize;
use worker::{Headers, Request, Response, Result};

/// A 200 response with a JSON body.
pub fn json<T: Serialize>(body: &T) -> std::result::Result<Response, ApiError> {
    Response::from_json(body).map_err(internal("json response"))
}

/// An RFC 9457 `application/problem+json` response for `err`.
pub fn problem(err: &ApiError) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/problem+json")?;
    Ok(Response::from_json(&err.problem())?
        .with_status(err.status())
        .with_headers(headers))
}

/// Maps a platform error to [`ApiError::Internal`], logging it in full with `what` failed.
pub fn internal(what: &'static str) -> impl Fn(worker::Error) -> ApiError {
    move |e| {
        worker::console_error!("{what}: {e}");
        ApiError::Internal
    }
}

/// The first value of query parameter `name` (the serialized URL's query only: parsing the
/// whole URL costs more, most of all in a freshly started worker).
pub fn query(req: &Request, name: &str) -> Option<String> {
    crate::api::query_param(&req.inner().url(), name)
}

/// The query string of a request with its `?`, or nothing.
pub fn query_string(req: &Request) -> String {
    crate::api::url_query(&req.inner().url())
        .map(|q| format!("?{q}"))
        .unwrap_or_default()
}

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
