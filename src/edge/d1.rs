//! Project metadata in D1: projects, members, API keys, signing keys, documents, audit log.
//! Every change is written together with its audit row in one batch (a D1 transaction).

use super::log::{self, Emit};
use crate::api::ApiError;
use crate::auth::{Membership, Role};
use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

fn fail(what: &'static str) -> impl Fn(worker::Error) -> ApiError {
    super::http::internal(what)
}

/// A bound statement from SQL and arguments.
pub fn stmt(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
    db.prepare(sql).bind(args).map_err(fail("d1 bind"))
}

/// A JavaScript number from an integer (unix milliseconds fit exactly).
pub fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// A JavaScript string.
pub fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// Runs statements as one transaction.
pub async fn batch(db: &D1Database, stmts: Vec<D1PreparedStatement>) -> Result<(), ApiError> {
    batch_results(db, stmts).await.map(drop)
}

/// Runs statements as one transaction and returns each one's result (for row counts); a failed
/// statement fails the whole, logged.
pub async fn batch_results(
    db: &D1Database,
    stmts: Vec<D1PreparedStatement>,
) -> Result<Vec<worker::D1Result>, ApiError> {
    let results = db.batch(stmts).await.map_err(fail("d1 batch"))?;
    if let Some(e) = results.iter().find_map(|r| r.error()) {
        log::error("d1.failed")
            .field("what", "d1 batch")
            .cause(e)
            .emit();
        return Err(ApiError::Internal);
    }
    Ok(results)
}

/// The statement that makes `name` a live document of `project`, created at `now` by `by`:
/// a new row, or a deleted one revived.
pub fn live_document(
    db: &D1Database,
    project: &str,
    name: &str,
    now: u64,
    by: &str,
) -> Result<D1PreparedStatement, ApiError> {
    stmt(
        db,
        "INSERT INTO documents (project_id, name, created_at, created_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (project_id, name) DO UPDATE SET deleted_at = NULL, created_at = excluded.created_at, created_by = excluded.created_by",
        &[text(project), text(name), num(now), text(by)],
    )
}

/// Where a document stands in its project's registry (`documents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentState {
    /// Never registered.
    Missing,
    /// Registered and not deleted.
    Live,
    /// Deleted (its name may be used again).
    Deleted,
}

/// The state of document `name` in `project`.
pub async fn document_state(
    db: &D1Database,
    project: &str,
    name: &str,
) -> Result<DocumentState, ApiError> {
    let doc: Option<serde_json::Value> = row(
        db,
        "SELECT deleted_at FROM documents WHERE project_id = ? AND name = ?",
        &[text(project), text(name)],
    )
    .await?;
    Ok(match doc {
        None => DocumentState::Missing,
        Some(d) if d["deleted_at"].is_null() => DocumentState::Live,
        Some(_) => DocumentState::Deleted,
    })
}

/// All rows of a query.
pub async fn rows<T: for<'de> Deserialize<'de>>(
    db: &D1Database,
    sql: &str,
    args: &[JsValue],
) -> Result<Vec<T>, ApiError> {
    stmt(db, sql, args)?
        .all()
        .await
        .map_err(fail("d1 query"))?
        .results()
        .map_err(fail("d1 rows"))
}

/// The first row of a query, if any.
pub async fn row<T: for<'de> Deserialize<'de>>(
    db: &D1Database,
    sql: &str,
    args: &[JsValue],
) -> Result<Option<T>, ApiError> {
    stmt(db, sql, args)?
        .first(None)
        .await
        .map_err(fail("d1 query"))
}

/// The audit row of an action, to add to the batch that performs it.
pub fn audit(
    db: &D1Database,
    project: Option<&str>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
    now: u64,
) -> Result<D1PreparedStatement, ApiError> {
    stmt(
        db,
        "INSERT INTO audit_log (project_id, at, actor, action, target, detail)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            project.map_or(JsValue::NULL, text),
            num(now),
            text(actor),
            text(action),
            target.map_or(JsValue::NULL, text),
            text(&detail.to_string()),
        ],
    )
}

/// A project row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time, unix ms.
    pub created_at: u64,
    /// Deletion time, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
    /// Days of history kept (`None`: the default, 0: everything).
    #[serde(default)]
    pub history_retention_days: Option<u64>,
    /// Whether a branch merges only with an approved review (owners excepted).
    #[serde(default, deserialize_with = "flag")]
    pub require_review_for_merge: bool,
    /// Seconds an unread notification waits before its `notification.created` webhook.
    #[serde(default)]
    pub notification_delay_seconds: u64,
    /// The project's own asset quota (`None`: the server's default).
    #[serde(default)]
    pub asset_quota_bytes: Option<u64>,
    /// The project's own largest asset file (`None`: the server's default).
    #[serde(default)]
    pub asset_max_file_bytes: Option<u64>,
    /// The project's own trash days (`None`: the server's default).
    #[serde(default)]
    pub asset_trash_days: Option<u64>,
    /// Participants one call may have (docs/calls.md).
    #[serde(default = "default_call_limit")]
    pub call_max_participants: u64,
    /// Whether viewers and commenters may send media in calls.
    #[serde(default, deserialize_with = "flag")]
    pub call_viewers_publish: bool,
}

fn default_call_limit() -> u64 {
    u64::from(crate::signal::MAX_PARTICIPANTS)
}

/// A D1 integer 0/1 as a boolean.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(u64::deserialize(d)? != 0)
}

/// Reads a project that is not deleted.
pub async fn live_project(db: &D1Database, id: &str) -> Result<Project, ApiError> {
    let project: Option<Project> = row(
        db,
        "SELECT id, name, created_at, deleted_at, history_retention_days,
                require_review AS require_review_for_merge, notification_delay_seconds,
                asset_quota_bytes, asset_max_file_bytes, asset_trash_days,
                call_max_participants, call_viewers_publish
         FROM projects WHERE id = ?",
        &[text(id)],
    )
    .await?;
    match project {
        Some(p) if p.deleted_at.is_none() => Ok(p),
        _ => Err(ApiError::Missing("project", id.into())),
    }
}

/// An API key row (without its hash when listed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRow {
    /// Id (`key_...`).
    pub id: String,
    /// Project.
    pub project_id: String,
    /// What it is for.
    pub name: String,
    /// Role ceiling.
    pub role: Role,
    /// SHA-256 of the secret.
    #[serde(default, skip_serializing)]
    pub secret_hash: String,
    /// Creation time, unix ms.
    pub created_at: u64,
    /// Last use, unix ms.
    #[serde(default)]
    pub last_used_at: Option<u64>,
    /// Revocation time, unix ms.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

/// A signing key row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyRow {
    /// Key id (`kid`).
    pub kid: String,
    /// Project.
    pub project_id: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// PEM public key.
    pub public_key: String,
    /// Creation time, unix ms.
    pub created_at: u64,
    /// Revocation time, unix ms.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

/// What the room route needs to know beyond the token, read in one query.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomAccess {
    /// Project deletion time (null: live; the row is absent for unknown projects).
    pub deleted_at: Option<u64>,
    /// Revocation time of the minting key, when the token names one.
    pub key_revoked_at: Option<u64>,
    /// Project of the minting key, when the token names one.
    pub key_project: Option<String>,
    /// Deletion time of the document.
    pub doc_deleted_at: Option<u64>,
    /// Whether the document row exists.
    pub doc_exists: u64,
    /// Whether the project has an enabled webhook subscription (1) or none (0).
    #[serde(default)]
    pub has_webhooks: u64,
    /// The user's member role, if they are (or were) a member.
    #[serde(default)]
    pub member_role: Option<Role>,
    /// When the user was removed from the project, if they were.
    #[serde(default)]
    pub member_removed_at: Option<u64>,
    /// Whether the token's id was revoked (1) or not (0).
    #[serde(default)]
    pub token_revoked: u64,
    /// The project's participant limit per call.
    #[serde(default = "default_call_limit")]
    pub call_max_participants: u64,
    /// Whether the project lets viewers and commenters send media in calls (1) or not (0).
    #[serde(default)]
    pub call_viewers_publish: u64,
}

impl RoomAccess {
    /// The user's standing in the project.
    pub fn membership(&self) -> Membership {
        match (self.member_role, self.member_removed_at) {
            (_, Some(_)) => Membership::Removed,
            (Some(role), None) => Membership::Member(role),
            (None, None) => Membership::None,
        }
    }
}

/// Who is connecting, as D1 is asked about them.
pub struct Connecting<'a> {
    /// The token's project.
    pub project: &'a str,
    /// The API key that minted the token, if one did.
    pub key: Option<&'a str>,
    /// The room.
    pub room: &'a str,
    /// The user.
    pub sub: &'a str,
    /// The token's id, if it has one.
    pub jti: Option<&'a str>,
}

/// Reads, in one query, everything a room connection's admission depends on beyond the token:
/// the project, the minting key, the document, the user's membership, whether the token was
/// revoked, and whether the project has webhooks.
pub async fn room_access(
    db: &D1Database,
    who: &Connecting<'_>,
) -> Result<Option<RoomAccess>, ApiError> {
    room_access_stmt(db, who)?
        .first(None)
        .await
        .map_err(fail("d1 query"))
}

/// The query of [`room_access`], to run in a batch.
pub fn room_access_stmt(
    db: &D1Database,
    who: &Connecting<'_>,
) -> Result<D1PreparedStatement, ApiError> {
    stmt(
        db,
        "SELECT p.deleted_at AS deleted_at,
                k.revoked_at AS key_revoked_at, k.project_id AS key_project,
                d.deleted_at AS doc_deleted_at, (d.name IS NOT NULL) AS doc_exists,
                EXISTS (SELECT 1 FROM webhooks w WHERE w.project_id = p.id AND w.enabled = 1
                        AND w.deleted_at IS NULL) AS has_webhooks,
                m.role AS member_role, m.removed_at AS member_removed_at,
                EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.project_id = p.id
                        AND t.jti = ?5) AS token_revoked,
                p.call_max_participants AS call_max_participants,
                p.call_viewers_publish AS call_viewers_publish
         FROM projects p
         LEFT JOIN api_keys k ON k.id = ?2
         LEFT JOIN documents d ON d.project_id = p.id AND d.name = ?3
         LEFT JOIN members m ON m.project_id = p.id AND m.sub = ?4
         WHERE p.id = ?1",
        &[
            text(who.project),
            who.key.map_or(JsValue::NULL, text),
            text(who.room),
            text(who.sub),
            who.jti.map_or(JsValue::NULL, text),
        ],
    )
}

/// The user's standing in `project`.
pub async fn membership(db: &D1Database, project: &str, sub: &str) -> Result<Membership, ApiError> {
    #[derive(Deserialize)]
    struct Member {
        role: Role,
        removed_at: Option<u64>,
    }
    let member: Option<Member> = row(
        db,
        "SELECT role, removed_at FROM members WHERE project_id = ? AND sub = ?",
        &[text(project), text(sub)],
    )
    .await?;
    Ok(match member {
        None => Membership::None,
        Some(Member {
            removed_at: Some(_),
            ..
        }) => Membership::Removed,
        Some(m) => Membership::Member(m.role),
    })
}

/// Most live rooms one revocation reaches from the request that made it (each is a call to
/// a Durable Object, and a Worker invocation may make a bounded number of them).
pub const MAX_LIVE_ROOMS: u64 = 500;

/// The rooms of `project` that have open connections, as they recorded it.
pub async fn live_rooms(db: &D1Database, project: &str) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Live {
        name: String,
    }
    let rows: Vec<Live> = rows(
        db,
        "SELECT name FROM documents WHERE project_id = ? AND live_since IS NOT NULL
         ORDER BY live_since DESC LIMIT ?",
        &[text(project), num(MAX_LIVE_ROOMS)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Records that a room has open connections since `since` (unix ms), or, with `None`, that it
/// has none any more: then only if the mark is still the one set at `was` (a room that went
/// live again meanwhile keeps its newer mark).
pub async fn set_live(
    db: &D1Database,
    project: &str,
    room: &str,
    since: Option<u64>,
    was: u64,
) -> Result<(), ApiError> {
    let stmt = match since {
        Some(at) => stmt(
            db,
            "UPDATE documents SET live_since = ? WHERE project_id = ? AND name = ?",
            &[num(at), text(project), text(room)],
        )?,
        None => stmt(
            db,
            "UPDATE documents SET live_since = NULL
             WHERE project_id = ? AND name = ? AND live_since = ?",
            &[text(project), text(room), num(was)],
        )?,
    };
    stmt.run().await.map_err(fail("d1 live mark"))?;
    Ok(())
}

/// Whether `project` has an enabled webhook subscription. Rooms ask, at most every few seconds
/// of activity, so that a project without subscriptions costs its rooms no change tracking.
pub async fn has_webhooks(db: &D1Database, project: &str) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Exists {
        has_webhooks: u64,
    }
    let found: Option<Exists> = row(
        db,
        "SELECT EXISTS (SELECT 1 FROM webhooks WHERE project_id = ? AND enabled = 1
                        AND deleted_at IS NULL) AS has_webhooks",
        &[text(project)],
    )
    .await?;
    Ok(found.is_some_and(|e| e.has_webhooks != 0))
}
