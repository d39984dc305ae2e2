//! The OpenAPI shapes of document archives (docs/archive.md): the export's tar file, the
//! import's body and answer, the manifest inside, and the failures particular to them.

use super::schemas::object;
use super::{schema, Value};
use crate::assets::archive::{FORMAT, MAX_ASSETS, MAX_IMPORT_BYTES};
use crate::routes::RouteId;
use serde_json::{json, Map};

fn tar() -> Value {
    json!({ "application/x-tar": { "schema": { "type": "string", "contentMediaType": "application/x-tar" } } })
}

/// Request body and success response of an archive route.
pub(super) fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    match id {
        RouteId::ExportDocument => (
            None,
            (
                "200".into(),
                json!({
                    "description": format!("A ustar archive: manifest.json (an ArchiveManifest), document.yjs, document.json, then assets/<sha256> for each file the document references; its Content-Length is known up front"),
                    "content": tar(),
                }),
            ),
        ),
        _ => (
            Some(json!({
                "required": true,
                "description": format!("An archive as the export writes it, at most {MAX_IMPORT_BYTES} bytes; manifest.json first"),
                "content": tar(),
            })),
            (
                "201".into(),
                json!({ "description": "The document, created from the archive, and what became of its assets",
                    "content": { "application/json": { "schema": schema("ImportedDocument") } } }),
            ),
        ),
    }
}

fn problem(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": schema("Problem") } } })
}

/// The failures of an archive route beside those every route has.
pub(super) fn errors(id: RouteId, out: &mut Map<String, Value>) {
    match id {
        RouteId::ExportDocument => {
            out.insert(
                "422".into(),
                problem(&format!(
                    "The document references more than {MAX_ASSETS} asset versions (too-many-assets)"
                )),
            );
        }
        RouteId::ImportDocument => {
            out.insert(
                "400".into(),
                problem("The body is not a ustar archive (malformed header, checksum, truncated, data after the end)"),
            );
            out.insert(
                "409".into(),
                problem("A document of that name exists, an asset id of the archive names other content in this project, or the files would take the project past its asset quota (quota-exceeded); nothing was imported"),
            );
            out.insert(
                "413".into(),
                problem(&format!("The archive is larger than {MAX_IMPORT_BYTES} bytes, or a file larger than the project's largest (file-too-large)")),
            );
            out.insert(
                "422".into(),
                problem(&format!("The archive is not one this server reads (invalid-archive: no {FORMAT} manifest first, an entry not in it, one missing, a state that is not a Yjs update, a type the bytes contradict), or a file's SHA-256 is not its name (digest-mismatch); nothing was imported")),
            );
        }
        _ => {}
    }
}

/// The archive schemas.
pub(super) fn schemas() -> Value {
    let text = json!({ "type": "string" });
    let int = json!({ "type": "integer", "minimum": 0 });
    let archived = object(
        json!({
            "id": text, "version": { "type": "integer", "minimum": 1 }, "current": { "type": "boolean" },
            "name": text, "content_type": text, "size": { "type": "integer", "minimum": 1 },
            "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
            "licence": { "oneOf": [{ "type": "null" }, schema("Licence")] },
            "tags": { "type": "array", "items": text },
            "path": { "type": "string", "description": "assets/<sha256>" },
        }),
        &[
            "id",
            "version",
            "name",
            "content_type",
            "size",
            "sha256",
            "path",
        ],
    );
    let missing = object(
        json!({ "id": text, "version": { "type": ["integer", "null"], "minimum": 1 }, "reason": text }),
        &["id", "reason"],
    );
    json!({
        "ArchiveManifest": object(json!({
            "format": { "const": FORMAT },
            "document": text,
            "exported_at": int,
            "assets": { "type": "array", "maxItems": MAX_ASSETS, "items": archived },
            "missing": { "type": "array", "maxItems": MAX_ASSETS, "items": missing },
        }), &["format", "document", "exported_at", "assets"]),
        "ImportedDocument": object(json!({
            "name": text, "created_at": int, "created_by": text,
            "version": { "type": "object", "description": "The version recording the imported state" },
            "assets": object(json!({
                "created": { "type": "array", "items": text },
                "reused": { "type": "array", "items": text, "description": "Assets this project has already, with the same bytes" },
            }), &["created", "reused"]),
            "files": object(json!({ "stored": int, "deduplicated": int }), &["stored", "deduplicated"]),
        }), &["name", "created_at", "created_by", "version", "assets", "files"]),
    })
}
