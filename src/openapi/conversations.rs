//! The OpenAPI shapes of the conversation routes: threads, comments, reactions, chat, the
//! notification settings, reviews, the activity feed and the inbox.

use super::{json_body, json_content, ok};
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

/// The schemas the conversation routes name.
pub(super) fn schemas() -> Value {
    let open = json!({ "type": "object" });
    let names = [
        "ThreadPage",
        "NewThread",
        "Thread",
        "UpdateThread",
        "ThreadRecord",
        "CommentBody",
        "Comment",
        "ChatPage",
        "ChatMessage",
        "Subscription",
        "PutSubscription",
        "ReviewPage",
        "RequestReview",
        "Review",
        "SubmitVerdict",
        "ActivityPage",
        "InboxPage",
        "UnreadCount",
        "MarkRead",
        "NotificationDeleted",
    ];
    Value::Object(
        names
            .iter()
            .map(|n| (n.to_string(), open.clone()))
            .collect(),
    )
}
