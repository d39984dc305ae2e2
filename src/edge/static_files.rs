//! The demo app's files (`[assets]` in `wrangler.toml`, binding [`env::STATIC`]). The worker
//! runs before the files for every request (`run_worker_first`), so that every path answers by
//! the same rules: a file is read with GET or HEAD; any other method on a file's path is 405
//! with `Allow: GET, HEAD`; a path that is neither a route nor a file is the API's 404 problem.
//! A deployment without the files (no `[assets]`) answers `/` with the service's JSON
//! description instead.

use super::env;
use super::log::{self, Emit};
use crate::api::ApiError;
use worker::{Env, Method, Request, RequestInit, Response};

/// The methods a file takes.
const FILE_METHODS: [&str; 2] = ["GET", "HEAD"];

/// The file at `req`'s path, for GET or HEAD; `None` when there is no such file (or no files).
pub async fn read(req: Request, env: &Env) -> Result<Option<Response>, ApiError> {
    let Ok(files) = env.assets(env::STATIC) else {
        return Ok(None);
    };
    let resp = files.fetch_request(req).await.map_err(|e| {
        log::error("static.read_failed")
            .message("reading a static file failed")
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    Ok((resp.status_code() != 404).then_some(resp))
}

/// Answers a request whose path no route has: the file for GET and HEAD, 405 for another method
/// on a file's path, else 404.
pub async fn serve(req: Request, env: &Env, method: &str) -> Result<Response, ApiError> {
    if FILE_METHODS.contains(&method) {
        return read(req, env).await?.ok_or(ApiError::NotFound);
    }
    let url = req.url().map_err(|_| ApiError::NotFound)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Head);
    let probe = Request::new_with_init(url.as_str(), &init).map_err(|e| {
        log::error("static.probe_failed")
            .message("could not build a static file probe")
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    match read(probe, env).await? {
        Some(_) => Err(ApiError::MethodNotAllowed {
            allow: FILE_METHODS.to_vec(),
        }),
        None => Err(ApiError::NotFound),
    }
}
