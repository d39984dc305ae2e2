//! The worker: `POST /render` in, a preview or a problem out. Reached by the main worker's
//! service binding `PREVIEWS` only (wrangler.toml: no workers.dev address).

use futures_util::StreamExt;
use worker::{event, Context, Env, Headers, Request, Response, Result};

use crate::problem::PreviewError;
use crate::render::{render, Rendered, SourceType};
use crate::request::{length_too_large, parse_query, MAX_BODY_BYTES, RENDER_PATH};

#[event(start)]
fn start() {
    // A panic aborts the wasm instance, and the next request starts a new one; the hook at
    // least logs where it was. `render` is written not to panic.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match handle(&mut req).await {
        Ok(resp) => Ok(resp),
        Err(e) => problem(&e),
    }
}

async fn handle(req: &mut Request) -> std::result::Result<Response, PreviewError> {
    if req.path() != RENDER_PATH {
        return Err(PreviewError::NotFound);
    }
    if req.inner().method() != "POST" {
        return Err(PreviewError::MethodNotAllowed);
    }
    let url = req.url().map_err(|e| PreviewError::Body(e.to_string()))?;
    let query = parse_query(url.query())?;
    let content_type = header(req, "content-type").unwrap_or_default();
    // 415 before the body is read.
    SourceType::from_content_type(&content_type).map_err(PreviewError::Render)?;
    if header(req, "content-length").is_some_and(|n| length_too_large(&n)) {
        return Err(PreviewError::BodyTooLarge);
    }
    let body = read_body(req).await?;
    let rendered = render(&body, &content_type, query.width, query.format)?;
    drop(body);
    respond(rendered).map_err(|e| PreviewError::Body(e.to_string()))
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The body, read chunk by chunk and refused as soon as it passes [`MAX_BODY_BYTES`] (a body
/// without Content-Length, or one longer than it said).
async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, PreviewError> {
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all.
        Err(_) => return Ok(Vec::new()),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| PreviewError::Body(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(PreviewError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn respond(rendered: Rendered) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", rendered.format.content_type())?;
    headers.set("tandemx-source-width", &rendered.source_width.to_string())?;
    headers.set("tandemx-source-height", &rendered.source_height.to_string())?;
    headers.set("tandemx-width", &rendered.width.to_string())?;
    headers.set("tandemx-height", &rendered.height.to_string())?;
    Ok(Response::from_bytes(rendered.bytes)?.with_headers(headers))
}

/// An RFC 9457 `application/problem+json` response for `err`.
fn problem(err: &PreviewError) -> Result<Response> {
    if err.status() >= 500 {
        worker::console_error!("preview failed: {err}");
    }
    let headers = Headers::new();
    headers.set("content-type", "application/problem+json")?;
    if let PreviewError::MethodNotAllowed = err {
        headers.set("allow", "POST")?;
    }
    Ok(Response::from_json(&err.problem())?
        .with_status(err.status())
        .with_headers(headers))
}
