//! Branches: a document forked from another (now, or at a version) into a document of its
//! own, listed with how far both sides moved since, and merged back into its parent. Records
//! live in D1 (`branches`); the rooms do the work under `/__history/`.

use super::access::{self, now_ms, Actor};
use super::d1::{self, num, text, DocumentState};
use super::history_api::{decode_b64, RoomCall};
use super::http;
use crate::api::{parse_body, validate_room_name, ApiError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// `POST .../branches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBranch {
    name: String,
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

async fn branch_row(env: &Env, project: &str, name: &str) -> Result<Option<BranchRow>> {
    d1::row(
        &access::db(env)?,
        &format!("SELECT {BRANCH_COLUMNS} FROM branches WHERE project_id = ? AND name = ?"),
        &[text(project), text(name)],
    )
    .await
}

pub(super) async fn list_branches(env: &Env, project: &str, parent: &str) -> Result<Response> {
    let rows: Vec<BranchRow> = d1::rows(
        &access::db(env)?,
        &format!(
            "SELECT {BRANCH_COLUMNS} FROM branches b WHERE project_id = ? AND parent = ?
             AND EXISTS (SELECT 1 FROM documents d WHERE d.project_id = b.project_id
                         AND d.name = b.name AND d.deleted_at IS NULL)
             ORDER BY created_at"
        ),
        &[text(project), text(parent)],
    )
    .await?;
    let parent_room = RoomCall {
        env,
        project,
        room: parent,
        author: String::new(),
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let branch_room = RoomCall {
            env,
            project,
            room: &row.name,
            author: String::new(),
        };
        let count =
            |v: std::result::Result<Value, Response>| v.ok().and_then(|v| v["count"].as_u64());
        let ahead = count(
            branch_room
                .json(
                    Method::Get,
                    &format!("/__history/head?after={}", row.base_seq),
                    None,
                )
                .await?,
        );
        let behind = count(
            parent_room
                .json(
                    Method::Get,
                    &format!("/__history/head?after={}", row.fork_seq),
                    None,
                )
                .await?,
        );
        let mut v = serde_json::to_value(&row).map_err(|_| ApiError::Internal)?;
        v["ahead"] = json!(ahead);
        v["behind"] = json!(behind);
        out.push(v);
    }
    http::json(&json!({ "branches": out }))
}

pub(super) async fn create_branch(
    req: &mut Request,
    env: &Env,
    actor: &Actor,
    parent: &RoomCall<'_>,
) -> Result<Response> {
    let bytes = req
        .bytes()
        .await
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let input: CreateBranch = parse_body(&bytes)?;
    validate_room_name(&input.name)?;
    if input.name == parent.room {
        return Err(ApiError::InvalidBody(
            "a branch needs a name of its own".into(),
        ));
    }
    let db = access::db(env)?;
    if d1::document_state(&db, parent.project, &input.name).await? == DocumentState::Live {
        return Err(ApiError::Conflict(format!(
            "document {:?} exists",
            input.name
        )));
    }
    // The state the branch starts from, and the parent's log position it holds.
    let (state, fork_seq) = match input.version {
        Some(v) => {
            let meta = match parent
                .json(Method::Get, &format!("/__history/versions/{v}"), None)
                .await?
            {
                Ok(meta) => meta,
                Err(problem) => return Ok(problem),
            };
            let mut resp = parent
                .send(
                    Method::Get,
                    &format!("/__history/versions/{v}/update"),
                    None,
                )
                .await?;
            let state = resp
                .bytes()
                .await
                .map_err(http::internal("version bytes"))?;
            (state, meta["version"]["seq"].as_u64().unwrap_or(0))
        }
        None => {
            let head = match parent
                .json(Method::Get, "/__history/head?state=1", None)
                .await?
            {
                Ok(head) => head,
                Err(problem) => return Ok(problem),
            };
            (
                decode_b64(&head["state"])?,
                head["head"].as_u64().unwrap_or(0),
            )
        }
    };
    let branch = RoomCall {
        env: parent.env,
        project: parent.project,
        room: &input.name,
        author: actor.name(),
    };
    let forked = match branch
        .json(
            Method::Post,
            &format!("/__history/fork?parent={}", parent.room),
            Some(state),
        )
        .await?
    {
        Ok(v) => v,
        Err(problem) => return Ok(problem),
    };
    let now = now_ms();
    let by = d1::actor_name(actor);
    let base_seq = forked["seq"].as_u64().unwrap_or(1);
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO documents (project_id, name, created_at, created_by) VALUES (?, ?, ?, ?)
                 ON CONFLICT (project_id, name) DO UPDATE SET deleted_at = NULL, created_at = excluded.created_at, created_by = excluded.created_by",
                &[text(parent.project), text(&input.name), num(now), text(&by)],
            )?,
            d1::stmt(
                &db,
                "INSERT INTO branches (project_id, name, parent, fork_version, fork_seq, base_seq, created_at, created_by)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (project_id, name) DO UPDATE SET parent = excluded.parent,
                   fork_version = excluded.fork_version, fork_seq = excluded.fork_seq,
                   base_seq = excluded.base_seq, created_at = excluded.created_at,
                   created_by = excluded.created_by, merged_at = NULL, merged_by = NULL, merges = 0",
                &[
                    text(parent.project),
                    text(&input.name),
                    text(parent.room),
                    input.version.map_or(wasm_null(), num),
                    num(fork_seq),
                    num(base_seq),
                    num(now),
                    text(&by),
                ],
            )?,
            d1::audit(
                &db,
                Some(parent.project),
                &by,
                "branch.created",
                Some(&input.name),
                json!({ "parent": parent.room, "version": input.version }),
                now,
            )?,
        ],
    )
    .await?;
    let row = BranchRow {
        name: input.name.clone(),
        parent: parent.room.to_owned(),
        fork_version: input.version,
        fork_seq,
        base_seq,
        created_at: now,
        created_by: by.clone(),
        merged_at: None,
        merges: 0,
    };
    super::webhook_queue::emit(
        env,
        parent.project,
        "branch.created",
        json!({ "project": parent.project, "branch": row, "by": by }),
        None,
    )
    .await;
    let mut body = serde_json::to_value(&row).map_err(|_| ApiError::Internal)?;
    body["ahead"] = json!(0);
    body["behind"] = json!(0);
    Ok(http::json(&body)?.with_status(201))
}

fn wasm_null() -> worker::wasm_bindgen::JsValue {
    worker::wasm_bindgen::JsValue::NULL
}

/// Previews or performs the merge of the branch `branch` into its parent: the parent receives
/// what it lacks of the branch, which is exactly what was written on the branch since the fork
/// (the fork state came from the parent).
pub(super) async fn merge(
    env: &Env,
    actor: &Actor,
    branch: &RoomCall<'_>,
    apply: bool,
) -> Result<Response> {
    let row = branch_row(env, branch.project, branch.room)
        .await?
        .ok_or_else(|| ApiError::InvalidBody(format!("{:?} is not a branch", branch.room)))?;
    let parent = RoomCall {
        env,
        project: branch.project,
        room: &row.parent,
        author: actor.name(),
    };
    if d1::document_state(&access::db(env)?, branch.project, &row.parent).await?
        != DocumentState::Live
    {
        return Err(ApiError::Conflict(format!(
            "the parent document {:?} was deleted",
            row.parent
        )));
    }
    let head = match parent.json(Method::Get, "/__history/head", None).await? {
        Ok(h) => h,
        Err(problem) => return Ok(problem),
    };
    let sv = decode_b64(&head["state_vector"])?;
    let mut resp = branch
        .send(
            Method::Get,
            &format!("/__doc/update?sv={}", access::hex(&sv)),
            None,
        )
        .await?;
    if resp.status_code() != 200 {
        return Ok(resp);
    }
    let update = resp
        .bytes()
        .await
        .map_err(http::internal("branch update"))?;
    let branch_head = match branch
        .json(
            Method::Get,
            &format!("/__history/head?after={}", row.base_seq),
            None,
        )
        .await?
    {
        Ok(h) => h,
        Err(problem) => return Ok(problem),
    };
    let path = format!(
        "/__history/merge?branch={}{}",
        branch.room,
        if apply { "" } else { "&preview=1" }
    );
    let mut result = match parent.json(Method::Post, &path, Some(update)).await? {
        Ok(v) => v,
        Err(problem) => return Ok(problem),
    };
    result["branch"] = json!(branch.room);
    result["parent"] = json!(row.parent);
    result["authors"] = branch_head["authors"].clone();
    if apply && result["changed"] == json!(true) {
        let db = access::db(env)?;
        let now = now_ms();
        let by = d1::actor_name(actor);
        d1::batch(
            &db,
            vec![
                d1::stmt(
                    &db,
                    "UPDATE branches SET merged_at = ?, merged_by = ?, merges = merges + 1
                     WHERE project_id = ? AND name = ?",
                    &[num(now), text(&by), text(branch.project), text(branch.room)],
                )?,
                d1::audit(
                    &db,
                    Some(branch.project),
                    &by,
                    "branch.merged",
                    Some(branch.room),
                    json!({ "parent": row.parent, "version": result["version"]["id"] }),
                    now,
                )?,
            ],
        )
        .await?;
        super::webhook_queue::emit(
            env,
            branch.project,
            "branch.merged",
            json!({
                "project": branch.project, "branch": branch.room, "parent": row.parent,
                "by": by, "authors": result["authors"], "version": result["version"],
            }),
            None,
        )
        .await;
    }
    http::json(&result)
}
