//! The OpenAPI 3.1 document, generated from the route table. Served at `/v1/openapi.json` and
//! kept in the repository as `docs/openapi.json` (a test fails when the two differ).
//!
//! It states what the server does: every status a route can answer ([`responses`]), the rules
//! each parameter and body is checked by ([`parameters`], [`schemas`], [`patterns`]), and the
//! responses as written. `tests/schemathesis` holds the server to it.

mod archive;
mod assets;
mod calls;
mod conversations;
mod history;
mod parameters;
mod patterns;
mod responses;
mod schemas;

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
                "The demo app (text/html) where the worker is deployed with it (wrangler.toml [assets] serves / from it), otherwise a JSON description of the service",
                Some(json!({
                    "application/json": { "schema": schema("Service") },
                    "text/html": { "schema": { "type": "string" } },
                })),
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
        Signal => (
            None,
            ok(
                "101",
                "Switching to the y-webrtc signalling protocol; see docs/signalling.md",
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
                "Role changed",
                json_content("Member"),
            ),
        ),
        RemoveMember => (
            None,
            ok(
                "200",
                "Removed; their connections are closed (4403)",
                json_content("Removed"),
            ),
        ),
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
                json_content("Revoked"),
            ),
        ),
        RevokeToken => (
            None,
            ok(
                "200",
                "Revoked; the token admits nothing from now on and its connections are closed (4403)",
                json_content("Revoked"),
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
                json_content("Revoked"),
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
            ok("200", "Events, newest first", json_content("AuditLog")),
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
                "The subscription with its signing secret (shown in this answer only)",
                json_content("WebhookWithSecret"),
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
            ok("200", "Delivery attempts, newest first", json_content("DeliveryList")),
        ),
        RotateWebhookSecret => (
            None,
            ok(
                "200",
                "The subscription with its new signing secret, shown this once; the replaced secret signs too until previous_secret_expires_at",
                json_content("WebhookWithSecret"),
            ),
        ),
        UpdateProject | ListVersions | CreateVersion | GetVersion | GetVersionUpdate
        | DeleteVersion | RestoreVersion | DiffVersions | ReplayHistory | DocumentAt
        | ListBranches | CreateBranch | PreviewMerge | MergeBranch => history::shape(id),
        ListThreads | CreateThread | GetThread | UpdateThread | DeleteThread | AddComment
        | EditComment | DeleteComment | AddReaction | RemoveReaction | ListChat | PostChat
        | GetSubscription | PutSubscription | ListReviews | RequestReview | GetReview
        | SubmitReview | WithdrawReview | DocumentActivity | ProjectActivity | ListInbox
        | InboxCount | MarkInboxRead | DeleteNotification => conversations::shape(id),
        ListAssets | UploadAsset | AssetStorage | GetAsset | UpdateAsset | DeleteAsset
        | RestoreAsset | PurgeAsset | GetAssetContent | ListAssetVersions | UploadAssetVersion
        | GetAssetVersionContent | AssetPreview | PutAssetTag | DeleteAssetTag | SignAssetLink
        | AssetUsage | DocumentAssets | CreateUpload | GetUpload | AbortUpload | PutUploadPart
        | CompleteUpload => assets::shape(id),
        ExportDocument | ImportDocument => archive::shape(id),
        IceServers => calls::shape(id),
    }
}

fn security(id: RouteId, access: Access) -> (Value, Option<String>) {
    match access {
        Access::Public => (json!([]), None),
        Access::DevMode => (
            json!([]),
            Some("Only when the server runs with DEV_MODE=true.".into()),
        ),
        Access::RoomToken if id == RouteId::Signal => (
            json!([{ "roomTokenQuery": [] }]),
            Some("A room token of the project, as ?token= or as a Sec-WebSocket-Protocol entry beside another protocol name. Topics are room names its room pattern covers. Checked before the hub is woken.".into()),
        ),
        Access::RoomToken => (
            json!([{ "roomTokenQuery": [] }]),
            Some("A room token for this room, as ?token= or as a Sec-WebSocket-Protocol entry beside tandemx. Checked before the room is woken.".into()),
        ),
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
        Access::KeyOrUser(role) if matches!(
            id,
            RouteId::ListInbox | RouteId::InboxCount | RouteId::MarkInboxRead | RouteId::DeleteNotification
        ) => (
            json!([{ "apiKey": [] }, { "roomToken": [] }, { "adminSecret": [] }]),
            Some(format!(
                "A room token of the project (for any room), or an API key naming the user in TandemX-Subject, with at least the {role} role."
            )),
        ),
        Access::LinkOrUser(role) => (
            json!([{ "apiKey": [] }, { "roomToken": [] }, { "adminSecret": [] }, {}]),
            Some(format!(
                "An API key, or a room token of the project (for any room), with at least the {role} role; or no credential with a signed link's expires and sig (POST .../links)."
            )),
        ),
        Access::KeyOrUser(role) => (
            json!([{ "apiKey": [] }, { "roomToken": [] }, { "adminSecret": [] }]),
            Some(format!(
                "An API key, or a room token of the project (for any room), with at least the {role} role."
            )),
        ),
    }
}

fn all_schemas() -> Value {
    let mut all = schemas::schemas();
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), history::schemas()) {
        map.extend(more);
    }
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), conversations::schemas()) {
        map.extend(more);
    }
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), assets::schemas()) {
        map.extend(more);
    }
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), archive::schemas()) {
        map.extend(more);
    }
    if let (Some(map), Value::Object(more)) = (all.as_object_mut(), calls::schemas()) {
        map.extend(more);
    }
    all
}

/// `getProject` for [`RouteId::GetProject`].
fn operation_id(id: RouteId) -> String {
    let name = format!("{id:?}");
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The OpenAPI 3.1 document of every route in [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let (body, (status, success)) = shape(route.id);
        let (mut security, mut note) = security(route.id, route.access);
        if route.id == RouteId::Health {
            // Anyone may ask; with the admin secret the check writes to R2 and says what failed.
            security = json!([{}, { "adminSecret": [] }]);
            note = Some("Anyone may ask. With the admin secret the R2 check writes, reads back and deletes a probe object, and the report carries error texts.".into());
        }
        let parameters = parameters::parameters(route.path, route.id);
        let traits = responses::Traits {
            body: body.is_some(),
            query: parameters.iter().any(|p| p["in"] == "query"),
            subject: parameters::reads_subject(&parameters),
        };
        let mut responses = responses::errors(route, &traits);
        archive::errors(route.id, &mut responses);
        responses.insert(status, success);
        responses.extend(assets::more(route.id));
        if route.id == RouteId::PutMember {
            let (status, added) = ok(
                "201",
                "Added: the subject was not a member",
                json_content("Member"),
            );
            responses.insert(status, added);
        }
        if route.id == RouteId::Health {
            responses.insert(
                "503".into(),
                json!({ "description": "A binding did not answer", "content": { "application/json": { "schema": schema("Health") } } }),
            );
        }
        // Every answer, whatever its status (`edge::fetch` sets it).
        for response in responses.values_mut() {
            response["headers"]["X-Request-Id"] =
                json!({ "$ref": "#/components/headers/RequestId" });
        }
        let mut op = json!({
            "operationId": operation_id(route.id),
            "summary": route.summary,
            "parameters": parameters,
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
            "description": "Real-time collaboration backend for Yjs. Errors are RFC 9457 problem details. Every answer carries its request's id in X-Request-Id (a problem body in request_id too): Cloudflare's Ray ID, or the caller's own X-Request-Id when it is 1 to 64 characters of A-Z a-z 0-9 . _ -, or a fresh one. See docs/api.md, docs/protocol.md and docs/operations.md.",
        },
        "paths": paths,
        "components": {
            "schemas": all_schemas(),
            "headers": {
                "RequestId": { "required": true,
                    "description": "The request's id, as its log lines name it: Cloudflare's Ray ID (cf-ray), else the X-Request-Id the caller sent when it is 1 to 64 characters of A-Z a-z 0-9 . _ - (anything else is ignored), else a fresh random one",
                    "schema": { "type": "string", "pattern": patterns::ID } },
            },
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "A project API key, tx_key_..." },
                "adminSecret": { "type": "http", "scheme": "bearer", "description": "The deployment's ADMIN_SECRET" },
                "roomToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A room token, on the document and history routes" },
                "roomTokenQuery": { "type": "apiKey", "in": "query", "name": "token", "description": "A room token, on /rooms/{room} and /signal (or as a Sec-WebSocket-Protocol entry beside tandemx)" },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema in `v` (depth first), with its JSON pointer.
    fn schemas<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                out.push((at.clone(), v));
                for (k, child) in map {
                    schemas(child, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    schemas(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn a_nullable_enum_lists_null() {
        let doc = document();
        let mut all = Vec::new();
        schemas(&doc, String::new(), &mut all);
        let mut seen = 0;
        for (at, s) in all {
            let nullable = s["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("null")));
            if let (true, Some(values)) = (nullable, s["enum"].as_array()) {
                seen += 1;
                assert!(
                    values.contains(&Value::Null),
                    "{at}: null is not in the enum"
                );
            }
        }
        assert!(seen > 0, "the document has nullable enums (roles)");
    }

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
        for kind in ["schemas", "headers"] {
            for piece in text.split(&format!("\"#/components/{kind}/")).skip(1) {
                let name = &piece[..piece.find('"').unwrap()];
                assert!(
                    doc["components"][kind][name].is_object(),
                    "missing {kind} {name}"
                );
            }
        }
    }

    #[test]
    fn every_answer_names_its_request_id() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    assert_eq!(
                        response["headers"]["X-Request-Id"]["$ref"],
                        "#/components/headers/RequestId",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert!(doc["components"]["schemas"]["Problem"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("request_id")));
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
