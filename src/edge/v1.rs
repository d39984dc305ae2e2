//! The `/v1` HTTP API: projects, members, API keys, signing keys, documents, tokens, audit log.
//! Routes are listed in `docs/api.md`.

use super::access::{self, hex, now_ms, random, Actor};
use super::d1::{self, num, text, DocumentState, KeyRow, Project, SigningKeyRow};
use super::http;
use crate::api::{
    parse_body, validate_kid, validate_name, validate_room_name, ApiError, CreateDocument,
    CreateKey, CreateProject, CreateSigningKey, CreateWebhook, DevToken, PutMember, UpdateProject,
    UpdateWebhook, MAX_RETENTION_DAYS,
};
use crate::auth::{self, granted_role, ApiKeySecret, ProjectKey, Role, TokenRequest};
use crate::routes::{Matched, RouteId};
use crate::webhooks;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// Project id of the development flow's project.
const DEV_PROJECT: &str = "prj_dev";

fn created<T: Serialize>(body: &T) -> Result<Response> {
    Ok(http::json(body)?.with_status(201))
}

async fn body<T: for<'de> Deserialize<'de>>(req: &mut Request) -> Result<T> {
    let bytes = req
        .bytes()
        .await
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    parse_body(&bytes)
}

/// Serves a `/v1` route found by [`crate::routes::match_route`]. After a request that may
/// have changed who can connect ([`RouteId::may_change_access`]), this isolate forgets what it
/// cached about that (after, so that a connection checked meanwhile does not keep the old
/// answer).
pub async fn dispatch(req: Request, env: &Env, matched: Matched) -> Result<Response> {
    let changes_access = matched.id.may_change_access();
    let result = route(req, env, matched).await;
    if changes_access {
        access::forget_cached_access();
    }
    result
}

async fn route(mut req: Request, env: &Env, matched: Matched) -> Result<Response> {
    let Matched { id, params } = matched;
    match id {
        RouteId::DevToken if access::dev_mode(env) => dev_token(&mut req, env).await,
        RouteId::DevToken => Err(ApiError::NotFound),
        RouteId::CreateProject => {
            let actor = access::authenticate(&req, env).await?;
            create_project(&mut req, env, &actor).await
        }
        id if super::history_api::handles(id) => {
            let (project, name) = (&params[0], &params[1]);
            // Routes for API keys only (branching, merging) do not take a room token.
            let actor = if super::history_api::keys_only(id) {
                access::authenticate(&req, env).await?
            } else {
                access::authenticate_document(&req, env, project, name).await?
            };
            d1::live_project(&access::db(env)?, project).await?;
            let version = params.get(2).map(String::as_str);
            super::history_api::dispatch(&mut req, env, &actor, id, project, name, version).await
        }
        RouteId::GetDocument
        | RouteId::GetDocumentUpdate
        | RouteId::PostDocumentUpdate
        | RouteId::PostDocumentEdits => {
            let (project, name) = (&params[0], &params[1]);
            let actor = access::authenticate_document(&req, env, project, name).await?;
            d1::live_project(&access::db(env)?, project).await?;
            document_route(&mut req, env, &actor, id, project, name).await
        }
        _ => {
            let project = &params[0];
            let actor = access::authenticate(&req, env).await?;
            d1::live_project(&access::db(env)?, project).await?;
            project_route(
                &mut req,
                env,
                &actor,
                id,
                project,
                params.get(1).map(String::as_str),
            )
            .await
        }
    }
}

async fn project_route(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    id: RouteId,
    project: &str,
    param: Option<&str>,
) -> Result<Response> {
    let param = || param.ok_or(ApiError::NotFound);
    match id {
        RouteId::GetProject => {
            actor.require(project, Role::Viewer)?;
            http::json(&d1::live_project(&access::db(env)?, project).await?)
        }
        RouteId::UpdateProject => {
            actor.require(project, Role::Owner)?;
            update_project(req, env, actor, project).await
        }
        RouteId::DeleteProject => {
            actor.require(project, Role::Owner)?;
            delete_project(env, actor, project).await
        }
        RouteId::ListMembers => {
            actor.require(project, Role::Viewer)?;
            list(env, "SELECT sub, role, created_at, updated_at FROM members WHERE project_id = ? ORDER BY sub", project, "members").await
        }
        RouteId::PutMember => {
            actor.require(project, Role::Owner)?;
            put_member(req, env, actor, project, param()?).await
        }
        RouteId::RemoveMember => {
            actor.require(project, Role::Owner)?;
            remove_member(env, actor, project, param()?).await
        }
        RouteId::ListKeys => {
            actor.require(project, Role::Owner)?;
            list(env, "SELECT id, project_id, name, role, created_at, last_used_at, revoked_at FROM api_keys WHERE project_id = ? ORDER BY created_at", project, "keys").await
        }
        RouteId::CreateKey => {
            actor.require(project, Role::Owner)?;
            let input: CreateKey = body(req).await?;
            create_key(env, actor, project, input).await
        }
        RouteId::RevokeKey => {
            actor.require(project, Role::Owner)?;
            revoke_key(env, actor, project, param()?).await
        }
        RouteId::ListSigningKeys => {
            actor.require(project, Role::Owner)?;
            list(env, "SELECT kid, project_id, alg, public_key, created_at, revoked_at FROM signing_keys WHERE project_id = ? ORDER BY created_at", project, "signing_keys").await
        }
        RouteId::AddSigningKey => {
            actor.require(project, Role::Owner)?;
            add_signing_key(req, env, actor, project).await
        }
        RouteId::RevokeSigningKey => {
            actor.require(project, Role::Owner)?;
            revoke_signing_key(env, actor, project, param()?).await
        }
        RouteId::ListDocuments => {
            actor.require(project, Role::Viewer)?;
            list(env, "SELECT name, created_at, created_by FROM documents WHERE project_id = ? AND deleted_at IS NULL ORDER BY name", project, "documents").await
        }
        RouteId::CreateDocument => {
            actor.require(project, Role::Editor)?;
            create_document(req, env, actor, project).await
        }
        RouteId::DeleteDocument => {
            actor.require(project, Role::Owner)?;
            delete_document(env, actor, project, param()?).await
        }
        RouteId::MintToken => {
            actor.require(project, Role::Viewer)?;
            let input: TokenRequest = body(req).await?;
            mint_token(env, actor, project, input).await
        }
        RouteId::ListWebhooks => {
            actor.require(project, Role::Owner)?;
            let rows: Vec<WebhookRow> = d1::rows(&access::db(env)?, &format!("{WEBHOOK_SELECT} WHERE project_id = ? AND deleted_at IS NULL ORDER BY created_at"), &[text(project)]).await?;
            http::json(
                &json!({ "webhooks": rows.iter().map(WebhookRow::view).collect::<Vec<_>>() }),
            )
        }
        RouteId::CreateWebhook => {
            actor.require(project, Role::Owner)?;
            create_webhook(req, env, actor, project).await
        }
        RouteId::GetWebhook => {
            actor.require(project, Role::Owner)?;
            http::json(&find_webhook(env, project, param()?).await?.view())
        }
        RouteId::UpdateWebhook => {
            actor.require(project, Role::Owner)?;
            update_webhook(req, env, actor, project, param()?).await
        }
        RouteId::DeleteWebhook => {
            actor.require(project, Role::Owner)?;
            let hook = find_webhook(env, project, param()?).await?;
            let db = access::db(env)?;
            let now = now_ms();
            d1::batch(
                &db,
                vec![
                    d1::stmt(
                        &db,
                        "UPDATE webhooks SET deleted_at = ?, enabled = 0 WHERE id = ?",
                        &[num(now), text(&hook.id)],
                    )?,
                    d1::audit(
                        &db,
                        Some(project),
                        &d1::actor_name(actor),
                        "webhook.deleted",
                        Some(&hook.id),
                        json!({}),
                        now,
                    )?,
                ],
            )
            .await?;
            http::json(&json!({ "deleted": hook.id }))
        }
        RouteId::TestWebhook => {
            actor.require(project, Role::Owner)?;
            let hook = find_webhook(env, project, param()?).await?;
            super::webhook_queue::emit(
                env,
                project,
                "webhook.test",
                json!({ "project": project, "webhook": hook.id }),
                Some(&hook.id),
            )
            .await;
            Ok(http::json(&json!({ "queued": 1 }))?.with_status(202))
        }
        RouteId::ListDeliveries => {
            actor.require(project, Role::Owner)?;
            let hook = find_webhook(env, project, param()?).await?;
            let rows: Vec<serde_json::Value> = d1::rows(&access::db(env)?, "SELECT message_id, event_type, attempt, status, error, duration_ms, at, outcome FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 100", &[text(&hook.id)]).await?;
            http::json(&json!({ "deliveries": rows }))
        }
        RouteId::Audit => {
            actor.require(project, Role::Owner)?;
            list(env, "SELECT id, at, actor, action, target, detail FROM audit_log WHERE project_id = ? ORDER BY id DESC LIMIT 500", project, "events").await
        }
        _ => Err(ApiError::NotFound),
    }
}

/// The document API: read as JSON or as a Yjs update; write an update or JSON edits.
async fn document_route(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    id: RouteId,
    project: &str,
    name: &str,
) -> Result<Response> {
    use jwt_simple::prelude::{Base64, Base64UrlSafeNoPadding};
    use jwt_simple::reexports::ct_codecs::Decoder;
    validate_room_name(name)?;
    let write = matches!(id, RouteId::PostDocumentUpdate | RouteId::PostDocumentEdits);
    actor.require(project, if write { Role::Editor } else { Role::Viewer })?;
    let db = access::db(env)?;
    let doc = d1::document_state(&db, project, name).await?;
    match doc {
        DocumentState::Deleted => return Err(ApiError::DocumentDeleted),
        DocumentState::Missing if !write => return Err(ApiError::Missing("document", name.into())),
        _ => {}
    }
    let room = super::history_api::RoomCall {
        env,
        project,
        room: name,
        author: actor.name(),
    };
    let call = |path: String, body: Option<Vec<u8>>| {
        let method = if body.is_some() {
            Method::Post
        } else {
            Method::Get
        };
        let room = &room;
        async move { room.send(method, &path, body).await }
    };
    let resp = match id {
        RouteId::GetDocument => {
            let mut resp = call("/__doc/json".into(), None).await?;
            let content: serde_json::Value =
                resp.json().await.map_err(http::internal("document json"))?;
            return http::json(&json!({ "name": name, "content": content }));
        }
        RouteId::GetDocumentUpdate => {
            let param = |k: &str| http::query(req, k);
            let mut path = "/__doc/update?".to_string();
            if let Some(sv) = param("state_vector") {
                let bytes = Base64UrlSafeNoPadding::decode_to_vec(sv.trim_end_matches('='), None)
                    .or_else(|_| Base64::decode_to_vec(&sv, None))
                    .map_err(|_| ApiError::InvalidBody("state_vector is not base64".into()))?;
                path.push_str(&format!("sv={}&", hex(&bytes)));
            }
            match param("format").as_deref() {
                None | Some("v1") => {}
                Some("v2") => path.push_str("v2=1"),
                Some(other) => {
                    return Err(ApiError::InvalidBody(format!(
                        "format must be v1 or v2, not {other:?}"
                    )))
                }
            }
            let resp = call(path, None).await?;
            if resp.status_code() != 200 {
                return Ok(resp);
            }
            let headers = worker::Headers::new();
            headers
                .set("content-type", "application/octet-stream")
                .map_err(http::internal("headers"))?;
            return Ok(resp.with_headers(headers));
        }
        RouteId::PostDocumentUpdate => {
            let bytes = req
                .bytes()
                .await
                .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            call("/__doc/update".into(), Some(bytes)).await?
        }
        RouteId::PostDocumentEdits => {
            let bytes = req
                .bytes()
                .await
                .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
            call("/__doc/edits".into(), Some(bytes)).await?
        }
        _ => return Err(ApiError::NotFound),
    };
    let mut resp = resp;
    if resp.status_code() != 200 {
        return Ok(resp);
    }
    let applied: serde_json::Value = resp.json().await.map_err(http::internal("applied json"))?;
    let now = now_ms();
    let mut stmts = Vec::new();
    if doc == DocumentState::Missing {
        stmts.push(d1::stmt(
            &db,
            "INSERT INTO documents (project_id, name, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            &[text(project), text(name), num(now), text(&actor.name())],
        )?);
    }
    if applied["changed"] == json!(true) {
        stmts.push(d1::audit(
            &db,
            Some(project),
            &actor.name(),
            "document.updated",
            Some(name),
            json!({ "bytes": applied["bytes"], "via": if id == RouteId::PostDocumentEdits { "edits" } else { "update" } }),
            now,
        )?);
    }
    if !stmts.is_empty() {
        d1::batch(&db, stmts).await?;
    }
    http::json(&applied)
}

async fn list(env: &Env, sql: &str, project: &str, field: &str) -> Result<Response> {
    let rows: Vec<serde_json::Value> = d1::rows(&access::db(env)?, sql, &[text(project)]).await?;
    http::json(&json!({ field: rows }))
}

async fn create_project(req: &mut Request, env: &Env, actor: &Actor) -> Result<Response> {
    if !matches!(actor, Actor::Admin) {
        return Err(auth::AuthError::Forbidden {
            required: Role::Owner,
            held: actor.ceiling(),
        }
        .into());
    }
    let input: CreateProject = body(req).await?;
    validate_name("name", &input.name)?;
    let db = access::db(env)?;
    let now = now_ms();
    let project = Project {
        id: format!("prj_{}", hex(&random::<8>()?)),
        name: input.name,
        created_at: now,
        deleted_at: None,
        history_retention_days: None,
    };
    let key = ApiKeySecret::generate(&random::<40>()?);
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)",
                &[text(&project.id), text(&project.name), num(now)],
            )?,
            insert_key(
                &db,
                &project.id,
                &key,
                "initial owner key",
                Role::Owner,
                now,
            )?,
            d1::audit(
                &db,
                Some(&project.id),
                "admin",
                "project.created",
                Some(&project.id),
                json!({ "name": project.name }),
                now,
            )?,
            d1::audit(
                &db,
                Some(&project.id),
                "admin",
                "key.created",
                Some(&key.id),
                json!({ "role": "owner" }),
                now,
            )?,
        ],
    )
    .await?;
    created(&json!({
        "project": project,
        "key": { "id": key.id, "name": "initial owner key", "role": Role::Owner, "secret": key.to_token() },
    }))
}

fn insert_key(
    db: &worker::D1Database,
    project: &str,
    key: &ApiKeySecret,
    name: &str,
    role: Role,
    now: u64,
) -> Result<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "INSERT INTO api_keys (id, project_id, name, role, secret_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            text(&key.id),
            text(project),
            text(name),
            text(role.as_str()),
            text(&key.hash()),
            num(now),
        ],
    )
}

async fn update_project(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
) -> Result<Response> {
    let input: UpdateProject = body(req).await?;
    let db = access::db(env)?;
    let mut stmts = Vec::new();
    if let Some(name) = &input.name {
        validate_name("name", name)?;
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET name = ? WHERE id = ?",
            &[text(name), text(project)],
        )?);
    }
    if let Some(days) = input.history_retention_days {
        if days.is_some_and(|d| d > MAX_RETENTION_DAYS) {
            return Err(ApiError::InvalidBody(format!(
                "history_retention_days must be at most {MAX_RETENTION_DAYS} (0 keeps everything)"
            )));
        }
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET history_retention_days = ? WHERE id = ?",
            &[
                days.map_or(worker::wasm_bindgen::JsValue::NULL, num),
                text(project),
            ],
        )?);
    }
    if !stmts.is_empty() {
        stmts.push(d1::audit(
            &db,
            Some(project),
            &d1::actor_name(actor),
            "project.updated",
            Some(project),
            json!({ "name": input.name, "history_retention_days": input.history_retention_days }),
            now_ms(),
        )?);
        d1::batch(&db, stmts).await?;
    }
    http::json(&d1::live_project(&db, project).await?)
}

async fn delete_project(env: &Env, actor: &Actor, project: &str) -> Result<Response> {
    let db = access::db(env)?;
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE projects SET deleted_at = ? WHERE id = ?",
                &[num(now), text(project)],
            )?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "project.deleted",
                Some(project),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    http::json(&json!({ "deleted": project }))
}

async fn put_member(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
    sub: &str,
) -> Result<Response> {
    auth::validate_sub(sub).map_err(ApiError::InvalidBody)?;
    let input: PutMember = body(req).await?;
    let db = access::db(env)?;
    let now = now_ms();
    let before: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ?",
        &[text(project), text(sub)],
    )
    .await?;
    let action = if before.is_some() {
        "member.role_changed"
    } else {
        "member.added"
    };
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO members (project_id, sub, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (project_id, sub) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at",
                &[text(project), text(sub), text(input.role.as_str()), num(now), num(now)],
            )?,
            d1::audit(&db, Some(project), &d1::actor_name(actor), action, Some(sub), json!({ "role": input.role, "before": before }), now)?,
        ],
    )
    .await?;
    let body = json!({ "sub": sub, "role": input.role });
    super::webhook_queue::emit(
        env,
        project,
        action,
        json!({ "project": project, "sub": sub, "role": input.role, "by": actor.name() }),
        None,
    )
    .await;
    if before.is_some() {
        http::json(&body)
    } else {
        created(&body)
    }
}

async fn remove_member(env: &Env, actor: &Actor, project: &str, sub: &str) -> Result<Response> {
    let db = access::db(env)?;
    let exists: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ?",
        &[text(project), text(sub)],
    )
    .await?;
    if exists.is_none() {
        return Err(ApiError::Missing("member", sub.into()));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "DELETE FROM members WHERE project_id = ? AND sub = ?",
                &[text(project), text(sub)],
            )?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "member.removed",
                Some(sub),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    super::webhook_queue::emit(
        env,
        project,
        "member.removed",
        json!({ "project": project, "sub": sub, "by": actor.name() }),
        None,
    )
    .await;
    http::json(&json!({ "removed": sub }))
}

async fn create_key(env: &Env, actor: &Actor, project: &str, input: CreateKey) -> Result<Response> {
    validate_name("name", &input.name)?;
    if input.role > actor.ceiling() {
        return Err(auth::MintError::AboveCeiling {
            requested: input.role,
            limit: actor.ceiling(),
        }
        .into());
    }
    let db = access::db(env)?;
    let now = now_ms();
    let key = ApiKeySecret::generate(&random::<40>()?);
    d1::batch(
        &db,
        vec![
            insert_key(&db, project, &key, &input.name, input.role, now)?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "key.created",
                Some(&key.id),
                json!({ "role": input.role, "name": input.name }),
                now,
            )?,
        ],
    )
    .await?;
    super::webhook_queue::emit(
        env,
        project,
        "key.created",
        json!({ "project": project, "key": key.id, "role": input.role, "by": actor.name() }),
        None,
    )
    .await;
    created(
        &json!({ "id": key.id, "name": input.name, "role": input.role, "secret": key.to_token(), "created_at": now }),
    )
}

async fn revoke_key(env: &Env, actor: &Actor, project: &str, id: &str) -> Result<Response> {
    let db = access::db(env)?;
    let key: Option<KeyRow> = d1::row(
        &db,
        "SELECT id, project_id, name, role, secret_hash, created_at, last_used_at, revoked_at
         FROM api_keys WHERE id = ? AND project_id = ?",
        &[text(id), text(project)],
    )
    .await?;
    let key = key.ok_or_else(|| ApiError::Missing("key", id.into()))?;
    if key.revoked_at.is_some() {
        return Err(ApiError::Conflict(format!("key {id} is already revoked")));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ?",
                &[num(now), text(id)],
            )?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "key.revoked",
                Some(id),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    super::webhook_queue::emit(
        env,
        project,
        "key.revoked",
        json!({ "project": project, "key": id, "by": actor.name() }),
        None,
    )
    .await;
    http::json(&json!({ "revoked": id }))
}

async fn add_signing_key(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
) -> Result<Response> {
    let input: CreateSigningKey = body(req).await?;
    ProjectKey::from_pem(&input.alg, &input.public_key).map_err(ApiError::InvalidBody)?;
    let kid = match input.kid {
        Some(kid) => kid,
        None => format!("sk_{}", hex(&random::<8>()?)),
    };
    validate_kid(&kid)?;
    let db = access::db(env)?;
    let taken: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT kid FROM signing_keys WHERE kid = ?",
        &[text(&kid)],
    )
    .await?;
    if taken.is_some() {
        return Err(ApiError::Conflict(format!(
            "signing key id {kid:?} is taken"
        )));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO signing_keys (kid, project_id, alg, public_key, created_at) VALUES (?, ?, ?, ?, ?)",
                &[text(&kid), text(project), text(&input.alg), text(&input.public_key), num(now)],
            )?,
            d1::audit(&db, Some(project), &d1::actor_name(actor), "signing_key.added", Some(&kid), json!({ "alg": input.alg }), now)?,
        ],
    )
    .await?;
    created(&json!({ "kid": kid, "alg": input.alg, "created_at": now }))
}

async fn revoke_signing_key(
    env: &Env,
    actor: &Actor,
    project: &str,
    kid: &str,
) -> Result<Response> {
    let db = access::db(env)?;
    let row: Option<SigningKeyRow> = d1::row(
        &db,
        "SELECT kid, project_id, alg, public_key, created_at, revoked_at FROM signing_keys WHERE kid = ? AND project_id = ?",
        &[text(kid), text(project)],
    )
    .await?;
    let row = row.ok_or_else(|| ApiError::Missing("signing key", kid.into()))?;
    if row.revoked_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "signing key {kid} is already revoked"
        )));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE signing_keys SET revoked_at = ? WHERE kid = ?",
                &[num(now), text(kid)],
            )?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "signing_key.revoked",
                Some(kid),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    http::json(&json!({ "revoked": kid }))
}

async fn create_document(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
) -> Result<Response> {
    let input: CreateDocument = body(req).await?;
    validate_room_name(&input.name)?;
    let db = access::db(env)?;
    if d1::document_state(&db, project, &input.name).await? == DocumentState::Live {
        return Err(ApiError::Conflict(format!(
            "document {:?} exists",
            input.name
        )));
    }
    let now = now_ms();
    let actor_name = d1::actor_name(actor);
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO documents (project_id, name, created_at, created_by) VALUES (?, ?, ?, ?)
                 ON CONFLICT (project_id, name) DO UPDATE SET deleted_at = NULL, created_at = excluded.created_at, created_by = excluded.created_by",
                &[text(project), text(&input.name), num(now), text(&actor_name)],
            )?,
            d1::audit(&db, Some(project), &actor_name, "document.created", Some(&input.name), json!({}), now)?,
        ],
    )
    .await?;
    super::webhook_queue::emit(
        env,
        project,
        "document.created",
        json!({ "project": project, "document": input.name, "by": actor_name }),
        None,
    )
    .await;
    created(&json!({ "name": input.name, "created_at": now, "created_by": actor_name }))
}

async fn delete_document(env: &Env, actor: &Actor, project: &str, name: &str) -> Result<Response> {
    validate_room_name(name)?;
    let db = access::db(env)?;
    if d1::document_state(&db, project, name).await? != DocumentState::Live {
        return Err(ApiError::Missing("document", name.into()));
    }
    // Wipe the room first: if that fails the document stays listed and can be deleted again.
    super::room_stub(env, project, name)?
        .fetch_with_str("https://room.internal/__delete")
        .await
        .map_err(http::internal("room delete"))?;
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE documents SET deleted_at = ? WHERE project_id = ? AND name = ?",
                &[num(now), text(project), text(name)],
            )?,
            d1::audit(
                &db,
                Some(project),
                &d1::actor_name(actor),
                "document.deleted",
                Some(name),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    super::webhook_queue::emit(
        env,
        project,
        "document.deleted",
        json!({ "project": project, "document": name, "by": actor.name() }),
        None,
    )
    .await;
    http::json(&json!({ "deleted": name }))
}

async fn mint_token(
    env: &Env,
    actor: &Actor,
    project: &str,
    input: TokenRequest,
) -> Result<Response> {
    auth::validate_sub(&input.sub).map_err(ApiError::InvalidBody)?;
    let db = access::db(env)?;
    #[derive(Deserialize)]
    struct Member {
        role: Role,
    }
    let member: Option<Member> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ?",
        &[text(project), text(&input.sub)],
    )
    .await?;
    let role = granted_role(input.role, actor.ceiling(), member.map(|m| m.role))?;
    let now = now_ms();
    let (token, exp) = auth::mint(
        &access::token_key(env)?,
        project,
        actor.key_id(),
        role,
        &input,
        now / 1000,
    )?;
    d1::batch(
        &db,
        vec![d1::audit(
            &db,
            Some(project),
            &d1::actor_name(actor),
            "token.issued",
            Some(&input.sub),
            json!({ "room": input.room, "role": role, "expires_at": exp }),
            now,
        )?],
    )
    .await?;
    created(
        &json!({ "token": token, "expires_at": exp, "room": input.room, "role": role, "sub": input.sub }),
    )
}

/// Development flow: a token for any room of the `prj_dev` project, no credential needed.
/// Only routed when the worker runs with `DEV_MODE=true`.
async fn dev_token(req: &mut Request, env: &Env) -> Result<Response> {
    let input: DevToken = body(req).await?;
    let db = access::db(env)?;
    let now = now_ms();
    d1::stmt(
        &db,
        "INSERT INTO projects (id, name, created_at) VALUES (?, 'Local development', ?) ON CONFLICT DO NOTHING",
        &[text(DEV_PROJECT), num(now)],
    )?
    .run()
    .await
    .map_err(http::internal("dev project"))?;
    let sub = match input.sub {
        Some(sub) => sub,
        None => format!("dev-{}", hex(&random::<6>()?)),
    };
    let request = TokenRequest {
        sub: sub.clone(),
        room: input.room,
        role: Some(input.role.unwrap_or(Role::Editor)),
        name: input.name,
        color: input.color,
        ttl_seconds: None,
    };
    let role = request.role.unwrap_or(Role::Editor);
    let (token, exp) = auth::mint(
        &access::token_key(env)?,
        DEV_PROJECT,
        None,
        role,
        &request,
        now / 1000,
    )?;
    created(
        &json!({ "token": token, "expires_at": exp, "room": request.room, "role": role, "sub": sub, "project": DEV_PROJECT }),
    )
}

const WEBHOOK_SELECT: &str = "SELECT id, url, events, secret, description, enabled, consecutive_failures, disabled_reason, created_at, updated_at FROM webhooks";

/// A webhook subscription row.
#[derive(Debug, Deserialize)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    secret: String,
    description: String,
    enabled: u64,
    consecutive_failures: u64,
    disabled_reason: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl WebhookRow {
    fn view(&self) -> serde_json::Value {
        let events: Vec<String> = serde_json::from_str(&self.events).unwrap_or_default();
        json!({
            "id": self.id, "url": self.url, "events": events, "secret": self.secret,
            "description": self.description, "enabled": self.enabled == 1,
            "consecutive_failures": self.consecutive_failures, "disabled_reason": self.disabled_reason,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}

async fn find_webhook(env: &Env, project: &str, id: &str) -> Result<WebhookRow> {
    let row: Option<WebhookRow> = d1::row(
        &access::db(env)?,
        &format!("{WEBHOOK_SELECT} WHERE id = ? AND project_id = ? AND deleted_at IS NULL"),
        &[text(id), text(project)],
    )
    .await?;
    row.ok_or_else(|| ApiError::Missing("webhook", id.into()))
}

fn check_webhook(
    url: Option<&str>,
    events: Option<&[String]>,
    description: Option<&str>,
) -> Result<()> {
    if let Some(url) = url {
        webhooks::validate_url(url).map_err(ApiError::InvalidBody)?;
    }
    if let Some(events) = events {
        webhooks::validate_filters(events).map_err(ApiError::InvalidBody)?;
    }
    if description.is_some_and(|d| d.len() > 256) {
        return Err(ApiError::InvalidBody(
            "description is longer than 256 bytes".into(),
        ));
    }
    Ok(())
}

async fn create_webhook(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
) -> Result<Response> {
    let input: CreateWebhook = body(req).await?;
    check_webhook(
        Some(&input.url),
        Some(&input.events),
        input.description.as_deref(),
    )?;
    let db = access::db(env)?;
    let now = now_ms();
    let id = format!("wh_{}", hex(&random::<8>()?));
    let secret = webhooks::new_secret(&random::<24>()?);
    let events = serde_json::to_string(&input.events).map_err(|_| ApiError::Internal)?;
    d1::batch(&db, vec![
        d1::stmt(&db, "INSERT INTO webhooks (id, project_id, url, events, secret, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[text(&id), text(project), text(&input.url), text(&events), text(&secret), text(input.description.as_deref().unwrap_or("")), num(now), num(now)])?,
        d1::audit(&db, Some(project), &d1::actor_name(actor), "webhook.created", Some(&id), json!({ "url": input.url, "events": input.events }), now)?,
    ]).await?;
    created(&find_webhook(env, project, &id).await?.view())
}

async fn update_webhook(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    project: &str,
    id: &str,
) -> Result<Response> {
    let input: UpdateWebhook = body(req).await?;
    check_webhook(
        input.url.as_deref(),
        input.events.as_deref(),
        input.description.as_deref(),
    )?;
    let hook = find_webhook(env, project, id).await?;
    let db = access::db(env)?;
    let now = now_ms();
    let events = match &input.events {
        Some(e) => serde_json::to_string(e).map_err(|_| ApiError::Internal)?,
        None => hook.events.clone(),
    };
    let enabled = input.enabled.map_or(hook.enabled, u64::from);
    // Re-enabling starts the failure count afresh.
    let reset = input.enabled == Some(true);
    d1::batch(&db, vec![
        d1::stmt(&db, "UPDATE webhooks SET url = ?, events = ?, description = ?, enabled = ?, updated_at = ?,
                         consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures END,
                         disabled_reason = CASE WHEN ? THEN NULL ELSE disabled_reason END WHERE id = ?",
            &[text(input.url.as_deref().unwrap_or(&hook.url)), text(&events), text(input.description.as_deref().unwrap_or(&hook.description)),
              num(enabled), num(now), num(u64::from(reset)), num(u64::from(reset)), text(id)])?,
        d1::audit(&db, Some(project), &d1::actor_name(actor), "webhook.updated", Some(id), json!({ "enabled": enabled == 1 }), now)?,
    ]).await?;
    http::json(&find_webhook(env, project, id).await?.view())
}
