//! The OpenAPI 3.1 document, generated from the route table. Served at `/v1/openapi.json` and
//! kept in the repository as `docs/openapi.json` (a test fails when the two differ).

mod history;

use crate::routes::{Access, RouteId, ROUTES};
use serde_json::{json, Map, Value};

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema(name) } } })
}

fn ok(status: &str, description: &str, body: Option<Value>) -> (String, Value) {
    let mut r = json!({ "description": description });
    if let Some(content) = body {
        r["content"] = content;
    }
    (status.to_owned(), r)
}

fn json_content(name: &str) -> Option<Value> {
    Some(json!({ "application/json": { "schema": schema(name) } }))
}

fn binary() -> Value {
    json!({ "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } })
}

/// Request body and success response of a route.
fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    use RouteId::*;
    match id {
        Index => (
            None,
            ok(
                "200",
                "Service description",
                Some(json!({ "application/json": { "schema": { "type": "object" } } })),
            ),
        ),
        Health => (
            None,
            ok(
                "200",
                "Every binding answered (503 with the same body when one did not)",
                json_content("Health"),
            ),
        ),
        Room => (
            None,
            ok(
                "101",
                "Switching to the y-websocket protocol; see docs/protocol.md",
                None,
            ),
        ),
        OpenApi => (
            None,
            ok(
                "200",
                "This document",
                Some(json!({ "application/json": { "schema": { "type": "object" } } })),
            ),
        ),
        DevToken => (
            Some(json_body("DevTokenRequest")),
            ok(
                "201",
                "A token for the development project",
                json_content("TokenResponse"),
            ),
        ),
        CreateProject => (
            Some(json_body("CreateProject")),
            ok(
                "201",
                "The project and its first owner key (secret shown once)",
                json_content("ProjectCreated"),
            ),
        ),
        GetProject => (None, ok("200", "The project", json_content("Project"))),
        DeleteProject => (
            None,
            ok(
                "200",
                "Deleted; every token of the project stops working",
                json_content("Deleted"),
            ),
        ),
        ListMembers => (None, ok("200", "Members", json_content("MemberList"))),
        PutMember => (
            Some(json_body("PutMember")),
            ok(
                "200",
                "Role changed (201 when the member was added)",
                json_content("Member"),
            ),
        ),
        RemoveMember => (None, ok("200", "Removed", json_content("Deleted"))),
        ListKeys => (
            None,
            ok("200", "API keys, without secrets", json_content("KeyList")),
        ),
        CreateKey => (
            Some(json_body("CreateKey")),
            ok(
                "201",
                "The key with its secret (shown once)",
                json_content("KeyCreated"),
            ),
        ),
        RevokeKey => (
            None,
            ok(
                "200",
                "Revoked; tokens it minted stop working",
                json_content("Deleted"),
            ),
        ),
        RevokeToken => (
            None,
            ok(
                "200",
                "Revoked; the token admits nothing from now on and its connections are closed (4403)",
                json_content("Deleted"),
            ),
        ),
        ListSigningKeys => (
            None,
            ok("200", "Signing keys", json_content("SigningKeyList")),
        ),
        AddSigningKey => (
            Some(json_body("CreateSigningKey")),
            ok("201", "Registered", json_content("SigningKey")),
        ),
        RevokeSigningKey => (
            None,
            ok(
                "200",
                "Revoked; tokens it signed stop working",
                json_content("Deleted"),
            ),
        ),
        ListDocuments => (None, ok("200", "Documents", json_content("DocumentList"))),
        CreateDocument => (
            Some(json_body("CreateDocument")),
            ok("201", "Created", json_content("Document")),
        ),
        GetDocument => (
            None,
            ok(
                "200",
                "The root types rendered as plain JSON",
                json_content("DocumentContent"),
            ),
        ),
        DeleteDocument => (
            None,
            ok(
                "200",
                "Deleted: connections closed (4404), storage erased",
                json_content("Deleted"),
            ),
        ),
        GetDocumentUpdate => (
            None,
            ok(
                "200",
                "The document (or what a peer at state_vector lacks) as a Yjs update",
                Some(binary()),
            ),
        ),
        PostDocumentUpdate => (
            Some(json!({ "required": true, "content": binary() })),
            ok(
                "200",
                "Applied, stored and sent to every connection",
                json_content("Applied"),
            ),
        ),
        PostDocumentEdits => (
            Some(json_body("Edits")),
            ok("200", "Applied, all or nothing", json_content("Applied")),
        ),
        MintToken => (
            Some(json_body("TokenRequest")),
            ok("201", "A room token", json_content("TokenResponse")),
        ),
        Audit => (
            None,
            ok("200", "Newest 500 events", json_content("AuditLog")),
        ),
        ListWebhooks => (
            None,
            ok(
                "200",
                "Subscriptions (their secrets are never shown again after creation)",
                json_content("WebhookList"),
            ),
        ),
        CreateWebhook => (
            Some(json_body("CreateWebhook")),
            ok(
                "201",
                "The subscription with its signing secret",
                json_content("Webhook"),
            ),
        ),
        GetWebhook => (None, ok("200", "The subscription", json_content("Webhook"))),
        UpdateWebhook => (
            Some(json_body("UpdateWebhook")),
            ok("200", "The changed subscription", json_content("Webhook")),
        ),
        DeleteWebhook => (
            None,
            ok(
                "200",
                "Deleted; queued messages are dropped",
                json_content("Deleted"),
            ),
        ),
        TestWebhook => (
            None,
            ok(
                "202",
                "A webhook.test message was queued",
                json_content("Queued"),
            ),
        ),
        ListDeliveries => (
            None,
            ok("200", "Newest 100 attempts", json_content("DeliveryList")),
        ),
        RotateWebhookSecret => (
            None,
            ok(
                "200",
                "The subscription with its new signing secret, shown this once; the replaced secret signs too until previous_secret_expires_at",
                json_content("Webhook"),
            ),
        ),
        UpdateProject | ListVersions | CreateVersion | GetVersion | GetVersionUpdate
        | DeleteVersion | RestoreVersion | DiffVersions | ReplayHistory | DocumentAt
        | ListBranches | CreateBranch | PreviewMerge | MergeBranch => history::shape(id),
    }
}

fn parameters(path: &str, id: RouteId) -> Vec<Value> {
    let mut out: Vec<Value> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    match id {
        RouteId::Room => out.push(json!({ "name": "token", "in": "query", "required": false, "description": "Room token (or offer it as a Sec-WebSocket-Protocol entry)", "schema": { "type": "string" } })),
        RouteId::GetDocumentUpdate => {
            out.push(json!({ "name": "state_vector", "in": "query", "required": false, "description": "Base64 (URL-safe or standard) v1 state vector: only what it lacks is returned", "schema": { "type": "string" } }));
            out.push(json!({ "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["v1", "v2"], "default": "v1" } }));
        }
        _ => out.extend(history::parameters(id)),
    }
    out
}

fn security(access: Access) -> (Value, Option<String>) {
    match access {
        Access::Public => (json!([]), None),
        Access::DevMode => (
            json!([]),
            Some("Only when the server runs with DEV_MODE=true.".into()),
        ),
        Access::RoomToken => (json!([{ "roomToken": [] }]), None),
        Access::Admin => (
            json!([{ "adminSecret": [] }]),
            Some("Admin secret only.".into()),
        ),
        Access::Key(role) => (
            json!([{ "apiKey": [] }, { "adminSecret": [] }]),
            Some(format!("API key with at least the {role} role.")),
        ),
        Access::KeyOrToken(role) => (
            json!([{ "apiKey": [] }, { "roomToken": [] }, { "adminSecret": [] }]),
            Some(format!(
                "API key, or a room token for this document, with at least the {role} role."
            )),
        ),
    }
}

fn op_schema(op: &str, fields: &[(&str, Value)]) -> Value {
    let mut props = Map::new();
    props.insert("op".into(), json!({ "const": op }));
    props.insert(
        "path".into(),
        json!({ "type": "array", "items": { "type": ["string", "integer"] }, "minItems": 1 }),
    );
    let mut required = vec![json!("op"), json!("path")];
    for (name, s) in fields {
        props.insert((*name).into(), s.clone());
        required.push(json!(name));
    }
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

fn schemas() -> Value {
    let role = json!({ "type": "string", "enum": ["viewer", "commenter", "editor", "owner"] });
    let ms = json!({ "type": "integer", "description": "Unix milliseconds" });
    let u32_ = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let any = json!({});
    json!({
        "Problem": { "type": "object", "description": "RFC 9457 problem details", "properties": {
            "type": text, "title": text, "status": { "type": "integer" }, "detail": text,
            "error": { "type": "string", "description": "The last segment of type" } },
            "required": ["type", "title", "status", "detail", "error"] },
        "Role": role,
        "Health": { "type": "object", "properties": { "ok": { "type": "boolean" },
            "durable_object": { "$ref": "#/components/schemas/Check" }, "d1": { "$ref": "#/components/schemas/Check" }, "r2": { "$ref": "#/components/schemas/Check" } } },
        "Check": { "type": "object", "properties": { "ok": { "type": "boolean" }, "ms": { "type": "number" }, "error": text } },
        "CreateProject": { "type": "object", "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 128 } }, "required": ["name"], "additionalProperties": false },
        "Project": { "type": "object", "properties": { "id": text, "name": text, "created_at": ms }, "required": ["id", "name", "created_at"] },
        "ProjectCreated": { "type": "object", "properties": { "project": schema("Project"), "key": schema("KeyCreated") } },
        "Deleted": { "type": "object", "additionalProperties": text },
        "PutMember": { "type": "object", "properties": { "role": role }, "required": ["role"], "additionalProperties": false },
        "Member": { "type": "object", "properties": { "sub": text, "role": role } },
        "MemberList": { "type": "object", "properties": { "members": { "type": "array", "items": { "type": "object", "properties": { "sub": text, "role": role, "created_at": ms, "updated_at": ms } } } } },
        "CreateKey": { "type": "object", "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 128 }, "role": role }, "required": ["name", "role"], "additionalProperties": false },
        "KeyCreated": { "type": "object", "properties": { "id": text, "name": text, "role": role, "secret": { "type": "string", "description": "tx_key_..., shown once" }, "created_at": ms } },
        "KeyList": { "type": "object", "properties": { "keys": { "type": "array", "items": { "type": "object", "properties": {
            "id": text, "project_id": text, "name": text, "role": role, "created_at": ms,
            "last_used_at": { "type": ["integer", "null"] }, "revoked_at": { "type": ["integer", "null"] } } } } } },
        "CreateSigningKey": { "type": "object", "properties": { "kid": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" }, "alg": { "type": "string", "enum": ["EdDSA", "ES256"] }, "public_key": { "type": "string", "description": "PEM" } }, "required": ["alg", "public_key"], "additionalProperties": false },
        "SigningKey": { "type": "object", "properties": { "kid": text, "alg": text, "created_at": ms } },
        "SigningKeyList": { "type": "object", "properties": { "signing_keys": { "type": "array", "items": { "type": "object", "properties": {
            "kid": text, "project_id": text, "alg": text, "public_key": text, "created_at": ms, "revoked_at": { "type": ["integer", "null"] } } } } } },
        "CreateDocument": { "type": "object", "properties": { "name": { "type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,128}$" } }, "required": ["name"], "additionalProperties": false },
        "Document": { "type": "object", "properties": { "name": text, "created_at": ms, "created_by": text } },
        "DocumentList": { "type": "object", "properties": { "documents": { "type": "array", "items": schema("Document") } } },
        "DocumentContent": { "type": "object", "properties": { "name": text, "content": { "type": "object", "additionalProperties": any, "description": "Root types: texts as strings, maps as objects, arrays as arrays, XML as strings" } } },
        "Applied": { "type": "object", "properties": { "changed": { "type": "boolean" }, "bytes": { "type": "integer" } } },
        "Edits": { "type": "object", "properties": { "ops": { "type": "array", "minItems": 1, "maxItems": crate::document::MAX_OPS, "items": { "oneOf": [
            op_schema("map.set", &[("key", text.clone()), ("value", any.clone())]),
            op_schema("map.delete", &[("key", text.clone())]),
            op_schema("text.insert", &[("index", u32_.clone()), ("text", text.clone())]),
            op_schema("text.delete", &[("index", u32_.clone()), ("length", u32_.clone())]),
            op_schema("array.push", &[("values", json!({ "type": "array" }))]),
            op_schema("array.insert", &[("index", u32_.clone()), ("values", json!({ "type": "array" }))]),
            op_schema("array.delete", &[("index", u32_.clone()), ("length", u32_.clone())]),
        ] } } }, "required": ["ops"], "additionalProperties": false },
        "TokenRequest": { "type": "object", "properties": {
            "sub": { "type": "string", "minLength": 1, "maxLength": 256 },
            "room": { "type": "string", "description": "A room name, a prefix ending in *, or *" },
            "role": role, "name": { "type": "string", "maxLength": 128 }, "color": { "type": "string", "maxLength": 128 },
            "ttl_seconds": { "type": "integer", "minimum": 1, "maximum": crate::auth::MAX_TTL_SECONDS } },
            "required": ["sub", "room"], "additionalProperties": false },
        "DevTokenRequest": { "type": "object", "properties": { "room": text, "role": role, "name": text, "color": text, "sub": text }, "required": ["room"], "additionalProperties": false },
        "TokenResponse": { "type": "object", "properties": { "token": text, "expires_at": { "type": "integer", "description": "Unix seconds" }, "room": text, "role": role, "sub": text } },
        "CreateWebhook": { "type": "object", "properties": {
            "url": { "type": "string", "format": "uri", "maxLength": 2048 },
            "events": { "type": "array", "minItems": 1, "items": { "type": "string", "description": "An event type, a family like member.*, or *" } },
            "description": { "type": "string", "maxLength": 256 } }, "required": ["url", "events"], "additionalProperties": false },
        "UpdateWebhook": { "type": "object", "properties": {
            "url": { "type": "string", "format": "uri" }, "events": { "type": "array", "items": text },
            "description": text, "enabled": { "type": "boolean" } }, "additionalProperties": false },
        "Webhook": { "type": "object", "properties": { "id": text, "url": text, "events": { "type": "array", "items": text },
            "description": text, "secret": { "type": "string", "description": "whsec_..., verify signatures with it: returned only when the subscription is created and by rotate-secret" },
            "secret_hint": { "type": "string", "description": "the secret's last 4 characters" },
            "secret_rotated_at": { "type": ["integer", "null"] }, "previous_secret_expires_at": { "type": ["integer", "null"] },
            "enabled": { "type": "boolean" }, "consecutive_failures": { "type": "integer" },
            "disabled_reason": { "type": ["string", "null"] }, "created_at": ms, "updated_at": ms } },
        "WebhookList": { "type": "object", "properties": { "webhooks": { "type": "array", "items": schema("Webhook") } } },
        "Queued": { "type": "object", "properties": { "queued": { "type": "integer" } } },
        "DeliveryList": { "type": "object", "properties": { "deliveries": { "type": "array", "items": { "type": "object", "properties": {
            "message_id": text, "event_type": text, "attempt": { "type": "integer" }, "status": { "type": ["integer", "null"] },
            "error": { "type": ["string", "null"] }, "duration_ms": { "type": "integer" }, "at": ms,
            "outcome": { "type": "string", "enum": ["delivered", "retrying", "gave_up"] } } } } } },
        "AuditLog": { "type": "object", "properties": { "events": { "type": "array", "items": { "type": "object", "properties": {
            "id": { "type": "integer" }, "at": ms, "actor": text, "action": text, "target": { "type": ["string", "null"] }, "detail": { "type": ["string", "null"] } } } } } },
    })
}

fn all_schemas() -> Value {
    let mut all = schemas();
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), history::schemas()) {
        map.extend(more);
    }
    all
}

/// The OpenAPI 3.1 document of every route in [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let (body, (status, success)) = shape(route.id);
        let (security, note) = security(route.access);
        let mut responses = Map::new();
        responses.insert(status, success);
        for (code, what) in [
            ("400", "Invalid input"),
            ("401", "Missing or invalid credential"),
            ("403", "Credential refused or role too low"),
            ("404", "Not found"),
            ("405", "Method not allowed"),
            ("409", "Conflict"),
            ("413", "Body too large"),
            ("500", "Internal error"),
        ] {
            responses.insert(code.into(), json!({ "description": what, "content": { "application/problem+json": { "schema": schema("Problem") } } }));
        }
        let mut op = json!({
            "operationId": format!("{:?}", route.id).chars().enumerate().map(|(i, c)| if i == 0 { c.to_ascii_lowercase() } else { c }).collect::<String>(),
            "summary": route.summary,
            "parameters": parameters(route.path, route.id),
            "security": security,
            "responses": responses,
        });
        if let Some(note) = note {
            op["description"] = json!(note);
        }
        if let Some(body) = body {
            op["requestBody"] = body;
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "TandemX",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Real-time collaboration backend for Yjs. Errors are RFC 9457 problem details. See docs/api.md and docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "schemas": all_schemas(),
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "A project API key, tx_key_..." },
                "adminSecret": { "type": "http", "scheme": "bearer", "description": "The deployment's ADMIN_SECRET" },
                "roomToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A room token; on /rooms/{room} as ?token= or a Sec-WebSocket-Protocol entry" },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{} {} is not described",
                route.method,
                route.path
            );
            assert!(op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2') || k == "101"));
            let params = op["parameters"].as_array().unwrap();
            for name in route.path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = name.trim_end_matches('}');
                assert!(
                    params.iter().any(|p| p["name"] == name),
                    "{} lacks {name}",
                    route.path
                );
            }
        }
        let described: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(
            described,
            ROUTES.len(),
            "nothing described that is not routed"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "missing schema {name}"
            );
        }
    }

    #[test]
    fn the_committed_copy_is_current() {
        let committed: Value = serde_json::from_str(include_str!("../docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
        if committed != document() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
            std::fs::write(
                path,
                serde_json::to_string_pretty(&document()).unwrap() + "\n",
            )
            .unwrap();
            panic!(
                "docs/openapi.json was out of date and has been rewritten: review and commit it"
            );
        }
    }
}
