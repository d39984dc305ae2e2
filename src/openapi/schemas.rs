//! The component schemas of the identity, document and webhook routes: request bodies with the
//! rules the server applies to them, and responses as the server writes them.
//!
//! A request schema states every rule of its body that depends on the body alone, in the terms
//! the server checks it (lengths in characters, as JSON Schema counts them), so that a body the
//! schema accepts is one the server accepts and the other way round. Optional fields take
//! `null` as "not given", as the server reads them.

use super::{patterns, schema};
use crate::webhooks::EVENT_TYPES;
use serde_json::{json, Value};

/// `{type: [t, "null"]}` for an optional field that reads `null` as absent.
pub(super) fn nullable(mut s: Value) -> Value {
    if let Some(t) = s["type"].as_str().map(str::to_owned) {
        s["type"] = json!([t, "null"]);
    }
    // Every keyword must hold: an `enum` admits null only when it lists it.
    if let Some(values) = s.get_mut("enum").and_then(Value::as_array_mut) {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    s
}

/// An object with exactly these properties, `required` among them.
pub(super) fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// A list page: `field` holds the rows, `next_cursor` resumes after them.
fn page(field: &str, item: Value) -> Value {
    object(
        json!({ field: { "type": "array", "items": item }, "next_cursor": cursor() }),
        &[field, "next_cursor"],
    )
}

fn cursor() -> Value {
    json!({ "type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last page" })
}

/// What a subscription's `events` may hold: `*`, an event type, or a family (`member.*`).
fn event_filters() -> Vec<String> {
    let mut filters = vec!["*".to_owned()];
    filters.extend(EVENT_TYPES.iter().map(|t| (*t).to_owned()));
    for t in EVENT_TYPES {
        let family = format!("{}.*", t.split('.').next().unwrap_or(t));
        if !filters.contains(&family) {
            filters.push(family);
        }
    }
    filters
}

fn op_schema(op: &str, fields: &[(&str, Value)]) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("op".into(), json!({ "const": op }));
    // A root's name, then map keys and array indices (what `document::check_edits` refuses).
    props.insert(
        "path".into(),
        json!({ "type": "array", "minItems": 1,
            "prefixItems": [{ "type": "string", "minLength": 1, "description": "A root type's name" }],
            "items": { "oneOf": [{ "type": "string" }, { "type": "integer", "minimum": 0, "maximum": u32::MAX }] } }),
    );
    let mut required = vec!["op", "path"];
    for (name, s) in fields {
        props.insert((*name).into(), s.clone());
        required.push(name);
    }
    object(Value::Object(props), &required)
}

/// The schemas of [`super::document`]'s components, beside the history ones.
pub(super) fn schemas() -> Value {
    let role = json!({ "type": "string", "enum": ["viewer", "commenter", "editor", "owner"] });
    let ms = json!({ "type": "integer", "minimum": 0, "description": "Unix milliseconds" });
    let ms_or_null =
        json!({ "type": ["integer", "null"], "minimum": 0, "description": "Unix milliseconds" });
    let u32_ = json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX });
    let count = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let name = json!({ "type": "string", "minLength": 1, "maxLength": 128, "pattern": patterns::DISPLAY_NAME,
        "description": "1 to 128 characters, no control characters, not only whitespace" });
    let id = json!({ "type": "string", "pattern": patterns::ID });
    let room = json!({ "type": "string", "pattern": patterns::ROOM });
    let url = json!({ "type": "string", "maxLength": crate::net::MAX_URL_LEN, "pattern": patterns::WEBHOOK_URL,
        "description": "An http(s) URL without user name or password. Only public destinations: loopback, private, link-local and other non-public addresses and localhost are refused (400) unless the server runs with WEBHOOK_ALLOW_PRIVATE (development)" });
    let events = json!({ "type": "array", "minItems": 1, "maxItems": EVENT_TYPES.len() + 1,
        "items": { "type": "string", "enum": event_filters(), "description": "An event type, a family like member.*, or *" } });
    let description = json!({ "type": "string", "maxLength": crate::api::MAX_WEBHOOK_DESCRIPTION });
    let any = json!({});
    let rooms = json!({ "type": "integer", "minimum": 0, "description": "Rooms with open connections that were told" });
    let webhook = |with_secret: bool| {
        let mut props = json!({ "id": id, "url": text, "events": { "type": "array", "items": text },
            "description": text,
            "secret_hint": { "type": "string", "description": "The secret's last 4 characters" },
            "secret_rotated_at": ms_or_null, "previous_secret_expires_at": ms_or_null,
            "enabled": { "type": "boolean" }, "consecutive_failures": count,
            "disabled_reason": { "type": ["string", "null"] }, "created_at": ms, "updated_at": ms });
        if with_secret {
            props["secret"] = json!({ "type": "string", "pattern": "^whsec_", "description": "whsec_...: verify signatures with it. Shown in this answer only" });
        }
        // Every field is always there.
        let required: Vec<String> = props
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let required: Vec<&str> = required.iter().map(String::as_str).collect();
        object(props, &required)
    };
    json!({
        "Problem": object(json!({
            "type": { "type": "string", "description": "tag:tandemx,2026:<error>" }, "title": text,
            "status": { "type": "integer", "minimum": 400, "maximum": 599 }, "detail": text,
            "error": { "type": "string", "description": "The last segment of type" },
            "request_id": { "type": "string", "pattern": patterns::ID,
                "description": "The request's id, as in the X-Request-Id header: quote it when reporting a problem (docs/operations.md)" } }),
            &["type", "title", "status", "detail", "error", "request_id"]),
        "Role": role,
        "Service": object(json!({ "name": text, "version": text, "rooms": text, "api": text, "health": text }),
            &["name", "version", "rooms", "api", "health"]),
        "Health": object(json!({ "ok": { "type": "boolean" }, "durable_object": schema("Check"),
            "d1": schema("Check"), "r2": schema("Check") }), &["ok", "durable_object", "d1", "r2"]),
        "Check": object(json!({ "ok": { "type": "boolean" }, "ms": { "type": "number", "minimum": 0 },
            "error": { "type": "string", "description": "Only for the admin secret" } }), &["ok", "ms"]),
        "CreateProject": object(json!({ "name": name }), &["name"]),
        "Project": object(json!({ "id": id, "name": text, "created_at": ms,
            "history_retention_days": { "type": ["integer", "null"], "minimum": 0, "description": "null: the server's default" },
            "require_review_for_merge": { "type": "boolean", "description": "A branch merges only with an approved review (owners excepted)" },
            "notification_delay_seconds": { "type": "integer", "minimum": 0, "maximum": crate::api::MAX_NOTIFICATION_DELAY_SECONDS,
                "description": "How long an unread notification waits before its notification.created webhook" },
            "asset_quota_bytes": { "type": ["integer", "null"], "minimum": 1, "description": "null: the server's default" },
            "asset_max_file_bytes": { "type": ["integer", "null"], "minimum": 1, "description": "null: the server's default" },
            "asset_trash_days": { "type": ["integer", "null"], "minimum": 0, "description": "null: the server's default" },
            "call_max_participants": { "type": "integer", "minimum": crate::signal::MIN_PARTICIPANTS, "maximum": crate::signal::MAX_PARTICIPANTS,
                "description": "Participants one call may have (docs/calls.md)" },
            "call_viewers_publish": { "type": "boolean", "description": "Viewers and commenters may send media in calls" } }),
            &["id", "name", "created_at", "history_retention_days", "require_review_for_merge", "notification_delay_seconds",
              "asset_quota_bytes", "asset_max_file_bytes", "asset_trash_days", "call_max_participants", "call_viewers_publish"]),
        "ProjectCreated": object(json!({ "project": schema("Project"), "key": schema("KeyCreated") }), &["project", "key"]),
        "Deleted": object(json!({ "deleted": text, "rooms": rooms }), &["deleted"]),
        "Revoked": object(json!({ "revoked": text, "rooms": rooms }), &["revoked", "rooms"]),
        "Removed": object(json!({ "removed": text, "rooms": rooms }), &["removed", "rooms"]),
        "PutMember": object(json!({ "role": role }), &["role"]),
        "Member": object(json!({ "sub": text, "role": role }), &["sub", "role"]),
        "MemberList": page("members", object(json!({ "sub": text, "role": role, "created_at": ms, "updated_at": ms }),
            &["sub", "role", "created_at", "updated_at"])),
        "CreateKey": object(json!({ "name": name, "role": role }), &["name", "role"]),
        "KeyCreated": object(json!({ "id": id, "name": text, "role": role,
            "secret": { "type": "string", "pattern": "^tx_key_", "description": "tx_key_..., shown once" }, "created_at": ms }),
            &["id", "name", "role", "secret"]),
        "KeyList": page("keys", object(json!({ "id": id, "project_id": id, "name": text, "role": role, "created_at": ms,
            "last_used_at": ms_or_null, "revoked_at": ms_or_null }),
            &["id", "project_id", "name", "role", "created_at", "last_used_at", "revoked_at"])),
        "CreateSigningKey": { "oneOf": [
            object(json!({ "kid": nullable(id.clone()), "alg": { "const": "EdDSA" },
                "public_key": { "type": "string", "pattern": patterns::ED25519_PEM, "description": "An Ed25519 public key, PEM (SubjectPublicKeyInfo)" } }),
                &["alg", "public_key"]),
            object(json!({ "kid": nullable(id.clone()), "alg": { "const": "ES256" },
                "public_key": { "type": "string", "pattern": patterns::P256_PEM, "description": "A P-256 public key, PEM (SubjectPublicKeyInfo, uncompressed point); a point that is not on the curve is refused (400)" } }),
                &["alg", "public_key"]),
        ], "description": "kid: generated when absent" },
        "SigningKey": object(json!({ "kid": id, "alg": { "type": "string", "enum": ["EdDSA", "ES256"] }, "created_at": ms }),
            &["kid", "alg", "created_at"]),
        "SigningKeyList": page("signing_keys", object(json!({ "kid": id, "project_id": id,
            "alg": { "type": "string", "enum": ["EdDSA", "ES256"] }, "public_key": text, "created_at": ms, "revoked_at": ms_or_null }),
            &["kid", "project_id", "alg", "public_key", "created_at", "revoked_at"])),
        "CreateDocument": object(json!({ "name": room }), &["name"]),
        "Document": object(json!({ "name": room, "created_at": ms, "created_by": text }), &["name", "created_at", "created_by"]),
        "DocumentList": page("documents", schema("Document")),
        "DocumentContent": object(json!({ "name": room, "content": { "type": "object", "additionalProperties": any,
            "description": "Root types: texts as strings, maps as objects, arrays as arrays, XML as strings" } }), &["name", "content"]),
        "Applied": object(json!({ "changed": { "type": "boolean" }, "bytes": count }), &["changed", "bytes"]),
        "Edits": object(json!({ "ops": { "type": "array", "minItems": 1, "maxItems": crate::document::MAX_OPS,
            "description": "Applied in order, all or nothing. Indices count UTF-16 code units (texts) or items (arrays); values nest at most 64 levels in the document; a request inserts at most 64 KiB. An operation that does not fit the document as it is (a text operation on a map, an index past the end, a key that is not there) is refused with 409",
            "items": { "oneOf": [
                op_schema("map.set", &[("key", text.clone()), ("value", any.clone())]),
                op_schema("map.delete", &[("key", text.clone())]),
                op_schema("text.insert", &[("index", u32_.clone()), ("text", text.clone())]),
                op_schema("text.delete", &[("index", u32_.clone()), ("length", u32_.clone())]),
                op_schema("array.push", &[("values", json!({ "type": "array" }))]),
                op_schema("array.insert", &[("index", u32_.clone()), ("values", json!({ "type": "array" }))]),
                op_schema("array.delete", &[("index", u32_.clone()), ("length", u32_.clone())]),
            ] } } }), &["ops"]),
        "TokenRequest": object(json!({
            "sub": { "type": "string", "pattern": patterns::SUB, "description": "The user: 1 to 256 printable characters" },
            "room": { "type": "string", "pattern": patterns::ROOM_PATTERN, "description": "A room name, a prefix ending in *, or *" },
            "role": nullable(role.clone()),
            "name": { "type": ["string", "null"], "maxLength": 128 }, "color": { "type": ["string", "null"], "maxLength": 128 },
            "ttl_seconds": { "type": ["integer", "null"], "minimum": 1, "maximum": crate::auth::MAX_TTL_SECONDS, "description": "Default 3600" } }),
            &["sub", "room"]),
        "DevTokenRequest": object(json!({
            "room": { "type": "string", "pattern": patterns::ROOM_PATTERN },
            "role": nullable(role.clone()),
            "name": { "type": ["string", "null"], "maxLength": 128 }, "color": { "type": ["string", "null"], "maxLength": 128 },
            "sub": { "type": ["string", "null"], "pattern": patterns::SUB, "description": "Default: a new random user" } }),
            &["room"]),
        "TokenResponse": object(json!({ "token": text, "id": id,
            "expires_at": { "type": "integer", "minimum": 0, "description": "Unix seconds" },
            "room": text, "role": role, "sub": text,
            "project": { "type": "string", "description": "The development project (POST /v1/dev/token only)" } }),
            &["token", "id", "expires_at", "room", "role", "sub"]),
        "CreateWebhook": object(json!({ "url": url, "events": events, "description": nullable(description.clone()) }), &["url", "events"]),
        "UpdateWebhook": object(json!({ "url": nullable(url.clone()), "events": nullable(events.clone()),
            "description": nullable(description.clone()), "enabled": { "type": ["boolean", "null"] } }), &[]),
        "Webhook": webhook(false),
        "WebhookWithSecret": webhook(true),
        "WebhookList": page("webhooks", schema("Webhook")),
        "Queued": object(json!({ "queued": count }), &["queued"]),
        "DeliveryList": page("deliveries", object(json!({
            "id": count, "message_id": text, "event_type": text, "attempt": count, "status": { "type": ["integer", "null"] },
            "error": { "type": ["string", "null"] }, "duration_ms": count, "at": ms,
            "outcome": { "type": "string", "enum": ["delivered", "retrying", "gave_up"] } }),
            &["id", "message_id", "event_type", "attempt", "status", "error", "duration_ms", "at", "outcome"])),
        "AuditLog": page("events", object(json!({
            "id": count, "at": ms, "actor": text, "action": text, "target": { "type": ["string", "null"] },
            "detail": { "type": ["string", "null"], "description": "JSON text" } }),
            &["id", "at", "actor", "action", "target", "detail"])),
    })
}
