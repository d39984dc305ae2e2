//! `GET /health`: touches the Durable Object, D1 and R2 and reports each.
//!
//! Anyone may ask, so an anonymous check costs little and tells little: it reads (a room call,
//! a D1 query, an R2 `head`) and writes nothing, and its report has no error text. With the
//! admin secret the R2 check writes, reads back and deletes a probe object, and the report says
//! what failed.

use super::log::{self, Emit};
use super::{access, env, http};
use crate::api::ApiError;
use crate::names::{Id, RoomName};
use crate::room_call::{RoomCall, RoomRequest, CALL_URL};
use serde::Serialize;
use worker::{js_sys::Date, Env, Method, Request, RequestInit, Response};

/// The Durable Object the health check talks to; never a room (room ids are `room:<name>`).
const PROBE_OBJECT: &str = "health:probe";
/// The R2 key the health check writes, reads back and deletes.
const PROBE_KEY: &str = "health/probe";

#[derive(Serialize)]
struct Check {
    ok: bool,
    ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    durable_object: Check,
    d1: Check,
    r2: Check,
}

async fn timed<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Check {
    let start = Date::now();
    let result = f.await;
    let ms = Date::now() - start;
    if let Err(e) = &result {
        log::error("health.check_failed").cause(e).emit();
    }
    Check {
        ok: result.is_ok(),
        ms,
        error: result.err(),
    }
}

async fn durable_object(env: &Env) -> Result<(), String> {
    let stub = env
        .durable_object(env::ROOMS)
        .and_then(|ns| ns.get_by_name(PROBE_OBJECT))
        .map_err(|e| format!("durable object stub: {e}"))?;
    let call = RoomRequest {
        project: Id::parse("project id", "health").map_err(|e| e.to_string())?,
        room: RoomName::parse("probe").map_err(|e| e.to_string())?,
        author: String::new(),
        call: RoomCall::Health,
    };
    let body = call.encode(&[]).map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(
        worker::js_sys::Uint8Array::from(body.as_slice()).into(),
    ));
    let req = Request::new_with_init(CALL_URL, &init).map_err(|e| format!("request: {e}"))?;
    let mut resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| format!("durable object fetch: {e}"))?;
    match resp.status_code() {
        200 => Ok(()),
        code => Err(format!(
            "durable object answered {code}: {}",
            resp.text().await.unwrap_or_default()
        )),
    }
}

async fn d1(env: &Env) -> Result<(), String> {
    let db = env.d1(env::DB).map_err(|e| format!("d1 binding: {e}"))?;
    let version: Option<String> = db
        .prepare("SELECT value FROM tandemx_meta WHERE key = 'schema'")
        .first(Some("value"))
        .await
        .map_err(|e| format!("d1 query (are migrations applied?): {e}"))?;
    version
        .map(|_| ())
        .ok_or_else(|| "d1: schema row missing".into())
}

/// Reads the probe key's metadata: whether R2 answers, without writing anything.
async fn r2_read(env: &Env) -> Result<(), String> {
    let bucket = env
        .bucket(env::ASSETS)
        .map_err(|e| format!("r2 binding: {e}"))?;
    bucket
        .head(PROBE_KEY)
        .await
        .map(|_| ())
        .map_err(|e| format!("r2 head: {e}"))
}

/// Writes, reads back and deletes the probe key (admin only).
async fn r2_round_trip(env: &Env) -> Result<(), String> {
    let bucket = env
        .bucket(env::ASSETS)
        .map_err(|e| format!("r2 binding: {e}"))?;
    let body = format!("probe {}", Date::now());
    bucket
        .put(PROBE_KEY, body.clone().into_bytes())
        .execute()
        .await
        .map_err(|e| format!("r2 put: {e}"))?;
    let object = bucket
        .get(PROBE_KEY)
        .execute()
        .await
        .map_err(|e| format!("r2 get: {e}"))?
        .ok_or("r2 get: object missing after put")?;
    let read = match object.body() {
        Some(b) => b.text().await.map_err(|e| format!("r2 read: {e}"))?,
        None => return Err("r2 get: no body".into()),
    };
    bucket
        .delete(PROBE_KEY)
        .await
        .map_err(|e| format!("r2 delete: {e}"))?;
    if read == body {
        Ok(())
    } else {
        Err("r2: read back different bytes".into())
    }
}

/// Runs the three checks; 200 when all pass, 503 otherwise, with the report as the body. The
/// caller holding the admin secret gets the R2 round trip and the error texts.
pub async fn check(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let admin = access::is_admin(req, env);
    let durable_object = timed(durable_object(env)).await;
    let d1 = timed(d1(env)).await;
    let mut r2 = if admin {
        timed(r2_round_trip(env)).await
    } else {
        timed(r2_read(env)).await
    };
    let mut durable_object = durable_object;
    let mut d1 = d1;
    if !admin {
        for check in [&mut durable_object, &mut d1, &mut r2] {
            check.error = None;
        }
    }
    let report = Report {
        ok: durable_object.ok && d1.ok && r2.ok,
        durable_object,
        d1,
        r2,
    };
    let status = if report.ok { 200 } else { 503 };
    Ok(http::json(&report)?.with_status(status))
}
