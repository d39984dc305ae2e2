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
    if let ApiError::Relayed { status, body } = err {
        return Ok(Response::ok(body.clone())?
            .with_status(*status)
            .with_headers(headers));
    }
    match err {
        ApiError::RateLimited {
            retry_after_seconds,
        } => headers.set("retry-after", &retry_after_seconds.to_string())?,
        // RFC 9110, 15.5.6: a 405 names the methods the path does take.
        ApiError::MethodNotAllowed { allow } => headers.set("allow", &allow.join(", "))?,
        // RFC 9110, 14.4: a 416 tells the content's length.
        ApiError::RangeNotSatisfiable { size } => {
            headers.set("content-range", &format!("bytes */{size}"))?
        }
        _ => {}
    }
    Ok(Response::from_json(&err.problem())?
        .with_status(err.status())
        .with_headers(headers))
}

/// Maps an error (of the platform, of serialization) to [`ApiError::Internal`], logging it in
/// full with `what` failed.
pub fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ApiError {
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

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Reads a request body of at most `limit` bytes: refused (413) from its `Content-Length`
/// before anything is read, and while reading when it grows past the limit (a chunked body has
/// no length to check). No body at all reads as empty.
pub async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, ApiError> {
    use futures::StreamExt;
    let too_large = ApiError::BodyTooLarge { limit };
    let length = req.headers().get("content-length").ok().flatten();
    crate::api::check_content_length(length.as_deref(), limit)?;
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(internal("request body"))?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
