//! The parameters of each route: path parameters with the rules `routes::Params` parses them
//! by, query parameters with the bounds of `pages` and `queries`, and the headers of the
//! WebSocket handshake.

use super::patterns;
use crate::pages::{DEFAULT_PAGE, MAX_PAGE};
use crate::routes::RouteId;
use serde_json::{json, Value};

/// The schema of path parameter `name`, as [`crate::routes::Params`] parses it.
fn path_schema(name: &str) -> Value {
    match name {
        "version" => json!({ "type": "string", "pattern": patterns::VERSION_ID,
            "description": "A version id (decimal digits); anything else names no version (404)" }),
        "thread" | "comment" | "review" | "notification" => {
            json!({ "type": "string", "pattern": patterns::VERSION_ID,
            "description": format!("A {name} id (decimal digits); anything else names no {name} (404)") })
        }
        "emoji" => json!({ "type": "string", "pattern": patterns::EMOJI_SEGMENT,
            "description": "A reaction: an emoji (possibly several code points) or a short name like :+1:, 1 to 32 characters without white space or control characters; percent-decoded once, then it may not hold / ? # % nor be . or .. (400)" }),
        "document" | "room" => json!({ "type": "string", "pattern": patterns::ROOM,
            "description": "A room name: 1 to 128 of A-Z a-z 0-9 . _ ~ - :, not only dots; percent-decoded once (anything else: 400)" }),
        "sub" => json!({ "type": "string", "pattern": patterns::SUB_SEGMENT,
            "description": "The member's user id: 1 to 256 printable characters; percent-decoded once, then it may not hold / ? # % nor be . or .. (400)" }),
        "asset" | "upload" => json!({ "type": "string", "pattern": patterns::ID,
            "description": format!("An {name} id (the server makes them as {}_ and 20 hex digits): 1 to 64 of A-Z a-z 0-9 . _ -, not only dots; anything else names no {name} (404)",
                if name == "asset" { "ast" } else { "upl" }) }),
        "part" => json!({ "type": "string", "pattern": patterns::PART,
            "description": format!("A part number, 1 to {} in decimal (leading zeros allowed, 15 digits at most); anything else, or a number past the upload's parts, names no part (404)", crate::assets::MAX_PARTS) }),
        "tag" => json!({ "type": "string", "pattern": patterns::TAG_SEGMENT,
            "description": format!("A tag: 1 to {} of a-z 0-9 . _ : - (upper case is lowered); percent-decoded once; anything else, or . or .., is refused (400)", crate::assets::MAX_TAG) }),
        _ => json!({ "type": "string", "pattern": patterns::ID,
            "description": "An id: 1 to 64 of A-Z a-z 0-9 . _ -, not only dots; anything else names nothing (404)" }),
    }
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn required_query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": true, "description": description, "schema": schema })
}

fn header(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "header", "required": true, "description": description, "schema": schema })
}

/// `TandemX-Subject`: the user an API key acts for ([`crate::routes::RouteId`]s served for a
/// participant). `inbox`: the routes of one user's inbox, where a key must name the user.
fn subject(inbox: bool) -> Value {
    let description = if inbox {
        "The user whose inbox this is. An API key (or the admin secret) must name one (400 without); a room token reads its own subject's, and may send it here (another user: 400). A removed member's is refused (403)"
    } else {
        "The user an API key (or the admin secret) acts for, with the lower of the key's role and the user's role in the project (a removed member: 403); without it the key acts as itself. With a room token, the token's subject or nothing (another user: 400)"
    };
    json!({ "name": "TandemX-Subject", "in": "header", "required": false, "description": description,
        "schema": { "type": "string", "pattern": patterns::SUB } })
}

/// `?limit=&before=` of a list read newest first ([`crate::queries::feed_page`]).
fn feed_page(what: &str) -> Vec<Value> {
    use crate::queries::{DEFAULT_FEED_PAGE, MAX_FEED_PAGE, NO_LIMIT};
    vec![
        query(
            "limit",
            &format!("{what} per page, 1 to {MAX_FEED_PAGE} (default {DEFAULT_FEED_PAGE})"),
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_FEED_PAGE, "default": DEFAULT_FEED_PAGE }),
        ),
        query(
            "before",
            "Only rows with a smaller id (the next_before of the page before)",
            integer(NO_LIMIT),
        ),
    ]
}

/// A boolean of a query ([`crate::queries::flag`]).
fn flag() -> Value {
    json!({ "type": "string", "enum": ["true", "false", "1", "0"] })
}

/// `?limit=` of a conversation list ([`crate::conversations::MAX_PAGE`]).
fn conversation_limit(what: &str) -> Value {
    let max = crate::conversations::MAX_PAGE;
    query(
        "limit",
        &format!("{what} per page, 1 to {max} (default 50)"),
        json!({ "type": "integer", "minimum": 1, "maximum": max, "default": 50 }),
    )
}

/// The filters of the activity feed ([`crate::queries::activity`]).
fn activity(with_document: bool) -> Vec<Value> {
    let mut out = Vec::new();
    if with_document {
        out.push(query(
            "document",
            "Only this document's entries (a room token may name only the documents it covers: 403 otherwise)",
            json!({ "type": "string", "pattern": patterns::ROOM }),
        ));
    }
    out.extend([
        query(
            "actor",
            "Only this user's (or key's) entries",
            json!({ "type": "string", "pattern": patterns::SUB }),
        ),
        query(
            "kind",
            "Only entries of this kind, such as comment.created: 1 to 40 of a-z . _",
            json!({ "type": "string", "pattern": patterns::ACTIVITY_KIND }),
        ),
    ]);
    out.extend(feed_page("Entries"));
    out
}

/// A non-negative integer of a query ([`crate::queries::number`]).
pub(super) fn integer(max: u64) -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": max })
}

/// `?limit=` and `?cursor=` of a list ([`crate::pages::Page`]).
fn page(id: RouteId, note: &str) -> Vec<Value> {
    vec![
        query(
            "limit",
            &format!("Rows per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE}){note}"),
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE }),
        ),
        query(
            "cursor",
            "The next_cursor of the page before: a position in the list's order (parts joined by `.`, each an integer or `~` and the hex of a string's UTF-8); the page after it is served. Any other shape is refused (400)",
            json!({ "type": "string", "maxLength": crate::pages::MAX_CURSOR,
                "pattern": crate::pages::cursor_pattern(crate::pages::key_len(id)) }),
        ),
    ]
}

fn optional_header(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": schema })
}

/// `?name=`, `?tags=` and `TandemX-SHA256` of a direct upload ([`crate::routes::RouteId::UploadAsset`]).
fn direct_upload() -> Vec<Value> {
    use crate::assets::{MAX_NAME, MAX_TAGS};
    vec![
        required_query(
            "name",
            &format!("The file's display name: 1 to {MAX_NAME} characters, no control characters, not only white space"),
            json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": patterns::DISPLAY_NAME }),
        ),
        query(
            "tags",
            &format!("Tags to give it, joined by commas: at most {MAX_TAGS}, each 1 to 64 of a-z 0-9 . _ : - (upper case is lowered; repeats count once)"),
            json!({ "type": "string", "pattern": patterns::TAG_LIST }),
        ),
        header(
            crate::assets::SHA256_HEADER_NAME,
            "The file's SHA-256, 64 hex digits: storage checks the bytes against it (422 digest-mismatch, nothing stored). Bytes the project stores already are not sent to storage again (deduplicated)",
            json!({ "type": "string", "pattern": patterns::SHA256 }),
        ),
    ]
}

/// The validators and range of a download ([`crate::routes::RouteId::GetAssetContent`]).
fn download_headers(range: bool) -> Vec<Value> {
    let mut out = vec![
        optional_header(
            "If-None-Match",
            "Entity tags (the ETag is the SHA-256 in quotes; W/ is ignored; * matches): 304 when one matches. With it, If-Modified-Since is not read",
            json!({ "type": "string" }),
        ),
        optional_header(
            "If-Modified-Since",
            "An HTTP date: 304 when the version is not newer. One that does not parse is ignored",
            json!({ "type": "string" }),
        ),
    ];
    if range {
        out.extend([
            optional_header(
                "Range",
                "bytes=first-last, bytes=first- or bytes=-suffix: one range, answered 206; a range that starts past the end is refused (416). Several ranges, or any other header, are ignored (the whole content, 200)",
                json!({ "type": "string" }),
            ),
            optional_header(
                "If-Range",
                "An entity tag or an HTTP date: the Range is served only if it matches the content (the tag exactly, or a date not older); otherwise the whole content",
                json!({ "type": "string" }),
            ),
        ]);
    }
    out
}

/// `?expires=&sig=` of a signed link (`POST .../links` makes them).
fn signed_link() -> Vec<Value> {
    vec![
        query(
            "expires",
            "With sig: the link's expiry, unix seconds, as the link gives it",
            integer(u64::MAX),
        ),
        query(
            "sig",
            "A signed link's signature (URL-safe base64 of an HMAC-SHA256): with it the request needs no credential, and is judged by the link alone. A link that is altered, expired or for other content is refused (403), whatever else the request carries",
            json!({ "type": "string" }),
        ),
    ]
}

/// The query of [`crate::routes::RouteId::ListAssets`].
fn asset_filters() -> Vec<Value> {
    use crate::assets::{MAX_NAME, MAX_UPLOADER};
    vec![
        query(
            "prefix",
            &format!("Only assets whose name starts with this (compared exactly; % and _ mean themselves), at most {MAX_NAME} characters"),
            json!({ "type": "string", "maxLength": MAX_NAME }),
        ),
        query(
            "tag",
            "Only assets with this tag (upper case is lowered)",
            json!({ "type": "string", "pattern": patterns::TAG }),
        ),
        query(
            "content_type",
            "Only assets of this content type (parameters after ; are dropped, case is ignored), or of a whole type as type/*",
            json!({ "type": "string", "pattern": patterns::TYPE_FILTER }),
        ),
        query(
            "uploader",
            &format!("Only assets this user (or key) uploaded: 1 to {MAX_UPLOADER} characters"),
            json!({ "type": "string", "minLength": 1, "maxLength": MAX_UPLOADER }),
        ),
        query(
            "trashed",
            "Only assets in the trash (true, 1) instead of those out of it (false, 0: the default)",
            flag(),
        ),
        query(
            "orphans",
            "Only assets no document references (true, 1)",
            flag(),
        ),
    ]
}

/// The query of [`crate::routes::RouteId::AssetPreview`].
fn preview() -> Vec<Value> {
    vec![
        required_query(
            "w",
            "The width in pixels (the height keeps the aspect ratio)",
            json!({ "type": "integer", "enum": crate::assets::PREVIEW_WIDTHS }),
        ),
        query(
            "format",
            "The image format of the preview (jpg reads as jpeg)",
            json!({ "type": "string", "enum": ["png", "jpeg", "jpg", "webp"], "default": "webp" }),
        ),
        query(
            "version",
            "The version to preview (default: the current one, and then the answer may change); one that does not exist names nothing (404). A signed link names it",
            integer(u64::MAX),
        ),
    ]
}

/// The WebSocket handshake a client sends (RFC 6455, 4.1). A request that is not an upgrade is
/// answered 426.
fn handshake() -> Vec<Value> {
    vec![
        header(
            "Upgrade",
            "websocket: this route only opens a WebSocket (426 without it)",
            json!({ "type": "string", "enum": ["websocket"] }),
        ),
        header(
            "Connection",
            "Upgrade",
            json!({ "type": "string", "enum": ["Upgrade"] }),
        ),
        header(
            "Sec-WebSocket-Key",
            "16 random bytes, base64",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$" }),
        ),
        header(
            "Sec-WebSocket-Version",
            "13",
            json!({ "type": "string", "enum": ["13"] }),
        ),
        json!({ "name": "Sec-WebSocket-Protocol", "in": "header", "required": false,
            "description": "Instead of ?token=: a protocol name (tandemx) and the token, as two entries; the server selects tandemx. A token offered alone is refused (401)",
            "schema": { "type": "string" } }),
    ]
}

/// Every parameter of the route at `path`.
pub(super) fn parameters(path: &str, id: RouteId) -> Vec<Value> {
    use RouteId::*;
    let mut out: Vec<Value> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_schema(name) }))
        .collect();
    match id {
        Room | Signal => out.extend(handshake()),
        ListMembers | ListKeys | ListSigningKeys | ListDocuments | ListWebhooks | ListDeliveries
        | Audit => out.extend(page(id, "")),
        ListBranches => out.extend(page(
            id,
            "; a page holds at most 50 branches (each costs two room calls)",
        )),
        GetDocumentUpdate => {
            out.push(query(
                "state_vector",
                "A v1 Yjs state vector, base64 (URL-safe or standard), at most 8 KiB before encoding: only what a peer at it lacks is returned. Empty or absent: the whole document. One that does not decode as a state vector is refused (400)",
                json!({ "type": "string", "pattern": patterns::BASE64,
                    "maxLength": crate::queries::MAX_STATE_VECTOR_BYTES * 4 / 3 + 4 }),
            ));
            out.push(query(
                "format",
                "The update's encoding",
                json!({ "type": "string", "enum": ["v1", "v2"], "default": "v1" }),
            ));
        }
        ListVersions => out.extend([
            query(
                "limit",
                &format!(
                    "Versions per page, 1 to {} (default {})",
                    crate::queries::MAX_VERSION_PAGE,
                    crate::queries::DEFAULT_VERSION_PAGE
                ),
                json!({ "type": "integer", "minimum": 1, "maximum": crate::queries::MAX_VERSION_PAGE,
                    "default": crate::queries::DEFAULT_VERSION_PAGE }),
            ),
            query(
                "before",
                "Only versions with a smaller id (the next_before of the page before)",
                integer(crate::queries::NO_LIMIT),
            ),
        ]),
        DiffVersions => out.extend([
            required_query(
                "from",
                "A version id, or current",
                json!({ "type": "string", "pattern": patterns::DIFF_SIDE }),
            ),
            query(
                "to",
                "A version id, or current (the default)",
                json!({ "type": "string", "pattern": patterns::DIFF_SIDE, "default": "current" }),
            ),
        ]),
        ReplayHistory => out.extend([
            query(
                "after",
                "Only updates with a larger seq (the next_after of the page before)",
                integer(crate::queries::NO_LIMIT),
            ),
            query(
                "from",
                "Only updates stored at or after this instant (unix ms)",
                integer(crate::queries::NO_LIMIT),
            ),
            query(
                "to",
                "Only updates stored at or before this instant (unix ms)",
                integer(crate::queries::NO_LIMIT),
            ),
            query(
                "limit",
                &format!(
                    "Updates per page, 1 to {0} (default {0}); a page also stops at 4 MiB of updates",
                    crate::queries::MAX_REPLAY_PAGE
                ),
                json!({ "type": "integer", "minimum": 1, "maximum": crate::queries::MAX_REPLAY_PAGE,
                    "default": crate::queries::MAX_REPLAY_PAGE }),
            ),
        ]),
        DocumentAt => out.extend([
            required_query("t", "The instant, unix ms", integer(crate::queries::NO_LIMIT)),
            query(
                "format",
                "json: the document rendered as JSON; update: its state then, as a v1 Yjs update",
                json!({ "type": "string", "enum": ["json", "update"], "default": "json" }),
            ),
        ]),
        ListThreads => out.extend([
            query(
                "since",
                "Only threads changed after this conversation sequence (the seq of a page, or of a live event); deleted ones then come as tombstones. 0 or absent: every live thread",
                integer(crate::queries::NO_LIMIT),
            ),
            query(
                "after",
                "Only threads with a larger id (the next_after of the page before)",
                integer(crate::queries::NO_LIMIT),
            ),
            conversation_limit("Threads"),
            query(
                "resolved",
                "Only resolved (true, 1) or unresolved (false, 0) threads of the page",
                flag(),
            ),
        ]),
        ListChat => out.extend([
            query(
                "before",
                "Only messages with a smaller id (the next_before of the page before)",
                integer(crate::queries::NO_LIMIT),
            ),
            query(
                "since",
                "Only messages with a larger id, oldest first (live catch-up); with before, the messages between the two",
                integer(crate::queries::NO_LIMIT),
            ),
            conversation_limit("Messages"),
        ]),
        ListInbox => {
            out.extend(feed_page("Notifications"));
            out.push(query(
                "unread",
                "Only unread notifications (true, 1), or all (false, 0: the default)",
                flag(),
            ));
        }
        ListAssets => {
            out.extend(asset_filters());
            out.extend(page(id, ""));
        }
        AssetUsage => out.extend(page(id, "")),
        UploadAsset | UploadAssetVersion => out.extend(direct_upload()),
        DeleteAsset => out.push(query(
            "force",
            "Move it to the trash even while documents reference it (true, 1); without it such an asset is refused (409)",
            flag(),
        )),
        GetAssetContent | GetAssetVersionContent => {
            out.push(query(
                "download",
                "Content-Disposition: attachment (true, 1) rather than inline. Markup (HTML, XML, JavaScript) is always an attachment",
                flag(),
            ));
            if id == GetAssetVersionContent {
                out.extend(signed_link());
            }
            out.extend(download_headers(true));
        }
        AssetPreview => {
            out.extend(preview());
            out.extend(signed_link());
            out.extend(download_headers(false));
        }
        ListReviews => out.extend(feed_page("Reviews")),
        ProjectActivity => out.extend(activity(true)),
        DocumentActivity => out.extend(activity(false)),
        _ => {}
    }
    let for_a_user = matches!(
        id,
        ListThreads
            | CreateThread
            | GetThread
            | UpdateThread
            | DeleteThread
            | AddComment
            | EditComment
            | DeleteComment
            | AddReaction
            | RemoveReaction
            | ListChat
            | PostChat
            | GetSubscription
            | PutSubscription
            | ListReviews
            | RequestReview
            | GetReview
            | SubmitReview
            | WithdrawReview
    );
    let inbox = matches!(
        id,
        ListInbox | InboxCount | MarkInboxRead | DeleteNotification
    );
    if for_a_user || inbox {
        out.push(subject(inbox));
    }
    out
}

/// Whether a route reads `TandemX-Subject`.
pub(super) fn reads_subject(parameters: &[Value]) -> bool {
    parameters
        .iter()
        .any(|p| p["in"] == "header" && p["name"] == "TandemX-Subject")
}
