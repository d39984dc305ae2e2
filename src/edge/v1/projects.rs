//! Projects: create (admin), read, change settings, delete.

use super::{created, Call, Result};
use crate::api::{
    validate_name, ApiError, CreateProject, UpdateProject, MAX_NOTIFICATION_DELAY_SECONDS,
    MAX_RETENTION_DAYS,
};
use crate::auth::{ApiKeySecret, Role};
use crate::codec::hex;
use crate::edge::d1::{self, num, text, Project};
use crate::edge::platform::{now_ms, random};
use crate::edge::{http, revocation};
use crate::room_call::Revocation;
use crate::routes::RouteId;
use serde_json::json;
use worker::Response;

/// Serves the project routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::CreateProject => create(cx).await,
        RouteId::GetProject => {
            http::json(&d1::live_project(&cx.db()?, cx.project()?.as_str()).await?)
        }
        RouteId::UpdateProject => update(cx).await,
        RouteId::DeleteProject => delete(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

async fn create(cx: &mut Call<'_>) -> Result<Response> {
    let input: CreateProject = cx.body().await?;
    validate_name("name", &input.name)?;
    let db = cx.db()?;
    let now = now_ms();
    let project = Project {
        id: format!("prj_{}", hex(&random::<8>()?)),
        name: input.name,
        created_at: now,
        deleted_at: None,
        history_retention_days: None,
        require_review_for_merge: false,
        notification_delay_seconds: 300,
        asset_quota_bytes: None,
        asset_max_file_bytes: None,
        asset_trash_days: None,
        call_max_participants: u64::from(crate::signal::MAX_PARTICIPANTS),
        call_viewers_publish: false,
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
            super::keys::insert_key(
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

async fn update(cx: &mut Call<'_>) -> Result<Response> {
    let input: UpdateProject = cx.body().await?;
    let project = cx.project()?.clone();
    let db = cx.db()?;
    let mut stmts = Vec::new();
    if let Some(name) = &input.name {
        validate_name("name", name)?;
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET name = ? WHERE id = ?",
            &[text(name), text(project.as_str())],
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
                text(project.as_str()),
            ],
        )?);
    }
    if let Some(required) = input.require_review_for_merge {
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET require_review = ? WHERE id = ?",
            &[num(u64::from(required)), text(project.as_str())],
        )?);
    }
    if let Some(limit) = input.call_max_participants {
        let (min, max) = (
            crate::signal::MIN_PARTICIPANTS,
            crate::signal::MAX_PARTICIPANTS,
        );
        if !(u64::from(min)..=u64::from(max)).contains(&limit) {
            return Err(ApiError::InvalidBody(format!(
                "call_max_participants must be from {min} to {max}"
            )));
        }
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET call_max_participants = ? WHERE id = ?",
            &[num(limit), text(project.as_str())],
        )?);
    }
    if let Some(allowed) = input.call_viewers_publish {
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET call_viewers_publish = ? WHERE id = ?",
            &[num(u64::from(allowed)), text(project.as_str())],
        )?);
    }
    if let Some(delay) = input.notification_delay_seconds {
        if delay > MAX_NOTIFICATION_DELAY_SECONDS {
            return Err(ApiError::InvalidBody(format!(
                "notification_delay_seconds must be at most {MAX_NOTIFICATION_DELAY_SECONDS}"
            )));
        }
        stmts.push(d1::stmt(
            &db,
            "UPDATE projects SET notification_delay_seconds = ? WHERE id = ?",
            &[num(delay), text(project.as_str())],
        )?);
    }
    let settings = [
        (
            "asset_quota_bytes",
            input.asset_quota_bytes,
            crate::api::MAX_ASSET_BYTES,
            1,
        ),
        (
            "asset_max_file_bytes",
            input.asset_max_file_bytes,
            crate::api::MAX_ASSET_BYTES,
            1,
        ),
        (
            "asset_trash_days",
            input.asset_trash_days,
            crate::api::MAX_TRASH_DAYS,
            0,
        ),
    ];
    for (column, value, max, min) in settings {
        let Some(value) = value else { continue };
        if value.is_some_and(|v| v > max || v < min) {
            return Err(ApiError::InvalidBody(format!(
                "{column} must be from {min} to {max}"
            )));
        }
        stmts.push(d1::stmt(
            &db,
            &format!("UPDATE projects SET {column} = ? WHERE id = ?"),
            &[
                value.map_or(worker::wasm_bindgen::JsValue::NULL, num),
                text(project.as_str()),
            ],
        )?);
    }
    if !stmts.is_empty() {
        stmts.push(d1::audit(
            &db,
            Some(project.as_str()),
            &cx.actor_name(),
            "project.updated",
            Some(project.as_str()),
            json!({
                "name": input.name, "history_retention_days": input.history_retention_days,
                "require_review_for_merge": input.require_review_for_merge,
                "notification_delay_seconds": input.notification_delay_seconds,
                "asset_quota_bytes": input.asset_quota_bytes,
                "asset_max_file_bytes": input.asset_max_file_bytes,
                "asset_trash_days": input.asset_trash_days,
                "call_max_participants": input.call_max_participants,
                "call_viewers_publish": input.call_viewers_publish,
            }),
            now_ms(),
        )?);
        d1::batch(&db, stmts).await?;
    }
    http::json(&d1::live_project(&db, project.as_str()).await?)
}

async fn delete(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let db = cx.db()?;
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE projects SET deleted_at = ? WHERE id = ?",
                &[num(now), text(project.as_str())],
            )?,
            d1::audit(
                &db,
                Some(project.as_str()),
                &cx.actor_name(),
                "project.deleted",
                Some(project.as_str()),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    let reached = revocation::fan_out(cx.env, &project, Revocation::Project).await;
    http::json(&json!({ "deleted": project, "rooms": reached }))
}
