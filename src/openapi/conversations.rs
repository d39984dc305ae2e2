//! The OpenAPI shapes of the conversation routes: threads, comments, reactions, chat, the
//! notification settings, reviews, the activity feed and the inbox.

use super::schemas::{nullable, object};
use super::{json_body, json_content, ok, patterns, schema};
use crate::routes::RouteId;
use serde_json::{json, Value};

/// Request body and success response of a conversation route.
pub(super) fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    use RouteId::*;
    match id {
        ListThreads => (
            None,
            ok(
                "200",
                "Threads by id, with their comments and where each anchor is now",
                json_content("ThreadPage"),
            ),
        ),
        CreateThread => (
            Some(json_body("NewThread")),
            ok(
                "201",
                "The thread with its first comment",
                json_content("Thread"),
            ),
        ),
        GetThread => (None, ok("200", "The thread", json_content("Thread"))),
        UpdateThread => (
            Some(json_body("UpdateThread")),
            ok(
                "200",
                "The thread as it is now",
                json_content("ThreadRecord"),
            ),
        ),
        DeleteThread => (
            None,
            ok(
                "200",
                "Deleted (its tombstone stays for ?since= readers)",
                json_content("ThreadRecord"),
            ),
        ),
        AddComment => (
            Some(json_body("CommentBody")),
            ok("201", "The comment", json_content("Comment")),
        ),
        EditComment => (
            Some(json_body("CommentBody")),
            ok("200", "The comment", json_content("Comment")),
        ),
        DeleteComment => (
            None,
            ok("200", "The comment's tombstone", json_content("Comment")),
        ),
        AddReaction | RemoveReaction => (
            None,
            ok(
                "200",
                "The comment with its reactions",
                json_content("Comment"),
            ),
        ),
        ListChat => (None, ok("200", "Messages", json_content("ChatPage"))),
        PostChat => (
            Some(json_body("CommentBody")),
            ok("201", "The message", json_content("ChatMessage")),
        ),
        GetSubscription => (
            None,
            ok("200", "The caller's level", json_content("Subscription")),
        ),
        PutSubscription => (
            Some(json_body("PutSubscription")),
            ok("200", "The caller's level", json_content("Subscription")),
        ),
        ListReviews => (
            None,
            ok("200", "Reviews, newest first", json_content("ReviewPage")),
        ),
        RequestReview => (
            Some(json_body("RequestReview")),
            ok("201", "The review", json_content("Review")),
        ),
        GetReview | WithdrawReview => (None, ok("200", "The review", json_content("Review"))),
        SubmitReview => (
            Some(json_body("SubmitVerdict")),
            ok("200", "The review with the verdict", json_content("Review")),
        ),
        DocumentActivity | ProjectActivity => (
            None,
            ok("200", "Entries, newest first", json_content("ActivityPage")),
        ),
        ListInbox => (
            None,
            ok(
                "200",
                "Notifications, newest first",
                json_content("InboxPage"),
            ),
        ),
        InboxCount => (
            None,
            ok("200", "Unread notifications", json_content("UnreadCount")),
        ),
        MarkInboxRead => (
            Some(json_body("MarkRead")),
            ok(
                "200",
                "Unread notifications after",
                json_content("UnreadCount"),
            ),
        ),
        DeleteNotification => (
            None,
            ok("200", "Deleted", json_content("NotificationDeleted")),
        ),
        _ => (None, ok("200", "", Some(json!({})))),
    }
}

/// `{type: "null"}`: a field the server reads as absent when it is `null`.
fn absent() -> Value {
    json!({ "type": "null" })
}

/// Every property of `props` required: what the server always writes.
fn all_required(props: Value) -> Value {
    let names: Vec<String> = props
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    object(props, &names)
}

/// The inline parts of a body ([`crate::conversations::body::Inline`]): text with marks, a
/// mention, a link. `type` is `text` when absent; a field of another kind of part may be sent
/// only as `null`, a mark on a mention or a link only as `false`.
fn inline() -> Value {
    use crate::conversations::body::{MAX_TEXT_CHARS, MAX_URL_CHARS};
    let text = json!({ "type": "string", "maxLength": MAX_TEXT_CHARS, "pattern": patterns::COMMENT_TEXT,
        "description": "No control characters but line feed and tab. Every text of a body counts against its budget of 8,000 characters" });
    let mark = json!({ "type": "boolean" });
    let no_mark = json!({ "const": false });
    let user = json!({ "type": "string", "pattern": patterns::SUB,
        "description": "A member of the project (anyone else is refused, 400): 1 to 256 characters, no control characters" });
    let url = json!({ "type": "string", "maxLength": MAX_URL_CHARS, "pattern": patterns::LINK_URL,
        "description": "http:// or https://, then no white space or control characters" });
    json!({ "oneOf": [
        object(json!({ "type": { "const": "text" }, "text": text, "bold": mark, "italic": mark, "code": mark,
            "user": absent(), "url": absent() }), &["text"]),
        object(json!({ "type": { "const": "mention" }, "user": user, "text": absent(), "url": absent(),
            "bold": no_mark, "italic": no_mark, "code": no_mark }), &["type", "user"]),
        object(json!({ "type": { "const": "link" }, "url": url, "text": nullable(text.clone()), "user": absent(),
            "bold": no_mark, "italic": no_mark, "code": no_mark }), &["type", "url"]),
    ] })
}

/// A thread's metadata ([`crate::conversations::check_metadata`]).
fn metadata() -> Value {
    use crate::conversations::{MAX_METADATA, MAX_METADATA_STRING};
    json!({ "type": "object", "maxProperties": MAX_METADATA,
        "propertyNames": { "pattern": patterns::METADATA_KEY },
        "additionalProperties": { "oneOf": [
            { "type": "boolean" },
            { "type": "number", "minimum": -f64::MAX, "maximum": f64::MAX },
            { "type": "string", "maxLength": MAX_METADATA_STRING },
        ] },
        "description": "Small application data: up to 16 entries, keys of 1 to 40 of A-Z a-z 0-9 _ - ., values booleans, numbers or strings of at most 256 characters" })
}

/// An anchor ([`crate::conversations::Anchor`]), as sent and as stored.
fn anchor() -> Value {
    use crate::conversations::anchor::{MAX_NODE_NAME, MAX_POSITION_BYTES};
    let position = json!({ "type": "string", "maxLength": MAX_POSITION_BYTES.div_ceil(3) * 4,
        "pattern": patterns::POSITION,
        "description": "Base64 of Y.encodeRelativePosition. Bytes that are not a relative position are refused (400), and so is a range that names no text of the document" });
    let coordinate = json!({ "type": "number", "minimum": -1e12, "maximum": 1e12 });
    let name =
        json!({ "type": "string", "pattern": patterns::NODE_NAME, "maxLength": MAX_NODE_NAME });
    json!({ "oneOf": [
        object(json!({ "type": { "const": "document" } }), &["type"]),
        object(json!({ "type": { "const": "text" }, "start": position, "end": position }), &["type", "start", "end"]),
        object(json!({ "type": { "const": "point" }, "x": coordinate, "y": coordinate,
            "node": { "oneOf": [absent(), object(json!({ "map": name, "key": name }), &["map", "key"])],
                "description": "The entry of a root map the point is on (doc.getMap(map).get(key))" } }),
            &["type", "x", "y"]),
    ], "description": "The document as a whole, a range of a shared text between two relative positions, or a point on a canvas (optionally on a node)" })
}

/// The schemas the conversation routes name.
pub(super) fn schemas() -> Value {
    use crate::conversations::body::{MAX_PARAGRAPHS, MAX_PARAGRAPH_PARTS};
    use crate::conversations::{MAX_MARK_READ, MAX_REVIEWERS, MAX_REVIEW_COMMENT};
    let ms = json!({ "type": "integer", "minimum": 0, "description": "Unix milliseconds" });
    let ms_or_null =
        json!({ "type": ["integer", "null"], "minimum": 0, "description": "Unix milliseconds" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let int_or_null = json!({ "type": ["integer", "null"], "minimum": 0 });
    let text = json!({ "type": "string" });
    let text_or_null = json!({ "type": ["string", "null"] });
    let users = json!({ "type": "array", "items": { "type": "string" } });
    let stamp = object(json!({ "by": text, "at": ms }), &["by", "at"]);
    let stamp_or_null = json!({ "oneOf": [absent(), stamp.clone()] });
    let level = json!({ "type": "string", "enum": ["all", "replies_and_mentions", "none"],
        "description": "all: every new thread and reply, and mentions; replies_and_mentions (the default): replies in threads one takes part in, and mentions; none: nothing" });
    let review_comment = json!({ "type": ["string", "null"], "maxLength": MAX_REVIEW_COMMENT,
        "pattern": patterns::REVIEW_COMMENT, "description": "No control characters but line feed" });
    let verdict = json!({ "type": "string", "enum": ["approved", "changes_requested"] });
    let before = |what: &str| {
        json!({ "type": ["integer", "null"], "minimum": 0,
            "description": format!("Pass as ?before= for the next page of {what}; null on the last page") })
    };
    // A thread as stored: `deleted` only on a tombstone, `quote` only on text anchors.
    let thread_props = json!({
        "id": int, "seq": { "type": "integer", "minimum": 0, "description": "The room's conversation sequence at its last change (?since=)" },
        "anchor": schema("Anchor"),
        "quote": { "type": "string", "description": "The text the thread was opened on (text anchors)" },
        "metadata": metadata(), "created_by": text, "created_at": ms, "updated_at": ms,
        "resolved": stamp_or_null, "deleted": stamp,
        "comment_count": { "type": "integer", "minimum": 0, "description": "Comments made, deleted ones included" },
        "participants": users });
    let thread_required = [
        "id",
        "seq",
        "anchor",
        "metadata",
        "created_by",
        "created_at",
        "updated_at",
        "resolved",
        "comment_count",
        "participants",
    ];
    let mut view_props = thread_props.clone();
    view_props["position"] = schema("Position");
    view_props["comments"] = json!({ "type": "array", "items": schema("Comment"), "description": "Oldest first; none on a tombstone" });
    let mut view_required = thread_required.to_vec();
    view_required.extend(["position", "comments"]);
    let body_only = object(json!({ "body": schema("Body") }), &["body"]);
    json!({
        "Body": object(json!({ "content": { "type": "array", "minItems": 1, "maxItems": MAX_PARAGRAPHS,
            "items": object(json!({ "type": { "const": "paragraph" },
                "children": { "type": "array", "maxItems": MAX_PARAGRAPH_PARTS, "items": inline() } }),
                &["type", "children"]),
            "contains": { "properties": { "children": { "minItems": 1 } } },
            "description": "Paragraphs of inline parts, one at least with a part. A body holds at most 8,000 characters of text in all and mentions at most 20 distinct members (400 beyond)" } }),
            &["content"]),
        "Anchor": anchor(),
        "Position": object(json!({
            "orphaned": { "type": "boolean", "description": "The anchored text or node is gone (the thread stays and comes back with it)" },
            "index": { "type": "integer", "minimum": 0, "description": "Text anchors: the start, in UTF-16 code units" },
            "length": { "type": "integer", "minimum": 0, "description": "Text anchors: the length, in UTF-16 code units" },
            "quote": { "type": "string", "description": "Text anchors: the anchored text now" },
            "text": { "type": "string", "description": "Text anchors: the root type holding the text" } }),
            &["orphaned"]),
        "NewThread": object(json!({ "anchor": schema("Anchor"), "metadata": metadata(), "body": schema("Body") }),
            &["anchor", "body"]),
        "UpdateThread": { "oneOf": [
            object(json!({ "resolved": { "type": "boolean" }, "metadata": absent() }), &["resolved"]),
            object(json!({ "metadata": metadata(), "resolved": absent() }), &["metadata"]),
        ], "description": "One of resolved (resolve or reopen) or metadata (replace it)" },
        "ThreadRecord": object(thread_props, &thread_required),
        "Thread": object(view_props, &view_required),
        "ThreadPage": all_required(json!({ "threads": { "type": "array", "items": schema("Thread") },
            "next_after": { "type": ["integer", "null"], "minimum": 0, "description": "Pass as ?after= for the next page; null on the last page" },
            "seq": { "type": "integer", "minimum": 0, "description": "The room's conversation sequence now: pass as ?since= to read what changes next" } })),
        "CommentBody": body_only,
        "Comment": all_required(json!({ "id": int, "thread": int, "author": text,
            "body": { "oneOf": [absent(), schema("Body")], "description": "null once deleted" },
            "created_at": ms, "edited_at": ms_or_null, "deleted": stamp_or_null,
            "reactions": { "type": "object", "additionalProperties": users,
                "description": "Reaction → the users who reacted with it, in order" } })),
        "ChatMessage": all_required(json!({ "id": int, "author": text, "body": schema("Body"), "created_at": ms })),
        "ChatPage": all_required(json!({ "messages": { "type": "array", "items": schema("ChatMessage") },
            "next_before": before("older messages (none when reading ?since=)") })),
        "Subscription": all_required(json!({ "document": text, "user": text, "level": level })),
        "PutSubscription": object(json!({ "level": level }), &["level"]),
        "RequestReview": object(json!({
            "reviewers": { "type": "array", "minItems": 1, "maxItems": MAX_REVIEWERS, "uniqueItems": true,
                "items": { "type": "string", "pattern": patterns::SUB },
                "description": "Members of the project other than the caller (anyone else is refused, 400)" },
            "version": { "type": ["integer", "null"], "minimum": 0, "maximum": crate::queries::NO_LIMIT,
                "description": "A version of the document to review (404 if there is none); without it the document must be a branch (400 otherwise)" },
            "comment": review_comment }), &["reviewers"]),
        "SubmitVerdict": object(json!({ "verdict": verdict, "comment": review_comment }), &["verdict"]),
        "Review": all_required(json!({ "id": int, "document": text, "version": int_or_null,
            "requested_by": text, "comment": text_or_null, "reviewers": users,
            "state": { "type": "string", "enum": ["pending", "approved", "changes_requested", "withdrawn"] },
            "verdicts": { "type": "array", "items": all_required(json!({ "reviewer": text, "verdict": verdict,
                "comment": text_or_null, "at": ms,
                "seq": { "type": ["integer", "null"], "minimum": 0,
                    "description": "The branch's log position the verdict was given at (null for a review of a version): an approval passes the merge gate only while the branch stands there" } })) },
            "created_at": ms, "updated_at": ms })),
        "ReviewPage": all_required(json!({ "reviews": { "type": "array", "items": schema("Review") },
            "next_before": before("reviews") })),
        "ActivityPage": all_required(json!({ "activity": { "type": "array", "items": all_required(json!({
                "id": int, "document": text_or_null, "actor": text,
                "kind": { "type": "string", "description": "What happened, such as comment.created or branch.merged" },
                "detail": { "description": "What the change was, as its event tells it" }, "at": ms })) },
            "next_before": before("entries") })),
        "InboxPage": all_required(json!({ "notifications": { "type": "array", "items": all_required(json!({
                "id": int, "kind": { "type": "string", "enum": ["mention", "reply", "thread", "review"] },
                "document": text_or_null, "thread": int_or_null, "comment": int_or_null, "review": int_or_null,
                "actor": text, "excerpt": text_or_null, "created_at": ms, "read_at": ms_or_null })) },
            "next_before": before("notifications") })),
        "UnreadCount": all_required(json!({ "unread": int })),
        "MarkRead": object(json!({ "ids": { "type": ["array", "null"], "minItems": 1, "maxItems": MAX_MARK_READ,
            "items": { "type": "integer", "minimum": 0, "maximum": crate::queries::NO_LIMIT },
            "description": "These notifications; all when absent or null" } }), &[]),
        "NotificationDeleted": all_required(json!({ "deleted": { "const": true }, "unread": int })),
    })
}
