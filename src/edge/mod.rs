//! The worker: routes requests, and hosts one [`room_object::RoomObject`] per room.

mod access;
mod conversation_store;
mod d1;
mod env;
mod health;
mod http;
mod log;
mod platform;
mod rate_limits;
mod revocation;
mod room_client;
mod room_object;
mod signal_hub;
mod sql_store;
mod static_files;
mod v1;
mod version_store;
mod webhook_queue;

use crate::api::ApiError;
use crate::names::RoomName;
use crate::openapi;
use crate::request_id::Summary;
use crate::room_call::{Admission, Revocation, Verdict, ADMISSION_HEADER, CONNECT_URL};
use crate::routes::{self, RouteId};
use access::TokenSource;
use log::Emit;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The cron trigger (`[triggers]` in wrangler.toml): purges trashed assets whose time is up and
/// drops multipart uploads that expired unfinished.
#[event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    if let Err(e) = v1::sweep_assets(&env).await {
        log::error("asset.sweep_failed")
            .message("asset sweep failed")
            .cause(format!("{e:?}"))
            .emit();
    }
}

/// Every request: routed, answered with its request id (`x-request-id`, and `request_id` in a
/// problem body), and logged in one `http.request` line.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let started = platform::now_ms();
    let (id, client_id) = request_id(&req);
    // The method as sent: `Request::method` reads any method it does not know (QUERY, FOO) as
    // GET, which would serve a read for it.
    let method = req.inner().method();
    let matched = routes::match_route(&method, &req.path());
    // The route's name and the project in the path, never the path itself: paths carry what
    // clients chose.
    let (route_name, project) = match &matched {
        Ok(m) => (format!("{:?}", m.id), m.params.project.clone()),
        Err(_) => ("none".to_owned(), None),
    };
    let (resp, problem) = match route(req, &env, &method, matched).await {
        Ok(resp) => http::stamp(resp, &id).await?,
        Err(e) => {
            let problem = summary_of(&e);
            (http::problem(&e, Some(&id))?, problem)
        }
    };
    let status = resp.status_code();
    let mut line = if status >= 500 {
        log::error("http.request")
    } else {
        log::info("http.request")
    };
    line = line
        .request_id(&id)
        .field("method", method.as_str())
        .field("route", route_name)
        .field("status", status)
        // Wall time: the runtime's clock stands still while the worker computes and moves on
        // with I/O (https://developers.cloudflare.com/workers/runtime-apis/performance/).
        .field("duration_ms", platform::now_ms().saturating_sub(started));
    if let Some(project) = project {
        line = line.project(project);
    }
    if let Some(client_id) = client_id {
        line = line.field("client_request_id", client_id);
    }
    // The problem's word (`not-found`, `token-expired`) is the service's, never the client's;
    // a failure's detail goes in as its cause.
    match problem {
        Some(p) if status >= 500 => line.field("problem", p.error.as_str()).cause(p).emit(),
        Some(p) => line.field("problem", p.error).emit(),
        None => line.emit(),
    }
    Ok(resp)
}

/// The request's id: `cf-ray` (Cloudflare's, as its dashboard shows it), else a valid
/// `x-request-id` the caller sent, else a fresh random one ([`crate::request_id::choose`]).
/// Beside it, the caller's own valid id when it is not the one chosen (for the log line).
fn request_id(req: &Request) -> (String, Option<String>) {
    let header = |name| req.headers().get(name).ok().flatten();
    let incoming = header(crate::request_id::HEADER);
    let id = crate::request_id::choose(
        header(crate::request_id::CF_RAY).as_deref(),
        incoming.as_deref(),
        || match platform::random::<8>() {
            Ok(bytes) => crate::request_id::fresh(bytes),
            // Not a secret: an id from `Math.random` does when the CSPRNG failed.
            Err(_) => format!("{:016x}", platform::random_safe_id()),
        },
    );
    let client_id = incoming.filter(|c| *c != id && crate::request_id::is_valid(c));
    (id, client_id)
}

/// What an error answer's problem says, for the log line (a relayed problem's own; `None`
/// when a relayed body is not one). What failed inside was logged where it did.
fn summary_of(err: &ApiError) -> Option<Summary> {
    match err {
        ApiError::Relayed { body, .. } => crate::request_id::problem_summary(body),
        _ => {
            let problem = err.problem();
            Some(Summary {
                error: problem.error.to_owned(),
                detail: problem.detail,
            })
        }
    }
}

async fn route(
    req: Request,
    env: &Env,
    method: &str,
    matched: std::result::Result<routes::Matched, ApiError>,
) -> std::result::Result<Response, ApiError> {
    let matched = match matched {
        Ok(matched) => matched,
        Err(ApiError::NotFound) => return static_files::serve(req, env, method).await,
        // HEAD where GET is a file (`/`, the demo app): the file's headers.
        Err(e @ ApiError::MethodNotAllowed { .. }) if method == "HEAD" => {
            return static_files::read(req, env).await?.ok_or(e)
        }
        Err(e) => return Err(e),
    };
    match matched.id {
        RouteId::Index => match static_files::read(req, env).await? {
            Some(app) => Ok(app),
            None => index(),
        },
        RouteId::Health => health::check(&req, env).await,
        RouteId::OpenApi => http::json(&openapi::document()),
        RouteId::Room => {
            let room = matched.params.document()?.clone();
            connect_room(req, env, &room).await
        }
        RouteId::Signal => signal_hub::connect(req, env).await,
        _ => v1::dispatch(req, env, matched).await,
    }
}

/// `GET /` where no demo app is deployed: what the service is and where its parts are.
fn index() -> std::result::Result<Response, ApiError> {
    http::json(&serde_json::json!({
            "name": "TandemX",
            "version": env!("CARGO_PKG_VERSION"),
            "rooms": "ws://<this host>/rooms/<room>?token=<room token> (the y-websocket provider: new WebsocketProvider('ws://<this host>/rooms', room, doc, { params: { token } }))",
            "signal": "ws://<this host>/signal?token=<room token> (y-webrtc signalling: new WebrtcProvider(room, doc, { signaling: ['ws://<this host>/signal?token=...'] }))",
            "api": "/v1/openapi.json",
            "health": "/health",
    }))
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
    // `?events=1`: the client (the SDK) asks for conversation events on the socket.
    let events = match http::query(&req, "events").as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "events is 1 (send conversation events) or 0".into(),
            ))
        }
    };
    let admitted = access::authorize_room(env, &token, room).await?;
    // Opening a document that does not exist creates it: only a role that may write may.
    if admitted.access.doc_exists == 0 && !admitted.role.can_write() {
        return Err(ApiError::Missing("document", room.to_string()));
    }
    let admission = Admission {
        project: admitted.project.clone(),
        room: room.clone(),
        sub: admitted.verified.sub.clone(),
        role: admitted.role,
        exp: admitted.verified.exp,
        protocol: match source {
            TokenSource::Protocol { echo } => Some(echo),
            TokenSource::Query => None,
        },
        webhooks: admitted.access.has_webhooks != 0,
        credential: admitted.credential.clone(),
        events,
    };
    let headers = Headers::new();
    let json = serde_json::to_string(&admission).map_err(|e| {
        log::error("room.admission_unencodable")
            .project(&admitted.project)
            .room(room)
            .cause(e)
            .emit();
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
        register_on_connect(env, admitted, room).await;
    }
    Ok(resp)
}

/// The first connection to a document not registered yet: registers it (live), then checks
/// the connection's credential once more against D1. The room marked itself live before the
/// document row existed, so a revocation listing live rooms in between missed it; reading
/// after the row is written closes that gap. The connection is open either way; a failed
/// registration is tried again at the next connection (admissions of unregistered documents
/// are not cached).
async fn register_on_connect(env: &Env, admitted: access::Admitted, room: &RoomName) {
    let by = format!("user:{}", admitted.verified.sub);
    let now = worker::js_sys::Date::now() as u64;
    let registered =
        v1::documents::register(env, &admitted.project, room, &by, "connect", Some(now)).await;
    if let Err(e) = registered {
        log::error("document.register_failed")
            .message("registering a document on its first connection failed")
            .project(&admitted.project)
            .room(room)
            .cause(format!("{e:?}"))
            .emit();
        return;
    }
    let holder = access::Holder {
        project: admitted.project.as_str(),
        room: room.as_str(),
        sub: &admitted.verified.sub,
        role: admitted.role,
        cred: &admitted.credential,
    };
    let verdict = match access::mark_live_and_check(env, &holder, now).await {
        Ok(verdict) => verdict,
        Err(e) => {
            log::error("document.first_connection_unchecked")
                .message("checking a new document's first connection failed")
                .project(&admitted.project)
                .room(room)
                .cause(format!("{e:?}"))
                .emit();
            return;
        }
    };
    if verdict != Verdict::Keep {
        // Revoked meanwhile: the room closes (or downgrades) what this credential admitted.
        let cred = &admitted.credential;
        let sub = admitted.verified.sub.clone();
        let revocation = match (verdict, &cred.jti, &cred.key, &cred.kid) {
            (Verdict::Downgrade(role), ..) => Revocation::Member {
                sub,
                role: Some(role),
            },
            (_, Some(jti), _, _) => Revocation::Token { jti: jti.clone() },
            (_, None, Some(id), _) => Revocation::Key { id: id.clone() },
            (_, None, None, Some(kid)) => Revocation::SigningKey { kid: kid.clone() },
            (_, None, None, None) => Revocation::Member { sub, role: None },
        };
        revocation::fan_out(env, &admitted.project, revocation).await;
        return;
    }
    admitted.registered();
}
