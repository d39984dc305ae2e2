//! Documents: the registry of a project's rooms (list, create, delete) and the document API
//! (read as JSON or as a Yjs update; write an update or JSON edit operations).

use super::{created, list_page, Call, Result};
use crate::api::{ApiError, CreateDocument};
use crate::document::Edits;
use crate::edge::d1::{self, num, text, DocumentState};
use crate::edge::platform::now_ms;
use crate::edge::room_client::RoomClient;
use crate::edge::{env, http, webhook_queue};
use crate::names::{Id, RoomName};
use crate::room_call::RoomCall;
use crate::routes::RouteId;
use serde_json::json;
use worker::{Env, Response};

/// Serves the document routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::ListDocuments => {
            let project = cx.project()?.to_string();
            list_page(
                cx,
                "SELECT name, created_at, created_by FROM documents
                 WHERE project_id = ?1 AND deleted_at IS NULL AND (?2 IS NULL OR name > ?2)
                 ORDER BY name LIMIT ?3",
                &project,
                &["name"],
                "documents",
            )
            .await
        }
        RouteId::CreateDocument => create(cx).await,
        RouteId::DeleteDocument => delete(cx).await,
        RouteId::GetDocument
        | RouteId::GetDocumentUpdate
        | RouteId::PostDocumentUpdate
        | RouteId::PostDocumentEdits => document_api(id, cx).await,
        _ => Err(ApiError::NotFound),
    }
}

/// Registers document `room` of `project` unless it is registered already; returns whether it
/// did. The audit entry and the `document.created` event come with a registration only, so a
/// second connection (or a retry after a failure) adds neither. `live_since`: the room has open
/// connections since then (see `edge::revocation`).
pub async fn register(
    env: &Env,
    project: &Id,
    room: &RoomName,
    by: &str,
    via: &str,
    live_since: Option<u64>,
) -> Result<bool> {
    let db = crate::edge::access::db(env)?;
    let now = now_ms();
    let (p, r) = (project.as_str(), room.as_str());
    let results = d1::batch_results(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO documents (project_id, name, created_at, created_by, live_since)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                &[
                    text(p),
                    text(r),
                    num(now),
                    text(by),
                    live_since.map_or(worker::wasm_bindgen::JsValue::NULL, num),
                ],
            )?,
            // `changes()` is the row count of the insert just before, in the same transaction.
            d1::stmt(
                &db,
                "INSERT INTO audit_log (project_id, at, actor, action, target, detail)
                 SELECT ?, ?, ?, 'document.created', ?, ? WHERE changes() = 1",
                &[
                    text(p),
                    num(now),
                    text(by),
                    text(r),
                    text(&json!({ "via": via }).to_string()),
                ],
            )?,
        ],
    )
    .await?;
    let created = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        == Some(1);
    if created {
        webhook_queue::emit(
            env,
            p,
            "document.created",
            json!({ "project": p, "document": r, "by": by }),
            None,
        )
        .await;
    }
    Ok(created)
}

async fn create(cx: &mut Call<'_>) -> Result<Response> {
    let input: CreateDocument = cx.body().await?;
    let name = RoomName::parse(&input.name)?;
    let project = cx.project()?.to_string();
    let db = cx.db()?;
    if d1::document_state(&db, &project, name.as_str()).await? == DocumentState::Live {
        return Err(ApiError::Conflict(format!(
            "document {:?} exists",
            input.name
        )));
    }
    let now = now_ms();
    let actor_name = cx.actor_name();
    d1::batch(
        &db,
        vec![
            d1::live_document(&db, &project, name.as_str(), now, &actor_name)?,
            d1::audit(
                &db,
                Some(&project),
                &actor_name,
                "document.created",
                Some(name.as_str()),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    webhook_queue::emit(
        cx.env,
        &project,
        "document.created",
        json!({ "project": project, "document": name, "by": actor_name }),
        None,
    )
    .await;
    created(&json!({ "name": name, "created_at": now, "created_by": actor_name }))
}

async fn delete(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let name = cx.params.document()?.clone();
    let db = cx.db()?;
    if d1::document_state(&db, project.as_str(), name.as_str()).await? != DocumentState::Live {
        return Err(ApiError::Missing("document", name.to_string()));
    }
    // Wipe the room first: if that fails the document stays listed and can be deleted again.
    let room = RoomClient {
        env: cx.env,
        project: &project,
        room: &name,
        author: cx.actor_name(),
    };
    room.send(RoomCall::Delete, &[]).await?;
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE documents SET deleted_at = ? WHERE project_id = ? AND name = ?",
                &[num(now), text(project.as_str()), text(name.as_str())],
            )?,
            // Its references to assets go with it (its room recorded them; docs/asset-references.md).
            d1::stmt(
                &db,
                "DELETE FROM asset_usage WHERE project_id = ? AND document = ?",
                &[text(project.as_str()), text(name.as_str())],
            )?,
            d1::audit(
                &db,
                Some(project.as_str()),
                &cx.actor_name(),
                "document.deleted",
                Some(name.as_str()),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    webhook_queue::emit(
        cx.env,
        project.as_str(),
        "document.deleted",
        json!({ "project": project, "document": name, "by": cx.actor_name() }),
        None,
    )
    .await;
    http::json(&json!({ "deleted": name }))
}

/// The document API: read as JSON or as a Yjs update; write an update or JSON edits. Every
/// input is parsed and bounded here, before the room is called.
async fn document_api(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let name = cx.params.document()?.clone();
    let write = matches!(id, RouteId::PostDocumentUpdate | RouteId::PostDocumentEdits);
    let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    // The whole input, parsed and bounded, before anything else happens.
    let (call, payload) = match id {
        RouteId::GetDocument => (RoomCall::ReadJson, Vec::new()),
        RouteId::GetDocumentUpdate => (crate::queries::read_update(query.as_deref())?, Vec::new()),
        RouteId::PostDocumentUpdate => {
            let limit = env::limits(cx.env).max_frame_bytes;
            (RoomCall::WriteUpdate, cx.bytes(limit).await?)
        }
        _ => {
            let edits: Edits = cx.body().await?;
            // A malformed request never wakes the room (which checks the same again).
            crate::document::check_edits(&edits)?;
            (RoomCall::WriteEdits { edits }, Vec::new())
        }
    };
    let db = cx.db()?;
    let state = d1::document_state(&db, project.as_str(), name.as_str()).await?;
    match state {
        DocumentState::Deleted => return Err(ApiError::DocumentDeleted),
        DocumentState::Missing if !write => {
            return Err(ApiError::Missing("document", name.to_string()))
        }
        _ => {}
    }
    let room = RoomClient {
        env: cx.env,
        project: &project,
        room: &name,
        author: cx.actor_name(),
    };
    match call {
        RoomCall::ReadJson => {
            let content: serde_json::Value = room.json(call, &[]).await?;
            return http::json(&json!({ "name": name, "content": content }));
        }
        RoomCall::ReadUpdate { .. } => {
            let bytes = room.bytes(call, &[]).await?;
            let resp = Response::from_bytes(bytes).map_err(http::internal("bytes response"))?;
            let headers = worker::Headers::new();
            headers
                .set("content-type", "application/octet-stream")
                .map_err(http::internal("headers"))?;
            return Ok(resp.with_headers(headers));
        }
        _ => {}
    }
    let via = if id == RouteId::PostDocumentEdits {
        "edits"
    } else {
        "update"
    };
    let applied: serde_json::Value = room.json(call, &payload).await?;
    if state == DocumentState::Missing {
        register(cx.env, &project, &name, &cx.actor_name(), via, None).await?;
    }
    if applied["changed"] == json!(true) {
        d1::batch(
            &db,
            vec![d1::audit(
                &db,
                Some(project.as_str()),
                &cx.actor_name(),
                "document.updated",
                Some(name.as_str()),
                json!({ "bytes": applied["bytes"], "via": via }),
                now_ms(),
            )?],
        )
        .await?;
    }
    http::json(&applied)
}
