//! HTTP helpers shared by the routes: JSON bodies and problem responses.

use super::log::{self, Emit};
use crate::api::ApiError;
use crate::request_id::{self, Summary};
use serde::Serialize;
use worker::{Headers, Request, Response, Result};

/// A 200 response with a JSON body.
pub fn json<T: Serialize>(body: &T) -> std::result::Result<Response, ApiError> {
    Response::from_json(body).map_err(internal("json response"))
}

/// An RFC 9457 `application/problem+json` response for `err`. Where the worker answers, the
/// request's id goes into the body (`request_id`) and the `x-request-id` header; a Durable
/// Object answers without one (the worker adds it when it passes the answer on, [`stamp`]).
pub fn problem(err: &ApiError, request_id: Option<&str>) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/problem+json")?;
    if let Some(id) = request_id {
        headers.set(request_id::HEADER, id)?;
    }
    if let ApiError::Relayed { status, body } = err {
        // The room's (or the previews worker's) document, with the id added when it parses.
        let tagged = request_id.and_then(|id| request_id::tag_problem(body, id));
        let body = tagged.map_or_else(|| body.clone(), |t| t.body);
        return Ok(Response::ok(body)?
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
    let mut body = err.problem();
    body.request_id = request_id.map(str::to_owned);
    Ok(Response::from_json(&body)?
        .with_status(err.status())
        .with_headers(headers))
}

/// Sets `x-request-id` on a response the worker passes on, and `request_id` in its body when it
/// is a problem document (one a Durable Object answered). Returns the response and, for a
/// problem, what it says (for the log line).
pub async fn stamp(mut resp: Response, id: &str) -> Result<(Response, Option<Summary>)> {
    // A copy: the headers of a response that came from a fetch (a Durable Object, the static
    // files) are immutable, and setting one would throw.
    let headers = resp.headers().clone();
    headers.set(request_id::HEADER, id)?;
    let is_problem = resp.status_code() >= 400
        && headers
            .get("content-type")?
            .is_some_and(|t| t.starts_with("application/problem+json"));
    if !is_problem {
        return Ok((resp.with_headers(headers), None));
    }
    let status = resp.status_code();
    let body = resp.text().await?;
    let (body, summary) = match request_id::tag_problem(&body, id) {
        Some(tagged) => (tagged.body, Some(tagged.summary)),
        None => (body, None),
    };
    // The body's length changed.
    headers.delete("content-length")?;
    let resp = Response::ok(body)?
        .with_status(status)
        .with_headers(headers);
    Ok((resp, summary))
}

/// Maps an error (of the platform, of serialization) to [`ApiError::Internal`], logging it in
/// full with `what` failed.
pub fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ApiError {
    move |e| {
        log::error("internal.failed")
            .field("what", what)
            .cause(e)
            .emit();
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
