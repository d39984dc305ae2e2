//! Webhook subscriptions: create, read, change, delete, test, rotate the secret, and their
//! delivery log. A signing secret is in the answer of the call that makes it (create, rotate)
//! and in no other: reads show its last four characters.

use super::{created, list_page, Call, Result};
use crate::api::{ApiError, CreateWebhook, UpdateWebhook};
use crate::codec::hex;
use crate::edge::d1::{self, num, text};
use crate::edge::log::{self, Emit};
use crate::edge::platform::{now_ms, random};
use crate::edge::{env, http, webhook_queue};
use crate::routes::RouteId;
use crate::webhooks;
use serde::Deserialize;
use serde_json::json;
use worker::Response;

const WEBHOOK_SELECT: &str = "SELECT id, url, events, secret, previous_secret, previous_secret_expires_at, secret_rotated_at, description, enabled, consecutive_failures, disabled_reason, created_at, updated_at FROM webhooks";

/// A webhook subscription row.
#[derive(Debug, Deserialize)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<u64>,
    secret_rotated_at: Option<u64>,
    description: String,
    enabled: u64,
    consecutive_failures: u64,
    disabled_reason: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl WebhookRow {
    /// The subscription as reads show it: never its secrets, only the current one's last
    /// characters, and until when the replaced one still signs (while it does).
    fn view(&self, now: u64) -> serde_json::Value {
        let events: Vec<String> = serde_json::from_str(&self.events).unwrap_or_default();
        let previous_until = self
            .previous_secret_expires_at
            .filter(|&until| self.previous_secret.is_some() && until > now);
        json!({
            "id": self.id, "url": self.url, "events": events,
            "secret_hint": webhooks::secret_hint(&self.secret),
            "secret_rotated_at": self.secret_rotated_at,
            "previous_secret_expires_at": previous_until,
            "description": self.description, "enabled": self.enabled == 1,
            "consecutive_failures": self.consecutive_failures, "disabled_reason": self.disabled_reason,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }

    /// The view with the current secret: only for the answer that hands out a new one.
    fn view_with_secret(&self, now: u64) -> serde_json::Value {
        let mut view = self.view(now);
        view["secret"] = json!(self.secret);
        view
    }

    fn secrets(&self) -> webhooks::SigningSecrets {
        webhooks::SigningSecrets {
            current: self.secret.clone(),
            previous: self.previous_secret.clone(),
            previous_expires_at: self.previous_secret_expires_at,
        }
    }
}

/// Serves the webhook routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    match id {
        RouteId::ListWebhooks => {
            let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
            let page = crate::pages::Page::parse(
                query.as_deref(),
                crate::pages::key_len(RouteId::ListWebhooks),
            )?;
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
            let now = now_ms();
            http::json(&json!({
                "webhooks": rows.iter().map(|r| r.view(now)).collect::<Vec<_>>(),
                "next_cursor": next,
            }))
        }
        RouteId::CreateWebhook => create(cx, &project).await,
        RouteId::GetWebhook => http::json(&find(cx, &project).await?.view(now_ms())),
        RouteId::UpdateWebhook => update(cx, &project).await,
        RouteId::RotateWebhookSecret => rotate(cx, &project).await,
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
    description.map_or(Ok(()), crate::api::validate_webhook_description)
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
    let events = events_json(&input.events)?;
    d1::batch(&db, vec![
        d1::stmt(&db, "INSERT INTO webhooks (id, project_id, url, events, secret, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[text(&id), text(project), text(&input.url), text(&events), text(&secret), text(input.description.as_deref().unwrap_or("")), num(now), num(now)])?,
        d1::audit(&db, Some(project), &cx.actor_name(), "webhook.created", Some(&id), json!({ "url": input.url, "events": input.events }), now)?,
    ]).await?;
    created(&find_by_id(cx, project, &id).await?.view_with_secret(now))
}

fn events_json(events: &[String]) -> Result<String> {
    serde_json::to_string(events).map_err(|e| {
        log::error("internal.failed")
            .field("what", "webhook events as JSON")
            .cause(e)
            .emit();
        ApiError::Internal
    })
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
        Some(e) => events_json(e)?,
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
        d1::audit(&db, Some(project), &cx.actor_name(), "webhook.updated", Some(&id), json!({ "enabled": enabled == 1, "url": input.url }), now)?,
    ]).await?;
    http::json(&find_by_id(cx, project, &id).await?.view(now))
}

/// Replaces the signing secret. The replaced one keeps signing beside the new one for the
/// grace period, so a receiver loses no event while it switches; the new secret is in this
/// answer only.
async fn rotate(cx: &mut Call<'_>, project: &str) -> Result<Response> {
    let hook = find(cx, project).await?;
    let db = cx.db()?;
    let now = now_ms();
    let grace_seconds = env::count_or(
        cx.env,
        env::WEBHOOK_SECRET_GRACE_SECONDS,
        (webhooks::ROTATION_GRACE_MS / 1000) as usize,
    ) as u64;
    let secrets = hook.secrets().rotated(
        webhooks::new_secret(&random::<24>()?),
        now,
        grace_seconds.saturating_mul(1000),
    );
    let previous_until = secrets.previous_expires_at.unwrap_or(now);
    // Both statements apply only while the secret read above is still the current one: of
    // two rotations at once, one wins and the other is told (its new secret was never stored,
    // and no audit row says it was).
    let still_current = "EXISTS (SELECT 1 FROM webhooks WHERE id = ? AND secret = ?)";
    let detail = json!({ "previous_secret_expires_at": previous_until }).to_string();
    let results = d1::batch_results(
        &db,
        vec![
            d1::stmt(
                &db,
                &format!(
                    "INSERT INTO audit_log (project_id, at, actor, action, target, detail)
                     SELECT ?, ?, ?, 'webhook.secret_rotated', ?, ? WHERE {still_current}"
                ),
                &[
                    text(project),
                    num(now),
                    text(&cx.actor_name()),
                    text(&hook.id),
                    text(&detail),
                    text(&hook.id),
                    text(&hook.secret),
                ],
            )?,
            d1::stmt(
                &db,
                "UPDATE webhooks SET secret = ?, previous_secret = ?, previous_secret_expires_at = ?,
                   secret_rotated_at = ?, updated_at = ? WHERE id = ? AND secret = ?",
                &[
                    text(&secrets.current),
                    text(&hook.secret),
                    num(previous_until),
                    num(now),
                    num(now),
                    text(&hook.id),
                    text(&hook.secret),
                ],
            )?,
        ],
    )
    .await?;
    let changed = match results.get(1) {
        Some(update) => update.meta().map_err(http::internal("d1 meta"))?,
        None => None,
    };
    if changed.and_then(|m| m.changes) != Some(1) {
        return Err(ApiError::Conflict(
            "the secret was rotated by another call at the same time; rotate again".into(),
        ));
    }
    let rotated = find_by_id(cx, project, &hook.id).await?;
    http::json(&rotated.view_with_secret(now))
}
