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
        "document" | "room" => json!({ "type": "string", "pattern": patterns::ROOM,
            "description": "A room name: 1 to 128 of A-Z a-z 0-9 . _ ~ - :, not only dots; percent-decoded once (anything else: 400)" }),
        "sub" => json!({ "type": "string", "pattern": patterns::SUB_SEGMENT,
            "description": "The member's user id: 1 to 256 printable characters; percent-decoded once, then it may not hold / ? # % nor be . or .. (400)" }),
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
        Room => out.extend(handshake()),
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
        _ => {}
    }
    out
}
