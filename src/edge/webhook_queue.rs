//! One Durable Object per project holding its webhook messages until they are delivered.
//!
//! `POST /enqueue` stores one message per matching subscription in the object's SQLite storage
//! and sets an alarm; the alarm sends what is due, logs every attempt in D1, and reschedules
//! failures with exponential backoff and jitter. A message is delivered at least once: it
//! leaves the queue only after a 2xx answer, or after its last attempt.
//!
//! A queued message names its subscription, not where or how to send it: each run reads the
//! current URL and secrets of the subscriptions it is about to deliver to (one D1 query per
//! run), so a changed URL or a rotated secret applies to retries too, and a message of a
//! subscription disabled or deleted meanwhile, or of a deleted project, is dropped. The URL is
//! checked as a destination again before every attempt ([`crate::net`]), and redirects are
//! not followed: a 3xx answer is a failed attempt.

use super::d1::{self, num, text};
use super::env;
use super::platform::{now_ms, random};
use crate::edge::log::{self, Emit};
use crate::net;
use crate::webhooks::{backoff_ms, matches, signature_header, SigningSecrets};
use serde::Deserialize;
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;
use worker::js_sys::{Date, Math};
use worker::{
    durable_object, DurableObject, Env, Fetch, Headers, Method, Request, RequestInit,
    RequestRedirect, Response, Result, SqlStorage, SqlStorageValue, State,
};

/// Longest a receiver may take to answer one delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages sent per alarm run; the rest wait for the next run, a moment later.
const BATCH: usize = 25;
/// Longest `Location` kept in the delivery log of a redirect.
const MAX_LOCATION_CHARS: usize = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
  message_id TEXT NOT NULL, webhook_id TEXT NOT NULL, event_type TEXT NOT NULL,
  body TEXT NOT NULL, attempt INTEGER NOT NULL, next_at INTEGER NOT NULL,
  unless_read INTEGER,
  PRIMARY KEY (message_id, webhook_id));
";

/// Queues made before notifications lack the column naming the notification whose reading
/// cancels a message.
const ADD_UNLESS_READ: &str = "ALTER TABLE messages ADD COLUMN unless_read INTEGER";

/// Queues of the first schema kept a copy of the subscription's URL and secret in each row
/// (`queue`); their messages move to `messages` without them, and the table goes, so no copy
/// of a secret stays behind and retries use the subscription as it is now.
const MIGRATE_QUEUE: &str = "
INSERT OR IGNORE INTO messages (message_id, webhook_id, event_type, body, attempt, next_at)
  SELECT message_id, webhook_id, event_type, body, attempt, next_at FROM queue;
DROP TABLE queue;
";

/// What producers hand the queue.
#[derive(Debug, Deserialize)]
pub struct Enqueue {
    /// The project.
    pub project: String,
    /// Event type.
    pub event_type: String,
    /// The event's `data`.
    pub data: serde_json::Value,
    /// Deliver only to this subscription (test events).
    #[serde(default)]
    pub only: Option<String>,
    /// Deliver no earlier than this many ms from now.
    #[serde(default)]
    pub delay_ms: u64,
    /// Drop the message if this notification was read (or deleted) by the time it is due.
    #[serde(default)]
    pub unless_read: Option<u64>,
}

/// A subscription as enqueueing needs it: which events it wants.
#[derive(Debug, Deserialize)]
struct Subscriber {
    id: String,
    events: String,
}

/// A subscription as a delivery run reads it, just before sending.
#[derive(Debug, Deserialize)]
struct Target {
    id: String,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<u64>,
    enabled: u64,
    deleted_at: Option<u64>,
    consecutive_failures: u64,
    project_deleted_at: Option<u64>,
}

impl Target {
    fn live(&self) -> bool {
        self.enabled == 1 && self.deleted_at.is_none() && self.project_deleted_at.is_none()
    }

    fn secrets(&self) -> SigningSecrets {
        SigningSecrets {
            current: self.secret.clone(),
            previous: self.previous_secret.clone(),
            previous_expires_at: self.previous_secret_expires_at,
        }
    }
}

struct Queued {
    message_id: String,
    webhook_id: String,
    event_type: String,
    body: String,
    attempt: i64,
    unless_read: Option<u64>,
}

/// How one attempt went: the receiver's status if it answered, and what went wrong if
/// anything did (no answer, a refused destination, a redirect).
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
}

impl Attempt {
    fn failed(error: String) -> Attempt {
        Attempt {
            status: None,
            error: Some(error),
        }
    }

    fn delivered(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// Removes a message from the queue (delivered, given up, or no longer wanted).
fn drop_message(sql: &SqlStorage, msg: &Queued) -> Result<()> {
    sql.exec(
        "DELETE FROM messages WHERE message_id = ? AND webhook_id = ?",
        vec![
            msg.message_id.as_str().into(),
            msg.webhook_id.as_str().into(),
        ],
    )?;
    Ok(())
}

/// The Durable Object class bound as `WEBHOOKS`.
#[durable_object]
pub struct WebhookQueue {
    state: State,
    env: Env,
    /// Whether this instance has created (and migrated) its table.
    ready: Cell<bool>,
}

fn rust_error(e: impl std::fmt::Debug) -> worker::Error {
    worker::Error::RustError(format!("{e:?}"))
}

/// Whether webhooks may go to non-public destinations (`WEBHOOK_ALLOW_PRIVATE=true`, local
/// development only).
pub fn allow_private(env: &Env) -> bool {
    env.var(env::WEBHOOK_ALLOW_PRIVATE)
        .is_ok_and(|v| v.to_string().trim() == "true")
}

impl WebhookQueue {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(SCHEMA, None)?;
            let count = |query: &str| -> Result<Option<i64>> {
                let rows: Vec<Vec<SqlStorageValue>> =
                    sql.exec(query, None)?.raw().collect::<Result<_>>()?;
                Ok(match rows.first().and_then(|r| r.first()) {
                    Some(SqlStorageValue::Integer(n)) => Some(*n),
                    _ => None,
                })
            };
            if count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'queue'")?
                == Some(1)
            {
                sql.exec(MIGRATE_QUEUE, None)?;
                log::info("webhook_queue.migrated")
                    .message("webhook queue: moved queued messages to the new schema")
                    .emit();
            }
            if count(
                "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'unless_read'",
            )? == Some(0)
            {
                sql.exec(ADD_UNLESS_READ, None)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }

    async fn wake_at(&self, at_ms: u64) -> Result<()> {
        let storage = self.state.storage();
        match storage.get_alarm().await? {
            Some(current) if current as u64 <= at_ms => Ok(()),
            _ => storage.set_alarm(super::alarm_at(at_ms)).await,
        }
    }

    async fn enqueue(&self, input: Enqueue) -> Result<usize> {
        let db = self.env.d1(env::DB)?;
        let subs: Vec<Subscriber> = d1::rows(
            &db,
            "SELECT w.id, w.events FROM webhooks w JOIN projects p ON p.id = w.project_id
             WHERE w.project_id = ? AND w.enabled = 1 AND w.deleted_at IS NULL
               AND p.deleted_at IS NULL",
            &[text(&input.project)],
        )
        .await
        .map_err(rust_error)?;
        let now = now_ms();
        let message_id = crate::webhooks::message_id(&random::<16>().map_err(rust_error)?);
        let body = serde_json::json!({
            "type": input.event_type,
            "timestamp": Date::new_0().to_iso_string().as_string(),
            "data": input.data,
        })
        .to_string();
        let sql = self.sql()?;
        let mut queued = 0;
        for sub in subs {
            let filters: Vec<String> = serde_json::from_str(&sub.events).unwrap_or_default();
            let wanted = match &input.only {
                Some(only) => *only == sub.id,
                None => matches(&filters, &input.event_type),
            };
            if !wanted {
                continue;
            }
            let unless_read = input
                .unless_read
                .map_or(SqlStorageValue::Null, |n| (n as i64).into());
            sql.exec(
                "INSERT OR IGNORE INTO messages
                   (message_id, webhook_id, event_type, body, attempt, next_at, unless_read)
                 VALUES (?, ?, ?, ?, 0, ?, ?)",
                vec![
                    message_id.as_str().into(),
                    sub.id.as_str().into(),
                    input.event_type.as_str().into(),
                    body.as_str().into(),
                    ((now + input.delay_ms) as i64).into(),
                    unless_read,
                ],
            )?;
            queued += 1;
        }
        if queued > 0 {
            self.wake_at(now + input.delay_ms).await?;
        }
        Ok(queued)
    }

    fn due(&self, now: u64) -> Result<Vec<Queued>> {
        let rows = self.sql()?.exec(
            "SELECT message_id, webhook_id, event_type, body, attempt, unless_read
             FROM messages WHERE next_at <= ? ORDER BY next_at LIMIT ?",
            vec![(now as i64).into(), (BATCH as i64).into()],
        )?;
        let mut out = Vec::new();
        for row in rows.raw() {
            let row = row?;
            let s = |i: usize| match row.get(i) {
                Some(SqlStorageValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            let attempt = match row.get(4) {
                Some(SqlStorageValue::Integer(i)) => *i,
                _ => 0,
            };
            let unless_read = match row.get(5) {
                Some(SqlStorageValue::Integer(i)) => Some(*i as u64),
                _ => None,
            };
            out.push(Queued {
                message_id: s(0),
                webhook_id: s(1),
                event_type: s(2),
                body: s(3),
                attempt,
                unless_read,
            });
        }
        Ok(out)
    }

    /// The current URL, secrets and state of exactly the subscriptions `due` goes to.
    async fn targets(
        &self,
        db: &worker::D1Database,
        due: &[Queued],
    ) -> Result<HashMap<String, Target>> {
        let mut ids: Vec<&str> = due.iter().map(|m| m.webhook_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let placeholders = vec!["?"; ids.len()].join(", ");
        let rows: Vec<Target> = d1::rows(
            db,
            &format!(
                "SELECT w.id, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                        w.enabled, w.deleted_at, w.consecutive_failures,
                        p.deleted_at AS project_deleted_at
                 FROM webhooks w JOIN projects p ON p.id = w.project_id
                 WHERE w.id IN ({placeholders})"
            ),
            &ids.iter().map(|id| text(id)).collect::<Vec<_>>(),
        )
        .await
        .map_err(rust_error)?;
        Ok(rows.into_iter().map(|t| (t.id.clone(), t)).collect())
    }

    /// Whether notification `id` was read or deleted.
    async fn was_read(&self, db: &worker::D1Database, id: u64) -> Result<bool> {
        #[derive(Deserialize)]
        struct Row {
            read_at: Option<u64>,
        }
        let row: Option<Row> = d1::row(
            db,
            "SELECT read_at FROM notifications WHERE id = ?",
            &[num(id)],
        )
        .await
        .map_err(rust_error)?;
        Ok(row.is_none_or(|r| r.read_at.is_some()))
    }

    /// Sends one message to `url`, signed with each of `secrets`, without following redirects.
    async fn send(&self, url: &str, secrets: &[&str], msg: &Queued) -> Attempt {
        match self.try_send(url, secrets, msg).await {
            Ok(attempt) => attempt,
            Err(e) => Attempt::failed(e),
        }
    }

    async fn try_send(
        &self,
        url: &str,
        secrets: &[&str],
        msg: &Queued,
    ) -> std::result::Result<Attempt, String> {
        let timestamp = now_ms() / 1000;
        let signature = signature_header(secrets, &msg.message_id, timestamp, &msg.body)
            .map_err(|e| e.to_string())?;
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| e.to_string());
        set("content-type", "application/json")?;
        set("user-agent", "TandemX-Webhooks/1")?;
        set("webhook-id", &msg.message_id)?;
        set("webhook-timestamp", &timestamp.to_string())?;
        set("webhook-signature", &signature)?;
        let mut init = RequestInit::new();
        // A redirect would send the message (and its signature) to a destination that was
        // never checked; `manual` hands the 3xx back instead (Workers support `follow`, the
        // default, and `manual`: <https://developers.cloudflare.com/workers/runtime-apis/request/>).
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual)
            .with_body(Some(msg.body.clone().into()));
        let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
        let request = Fetch::Request(req);
        let fetch = request.send();
        let timeout = worker::Delay::from(DELIVERY_TIMEOUT);
        futures::pin_mut!(fetch);
        futures::pin_mut!(timeout);
        let resp = match futures::future::select(fetch, timeout).await {
            futures::future::Either::Left((Ok(resp), _)) => resp,
            futures::future::Either::Left((Err(e), _)) => return Err(e.to_string()),
            futures::future::Either::Right(_) => return Err("timed out".into()),
        };
        let status = resp.status_code();
        let error = (300..400).contains(&status).then(|| {
            let location = resp.headers().get("location").ok().flatten();
            match location {
                Some(to) => format!(
                    "redirect to {} not followed",
                    to.chars().take(MAX_LOCATION_CHARS).collect::<String>()
                ),
                None => "redirect not followed".to_owned(),
            }
        });
        Ok(Attempt {
            status: Some(status),
            error,
        })
    }

    async fn deliver_due(&self) -> Result<()> {
        let db = self.env.d1(env::DB)?;
        let base = env::number_or(&self.env, env::WEBHOOK_RETRY_BASE_MS, 5000) as u64;
        let max_attempts = env::number_or(&self.env, env::WEBHOOK_MAX_ATTEMPTS, 10) as i64;
        let disable_after = env::number_or(&self.env, env::WEBHOOK_DISABLE_AFTER, 50) as u64;
        let allow_private = allow_private(&self.env);
        let due = self.due(now_ms())?;
        let mut targets = if due.is_empty() {
            HashMap::new()
        } else {
            self.targets(&db, &due).await?
        };
        if targets.values().any(|t| t.project_deleted_at.is_some()) {
            // One object per project: the project is gone, and so is everything queued for it.
            self.sql()?.exec("DELETE FROM messages", None)?;
            self.state.storage().delete_alarm().await?;
            log::info("webhook_queue.dropped")
                .message("webhook queue: project deleted, queue dropped")
                .emit();
            return Ok(());
        }
        for msg in due {
            let sql = self.sql()?;
            let Some(target) = targets.get_mut(&msg.webhook_id).filter(|t| t.live()) else {
                // Disabled or deleted meanwhile (or failing so often that this run disabled it).
                drop_message(&sql, &msg)?;
                continue;
            };
            if let Some(n) = msg.unless_read {
                if self.was_read(&db, n).await? {
                    // Seen before the delay ran out: nobody needs telling.
                    drop_message(&sql, &msg)?;
                    continue;
                }
            }
            let started = now_ms();
            let result = match net::check(&target.url, allow_private) {
                Ok(_) => {
                    let secrets = target.secrets();
                    self.send(&target.url, &secrets.active(started), &msg).await
                }
                Err(e) => Attempt::failed(format!("destination refused: {e}")),
            };
            let took = now_ms().saturating_sub(started);
            let attempt = msg.attempt + 1;
            let ok = result.delivered();
            let outcome = if ok {
                "delivered"
            } else if attempt >= max_attempts {
                "gave_up"
            } else {
                "retrying"
            };
            if ok || attempt >= max_attempts {
                drop_message(&sql, &msg)?;
            } else {
                let next = now_ms() + backoff_ms(attempt as u32, base, Math::random());
                sql.exec(
                    "UPDATE messages SET attempt = ?, next_at = ? WHERE message_id = ? AND webhook_id = ?",
                    vec![
                        attempt.into(),
                        (next as i64).into(),
                        msg.message_id.as_str().into(),
                        msg.webhook_id.as_str().into(),
                    ],
                )?;
            }
            // What D1 is told below, mirrored, so that later messages of this run see a
            // subscription this run disabled.
            if ok {
                target.consecutive_failures = 0;
            } else {
                target.consecutive_failures += 1;
                if target.consecutive_failures >= disable_after {
                    target.enabled = 0;
                }
            }
            let status = result.status.map_or(wasm_null(), |s| num(u64::from(s)));
            let error = result.error.as_deref().map_or(wasm_null(), text);
            let mut stmts = vec![d1::stmt(
                &db,
                "INSERT INTO webhook_deliveries (webhook_id, message_id, event_type, attempt, status, error, duration_ms, at, outcome)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[text(&msg.webhook_id), text(&msg.message_id), text(&msg.event_type), num(attempt as u64), status, error, num(took), num(now_ms()), text(outcome)],
            )];
            stmts.push(if ok {
                d1::stmt(&db, "UPDATE webhooks SET consecutive_failures = 0 WHERE id = ?", &[text(&msg.webhook_id)])
            } else {
                d1::stmt(
                    &db,
                    "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,
                       enabled = CASE WHEN consecutive_failures + 1 >= ?2 THEN 0 ELSE enabled END,
                       disabled_reason = CASE WHEN consecutive_failures + 1 >= ?2
                         THEN 'disabled after ' || (consecutive_failures + 1) || ' failed attempts in a row' ELSE disabled_reason END
                     WHERE id = ?1",
                    &[text(&msg.webhook_id), num(disable_after)],
                )
            });
            let stmts: Vec<_> = stmts
                .into_iter()
                .collect::<std::result::Result<_, _>>()
                .map_err(rust_error)?;
            if let Err(e) = d1::batch(&db, stmts).await {
                log::error("webhook.delivery_unrecorded")
                    .message("recording a webhook delivery failed")
                    .field("webhook", msg.webhook_id.as_str())
                    .field("message_id", msg.message_id.as_str())
                    .cause(format!("{e:?}"))
                    .emit();
            }
            if !ok {
                let mut line = log::warn("webhook.delivery_failed")
                    .field("webhook", msg.webhook_id.as_str())
                    .field("message_id", msg.message_id.as_str())
                    .field("event_type", msg.event_type.as_str())
                    .field("attempt", attempt)
                    .field("outcome", outcome)
                    .field("duration_ms", took);
                if let Some(status) = result.status {
                    line = line.field("status", status);
                }
                line.cause(result.error.as_deref().unwrap_or("not 2xx"))
                    .emit();
            }
        }
        let next: Vec<Vec<SqlStorageValue>> = self
            .sql()?
            .exec("SELECT MIN(next_at) FROM messages", None)?
            .raw()
            .collect::<Result<_>>()?;
        if let Some(SqlStorageValue::Integer(at)) = next.first().and_then(|r| r.first()) {
            self.wake_at((*at as u64).max(now_ms())).await?;
        }
        Ok(())
    }
}

fn wasm_null() -> worker::wasm_bindgen::JsValue {
    worker::wasm_bindgen::JsValue::NULL
}

impl DurableObject for WebhookQueue {
    fn new(state: State, env: Env) -> Self {
        WebhookQueue {
            state,
            env,
            ready: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.path() != "/enqueue" || req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let input: Enqueue = req.json().await?;
        let queued = self.enqueue(input).await?;
        Response::from_json(&serde_json::json!({ "queued": queued }))
    }

    async fn alarm(&self) -> Result<Response> {
        self.deliver_due().await?;
        Response::ok("")
    }
}

/// Hands an event to the project's queue. Failures are logged, not raised: the action that
/// caused the event has already happened.
pub async fn emit(
    env: &Env,
    project: &str,
    event_type: &str,
    data: serde_json::Value,
    only: Option<&str>,
) {
    enqueue(env, project, event_type, data, only, 0, None).await
}

/// Hands an event to the project's queue to leave after `delay_ms`, and only if notification
/// `notification` is unread then (the inbox's delayed `notification.created`).
pub async fn emit_unless_read(
    env: &Env,
    project: &str,
    event_type: &str,
    data: serde_json::Value,
    delay_ms: u64,
    notification: u64,
) {
    enqueue(
        env,
        project,
        event_type,
        data,
        None,
        delay_ms,
        Some(notification),
    )
    .await
}

async fn enqueue(
    env: &Env,
    project: &str,
    event_type: &str,
    data: serde_json::Value,
    only: Option<&str>,
    delay_ms: u64,
    unless_read: Option<u64>,
) {
    let result = async {
        let stub = env.durable_object(env::WEBHOOKS)?.get_by_name(project)?;
        let body = serde_json::json!({
            "project": project, "event_type": event_type, "data": data, "only": only,
            "delay_ms": delay_ms, "unless_read": unless_read,
        });
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(body.to_string().into()));
        let req = Request::new_with_init("https://webhooks.internal/enqueue", &init)?;
        let mut resp = stub.fetch_with_request(req).await?;
        if resp.status_code() != 200 {
            return Err(worker::Error::RustError(
                resp.text().await.unwrap_or_default(),
            ));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        log::error("webhook.enqueue_failed")
            .project(project)
            .field("event_type", event_type)
            .cause(e)
            .emit();
    }
}
