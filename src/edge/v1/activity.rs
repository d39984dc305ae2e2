//! The activity feed: who did what, when, per project and per document — threads and comments,
//! resolutions, reviews, versions, restores, forks and merges. Rows are written by the routes
//! that make the change (after it is stored), and read newest first, filtered by document,
//! actor and kind, by every member role.

use super::{Call, Result};
use crate::edge::d1::{self, num, text};
use crate::edge::http;
use crate::edge::platform::now_ms;
use crate::routes::RouteId;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::Response;

/// How the feed names an actor: a user by their id, a key by its id, or `admin`.
pub fn actor_of(actor: &crate::edge::access::Actor) -> String {
    use crate::edge::access::Actor;
    match actor {
        Actor::User { sub, .. } => sub.clone(),
        Actor::Key { id, .. } => id.clone(),
        Actor::Admin => "admin".into(),
        Actor::Link { .. } => "link".into(),
    }
}

/// The statement that records one entry, for a batch that makes the change it tells of.
pub fn entry(
    db: &worker::D1Database,
    project: &str,
    document: Option<&str>,
    actor: &str,
    kind: &str,
    detail: &Value,
) -> Result<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "INSERT INTO activity (project_id, document, actor, kind, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            text(project),
            document.map_or(JsValue::NULL, text),
            text(actor),
            text(kind),
            text(&detail.to_string()),
            num(now_ms()),
        ],
    )
}

/// Records one entry (after a change stored elsewhere: a room's conversations, a merge).
pub async fn record(
    cx: &Call<'_>,
    project: &str,
    document: Option<&str>,
    actor: &str,
    kind: &str,
    detail: &Value,
) -> Result<()> {
    entry(&cx.db()?, project, document, actor, kind, detail)?
        .run()
        .await
        .map_err(http::internal("activity"))?;
    Ok(())
}

#[derive(Deserialize)]
struct Row {
    id: u64,
    document: Option<String>,
    actor: String,
    kind: String,
    detail: String,
    at: u64,
}

/// Serves `GET .../activity` of a project (`?document=` filters) or of a document.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let q = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    let q = q.as_deref();
    // Every parameter is parsed before anything is read.
    let filter = crate::queries::activity(q, id == RouteId::ProjectActivity)?;
    let document = match id {
        RouteId::DocumentActivity => Some(super::history_routes::live_document(cx).await?.1),
        _ => filter.document,
    };
    if let Some(d) = &document {
        // A room token reads the feed of the documents it covers only.
        if !cx.actor.covers(d.as_str()) {
            return Err(crate::auth::AuthError::WrongRoom.into());
        }
    }
    let (actor, kind) = (filter.actor, filter.kind);
    let limit = u64::from(filter.page.limit);
    let before = filter.page.before;
    let opt = |v: Option<&str>| v.map_or(JsValue::NULL, text);
    let rows: Vec<Row> = d1::rows(
        &cx.db()?,
        "SELECT id, document, actor, kind, detail, at FROM activity
         WHERE project_id = ?1 AND (?2 IS NULL OR document = ?2) AND (?3 IS NULL OR actor = ?3)
           AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR id < ?5)
         ORDER BY id DESC LIMIT ?6",
        &[
            text(project.as_str()),
            opt(document.as_ref().map(|d| d.as_str())),
            opt(actor.as_deref()),
            opt(kind.as_deref()),
            before.map_or(JsValue::NULL, num),
            num(limit),
        ],
    )
    .await?;
    let next = crate::queries::next_before(&rows.iter().map(|r| r.id).collect::<Vec<_>>(), limit);
    // Outside a document, a room token sees only the documents it covers (a page may hold
    // fewer entries than asked; `next_before` still continues after the whole page).
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.document.as_deref().is_none_or(|d| cx.actor.covers(d)))
        .collect();
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "document": r.document, "actor": r.actor, "kind": r.kind,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
                "at": r.at,
            })
        })
        .collect();
    http::json(&json!({ "activity": entries, "next_before": next }))
}
