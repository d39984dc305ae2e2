//! API keys: credentials for servers, each with a role ceiling.

use super::{created, list_page, Call, Result};
use crate::api::{validate_name, ApiError, CreateKey};
use crate::auth::{self, ApiKeySecret, Role};
use crate::edge::d1::{self, num, text, KeyRow};
use crate::edge::platform::{now_ms, random};
use crate::edge::{http, revocation, webhook_queue};
use crate::room_call::Revocation;
use crate::routes::RouteId;
use serde_json::json;
use worker::Response;

/// Serves the API key routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::ListKeys => {
            let project = cx.project()?.to_string();
            list_page(
                cx,
                "SELECT id, project_id, name, role, created_at, last_used_at, revoked_at
                 FROM api_keys WHERE project_id = ?1
                   AND (?2 IS NULL OR (created_at, id) > (?2, ?3))
                 ORDER BY created_at, id LIMIT ?4",
                &project,
                &["created_at", "id"],
                "keys",
            )
            .await
        }
        RouteId::CreateKey => create(cx).await,
        RouteId::RevokeKey => revoke(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

/// The statement that stores a new key (its hash, never the secret).
pub(super) fn insert_key(
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

async fn create(cx: &mut Call<'_>) -> Result<Response> {
    let input: CreateKey = cx.body().await?;
    validate_name("name", &input.name)?;
    if input.role > cx.actor.ceiling() {
        return Err(auth::MintError::AboveCeiling {
            requested: input.role,
            limit: cx.actor.ceiling(),
        }
        .into());
    }
    let project = cx.project()?.to_string();
    let db = cx.db()?;
    let now = now_ms();
    let key = ApiKeySecret::generate(&random::<40>()?);
    d1::batch(
        &db,
        vec![
            insert_key(&db, &project, &key, &input.name, input.role, now)?,
            d1::audit(
                &db,
                Some(&project),
                &cx.actor_name(),
                "key.created",
                Some(&key.id),
                json!({ "role": input.role, "name": input.name }),
                now,
            )?,
        ],
    )
    .await?;
    webhook_queue::emit(
        cx.env,
        &project,
        "key.created",
        json!({ "project": project, "key": key.id, "role": input.role, "by": cx.actor_name() }),
        None,
    )
    .await;
    created(
        &json!({ "id": key.id, "name": input.name, "role": input.role, "secret": key.to_token(), "created_at": now }),
    )
}

async fn revoke(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    let id = cx.params.key()?.to_string();
    let db = cx.db()?;
    let key: Option<KeyRow> = d1::row(
        &db,
        "SELECT id, project_id, name, role, secret_hash, created_at, last_used_at, revoked_at
         FROM api_keys WHERE id = ? AND project_id = ?",
        &[text(&id), text(&project)],
    )
    .await?;
    let key = key.ok_or_else(|| ApiError::Missing("key", id.clone()))?;
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
                &[num(now), text(&id)],
            )?,
            d1::audit(
                &db,
                Some(&project),
                &cx.actor_name(),
                "key.revoked",
                Some(&id),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    let reached =
        revocation::fan_out(cx.env, cx.project()?, Revocation::Key { id: id.clone() }).await;
    webhook_queue::emit(
        cx.env,
        &project,
        "key.revoked",
        json!({ "project": project, "key": id, "by": cx.actor_name() }),
        None,
    )
    .await;
    http::json(&json!({ "revoked": id, "rooms": reached }))
}
