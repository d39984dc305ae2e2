//! The OpenAPI shapes of the asset library: assets, versions, tags, licences, signed links,
//! usage by documents, storage against the quota, and resumable uploads.

use super::schemas::{nullable, object};
use super::{json_body, json_content, ok, patterns, schema};
use crate::routes::RouteId;
use serde_json::{json, Value};

fn file() -> Value {
    json!({ "*/*": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } })
}

/// A file or part sent as the raw body: never empty (an empty file is refused, 400).
fn file_body(description: &str) -> Value {
    let content = json!({ "*/*": { "schema": { "type": "string", "minLength": 1,
        "contentMediaType": "application/octet-stream" } } });
    json!({ "required": true, "description": description, "content": content })
}

/// The headers of stored content (`edge::v1::assets::stored_headers`).
fn stored_headers(range: bool) -> Value {
    let text = json!({ "type": "string" });
    let mut h = json!({
        "ETag": { "description": "The SHA-256 in quotes (a preview's: with its width and format)", "schema": text },
        "Last-Modified": { "description": "When the version was uploaded", "schema": text },
        "Cache-Control": { "description": "private, max-age=31536000, immutable for a version named in the path or query (a signed link's: until it expires); private, no-cache for the current one", "schema": text },
        "Content-Security-Policy": { "description": "default-src 'none'; sandbox: stored files never run in the API's origin", "schema": text },
        "X-Content-Type-Options": { "description": "nosniff", "schema": text },
    });
    if range {
        h["Content-Disposition"] = json!({ "description": "inline, or attachment (download, or markup), with the display name", "schema": text });
        h["Accept-Ranges"] = json!({ "description": "bytes", "schema": text });
    }
    h
}

/// Answers of an asset route besides its success and its errors: partial content and not
/// modified.
pub(super) fn more(id: RouteId) -> Vec<(String, Value)> {
    use RouteId::*;
    let not_modified = |what: &str| {
        (
            "304".to_owned(),
            json!({ "description": format!("Not modified: If-None-Match names the {what}'s ETag, or without it If-Modified-Since is not older; no body"),
                "headers": stored_headers(false) }),
        )
    };
    match id {
        GetAssetContent | GetAssetVersionContent => {
            let mut headers = stored_headers(true);
            headers["Content-Range"] = json!({ "required": true, "description": "bytes first-last/size",
                "schema": { "type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$" } });
            vec![
                (
                    "206".to_owned(),
                    json!({ "description": "The one range the Range header asks for", "headers": headers, "content": file() }),
                ),
                not_modified("content"),
            ]
        }
        AssetPreview => vec![not_modified("preview")],
        _ => Vec::new(),
    }
}

/// Request body and success response of an asset route.
pub(super) fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    use RouteId::*;
    match id {
        ListAssets => (None, ok("200", "Assets by name", json_content("AssetPage"))),
        UploadAsset => (
            Some(file_body("The file, streamed to storage: the server reads its Content-Length (required; a chunked body is refused) and TandemX-SHA256. Its Content-Type is the asset's (none: sniffed from the bytes, else application/octet-stream); an image type must match the bytes")),
            ok(
                "201",
                "The new asset (deduplicated: the project stored the same bytes already, nothing was written)",
                json_content("Asset"),
            ),
        ),
        AssetStorage => (
            None,
            ok("200", "Bytes stored and the quota", json_content("AssetStorage")),
        ),
        GetAsset => (None, ok("200", "The asset", json_content("Asset"))),
        UpdateAsset => (
            Some(json_body("UpdateAsset")),
            ok("200", "The asset as it is now", json_content("Asset")),
        ),
        DeleteAsset => (
            None,
            ok("200", "In the trash until purge_at", json_content("Asset")),
        ),
        RestoreAsset => (
            None,
            ok("200", "Out of the trash", json_content("Asset")),
        ),
        PurgeAsset => (
            None,
            ok("200", "Deleted for good", json_content("Purged")),
        ),
        GetAssetContent | GetAssetVersionContent => {
            let (status, mut response) = ok(
                "200",
                "The file, with the version's content type",
                Some(file()),
            );
            response["headers"] = stored_headers(true);
            (None, (status, response))
        }
        AssetPreview => (
            None,
            ok(
                "200",
                "The image, resized (made once, then stored)",
                Some(json!({
                    "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } },
                    "image/jpeg": { "schema": { "type": "string", "contentMediaType": "image/jpeg" } },
                    "image/webp": { "schema": { "type": "string", "contentMediaType": "image/webp" } },
                })),
            ),
        )
        .with_headers(stored_headers(false)),
        ListAssetVersions => (
            None,
            ok("200", "Versions, newest first", json_content("AssetVersionList")),
        ),
        UploadAssetVersion => (
            Some(file_body("The file, streamed to storage: the server reads its Content-Length (required; a chunked body is refused) and TandemX-SHA256. Its Content-Type is the version's (none: sniffed from the bytes, else application/octet-stream); an image type must match the bytes")),
            ok("201", "The asset with its new current version (the display name is the upload's)", json_content("Asset")),
        ),
        PutAssetTag | DeleteAssetTag => (
            None,
            ok("200", "The asset's tags now", json_content("Asset")),
        ),
        SignAssetLink => (
            Some(json_body("AssetLinkRequest")),
            ok("201", "The link", json_content("AssetLink")),
        ),
        AssetUsage => (
            None,
            ok("200", "Documents that reference the asset", json_content("AssetUsage")),
        ),
        DocumentAssets => (
            None,
            ok("200", "Assets the document references", json_content("DocumentAssets")),
        ),
        CreateUpload => (
            Some(json_body("NewUpload")),
            ok(
                "201",
                "The upload to send parts to, or (complete) the asset when the bytes were stored already",
                json_content("UploadStarted"),
            ),
        ),
        GetUpload => (None, ok("200", "The upload", json_content("Upload"))),
        AbortUpload => (None, ok("200", "Aborted", json_content("Upload"))),
        PutUploadPart => (
            Some(file_body("The part's bytes: exactly the upload's part_size (the last part: the rest), with that Content-Length. Sending a part again replaces it")),
            ok("200", "The part as received", json_content("UploadPart")),
        ),
        CompleteUpload => (
            None,
            ok("201", "The asset (or the asset with its new version); the upload is gone", json_content("Asset")),
        ),
        _ => unreachable!("not an asset route"),
    }
}

/// Sets a success response's headers.
trait WithHeaders {
    fn with_headers(self, headers: Value) -> Self;
}

impl WithHeaders for (Option<Value>, (String, Value)) {
    fn with_headers(mut self, headers: Value) -> Self {
        self.1 .1["headers"] = headers;
        self
    }
}

/// The schemas of the asset routes. Request bodies state the rules the handlers check
/// (`edge::v1::assets`, `edge::v1::uploads`, `crate::assets`): unknown fields are refused,
/// lengths count characters, and an optional field reads `null` as absent.
pub(super) fn schemas() -> Value {
    use crate::assets::*;
    let ms = json!({ "type": "integer", "minimum": 0, "description": "Unix milliseconds" });
    let ms_or_null = nullable(ms.clone());
    let int = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let sha = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let name = json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": patterns::DISPLAY_NAME,
        "description": format!("1 to {MAX_NAME} characters, no control characters, not only white space") });
    let id = json!({ "type": "string", "pattern": patterns::ID });
    let stored_tag = json!({ "type": "string", "pattern": "^[a-z0-9._:-]{1,64}$" });
    let licence_fields = |input: bool| {
        let field = |s: Value| if input { nullable(s) } else { s };
        json!({
            "spdx": field(json!({ "type": "string", "pattern": patterns::SPDX,
                "description": "An SPDX licence identifier or expression (CC-BY-4.0, MIT OR Apache-2.0)" })),
            "text": field(json!({ "type": "string", "maxLength": MAX_LICENCE_TEXT, "pattern": patterns::LICENCE_TEXT,
                "description": "A custom licence's text, not only white space" })),
            "attribution": field(json!({ "type": "string", "maxLength": MAX_ATTRIBUTION, "pattern": patterns::REVIEW_COMMENT,
                "description": "Who to credit: text without control characters but the line feed" })),
            "source_url": field(json!({ "type": "string", "maxLength": MAX_SOURCE_URL, "pattern": patterns::SOURCE_URL,
                "description": "Where the work came from: http:// or https://, no white space" })),
        })
    };
    // spdx or text, not both.
    let one_licence = json!({ "not": { "required": ["spdx", "text"],
        "properties": { "spdx": { "type": "string" }, "text": { "type": "string" } } } });
    let mut licence = object(licence_fields(false), &[]);
    licence["allOf"] = json!([one_licence]);
    let mut licence_input = object(licence_fields(true), &[]);
    licence_input["allOf"] = json!([one_licence]);
    licence_input["description"] = json!(
        "Replaces the whole licence: fields left out (or null) are cleared. spdx or text, not both"
    );
    let asset = object(
        json!({
            "id": id, "name": text, "content_type": text, "size": int, "sha256": sha,
            "version": { "type": "integer", "minimum": 1, "description": "The current version" },
            "uploader": text, "created_at": ms, "updated_at": ms,
            "tags": { "type": "array", "items": stored_tag, "maxItems": MAX_TAGS },
            "licence": { "oneOf": [{ "type": "null" }, schema("Licence")] },
            "deleted_at": ms_or_null, "purge_at": ms_or_null,
            "used_by": { "type": "integer", "minimum": 0, "description": "Documents that reference it" },
            "deduplicated": { "type": "boolean", "description": "On uploads only: the project stored the same bytes already, nothing was written" },
        }),
        &[
            "id",
            "name",
            "content_type",
            "size",
            "sha256",
            "version",
            "uploader",
            "created_at",
            "updated_at",
            "tags",
            "licence",
            "deleted_at",
            "purge_at",
            "used_by",
        ],
    );
    let version = object(
        json!({ "version": { "type": "integer", "minimum": 1 }, "name": text, "content_type": text, "size": int, "sha256": sha,
            "uploader": text, "created_at": ms }),
        &[
            "version",
            "name",
            "content_type",
            "size",
            "sha256",
            "uploader",
            "created_at",
        ],
    );
    let cursor = json!({ "type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last" });
    let upload = object(
        json!({
            "id": id, "name": text,
            "content_type": { "type": "string", "description": "As declared; empty: sniffed from the bytes on complete" },
            "size": int, "sha256": sha,
            "part_size": int, "parts": { "type": "integer", "minimum": 1, "maximum": MAX_PARTS }, "asset": { "type": ["string", "null"] },
            "uploader": text, "created_at": ms, "expires_at": ms,
            "received": { "type": "array", "items": schema("UploadPart") },
            "state": { "type": "string", "enum": ["open", "aborted"] },
        }),
        &[
            "id",
            "name",
            "content_type",
            "size",
            "sha256",
            "part_size",
            "parts",
            "asset",
            "uploader",
            "created_at",
            "expires_at",
            "received",
            "state",
        ],
    );
    let mut link_request = object(
        json!({
            "version": { "type": ["integer", "null"], "minimum": 0, "maximum": u64::MAX,
                "description": "Default: the current version; one that does not exist names nothing (404)" },
            "expires_in": { "type": ["integer", "null"], "minimum": 1, "maximum": MAX_LINK_SECONDS, "default": 3600,
                "description": "Seconds the link works" },
            "download": { "type": "boolean", "default": false, "description": "Content-Disposition: attachment (not with preview)" },
            "preview": { "oneOf": [{ "type": "null" }, object(json!({
                "w": { "type": "integer", "enum": PREVIEW_WIDTHS },
                "format": { "type": "string", "enum": ["png", "jpeg", "jpg", "webp"] },
            }), &["w", "format"])], "description": "A link to a preview instead of the content" },
        }),
        &[],
    );
    link_request["not"] = json!({ "required": ["preview", "download"],
        "properties": { "preview": { "type": "object" }, "download": { "const": true } } });
    json!({
        "Licence": licence,
        "LicenceInput": licence_input,
        "Asset": asset,
        "AssetPage": object(json!({ "assets": { "type": "array", "items": schema("Asset") }, "next_cursor": cursor }), &["assets", "next_cursor"]),
        "AssetVersion": version,
        "AssetVersionList": object(json!({ "versions": { "type": "array", "items": schema("AssetVersion") } }), &["versions"]),
        "UpdateAsset": object(json!({
            "name": nullable(name.clone()),
            "licence": { "oneOf": [{ "type": "null" }, schema("LicenceInput")], "description": "null: no licence" },
        }), &[]),
        "Purged": object(json!({ "id": text, "purged": { "const": true } }), &["id", "purged"]),
        "AssetLinkRequest": link_request,
        "AssetLink": object(json!({ "url": text, "version": { "type": "integer", "minimum": 1 }, "expires_at": ms }), &["url", "version", "expires_at"]),
        "AssetUsage": object(json!({
            "asset": text,
            "documents": { "type": "array", "items": object(json!({ "document": text, "refs": int }), &["document", "refs"]) },
            "next_cursor": cursor,
        }), &["asset", "documents", "next_cursor"]),
        "DocumentAssets": object(json!({
            "document": text,
            "assets": { "type": "array", "items": object(json!({
                "id": text, "refs": int,
                "asset": { "oneOf": [{ "type": "null" }, schema("Asset")], "description": "null: no such asset in the project (any more)" },
            }), &["id", "refs", "asset"]) },
        }), &["document", "assets"]),
        "AssetStorage": object(json!({
            "bytes": int, "files": int, "assets": int, "versions": int, "trashed": int,
            "by_content_type": { "type": "object", "additionalProperties": object(json!({ "bytes": int, "files": int }), &["bytes", "files"]) },
            "quota_bytes": int, "max_file_bytes": int, "direct_upload_bytes": int,
        }), &["bytes", "files", "assets", "versions", "trashed", "by_content_type", "quota_bytes", "max_file_bytes", "direct_upload_bytes"]),
        "NewUpload": object(json!({
            "name": name,
            "size": { "type": "integer", "minimum": 1, "maximum": u64::MAX, "description": "Bytes; more than the project's largest file is refused (413)" },
            "sha256": { "type": "string", "pattern": patterns::SHA256, "description": "The whole file's SHA-256, checked on complete" },
            "content_type": { "type": ["string", "null"], "pattern": format!("^$|{}", patterns::CONTENT_TYPE),
                "description": "type/subtype (parameters dropped); empty or null: sniffed from the bytes on complete" },
            "part_size": { "type": ["integer", "null"], "minimum": MIN_PART, "maximum": MAX_PART,
                "description": format!("Bytes of every part but the last; default {DEFAULT_PART} or more, so that the parts are at most {MAX_PARTS}. The parts may be at most {MAX_PARTS} (400)") },
            "asset": nullable(json!({ "type": "string", "pattern": patterns::ID, "description": "Upload a new version of this asset" })),
            "tags": { "type": "array", "maxItems": MAX_TAGS, "items": { "type": "string", "pattern": patterns::TAG },
                "description": "Tags to give the asset (upper case is lowered; repeats count once)" },
        }), &["name", "size", "sha256"]),
        "Upload": upload,
        "UploadPart": object(json!({ "part_number": { "type": "integer", "minimum": 1, "maximum": MAX_PARTS }, "size": int }), &["part_number", "size"]),
        "UploadStarted": { "oneOf": [
            object(json!({ "complete": { "const": false }, "upload": schema("Upload"), "asset": { "type": "null" } }),
                &["complete", "upload", "asset"]),
            object(json!({ "complete": { "const": true, "description": "The project stored these bytes already: the asset is made, nothing is to be sent" },
                "upload": { "type": "null" }, "asset": schema("Asset") }), &["complete", "upload", "asset"]),
        ] },
    })
}
