//! The `/v1` history routes: versions, diff, replay and the document at an instant. The
//! worker checks the caller and the document here and parses every parameter into a typed
//! [`RoomCall`]; the room does the work (`room_object/history.rs`).

use super::{Call, Result};
use crate::api::ApiError;
use crate::edge::d1::{self, DocumentState};
use crate::edge::http;
use crate::edge::platform::now_ms;
use crate::edge::room_client::RoomClient;
use crate::names::{Id, RoomName};
use crate::queries;
use crate::room_call::RoomCall;
use crate::routes::RouteId;
use crate::versions::CreateVersion;
use serde_json::{json, Value};
use worker::Response;

/// The document a history route is about, checked to be live.
pub(super) async fn live_document(cx: &Call<'_>) -> Result<(Id, RoomName)> {
    let project = cx.project()?.clone();
    let document = cx.params.document()?.clone();
    match d1::document_state(&cx.db()?, project.as_str(), document.as_str()).await? {
        DocumentState::Deleted => Err(ApiError::DocumentDeleted),
        DocumentState::Missing => Err(ApiError::Missing("document", document.to_string())),
        DocumentState::Live => Ok((project, document)),
    }
}

/// Serves a history route.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    let q = query.as_deref();
    // Every parameter is parsed before anything else happens.
    let call = match id {
        RouteId::ListVersions => queries::list_versions(q)?,
        RouteId::GetVersion => RoomCall::GetVersion {
            id: cx.params.version()?,
            as_update: false,
        },
        RouteId::GetVersionUpdate => RoomCall::GetVersion {
            id: cx.params.version()?,
            as_update: true,
        },
        RouteId::DiffVersions => queries::diff(q)?,
        RouteId::ReplayHistory => queries::replay(q)?,
        RouteId::DocumentAt => queries::at(q)?,
        RouteId::CreateVersion => {
            let input: CreateVersion = cx.body().await?;
            input.validate().map_err(ApiError::InvalidBody)?;
            RoomCall::CreateVersion {
                name: input.name.trim().to_owned(),
                description: input.description,
            }
        }
        RouteId::DeleteVersion => RoomCall::DeleteVersion {
            id: cx.params.version()?,
        },
        RouteId::RestoreVersion => RoomCall::RestoreVersion {
            id: cx.params.version()?,
        },
        _ => return Err(ApiError::NotFound),
    };
    let (project, document) = live_document(cx).await?;
    let room = RoomClient {
        env: cx.env,
        project: &project,
        room: &document,
        author: cx.actor_name(),
    };
    let action = match &call {
        RoomCall::CreateVersion { .. } => "version.created",
        RoomCall::DeleteVersion { .. } => "version.deleted",
        RoomCall::RestoreVersion { .. } => "version.restored",
        _ => return room.send(call, &[]).await,
    };
    let resp: Value = room.json(call, &[]).await?;
    let detail = match action {
        "version.created" => json!({ "version": resp["id"], "name": resp["name"] }),
        "version.deleted" => json!({ "version": resp["deleted"] }),
        _ => json!({ "restored": resp["restored"]["id"], "changed": resp["changed"] }),
    };
    let db = cx.db()?;
    let activity = super::activity::entry(
        &db,
        project.as_str(),
        Some(document.as_str()),
        &super::activity::actor_of(&cx.actor),
        action,
        &detail,
    )?;
    d1::batch(
        &db,
        vec![
            d1::audit(
                &db,
                Some(project.as_str()),
                &cx.actor_name(),
                action,
                Some(document.as_str()),
                detail,
                now_ms(),
            )?,
            activity,
        ],
    )
    .await?;
    let status = if action == "version.created" {
        201
    } else {
        200
    };
    Ok(http::json(&resp)?.with_status(status))
}
