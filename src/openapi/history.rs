//! The OpenAPI shapes of the history routes: versions, diff, replay, branches (and the project
//! settings that hold the retention policy).

use super::{json_body, json_content, ok, schema};
use crate::routes::RouteId;
use serde_json::{json, Value};

/// Request body and success response of a history route.
pub(super) fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    use RouteId::*;
    match id {
        UpdateProject => (
            Some(json_body("UpdateProject")),
            ok("200", "The changed project", json_content("Project")),
        ),
        ListVersions => (
            None,
            ok("200", "Versions, newest first", json_content("VersionList")),
        ),
        CreateVersion => (
            Some(json_body("CreateVersion")),
            ok("201", "The new version", json_content("Version")),
        ),
        GetVersion => (
            None,
            ok(
                "200",
                "The version and its content",
                json_content("VersionContent"),
            ),
        ),
        GetVersionUpdate => (
            None,
            ok(
                "200",
                "The version's whole state, a v1 Yjs update",
                Some(super::binary()),
            ),
        ),
        DeleteVersion => (None, ok("200", "Deleted", json_content("Deleted"))),
        RestoreVersion => (
            None,
            ok(
                "200",
                "Restored as a new change (changed: false when the content already matched)",
                json_content("Restored"),
            ),
        ),
        DiffVersions => (
            None,
            ok("200", "What changed, root by root", json_content("Diff")),
        ),
        ReplayHistory => (
            None,
            ok(
                "200",
                "Stored updates in order, one page",
                json_content("Replay"),
            ),
        ),
        DocumentAt => (
            None,
            ok(
                "200",
                "The document at that instant (JSON, or with format=update a v1 update)",
                json_content("DocumentAt"),
            ),
        ),
        ListBranches => (None, ok("200", "Branches", json_content("BranchList"))),
        CreateBranch => (
            Some(json_body("CreateBranch")),
            ok("201", "The branch, a new document", json_content("Branch")),
        ),
        PreviewMerge => (
            None,
            ok(
                "200",
                "What a merge would change in the parent",
                json_content("MergePreview"),
            ),
        ),
        MergeBranch => (
            None,
            ok(
                "200",
                "Merged (changed: false when nothing was new)",
                json_content("Merged"),
            ),
        ),
        _ => unreachable!("not a history route: {id:?}"),
    }
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// Query parameters of a history route.
pub(super) fn parameters(id: RouteId) -> Vec<Value> {
    let int = json!({ "type": "integer", "minimum": 0 });
    match id {
        RouteId::ListVersions => vec![
            query(
                "limit",
                "At most this many (1-200, default 50)",
                int.clone(),
            ),
            query(
                "before",
                "Only versions with a smaller id (the next_before of the previous page)",
                int,
            ),
        ],
        RouteId::DiffVersions => vec![
            json!({ "name": "from", "in": "query", "required": true, "description": "A version id, or current", "schema": { "type": "string" } }),
            query(
                "to",
                "A version id, or current (the default)",
                json!({ "type": "string" }),
            ),
        ],
        RouteId::ReplayHistory => vec![
            query(
                "after",
                "Only updates with a larger seq (the next_after of the previous page)",
                int.clone(),
            ),
            query(
                "from",
                "Only updates stored at or after this unix ms",
                int.clone(),
            ),
            query(
                "to",
                "Only updates stored at or before this unix ms",
                int.clone(),
            ),
            query("limit", "At most this many (1-1000, default 1000)", int),
        ],
        RouteId::DocumentAt => vec![
            json!({ "name": "t", "in": "query", "required": true, "description": "Unix ms", "schema": int }),
            query(
                "format",
                "json (default) or update",
                json!({ "type": "string", "enum": ["json", "update"] }),
            ),
        ],
        _ => vec![],
    }
}

/// The schemas the history routes use.
pub(super) fn schemas() -> Value {
    let ms = json!({ "type": "integer", "description": "Unix milliseconds" });
    let int = json!({ "type": "integer" });
    let text = json!({ "type": "string" });
    let texts = json!({ "type": "array", "items": { "type": "string" } });
    let content = json!({ "type": "object", "description": "Root types rendered as JSON, as GET .../documents/{document} has them" });
    json!({
        "UpdateProject": { "type": "object", "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 128 },
            "history_retention_days": { "type": ["integer", "null"], "minimum": 0, "maximum": 36500,
                "description": "Days of update log and automatic versions kept; 0 keeps everything, null restores the default (30)" } },
            "additionalProperties": false },
        "CreateVersion": { "type": "object", "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": crate::versions::MAX_NAME_CHARS },
            "description": { "type": "string", "maxLength": crate::versions::MAX_DESCRIPTION_CHARS } },
            "required": ["name"], "additionalProperties": false },
        "Version": { "type": "object", "properties": {
            "id": int, "kind": { "type": "string", "enum": ["auto", "named", "restore", "merge", "fork"] },
            "name": text, "description": text, "author": text,
            "authors": { "type": "array", "items": text, "description": "Who changed the document since the previous version" },
            "at": ms, "seq": { "type": "integer", "description": "The last log entry the version includes" },
            "bytes": int, "storage": { "type": "string", "enum": ["sql", "r2"] } },
            "required": ["id", "kind", "author", "authors", "at", "seq", "bytes", "storage"] },
        "VersionList": { "type": "object", "properties": { "versions": { "type": "array", "items": schema("Version") },
            "next_before": { "type": ["integer", "null"] } } },
        "VersionContent": { "type": "object", "properties": { "version": schema("Version"), "content": content } },
        "Restored": { "type": "object", "properties": { "changed": { "type": "boolean" }, "restored": schema("Version"), "version": schema("Version") } },
        "Diff": { "type": "object", "properties": {
            "from": { "type": ["integer", "string"] }, "to": { "type": ["integer", "string"] },
            "from_seq": int, "to_seq": int, "authors": texts.clone(), "changes": schema("Changes") } },
        "Changes": { "type": "object", "description": "Per changed root: kind (text, map, array, xml, other); texts and arrays as ops (retain / insert / delete), maps as added / removed / changed keys", "properties": {
            "roots": { "type": "array", "items": { "type": "object", "properties": { "root": text, "kind": text } } } } },
        "Replay": { "type": "object", "properties": {
            "updates": { "type": "array", "items": { "type": "object", "properties": {
                "seq": int, "at": ms, "author": text, "update": { "type": "string", "description": "Base64 v1 Yjs update" } } } },
            "next_after": { "type": ["integer", "null"] },
            "earliest": { "type": ["object", "null"], "properties": { "seq": int, "at": ms } } } },
        "DocumentAt": { "type": "object", "properties": { "t": ms, "seq": int, "content": content } },
        "CreateBranch": { "type": "object", "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,128}$", "description": "The branch's document name" },
            "version": { "type": "integer", "description": "Fork at this version instead of the current state" } },
            "required": ["name"], "additionalProperties": false },
        "Branch": { "type": "object", "properties": {
            "name": text, "parent": text, "fork_version": { "type": ["integer", "null"] }, "fork_seq": int,
            "created_at": ms, "created_by": text, "merged_at": { "type": ["integer", "null"] }, "merges": int,
            "ahead": { "type": "integer", "description": "Changes on the branch since the fork" },
            "behind": { "type": "integer", "description": "Changes on the parent since the fork" } } },
        "BranchList": { "type": "object", "properties": { "branches": { "type": "array", "items": schema("Branch") } } },
        "MergePreview": { "type": "object", "properties": { "branch": text, "parent": text, "authors": texts, "changes": schema("Changes") } },
        "Merged": { "type": "object", "properties": { "changed": { "type": "boolean" }, "version": schema("Version") } },
    })
}
