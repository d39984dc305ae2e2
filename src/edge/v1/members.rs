//! Members: who belongs to a project, with which role.

use super::{created, list_page, Call, Result};
use crate::api::{ApiError, PutMember};
use crate::edge::d1::{self, num, text};
use crate::edge::platform::now_ms;
use crate::edge::{http, revocation, webhook_queue};
use crate::room_call::Revocation;
use crate::routes::RouteId;
use serde_json::json;
use worker::Response;

/// Serves the member routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::ListMembers => {
            let project = cx.project()?.to_string();
            list_page(
                cx,
                "SELECT sub, role, created_at, updated_at FROM members
                 WHERE project_id = ?1 AND removed_at IS NULL AND (?2 IS NULL OR sub > ?2)
                 ORDER BY sub LIMIT ?3",
                &project,
                &["sub"],
                "members",
            )
            .await
        }
        RouteId::PutMember => put(cx).await,
        RouteId::RemoveMember => remove(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

async fn put(cx: &mut Call<'_>) -> Result<Response> {
    let input: PutMember = cx.body().await?;
    let project = cx.project()?.to_string();
    let sub = cx.params.sub()?.to_owned();
    let db = cx.db()?;
    let now = now_ms();
    let before: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ? AND removed_at IS NULL",
        &[text(&project), text(&sub)],
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
                 ON CONFLICT (project_id, sub) DO UPDATE SET role = excluded.role,
                   updated_at = excluded.updated_at, removed_at = NULL,
                   created_at = CASE WHEN members.removed_at IS NULL THEN members.created_at ELSE excluded.created_at END",
                &[text(&project), text(&sub), text(input.role.as_str()), num(now), num(now)],
            )?,
            d1::audit(&db, Some(&project), &cx.actor_name(), action, Some(&sub), json!({ "role": input.role, "before": before }), now)?,
            super::activity::entry(&db, &project, None, &super::activity::actor_of(&cx.actor), action, &json!({ "member": sub, "role": input.role }))?,
        ],
    )
    .await?;
    let body = json!({ "sub": sub, "role": input.role });
    if before.is_some() {
        // Open connections of the user keep at most the new role.
        let change = Revocation::Member {
            sub: sub.clone(),
            role: Some(input.role),
        };
        revocation::fan_out(cx.env, cx.project()?, change).await;
    }
    webhook_queue::emit(
        cx.env,
        &project,
        action,
        json!({ "project": project, "sub": sub, "role": input.role, "by": cx.actor_name() }),
        None,
    )
    .await;
    if before.is_some() {
        http::json(&body)
    } else {
        created(&body)
    }
}

async fn remove(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    let sub = cx.params.sub()?.to_owned();
    let db = cx.db()?;
    let exists: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ? AND removed_at IS NULL",
        &[text(&project), text(&sub)],
    )
    .await?;
    if exists.is_none() {
        return Err(ApiError::Missing("member", sub));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            // Kept as a tombstone: tokens minted for them stop admitting them, and no new one
            // is minted until they are added again.
            d1::stmt(
                &db,
                "UPDATE members SET removed_at = ?, updated_at = ? WHERE project_id = ? AND sub = ?",
                &[num(now), num(now), text(&project), text(&sub)],
            )?,
            d1::audit(
                &db,
                Some(&project),
                &cx.actor_name(),
                "member.removed",
                Some(&sub),
                json!({}),
                now,
            )?,
            super::activity::entry(&db, &project, None, &super::activity::actor_of(&cx.actor), "member.removed", &json!({ "member": sub }))?,
        ],
    )
    .await?;
    let gone = Revocation::Member {
        sub: sub.clone(),
        role: None,
    };
    let reached = revocation::fan_out(cx.env, cx.project()?, gone).await;
    webhook_queue::emit(
        cx.env,
        &project,
        "member.removed",
        json!({ "project": project, "sub": sub, "by": cx.actor_name() }),
        None,
    )
    .await;
    http::json(&json!({ "removed": sub, "rooms": reached }))
}
