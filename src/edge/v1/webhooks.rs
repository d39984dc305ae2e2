//! Webhook subscriptions: create, read, change, delete, test, and their delivery log.

use super::{created, list_page, Call, Result};
use crate::api::{ApiError, CreateWebhook, UpdateWebhook};
use crate::edge::access::{hex, now_ms, random};
use crate::edge::d1::{self, num, text};
use crate::edge::{http, webhook_queue};
use crate::routes::RouteId;
use crate::webhooks;
use serde::Deserialize;
use serde_json::json;
use worker::Response;

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

/// Serves the webhook routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    match id {
        RouteId::ListWebhooks => {
            let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
            let page = crate::pages::Page::parse(query.as_deref(), 2)?;
            let after = |i: usize| super::key_arg(page.after.as_ref().and_then(|k| k.get(i)));
            let mut rows: Vec<WebhookRow> = d1::rows(
                &cx.db()?,
                &format!(
                    "{WEBHOOK_SELECT} WHERE project_id = ?1 AND deleted_at IS NULL
                       AND (?2 IS NULL OR (created_at, id) > (?2, ?3))
                     ORDER BY created_at, id LIMIT ?4"
                ),
                &[text(&project), after(0), after(1), num(page.fetch() as u64)],
            )
            .await?;
            let next = page.finish(&mut rows, |r| vec![json!(r.created_at), json!(r.id)]);
            http::json(&json!({
                "webhooks": rows.iter().map(WebhookRow::view).collect::<Vec<_>>(),
                "next_cursor": next,
            }))
        }
        RouteId::CreateWebhook => create(cx, &project).await,
        RouteId::GetWebhook => http::json(&find(cx, &project).await?.view()),
        RouteId::UpdateWebhook => update(cx, &project).await,
        RouteId::DeleteWebhook => {
            let hook = find(cx, &project).await?;
            let db = cx.db()?;
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
                        Some(&project),
                        &cx.actor_name(),
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
            let hook = find(cx, &project).await?;
            webhook_queue::emit(
                cx.env,
                &project,
                "webhook.test",
                json!({ "project": project, "webhook": hook.id }),
                Some(&hook.id),
            )
            .await;
            Ok(http::json(&json!({ "queued": 1 }))?.with_status(202))
        }
        RouteId::ListDeliveries => {
            let hook = find(cx, &project).await?;
            list_page(
                cx,
                "SELECT id, message_id, event_type, attempt, status, error, duration_ms, at, outcome
                 FROM webhook_deliveries WHERE webhook_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
                &hook.id,
                &["id"],
                "deliveries",
            )
            .await
        }
        _ => Err(ApiError::NotFound),
    }
}

async fn find(cx: &Call<'_>, project: &str) -> Result<WebhookRow> {
    let id = cx.params.webhook()?;
    let row: Option<WebhookRow> = d1::row(
        &cx.db()?,
        &format!("{WEBHOOK_SELECT} WHERE id = ? AND project_id = ? AND deleted_at IS NULL"),
        &[text(id.as_str()), text(project)],
    )
    .await?;
    row.ok_or_else(|| ApiError::Missing("webhook", id.to_string()))
}

async fn find_by_id(cx: &Call<'_>, project: &str, id: &str) -> Result<WebhookRow> {
    let row: Option<WebhookRow> = d1::row(
        &cx.db()?,
        &format!("{WEBHOOK_SELECT} WHERE id = ? AND project_id = ? AND deleted_at IS NULL"),
        &[text(id), text(project)],
    )
    .await?;
    row.ok_or_else(|| ApiError::Missing("webhook", id.to_owned()))
}

fn check(
    cx: &Call<'_>,
    url: Option<&str>,
    events: Option<&[String]>,
    description: Option<&str>,
) -> Result<()> {
    if let Some(url) = url {
        let allow_private = webhook_queue::allow_private(cx.env);
        webhooks::validate_url(url, allow_private)
            .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
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

async fn create(cx: &mut Call<'_>, project: &str) -> Result<Response> {
    let input: CreateWebhook = cx.body().await?;
    check(
        cx,
        Some(&input.url),
        Some(&input.events),
        input.description.as_deref(),
    )?;
    let db = cx.db()?;
    let now = now_ms();
    let id = format!("wh_{}", hex(&random::<8>()?));
    let secret = webhooks::new_secret(&random::<24>()?);
    let events = serde_json::to_string(&input.events).map_err(|_| ApiError::Internal)?;
    d1::batch(&db, vec![
        d1::stmt(&db, "INSERT INTO webhooks (id, project_id, url, events, secret, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[text(&id), text(project), text(&input.url), text(&events), text(&secret), text(input.description.as_deref().unwrap_or("")), num(now), num(now)])?,
        d1::audit(&db, Some(project), &cx.actor_name(), "webhook.created", Some(&id), json!({ "url": input.url, "events": input.events }), now)?,
    ]).await?;
    created(&find_by_id(cx, project, &id).await?.view())
}

async fn update(cx: &mut Call<'_>, project: &str) -> Result<Response> {
    let input: UpdateWebhook = cx.body().await?;
    check(
        cx,
        input.url.as_deref(),
        input.events.as_deref(),
        input.description.as_deref(),
    )?;
    let hook = find(cx, project).await?;
    let id = hook.id.clone();
    let db = cx.db()?;
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
              num(enabled), num(now), num(u64::from(reset)), num(u64::from(reset)), text(&id)])?,
        d1::audit(&db, Some(project), &cx.actor_name(), "webhook.updated", Some(&id), json!({ "enabled": enabled == 1 }), now)?,
    ]).await?;
    http::json(&find_by_id(cx, project, &id).await?.view())
}
