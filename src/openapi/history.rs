//! The OpenAPI shapes of the history routes: versions, diff, replay, branches (and the project
//! settings that hold the retention policy).

use super::schemas::{nullable, object};
use super::{json_body, json_content, ok, patterns, schema};
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
        DeleteVersion => (None, ok("200", "Deleted", json_content("DeletedVersion"))),
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
                "The document at that instant: JSON, or with format=update its state as a v1 Yjs update",
                Some(json!({
                    "application/json": { "schema": schema("DocumentAt") },
                    "application/octet-stream": super::binary()["application/octet-stream"],
                })),
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

/// The schemas the history routes use.
pub(super) fn schemas() -> Value {
    let ms = json!({ "type": "integer", "minimum": 0, "description": "Unix milliseconds" });
    let ms_or_null =
        json!({ "type": ["integer", "null"], "minimum": 0, "description": "Unix milliseconds" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let texts = json!({ "type": "array", "items": { "type": "string" } });
    let content = json!({ "type": "object", "description": "Root types rendered as JSON, as GET .../documents/{document} has them" });
    let side = json!({ "oneOf": [{ "type": "integer", "minimum": 0 }, { "const": "current" }] });
    let branch = object(
        json!({
        "name": text, "parent": text, "fork_version": { "type": ["integer", "null"], "minimum": 0 }, "fork_seq": int,
        "base_seq": { "type": "integer", "minimum": 0, "description": "The branch's own log position right after the fork" },
        "created_at": ms, "created_by": text, "merged_at": ms_or_null, "merges": int,
        "ahead": { "type": ["integer", "null"], "minimum": 0, "description": "Changes on the branch since the fork (null: the branch's room did not answer)" },
        "behind": { "type": ["integer", "null"], "minimum": 0, "description": "Changes on the parent since the fork (null: the parent's room did not answer)" } }),
        &[
            "name",
            "parent",
            "fork_version",
            "fork_seq",
            "base_seq",
            "created_at",
            "created_by",
            "merged_at",
            "merges",
            "ahead",
            "behind",
        ],
    );
    json!({
        "UpdateProject": object(json!({
            "name": { "type": ["string", "null"], "minLength": 1, "maxLength": 128, "pattern": patterns::DISPLAY_NAME,
                "description": "1 to 128 characters, no control characters, not only whitespace" },
            "history_retention_days": { "type": ["integer", "null"], "minimum": 0, "maximum": crate::api::MAX_RETENTION_DAYS,
                "description": "Days of update log and automatic versions kept; 0 keeps everything, null restores the default (30)" },
            "require_review_for_merge": { "type": ["boolean", "null"], "description": "Merges need an approved review of the branch (owners may merge without; the merge records it). null or absent: unchanged" },
            "notification_delay_seconds": { "type": ["integer", "null"], "minimum": 0, "maximum": crate::api::MAX_NOTIFICATION_DELAY_SECONDS,
                "description": "Seconds an unread notification waits before its notification.created webhook; read first, none is sent. null or absent: unchanged" },
            "asset_quota_bytes": { "type": ["integer", "null"], "minimum": 1, "maximum": crate::api::MAX_ASSET_BYTES,
                "description": "Total bytes the project's assets may take; null restores the server's default (ASSET_QUOTA_BYTES)" },
            "asset_max_file_bytes": { "type": ["integer", "null"], "minimum": 1, "maximum": crate::api::MAX_ASSET_BYTES,
                "description": "Largest asset file; null restores the server's default (ASSET_MAX_FILE_BYTES)" },
            "asset_trash_days": { "type": ["integer", "null"], "minimum": 0, "maximum": crate::api::MAX_TRASH_DAYS,
                "description": "Days a deleted asset stays in the trash before it is purged; null restores the server's default (ASSET_TRASH_DAYS)" },
            "call_max_participants": { "type": ["integer", "null"], "minimum": crate::signal::MIN_PARTICIPANTS, "maximum": crate::signal::MAX_PARTICIPANTS,
                "description": "Participants one call may have (a mesh; docs/calls.md). Applies to signalling connections made after the change. null or absent: unchanged" },
            "call_viewers_publish": { "type": ["boolean", "null"], "description": "Viewers and commenters may send audio and video in calls (they may always join and receive). null or absent: unchanged" } }),
            &[]),
        "CreateVersion": object(json!({
            "name": { "type": "string", "minLength": 1, "maxLength": crate::versions::MAX_NAME_CHARS, "pattern": patterns::DISPLAY_NAME,
                "description": "Not only whitespace (kept trimmed)" },
            "description": nullable(json!({ "type": "string", "maxLength": crate::versions::MAX_DESCRIPTION_CHARS })) }),
            &["name"]),
        "Version": object(json!({
            "id": int, "kind": { "type": "string", "enum": ["auto", "named", "restore", "merge", "fork"] },
            "name": text, "description": text, "author": text,
            "authors": { "type": "array", "items": text, "description": "Who changed the document since the previous version" },
            "at": ms, "seq": { "type": "integer", "minimum": 0, "description": "The last log entry the version includes" },
            "bytes": int, "storage": { "type": "string", "enum": ["sql", "r2"] } }),
            &["id", "kind", "author", "authors", "at", "seq", "bytes", "storage"]),
        "VersionList": object(json!({ "versions": { "type": "array", "items": schema("Version") },
            "next_before": { "type": ["integer", "null"], "minimum": 0, "description": "Pass as ?before= for the next page; null on the last page" } }),
            &["versions", "next_before"]),
        "VersionContent": object(json!({ "version": schema("Version"), "content": content }), &["version", "content"]),
        "DeletedVersion": object(json!({ "deleted": int }), &["deleted"]),
        "Restored": object(json!({ "changed": { "type": "boolean" }, "restored": schema("Version"),
            "version": { "$ref": "#/components/schemas/Version", "description": "The restore version, when something changed" } }),
            &["changed", "restored"]),
        "Diff": object(json!({
            "from": side, "to": side, "from_seq": int, "to_seq": int, "authors": texts.clone(), "changes": schema("Changes") }),
            &["from", "to", "from_seq", "to_seq", "authors", "changes"]),
        "Changes": { "type": "object", "description": "Per changed root: kind (text, map, array, xml, other); texts and arrays as ops (retain / insert / delete), maps as added / removed / changed keys", "properties": {
            "roots": { "type": "array", "items": { "type": "object", "properties": { "root": text, "kind": text }, "required": ["root", "kind"] } } },
            "required": ["roots"] },
        "Replay": object(json!({
            "updates": { "type": "array", "items": object(json!({
                "seq": int, "at": ms, "author": text, "update": { "type": "string", "description": "Base64 v1 Yjs update" } }),
                &["seq", "at", "author", "update"]) },
            "next_after": { "type": ["integer", "null"], "minimum": 0, "description": "Pass as ?after= for the next page; null on the last page" },
            "earliest": { "oneOf": [{ "type": "null" }, object(json!({ "seq": int, "at": ms }), &["seq", "at"])],
                "description": "The oldest entry still kept" } }),
            &["updates", "next_after", "earliest"]),
        "DocumentAt": object(json!({ "t": ms, "seq": int, "content": content }), &["t", "seq", "content"]),
        "CreateBranch": object(json!({
            "name": { "type": "string", "pattern": patterns::ROOM, "description": "The branch's document name" },
            "version": { "type": ["integer", "null"], "minimum": 0, "maximum": crate::queries::NO_LIMIT,
                "description": "Fork at this version instead of the current state" } }),
            &["name"]),
        "Branch": branch,
        "BranchList": object(json!({ "branches": { "type": "array", "items": schema("Branch") },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last page" } }),
            &["branches", "next_cursor"]),
        "MergePreview": object(json!({ "branch": text, "parent": text, "authors": texts.clone(), "changes": schema("Changes") }),
            &["branch", "parent", "authors", "changes"]),
        "Merged": object(json!({ "changed": { "type": "boolean" }, "branch": text, "parent": text, "authors": texts,
            "version": { "$ref": "#/components/schemas/Version", "description": "The merge version, when something changed" },
            "without_approved_review": { "type": "boolean",
                "description": "The project requires an approved review and the branch had none: an owner merged it anyway (recorded)" } }),
            &["changed", "branch", "parent", "authors", "without_approved_review"]),
    })
}
