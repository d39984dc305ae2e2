//! The `/v1` history routes: versions, diff, replay, the document at an instant, and branches.
//! The worker checks the caller and the document here; the room does the work under
//! `/__history/` (`room_object/history.rs`). Branch records live in D1 (`branches`).

use super::access::{self, now_ms, Actor};
use super::d1::{self, DocumentState};
use super::{http, identity};
use crate::api::{validate_room_name, ApiError};
use crate::auth::Role;
use crate::routes::RouteId;
use jwt_simple::prelude::Base64;
use jwt_simple::reexports::ct_codecs::Decoder;
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// Whether a route is one of this module's.
pub fn handles(id: RouteId) -> bool {
    use RouteId::*;
    matches!(
        id,
        ListVersions
            | CreateVersion
            | GetVersion
            | GetVersionUpdate
            | DeleteVersion
            | RestoreVersion
            | DiffVersions
            | ReplayHistory
            | DocumentAt
            | ListBranches
            | CreateBranch
            | PreviewMerge
            | MergeBranch
    )
}

/// Whether a history route takes only an API key (or the admin secret), not a room token.
pub fn keys_only(id: RouteId) -> bool {
    matches!(
        crate::routes::ROUTES
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.access),
        Some(crate::routes::Access::Key(_))
    )
}

/// The role a history route needs (the route table says the same for the OpenAPI document).
fn required(id: RouteId) -> Role {
    match crate::routes::ROUTES
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.access)
    {
        Some(crate::routes::Access::Key(role) | crate::routes::Access::KeyOrToken(role)) => role,
        _ => Role::Owner,
    }
}

/// A call from the worker to one room's `/__history/` or `/__doc/` endpoints, as `author`.
pub struct RoomCall<'a> {
    /// The worker's environment.
    pub env: &'a Env,
    /// The room's project.
    pub project: &'a str,
    /// The room's name.
    pub room: &'a str,
    /// Who is calling (as the audit log names them).
    pub author: String,
}

impl RoomCall<'_> {
    /// Sends one request to the room.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response> {
        let stub = super::room_stub(self.env, self.project, self.room)?;
        let headers = worker::Headers::new();
        for (k, v) in [
            (identity::SUB, self.author.as_str()),
            (identity::PROJECT, self.project),
            (identity::ROOM, self.room),
        ] {
            headers.set(k, v).map_err(http::internal("headers"))?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(body) = body {
            init.with_body(Some(
                worker::js_sys::Uint8Array::from(body.as_slice()).into(),
            ));
        }
        let req = Request::new_with_init(&format!("https://room.internal{path}"), &init)
            .map_err(http::internal("history request"))?;
        stub.fetch_with_request(req)
            .await
            .map_err(http::internal("history fetch"))
    }

    /// Calls the room and reads a JSON answer; a problem answer is passed on as `Err(resp)`.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<std::result::Result<Value, Response>> {
        let mut resp = self.send(method, path, body).await?;
        if resp.status_code() >= 300 {
            return Ok(Err(resp));
        }
        Ok(Ok(resp
            .json()
            .await
            .map_err(http::internal("history json"))?))
    }
}

pub(super) fn decode_b64(v: &Value) -> Result<Vec<u8>> {
    Base64::decode_to_vec(v.as_str().unwrap_or_default(), None).map_err(|e| {
        worker::console_error!("room sent bad base64: {e}");
        ApiError::Internal
    })
}

/// Serves a history route for `document` in `project`, for `actor`.
pub async fn dispatch(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    id: RouteId,
    project: &str,
    document: &str,
    version: Option<&str>,
) -> Result<Response> {
    validate_room_name(document)?;
    actor.require(project, required(id))?;
    let db = access::db(env)?;
    match d1::document_state(&db, project, document).await? {
        DocumentState::Deleted => return Err(ApiError::DocumentDeleted),
        DocumentState::Missing => return Err(ApiError::Missing("document", document.into())),
        DocumentState::Live => {}
    }
    let room = RoomCall {
        env,
        project,
        room: document,
        author: actor.name(),
    };
    let q = http::query_string(req);
    let version_param = version;
    let version = || version_param.ok_or(ApiError::NotFound);
    let path = match id {
        RouteId::ListVersions => format!("/__history/versions{q}"),
        RouteId::GetVersion => format!("/__history/versions/{}", version()?),
        RouteId::GetVersionUpdate => format!("/__history/versions/{}/update", version()?),
        RouteId::DiffVersions => format!("/__history/diff{q}"),
        RouteId::ReplayHistory => format!("/__history/updates{q}"),
        RouteId::DocumentAt => format!("/__history/at{q}"),
        RouteId::CreateVersion | RouteId::DeleteVersion | RouteId::RestoreVersion => {
            return write_version(req, env, actor, id, &room, version_param).await;
        }
        RouteId::ListBranches => {
            return super::branches::list_branches(env, project, document).await
        }
        RouteId::CreateBranch => {
            return super::branches::create_branch(req, env, actor, &room).await
        }
        RouteId::PreviewMerge | RouteId::MergeBranch => {
            return super::branches::merge(env, actor, &room, id == RouteId::MergeBranch).await;
        }
        _ => return Err(ApiError::NotFound),
    };
    room.send(Method::Get, &path, None).await
}

/// Version writes: the room does them; the audit log records them.
async fn write_version(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    id: RouteId,
    room: &RoomCall<'_>,
    version: Option<&str>,
) -> Result<Response> {
    let version = || version.ok_or(ApiError::NotFound);
    let (method, path, action, body) = match id {
        RouteId::CreateVersion => {
            let bytes = req
                .bytes()
                .await
                .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            (
                Method::Post,
                "/__history/versions".to_owned(),
                "version.created",
                Some(bytes),
            )
        }
        RouteId::DeleteVersion => (
            Method::Delete,
            format!("/__history/versions/{}", version()?),
            "version.deleted",
            None,
        ),
        _ => (
            Method::Post,
            format!("/__history/versions/{}/restore", version()?),
            "version.restored",
            Some(Vec::new()),
        ),
    };
    let resp = match room.json(method, &path, body).await? {
        Ok(v) => v,
        Err(problem) => return Ok(problem),
    };
    let db = access::db(env)?;
    let detail = match id {
        RouteId::CreateVersion => json!({ "version": resp["id"], "name": resp["name"] }),
        RouteId::DeleteVersion => json!({ "version": resp["deleted"] }),
        _ => json!({ "restored": resp["restored"]["id"], "changed": resp["changed"] }),
    };
    d1::batch(
        &db,
        vec![d1::audit(
            &db,
            Some(room.project),
            &d1::actor_name(actor),
            action,
            Some(room.room),
            detail,
            now_ms(),
        )?],
    )
    .await?;
    let status = if id == RouteId::CreateVersion {
        201
    } else {
        200
    };
    Ok(http::json(&resp)?.with_status(status))
}
