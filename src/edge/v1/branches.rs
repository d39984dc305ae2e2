//! Branches: a document forked from another (now, or at a version) into a document of its
//! own, listed with how far both sides moved since, and merged back into its parent. Records
//! live in D1 (`branches`); the rooms do the work through typed calls.

use super::history_routes::live_document;
use super::{created, Call, Result};
use crate::api::ApiError;
use crate::auth::AuthError;
use crate::edge::d1::{self, num, text, DocumentState};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::room_client::RoomClient;
use crate::edge::{http, webhook_queue};
use crate::names::{Id, RoomName};
use crate::room_call::{ForkReply, HeadReply, RoomCall};
use crate::routes::RouteId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{Env, Response};

/// `POST .../branches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBranch {
    name: RoomName,
    #[serde(default)]
    version: Option<u64>,
}

/// A `branches` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BranchRow {
    name: String,
    parent: String,
    fork_version: Option<u64>,
    fork_seq: u64,
    base_seq: u64,
    created_at: u64,
    created_by: String,
    merged_at: Option<u64>,
    merges: u64,
}

const BRANCH_COLUMNS: &str =
    "name, parent, fork_version, fork_seq, base_seq, created_at, created_by, merged_at, merges";

/// Most branches one page lists (each costs two room calls).
const MAX_BRANCH_PAGE: u32 = 50;

fn decode_b64(s: &str) -> Result<Vec<u8>> {
    crate::codec::from_base64(s).map_err(|e| {
        log::error("room.bad_base64")
            .message("room sent bad base64")
            .cause(e)
            .emit();
        ApiError::Internal
    })
}

/// Serves the branch routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::ListBranches => list(cx).await,
        RouteId::CreateBranch => create(cx).await,
        RouteId::PreviewMerge => merge(cx, false).await,
        RouteId::MergeBranch => merge(cx, true).await,
        _ => Err(ApiError::NotFound),
    }
}

async fn branch_row(env: &Env, project: &Id, name: &RoomName) -> Result<Option<BranchRow>> {
    d1::row(
        &crate::edge::access::db(env)?,
        &format!("SELECT {BRANCH_COLUMNS} FROM branches WHERE project_id = ? AND name = ?"),
        &[text(project.as_str()), text(name.as_str())],
    )
    .await
}

/// Whether `name` is a branch of some document.
pub(super) async fn is_branch(
    db: &worker::D1Database,
    project: &Id,
    name: &RoomName,
) -> Result<bool> {
    #[derive(Deserialize)]
    struct Found {
        #[allow(dead_code)]
        name: String,
    }
    Ok(d1::row::<Found>(
        db,
        "SELECT name FROM branches WHERE project_id = ? AND name = ?",
        &[text(project.as_str()), text(name.as_str())],
    )
    .await?
    .is_some())
}

async fn head(room: &RoomClient<'_>, after: u64, with_state: bool) -> Result<HeadReply> {
    room.json(RoomCall::Head { after, with_state }, &[]).await
}

async fn list(cx: &mut Call<'_>) -> Result<Response> {
    let (project, parent) = live_document(cx).await?;
    let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    let mut page = crate::pages::Page::parse(
        query.as_deref(),
        crate::pages::key_len(RouteId::ListBranches),
    )?;
    page.limit = page.limit.min(MAX_BRANCH_PAGE);
    let after = |i: usize| super::key_arg(page.after.as_ref().and_then(|k| k.get(i)));
    let mut rows: Vec<BranchRow> = d1::rows(
        &cx.db()?,
        &format!(
            "SELECT {BRANCH_COLUMNS} FROM branches b WHERE project_id = ?1 AND parent = ?2
             AND EXISTS (SELECT 1 FROM documents d WHERE d.project_id = b.project_id
                         AND d.name = b.name AND d.deleted_at IS NULL)
             AND (?3 IS NULL OR (created_at, name) > (?3, ?4))
             ORDER BY created_at, name LIMIT ?5"
        ),
        &[
            text(project.as_str()),
            text(parent.as_str()),
            after(0),
            after(1),
            num(page.fetch() as u64),
        ],
    )
    .await?;
    let next = page.finish(&mut rows, |r| vec![json!(r.created_at), json!(r.name)]);
    let parent_room = RoomClient {
        env: cx.env,
        project: &project,
        room: &parent,
        author: String::new(),
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // Stored names were checked when the branch was made.
        let Ok(name) = RoomName::parse(&row.name) else {
            continue;
        };
        let branch_room = RoomClient {
            env: cx.env,
            project: &project,
            room: &name,
            author: String::new(),
        };
        let ahead = head(&branch_room, row.base_seq, false)
            .await
            .ok()
            .map(|h| h.count);
        let behind = head(&parent_room, row.fork_seq, false)
            .await
            .ok()
            .map(|h| h.count);
        let mut v = serde_json::to_value(&row).map_err(http::internal("row json"))?;
        v["ahead"] = json!(ahead);
        v["behind"] = json!(behind);
        out.push(v);
    }
    http::json(&json!({ "branches": out, "next_cursor": next }))
}

async fn create(cx: &mut Call<'_>) -> Result<Response> {
    let input: CreateBranch = cx.body().await?;
    let (project, parent) = live_document(cx).await?;
    // A room token forks only into a name it covers (the branch is a document of its own).
    if !cx.actor.covers(input.name.as_str()) {
        return Err(AuthError::WrongRoom.into());
    }
    if input.name == parent {
        return Err(ApiError::Conflict(
            "a branch needs a name of its own: this is the document's".into(),
        ));
    }
    let db = cx.db()?;
    if d1::document_state(&db, project.as_str(), input.name.as_str()).await? == DocumentState::Live
    {
        return Err(ApiError::Conflict(format!(
            "document {:?} exists",
            input.name.as_str()
        )));
    }
    let parent_room = RoomClient {
        env: cx.env,
        project: &project,
        room: &parent,
        author: cx.actor_name(),
    };
    // The state the branch starts from, and the parent's log position it holds.
    let (state, fork_seq) = match input.version {
        Some(v) => {
            let meta: Value = parent_room
                .json(
                    RoomCall::GetVersion {
                        id: v,
                        as_update: false,
                    },
                    &[],
                )
                .await?;
            let state = parent_room
                .bytes(
                    RoomCall::GetVersion {
                        id: v,
                        as_update: true,
                    },
                    &[],
                )
                .await?;
            (state, meta["version"]["seq"].as_u64().unwrap_or(0))
        }
        None => {
            let head = head(&parent_room, 0, true).await?;
            (
                decode_b64(head.state.as_deref().unwrap_or_default())?,
                head.head,
            )
        }
    };
    let branch = RoomClient {
        env: cx.env,
        project: &project,
        room: &input.name,
        author: cx.actor_name(),
    };
    let forked: ForkReply = branch
        .json(
            RoomCall::Fork {
                parent: parent.clone(),
            },
            &state,
        )
        .await?;
    let now = now_ms();
    let by = cx.actor_name();
    let (p, name) = (project.as_str(), input.name.as_str());
    d1::batch(
        &db,
        vec![
            d1::live_document(&db, p, name, now, &by)?,
            d1::stmt(
                &db,
                "INSERT INTO branches (project_id, name, parent, fork_version, fork_seq, base_seq, created_at, created_by)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (project_id, name) DO UPDATE SET parent = excluded.parent,
                   fork_version = excluded.fork_version, fork_seq = excluded.fork_seq,
                   base_seq = excluded.base_seq, created_at = excluded.created_at,
                   created_by = excluded.created_by, merged_at = NULL, merged_by = NULL, merges = 0",
                &[
                    text(p),
                    text(name),
                    text(parent.as_str()),
                    input
                        .version
                        .map_or(worker::wasm_bindgen::JsValue::NULL, num),
                    num(fork_seq),
                    num(forked.seq),
                    num(now),
                    text(&by),
                ],
            )?,
            d1::audit(
                &db,
                Some(p),
                &by,
                "branch.created",
                Some(name),
                json!({ "parent": parent, "version": input.version }),
                now,
            )?,
        ],
    )
    .await?;
    let row = BranchRow {
        name: name.to_owned(),
        parent: parent.to_string(),
        fork_version: input.version,
        fork_seq,
        base_seq: forked.seq,
        created_at: now,
        created_by: by.clone(),
        merged_at: None,
        merges: 0,
    };
    webhook_queue::emit(
        cx.env,
        p,
        "branch.created",
        json!({ "project": p, "branch": row, "by": by }),
        None,
    )
    .await;
    let detail = json!({ "branch": name, "parent": parent, "version": input.version });
    if let Err(e) = super::activity::record(
        cx,
        p,
        Some(parent.as_str()),
        &super::activity::actor_of(&cx.actor),
        "branch.created",
        &detail,
    )
    .await
    {
        log::error("activity.record_failed")
            .project(p)
            .room(parent.as_str())
            .cause(format!("{e:?}"))
            .emit();
    }
    let mut body = serde_json::to_value(&row).map_err(http::internal("row json"))?;
    body["ahead"] = json!(0);
    body["behind"] = json!(0);
    created(&body)
}

/// Previews or performs the merge of the branch in the path into its parent: the parent
/// receives what it lacks of the branch, which is exactly what was written on the branch
/// since the fork (the fork state came from the parent). The caller needs access to the
/// parent as well: a preview shows the parent's content.
async fn merge(cx: &mut Call<'_>, apply: bool) -> Result<Response> {
    let (project, branch_name) = live_document(cx).await?;
    let row = branch_row(cx.env, &project, &branch_name)
        .await?
        .ok_or_else(|| {
            ApiError::InvalidBody(format!("{:?} is not a branch", branch_name.as_str()))
        })?;
    let parent_name = RoomName::parse(&row.parent).map_err(|e| {
        log::error("branch.bad_parent")
            .message("a stored parent name does not parse")
            .project(&project)
            .field("parent", row.parent.as_str())
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    if !cx.actor.covers(parent_name.as_str()) {
        return Err(AuthError::WrongRoom.into());
    }
    if d1::document_state(&cx.db()?, project.as_str(), parent_name.as_str()).await?
        != DocumentState::Live
    {
        return Err(ApiError::Conflict(format!(
            "the parent document {:?} was deleted",
            row.parent
        )));
    }
    let author = cx.actor_name();
    let parent = RoomClient {
        env: cx.env,
        project: &project,
        room: &parent_name,
        author: author.clone(),
    };
    let branch = RoomClient {
        env: cx.env,
        project: &project,
        room: &branch_name,
        author: author.clone(),
    };
    let parent_head = head(&parent, 0, false).await?;
    let sv = decode_b64(&parent_head.state_vector)?;
    let update = branch
        .bytes(
            RoomCall::ReadUpdate {
                state_vector: Some(sv),
                v2: false,
            },
            &[],
        )
        .await?;
    let branch_head = head(&branch, row.base_seq, false).await?;
    // The review gate, after the reads and before the write: only a merge checks it.
    let unreviewed = if apply {
        let role = cx.actor.ceiling();
        super::reviews::merge_gate(&cx.db()?, &project, &branch_name, role, branch_head.head)
            .await?
    } else {
        false
    };
    let mut result: Value = parent
        .json(
            RoomCall::Merge {
                branch: branch_name.clone(),
                preview: !apply,
            },
            &update,
        )
        .await?;
    result["branch"] = json!(branch_name);
    result["parent"] = json!(row.parent);
    result["authors"] = json!(branch_head.authors);
    if apply {
        result["without_approved_review"] = json!(unreviewed);
    }
    if apply && result["changed"] == json!(true) {
        let db = cx.db()?;
        let now = now_ms();
        let p = project.as_str();
        d1::batch(
            &db,
            vec![
                d1::stmt(
                    &db,
                    "UPDATE branches SET merged_at = ?, merged_by = ?, merges = merges + 1
                     WHERE project_id = ? AND name = ?",
                    &[num(now), text(&author), text(p), text(branch_name.as_str())],
                )?,
                d1::audit(
                    &db,
                    Some(p),
                    &author,
                    "branch.merged",
                    Some(branch_name.as_str()),
                    json!({ "parent": row.parent, "version": result["version"]["id"], "without_approved_review": unreviewed }),
                    now,
                )?,
            ],
        )
        .await?;
        let detail = json!({ "branch": branch_name, "parent": row.parent, "version": result["version"]["id"], "without_approved_review": unreviewed });
        if let Err(e) = super::activity::record(
            cx,
            p,
            Some(&row.parent),
            &super::activity::actor_of(&cx.actor),
            "branch.merged",
            &detail,
        )
        .await
        {
            log::error("activity.record_failed")
                .project(p)
                .room(&row.parent)
                .cause(format!("{e:?}"))
                .emit();
        }
        webhook_queue::emit(
            cx.env,
            p,
            "branch.merged",
            json!({
                "project": p, "branch": branch_name, "parent": row.parent,
                "by": author, "authors": result["authors"], "version": result["version"],
            }),
            None,
        )
        .await;
    }
    http::json(&result)
}
