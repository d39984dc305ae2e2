//! The OpenAPI shapes of the asset library: assets, versions, tags, licences, signed links,
//! usage by documents, storage against the quota, and resumable uploads.

use super::schemas::{nullable, object};
use super::{json_body, json_content, ok, schema};
use crate::routes::RouteId;
use serde_json::{json, Value};

fn file() -> Value {
    json!({ "*/*": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } })
}

fn file_body(description: &str) -> Value {
    json!({ "required": true, "description": description, "content": file() })
}

/// Request body and success response of an asset route.
pub(super) fn shape(id: RouteId) -> (Option<Value>, (String, Value)) {
    use RouteId::*;
    match id {
        ListAssets => (None, ok("200", "Assets by name", json_content("AssetPage"))),
        UploadAsset => (
            Some(file_body("The file; Content-Length and TandemX-SHA256 are required")),
            ok(
                "201",
                "The new asset (deduplicated: the same bytes were stored already)",
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
        GetAssetContent | GetAssetVersionContent => (
            None,
            ok(
                "200",
                "The file (206 for a Range, 304 when the cached copy is current)",
                Some(file()),
            ),
        ),
        AssetPreview => (
            None,
            ok(
                "200",
                "The image, resized (304 when the cached copy is current)",
                Some(json!({
                    "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } },
                    "image/jpeg": { "schema": { "type": "string", "contentMediaType": "image/jpeg" } },
                    "image/webp": { "schema": { "type": "string", "contentMediaType": "image/webp" } },
                })),
            ),
        ),
        ListAssetVersions => (
            None,
            ok("200", "Versions, newest first", json_content("AssetVersionList")),
        ),
        UploadAssetVersion => (
            Some(file_body("The file; Content-Length and TandemX-SHA256 are required")),
            ok("201", "The asset with its new current version", json_content("Asset")),
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
            Some(file_body("The part: exactly the upload's part_size bytes, the last part the rest")),
            ok("200", "The part as received", json_content("UploadPart")),
        ),
        CompleteUpload => (
            None,
            ok("201", "The asset (or its new version)", json_content("Asset")),
        ),
        _ => unreachable!("not an asset route"),
    }
}

/// The schemas of the asset routes.
pub(super) fn schemas() -> Value {
    use crate::assets::*;
    let ms = json!({ "type": "integer", "minimum": 0, "description": "Unix milliseconds" });
    let ms_or_null = nullable(ms.clone());
    let int = json!({ "type": "integer", "minimum": 0 });
    let text = json!({ "type": "string" });
    let sha = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let name = json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": "^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$" });
    let tag = json!({ "type": "string", "pattern": "^[a-z0-9._:-]{1,64}$" });
    let licence = object(
        json!({
            "spdx": { "type": "string", "minLength": 1, "maxLength": MAX_SPDX, "pattern": "^[A-Za-z0-9.+:() -]+$" },
            "text": { "type": "string", "minLength": 1, "maxLength": MAX_LICENCE_TEXT, "pattern": "\\S" },
            "attribution": { "type": "string", "maxLength": MAX_ATTRIBUTION, "pattern": "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$" },
            "source_url": { "type": "string", "maxLength": MAX_SOURCE_URL, "pattern": "^https?://[^\\s\\u0000-\\u001f\\u007f-\\u009f]*$" },
        }),
        &[],
    );
    let asset = object(
        json!({
            "id": text, "name": text, "content_type": text, "size": int, "sha256": sha,
            "version": int, "uploader": text, "created_at": ms, "updated_at": ms,
            "tags": { "type": "array", "items": text },
            "licence": { "oneOf": [{ "type": "null" }, schema("Licence")] },
            "deleted_at": ms_or_null, "purge_at": ms_or_null,
            "used_by": { "type": "integer", "minimum": 0, "description": "Documents that reference it" },
            "deduplicated": { "type": "boolean", "description": "On uploads: the bytes were stored already, nothing was written" },
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
        json!({ "version": int, "name": text, "content_type": text, "size": int, "sha256": sha,
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
            "id": text, "name": text, "content_type": text, "size": int, "sha256": sha,
            "part_size": int, "parts": int, "asset": { "type": ["string", "null"] },
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
    json!({
        "Licence": licence,
        "Asset": asset,
        "AssetPage": object(json!({ "assets": { "type": "array", "items": schema("Asset") }, "next_cursor": cursor }), &["assets", "next_cursor"]),
        "AssetVersion": version,
        "AssetVersionList": object(json!({ "versions": { "type": "array", "items": schema("AssetVersion") } }), &["versions"]),
        "UpdateAsset": object(json!({
            "name": name,
            "licence": { "oneOf": [{ "type": "null" }, schema("Licence")] },
        }), &[]),
        "Purged": object(json!({ "id": text, "purged": { "const": true } }), &["id", "purged"]),
        "AssetLinkRequest": object(json!({
            "version": { "type": "integer", "minimum": 1, "description": "Default: the current version" },
            "expires_in": { "type": "integer", "minimum": 1, "maximum": MAX_LINK_SECONDS, "default": 3600 },
            "download": { "type": "boolean", "description": "Content-Disposition: attachment" },
            "preview": object(json!({
                "w": { "type": "integer", "enum": PREVIEW_WIDTHS },
                "format": { "type": "string", "enum": ["png", "jpeg", "webp"] },
            }), &["w", "format"]),
        }), &[]),
        "AssetLink": object(json!({ "url": text, "version": int, "expires_at": ms }), &["url", "version", "expires_at"]),
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
            "name": name, "size": { "type": "integer", "minimum": 1 }, "sha256": sha,
            "content_type": { "type": "string", "maxLength": 255 },
            "part_size": { "type": "integer", "minimum": MIN_PART, "maximum": MAX_PART },
            "asset": { "type": "string", "description": "Upload a new version of this asset" },
            "tags": { "type": "array", "maxItems": MAX_TAGS, "items": tag },
        }), &["name", "size", "sha256"]),
        "Upload": upload,
        "UploadPart": object(json!({ "part_number": int, "size": int }), &["part_number", "size"]),
        "UploadStarted": object(json!({
            "complete": { "type": "boolean" },
            "upload": { "oneOf": [{ "type": "null" }, schema("Upload")] },
            "asset": { "oneOf": [{ "type": "null" }, schema("Asset")] },
        }), &["complete", "upload", "asset"]),
    })
}
