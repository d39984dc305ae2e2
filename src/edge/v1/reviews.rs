//! Reviews: a request that named members review a branch (or a version of a document), their
//! verdicts, and the state that follows — pending, approved, changes requested, withdrawn. A
//! project may require an approved review before a branch merges ([`merge_gate`]).

use super::{activity, created, inbox, Call, Result};
use crate::api::ApiError;
use crate::auth::Role;
use crate::edge::d1::{self, num, text};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::room_client::RoomClient;
use crate::edge::{http, webhook_queue};
use crate::names::{Id, RoomName};
use crate::room_call::{HeadReply, RoomCall};
use crate::routes::RouteId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Response};

use crate::conversations::MAX_REVIEWERS;

/// `POST .../reviews`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestReview {
    reviewers: Vec<String>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    comment: Option<String>,
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Approved,
    ChangesRequested,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::ChangesRequested => "changes_requested",
        }
    }
}

/// `POST .../reviews/{review}/verdicts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitVerdict {
    verdict: Verdict,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReviewRow {
    id: u64,
    document: String,
    version: Option<u64>,
    requested_by: String,
    comment: Option<String>,
    reviewers: String,
    state: String,
    created_at: u64,
    updated_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VerdictRow {
    reviewer: String,
    verdict: Verdict,
    comment: Option<String>,
    at: u64,
    /// The branch's log position when it was given (reviews of a branch).
    #[serde(default)]
    seq: Option<u64>,
}

const REVIEW_COLUMNS: &str =
    "id, document, version, requested_by, comment, reviewers, state, created_at, updated_at";

fn check_comment(c: &Option<String>) -> Result<()> {
    if let Some(c) = c {
        crate::conversations::check_review_comment(c).map_err(ApiError::InvalidBody)?;
    }
    Ok(())
}

/// The state a review's verdicts give it: any request for changes wins, then all approvals.
fn state_of(reviewers: &[String], verdicts: &[VerdictRow]) -> &'static str {
    if verdicts
        .iter()
        .any(|v| v.verdict == Verdict::ChangesRequested)
    {
        "changes_requested"
    } else if reviewers.iter().all(|r| {
        verdicts
            .iter()
            .any(|v| v.reviewer == *r && v.verdict == Verdict::Approved)
    }) {
        "approved"
    } else {
        "pending"
    }
}

async fn review(db: &D1Database, project: &str, document: &str, id: u64) -> Result<ReviewRow> {
    d1::row(
        db,
        &format!(
            "SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ? AND project_id = ? AND document = ?"
        ),
        &[num(id), text(project), text(document)],
    )
    .await?
    .ok_or_else(|| ApiError::Missing("review", id.to_string()))
}

async fn verdicts(db: &D1Database, id: u64) -> Result<Vec<VerdictRow>> {
    d1::rows(
        db,
        "SELECT reviewer, verdict, comment, at, seq FROM review_verdicts WHERE review_id = ? ORDER BY at",
        &[num(id)],
    )
    .await
}

fn reviewers_of(row: &ReviewRow) -> Vec<String> {
    serde_json::from_str(&row.reviewers).unwrap_or_default()
}

async fn view(db: &D1Database, row: ReviewRow) -> Result<Value> {
    let verdicts = verdicts(db, row.id).await?;
    let reviewers = reviewers_of(&row);
    Ok(json!({
        "id": row.id, "document": row.document, "version": row.version,
        "requested_by": row.requested_by, "comment": row.comment, "reviewers": reviewers,
        "state": row.state, "verdicts": verdicts, "created_at": row.created_at,
        "updated_at": row.updated_at,
    }))
}

/// Serves the review routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let (project, document) = super::history_routes::live_document(cx).await?;
    let (actor, role) = super::conversations::participant(cx).await?;
    let db = cx.db()?;
    let (p, d) = (project.as_str(), document.as_str());
    match id {
        RouteId::ListReviews => {
            let q = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
            let q = q.as_deref();
            let crate::queries::FeedPage { limit, before } = crate::queries::feed_page(q)?;
            let limit = u64::from(limit);
            let rows: Vec<ReviewRow> = d1::rows(
                &db,
                &format!(
                    "SELECT {REVIEW_COLUMNS} FROM reviews WHERE project_id = ?1 AND document = ?2
                       AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
                ),
                &[
                    text(p),
                    text(d),
                    before.map_or(JsValue::NULL, num),
                    num(limit),
                ],
            )
            .await?;
            let next =
                crate::queries::next_before(&rows.iter().map(|r| r.id).collect::<Vec<_>>(), limit);
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(view(&db, row).await?);
            }
            http::json(&json!({ "reviews": out, "next_before": next }))
        }
        RouteId::GetReview => {
            http::json(&view(&db, review(&db, p, d, cx.params.review()?).await?).await?)
        }
        RouteId::RequestReview => {
            let input: RequestReview = cx.body().await?;
            check_comment(&input.comment)?;
            let mut reviewers = input.reviewers.clone();
            reviewers.sort();
            reviewers.dedup();
            if reviewers.is_empty()
                || reviewers.len() > MAX_REVIEWERS
                || reviewers.len() != input.reviewers.len()
            {
                return Err(ApiError::InvalidBody(format!(
                    "reviewers names 1 to {MAX_REVIEWERS} distinct members"
                )));
            }
            for r in &reviewers {
                crate::auth::validate_sub(r)
                    .map_err(|e| ApiError::InvalidBody(format!("reviewer: {e}")))?;
            }
            if reviewers.contains(&actor) {
                return Err(ApiError::InvalidBody(
                    "a review is asked of others, not of oneself".into(),
                ));
            }
            let members = inbox::members_among(&db, p, &reviewers).await?;
            let strangers: Vec<&String> =
                reviewers.iter().filter(|r| !members.contains(r)).collect();
            if !strangers.is_empty() {
                return Err(ApiError::InvalidBody(format!(
                    "reviewers must be members of the project; these are not: {strangers:?}"
                )));
            }
            let is_branch = super::branches::is_branch(&db, &project, &document).await?;
            match input.version {
                Some(v) => {
                    // The version must exist: the room answers 404 otherwise.
                    let room = RoomClient {
                        env: cx.env,
                        project: &project,
                        room: &document,
                        author: actor.clone(),
                    };
                    room.send(
                        RoomCall::GetVersion {
                            id: v,
                            as_update: false,
                        },
                        &[],
                    )
                    .await?;
                }
                None if !is_branch => {
                    return Err(ApiError::InvalidBody(format!(
                        "{d:?} is not a branch: name a version to review"
                    )))
                }
                None => {}
            }
            let now = now_ms();
            #[derive(Deserialize)]
            struct Inserted {
                id: u64,
            }
            let inserted: Inserted = d1::row(
                &db,
                "INSERT INTO reviews (project_id, document, version, requested_by, comment, reviewers, state, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
                &[
                    text(p), text(d), input.version.map_or(JsValue::NULL, num), text(&actor),
                    input.comment.as_deref().map_or(JsValue::NULL, text),
                    text(&serde_json::to_string(&reviewers).map_err(http::internal("reviewers"))?),
                    num(now), num(now),
                ],
            )
            .await?
            .ok_or(ApiError::Internal)?;
            let row = review(&db, p, d, inserted.id).await?;
            let body = view(&db, row).await?;
            let data = json!({ "project": p, "document": d, "review": body, "actor": actor });
            let notices = reviewers
                .iter()
                .map(|r| inbox::Notice {
                    sub: r.clone(),
                    kind: "review",
                    document: Some(d),
                    thread: None,
                    comment: None,
                    review: Some(inserted.id),
                    actor: &actor,
                    excerpt: input.comment.clone(),
                })
                .collect();
            after(cx, p, d, &actor, "review.requested", &data, notices).await;
            created(&body)
        }
        RouteId::SubmitReview => {
            let input: SubmitVerdict = cx.body().await?;
            check_comment(&input.comment)?;
            let row = review(&db, p, d, cx.params.review()?).await?;
            let reviewers = reviewers_of(&row);
            if !reviewers.contains(&actor) {
                return Err(ApiError::NotPermitted(
                    "only a reviewer this review names gives a verdict".into(),
                ));
            }
            if row.state == "withdrawn" {
                return Err(ApiError::Conflict("the review was withdrawn".into()));
            }
            let _ = role;
            let now = now_ms();
            // A verdict on a branch is of the branch as it stands: its log position is kept, so
            // that the merge gate can tell an approval of what is merged from an older one.
            let seq = match row.version {
                Some(_) => None,
                None => {
                    let room = RoomClient {
                        env: cx.env,
                        project: &project,
                        room: &document,
                        author: actor.clone(),
                    };
                    let head: HeadReply = room
                        .json(
                            RoomCall::Head {
                                after: 0,
                                with_state: false,
                            },
                            &[],
                        )
                        .await?;
                    Some(head.head)
                }
            };
            d1::stmt(
                &db,
                "INSERT INTO review_verdicts (review_id, reviewer, verdict, comment, at, seq) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (review_id, reviewer) DO UPDATE SET verdict = excluded.verdict,
                   comment = excluded.comment, at = excluded.at, seq = excluded.seq",
                &[num(row.id), text(&actor), text(input.verdict.as_str()),
                  input.comment.as_deref().map_or(JsValue::NULL, text), num(now),
                  seq.map_or(JsValue::NULL, num)],
            )?
            .run()
            .await
            .map_err(http::internal("verdict"))?;
            let state = state_of(&reviewers, &verdicts(&db, row.id).await?);
            d1::stmt(
                &db,
                "UPDATE reviews SET state = ?, updated_at = ? WHERE id = ?",
                &[text(state), num(now), num(row.id)],
            )?
            .run()
            .await
            .map_err(http::internal("review state"))?;
            let was = row.state.clone();
            let body = view(&db, review(&db, p, d, row.id).await?).await?;
            let data = json!({ "project": p, "document": d, "review": body, "actor": actor, "verdict": input.verdict });
            let notices = vec![inbox::Notice {
                sub: row.requested_by.clone(),
                kind: "review",
                document: Some(d),
                thread: None,
                comment: None,
                review: Some(row.id),
                actor: &actor,
                excerpt: input.comment.clone(),
            }];
            after(cx, p, d, &actor, "review.submitted", &data, notices).await;
            if state != was && state != "pending" {
                after(cx, p, d, &actor, "review.completed", &data, Vec::new()).await;
            }
            http::json(&body)
        }
        RouteId::WithdrawReview => {
            let row = review(&db, p, d, cx.params.review()?).await?;
            if row.requested_by != actor && role < Role::Owner {
                return Err(ApiError::NotPermitted(
                    "a review is withdrawn by whoever asked for it, or an owner".into(),
                ));
            }
            d1::stmt(
                &db,
                "UPDATE reviews SET state = 'withdrawn', updated_at = ? WHERE id = ?",
                &[num(now_ms()), num(row.id)],
            )?
            .run()
            .await
            .map_err(http::internal("withdraw"))?;
            let body = view(&db, review(&db, p, d, row.id).await?).await?;
            let data = json!({ "project": p, "document": d, "review": body, "actor": actor });
            after(cx, p, d, &actor, "review.withdrawn", &data, Vec::new()).await;
            http::json(&body)
        }
        _ => Err(ApiError::NotFound),
    }
}

/// The activity row, the inbox entries and the webhook event of a review change.
async fn after(
    cx: &Call<'_>,
    project: &str,
    document: &str,
    actor: &str,
    kind: &str,
    data: &Value,
    notices: Vec<inbox::Notice<'_>>,
) {
    if let Err(e) = activity::record(cx, project, Some(document), actor, kind, data).await {
        log::error("activity.record_failed")
            .project(project)
            .room(document)
            .cause(format!("{e:?}"))
            .emit();
    }
    if let Err(e) = inbox::store(cx, project, notices).await {
        log::error("inbox.fill_failed")
            .project(project)
            .room(document)
            .cause(format!("{e:?}"))
            .emit();
    }
    if let Some(review) = data["review"]["id"].as_u64() {
        let notice = crate::conversations::Notice::ReviewChanged {
            event: kind.to_owned(),
            review,
            actor: actor.to_owned(),
        };
        inbox::tell_room(cx, project, document, notice).await;
    }
    webhook_queue::emit(cx.env, project, kind, data.clone(), None).await;
}

/// Whether a merge of `branch`, whose log stands at `head`, may go ahead: when the project
/// requires reviews, a review of the branch must be approved, every approval given at `head`
/// (an approval of an older state of the branch does not approve what changed since). Owners
/// always may (the merge records that it went without one). Returns whether the gate was
/// passed by an owner's say-so.
pub async fn merge_gate(
    db: &D1Database,
    project: &Id,
    branch: &RoomName,
    role: Role,
    head: u64,
) -> Result<bool> {
    #[derive(Deserialize)]
    struct Setting {
        require_review: u64,
    }
    let required = d1::row::<Setting>(
        db,
        "SELECT require_review FROM projects WHERE id = ?",
        &[text(project.as_str())],
    )
    .await?
    .is_some_and(|s| s.require_review != 0);
    if !required {
        return Ok(false);
    }
    #[derive(Deserialize)]
    struct Approved {
        oldest: Option<u64>,
    }
    let approved: Vec<Approved> = d1::rows(
        db,
        "SELECT MIN(COALESCE(v.seq, 0)) AS oldest FROM reviews r
           JOIN review_verdicts v ON v.review_id = r.id AND v.verdict = 'approved'
         WHERE r.project_id = ? AND r.document = ? AND r.version IS NULL AND r.state = 'approved'
         GROUP BY r.id",
        &[text(project.as_str()), text(branch.as_str())],
    )
    .await?;
    if approved.iter().any(|a| a.oldest.is_some_and(|s| s >= head)) {
        return Ok(false);
    }
    if role >= Role::Owner {
        return Ok(true);
    }
    #[derive(Deserialize)]
    struct Count {
        waiting: u64,
    }
    let waiting = d1::row::<Count>(
        db,
        "SELECT COUNT(*) AS waiting FROM reviews WHERE project_id = ? AND document = ?
           AND version IS NULL AND state IN ('pending', 'changes_requested')",
        &[text(project.as_str()), text(branch.as_str())],
    )
    .await?
    .map_or(0, |c| c.waiting);
    let name = branch.as_str();
    Err(ApiError::Conflict(if !approved.is_empty() {
        format!(
            "the project requires an approved review before a merge: {name:?} changed after its approval; ask the reviewers again"
        )
    } else if waiting > 0 {
        format!(
            "the project requires an approved review before a merge: {waiting} review(s) of {name:?} wait for approval"
        )
    } else {
        format!(
            "the project requires an approved review before a merge: request a review of {name:?}"
        )
    }))
}
