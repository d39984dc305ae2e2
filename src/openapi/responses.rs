//! The answers a route gives besides its success: which statuses, and why, read from what the
//! route does (its access rule, whether it reads a body or a query, whether it calls a room).
//! Every one is an RFC 9457 problem document; a rate-limited write says when to retry.

use super::schema;
use crate::routes::{Access, Route, RouteId};
use serde_json::{json, Map, Value};

/// What a route does that decides how it can fail.
pub(super) struct Traits {
    /// It reads a request body.
    pub body: bool,
    /// It reads query parameters.
    pub query: bool,
    /// It reads the `TandemX-Subject` header.
    pub subject: bool,
}

/// Routes whose answer comes from a room: the room may be unavailable (503).
fn calls_a_room(id: RouteId) -> bool {
    use RouteId::*;
    matches!(
        id,
        Room | Signal
            | GetDocument
            | DeleteDocument
            | GetDocumentUpdate
            | PostDocumentUpdate
            | PostDocumentEdits
            | ListVersions
            | CreateVersion
            | GetVersion
            | GetVersionUpdate
            | DeleteVersion
            | RestoreVersion
            | DiffVersions
            | ReplayHistory
            | DocumentAt
            | CreateBranch
            | PreviewMerge
            | MergeBranch
            | ListThreads
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
            // A review of a version asks the room whether the version exists.
            | RequestReview
            | ExportDocument
            | ImportDocument
    )
}

/// Routes that read a document's state: a deleted one is gone (410). Those that call its
/// room but deleting (a deleted document is not found), the branch list (read from D1), and
/// the document's notification level, reviews and activity (each checks the document first).
fn reads_document_state(id: RouteId) -> bool {
    use RouteId::*;
    (calls_a_room(id) && !matches!(id, DeleteDocument | ImportDocument))
        || matches!(
            id,
            ListBranches
                | GetSubscription
                | PutSubscription
                | ListReviews
                | GetReview
                | SubmitReview
                | WithdrawReview
                | DocumentActivity
        )
}

/// Routes that create threads, comments or chat messages: counted per user and project.
fn creates_conversation(id: RouteId) -> bool {
    matches!(
        id,
        RouteId::CreateThread | RouteId::AddComment | RouteId::PostChat
    )
}

/// Why a route answers 409, where it can.
fn conflict(id: RouteId) -> Option<&'static str> {
    use RouteId::*;
    Some(match id {
        CreateDocument | ImportDocument => "A document of that name exists",
        AddSigningKey => "A signing key with that kid exists",
        RevokeKey => "The key is revoked already",
        RevokeSigningKey => "The signing key is revoked already",
        RotateWebhookSecret => "Another rotation of the same secret won",
        CreateBranch => "A document of that name exists",
        PreviewMerge => "The parent document was deleted",
        MergeBranch => {
            "The parent document was deleted, or the project requires an approved review of the branch before a merge and it has none (owners may merge without)"
        }
        CreateThread => "The room holds 10,000 threads (deleted ones count), as many as it may",
        AddComment => "The thread holds 500 comments (deleted ones count), as many as it may",
        AddReaction => {
            "The comment holds 20 distinct reactions, or this reaction 1,000 users, as many as it may"
        }
        SubmitReview => "The review was withdrawn",
        PostDocumentEdits => {
            "An operation does not fit the document as it is (a text operation on a map, an index past the end, a key that is not there); nothing was applied"
        }
        UpdateAsset | PutAssetTag | DeleteAssetTag | SignAssetLink => {
            if id == PutAssetTag {
                "The asset is in the trash (restore it first), or holds 32 tags, as many as it may"
            } else {
                "The asset is in the trash (restore it first)"
            }
        }
        DeleteAsset => {
            "The asset is in the trash already, or documents reference it (the detail names them) and force is not set"
        }
        RestoreAsset => "The asset is not in the trash",
        PurgeAsset => "The asset is not in the trash (delete it first)",
        UploadAsset => "The bytes would take the project past its storage quota (quota-exceeded)",
        UploadAssetVersion | CreateUpload => {
            "The asset is in the trash, or keeps 1,000 versions, as many as it may; or the bytes would take the project past its storage quota (quota-exceeded)"
        }
        CompleteUpload => {
            "Parts are missing (the detail names them), or storage could not join them (upload them again or start over), or the asset the upload is a version of went to the trash"
        }
        _ => return None,
    })
}

/// Why an asset route answers 422, where it can.
fn unprocessable(id: RouteId) -> Option<&'static str> {
    use RouteId::*;
    Some(match id {
        UploadAsset | UploadAssetVersion => {
            "The body's SHA-256 is not TandemX-SHA256, or names stored bytes of another size (digest-mismatch); or the bytes are not the raster image or SVG the Content-Type says (content-mismatch). Nothing is stored"
        }
        CreateUpload => {
            "sha256 names stored bytes of another size (digest-mismatch), or those bytes are not the image content_type says (content-mismatch)"
        }
        CompleteUpload => {
            "The parts hold another size (size-mismatch) or another SHA-256 (digest-mismatch) than the upload was started with, or are not the image its content_type says (content-mismatch); the upload is dropped"
        }
        AssetPreview => {
            "The image is larger than previews are made of: 32 MiB, or (the previews worker's answer, relayed) 16384 pixels a side or 16 megapixels (image-too-large); or its bytes do not decode (undecodable-image)"
        }
        _ => return None,
    })
}

/// Why a route that reads a body answers 413.
fn too_large(id: RouteId) -> Option<&'static str> {
    use RouteId::*;
    Some(match id {
        UploadAsset | UploadAssetVersion => {
            "The file is larger than the project's largest file (file-too-large), or than one request may carry (body-too-large: send it in parts with POST .../uploads); GET .../asset-usage tells both"
        }
        CreateUpload => {
            "The body is larger than 64 KiB of JSON (body-too-large), or size is larger than the project's largest file (file-too-large)"
        }
        // A part must be exactly its size (400).
        PutUploadPart => return None,
        _ => "The body is larger than the route reads (64 KiB of JSON; MAX_FRAME_BYTES for an update)",
    })
}

/// Why an asset route answers 400, where it is more than the common reasons.
fn bad_asset_request(id: RouteId) -> Option<&'static str> {
    use RouteId::*;
    Some(match id {
        UploadAsset | UploadAssetVersion => {
            "Invalid query (name, tags) or path parameter; TandemX-SHA256 missing or not 64 hex digits; no Content-Length, a body shorter or longer than it, or an empty file; a Content-Type that is not type/subtype"
        }
        PutUploadPart => {
            "The part is not exactly its size (the upload's part_size, the last part the rest) with that Content-Length, or it could not be stored (the body ended early, or the upload is gone from storage)"
        }
        CreateUpload => {
            "Invalid request body or path parameter, or a size that takes more than 10,000 parts of part_size"
        }
        SignAssetLink => "Invalid request body or path parameter, or a preview link that is also a download",
        _ => return None,
    })
}

fn problem(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": schema("Problem") } } })
}

/// The error answers of `route`, by status.
pub(super) fn errors(route: &Route, traits: &Traits) -> Map<String, Value> {
    use RouteId::*;
    let id = route.id;
    let has_params = route.path.contains('{');
    let credential = !matches!(route.access, Access::Public | Access::DevMode);
    let v1 = matches!(
        route.access,
        Access::Admin | Access::Key(_) | Access::KeyOrToken(_) | Access::KeyOrUser(_)
    );
    let mut out = Map::new();
    let mut add = |status: u16, response: Value| {
        out.insert(status.to_string(), response);
    };
    if has_params || traits.body || traits.query {
        let what = match (has_params, traits.body, traits.query) {
            (_, true, _) => "Invalid request body, or path parameter",
            (_, _, true) => "Invalid query or path parameter",
            _ => "Invalid path parameter",
        };
        if let Some(why) = bad_asset_request(id) {
            add(400, problem(why));
        } else if traits.subject {
            add(
                400,
                problem(&format!("{what}; or TandemX-Subject is not a user id, names another user than the room token's, or (the inbox) an API key names no user")),
            );
        } else {
            add(400, problem(what));
        }
    }
    if let Access::LinkOrUser(_) = route.access {
        add(
            401,
            problem("Without sig: a missing, malformed, expired or unknown credential"),
        );
        add(
            403,
            problem("Credential refused: role too low, revoked, another project, member removed, project deleted; or (with sig) the signed link is altered, expired or for other content"),
        );
    } else if credential {
        add(
            401,
            problem("Missing, malformed, expired or unknown credential"),
        );
        add(
            403,
            problem("Credential refused: role too low, revoked, another room or project, member removed, project deleted"),
        );
    }
    if has_params || id == DevToken {
        let why = match id {
            DevToken => "The server does not run with DEV_MODE=true",
            Room => "The document does not exist and the token's role may not create it",
            _ => "No such project (or one the credential does not belong to), or no such resource in it",
        };
        add(404, problem(why));
    }
    if let Some(why) = conflict(id) {
        add(409, problem(why));
    }
    if reads_document_state(id) {
        let why = if id == DocumentAt {
            "The document was deleted (document-deleted), or the history before t is no longer kept (history-pruned)"
        } else {
            "The document was deleted (document-deleted)"
        };
        add(410, problem(why));
    }
    if traits.body {
        if let Some(why) = too_large(id) {
            add(413, problem(why));
        }
    }
    if id == AssetPreview {
        add(
            415,
            problem("The version is not a PNG, JPEG, GIF or WebP image: previews are made of those only"),
        );
    }
    if matches!(id, GetAssetContent | GetAssetVersionContent) {
        let mut response = problem("The Range starts past the end of the content");
        response["headers"] = json!({ "Content-Range": { "required": true,
            "description": "bytes */<size>: the content's length",
            "schema": { "type": "string", "pattern": "^bytes \\*/[0-9]+$" } } });
        add(416, response);
    }
    if let Some(why) = unprocessable(id) {
        add(422, problem(why));
    }
    if id == Room || id == Signal {
        add(
            426,
            problem("Not a WebSocket upgrade: connect with a WebSocket client"),
        );
    }
    if id == Room {
        add(
            429,
            problem("The user holds as many connections to the room as one user may"),
        );
    }
    let write = v1 && route.method != "GET";
    if write || id == MintToken || id == IceServers {
        let limit = if id == IceServers {
            "Over the rate limit of credentials handed out: token mints and ICE servers together (300 per minute per caller)"
        } else if id == MintToken {
            "Over the rate limit: writes (600 per minute per caller) or token mints (300 per minute per caller, and per user minted for)"
        } else if creates_conversation(id) {
            "Over the rate limit: writes (600 per minute per caller) or new threads, comments and chat messages (120 per minute per user and project)"
        } else {
            "Over the rate limit of writes (600 per minute per caller)"
        };
        let mut response = problem(limit);
        response["headers"] = json!({ "Retry-After": { "required": true,
            "description": "Seconds after which the call may be tried again",
            "schema": { "type": "integer", "minimum": 1 } } });
        add(429, response);
    }
    if id == IceServers {
        add(500, problem("The server failed; the error was logged. Or (not-configured) ICE_STUN_URLS or TURN_URLS is malformed, TURN_SECRET is set without TURN_URLS, or CLOUDFLARE_TURN_KEY_ID without CLOUDFLARE_TURN_API_TOKEN"));
        add(
            502,
            problem("Cloudflare's TURN service did not hand out credentials (turn-unavailable)"),
        );
    } else if id == AssetPreview {
        add(500, problem("The server failed; the error was logged. Or the previews worker could not encode the image (render-failed, relayed); or (not-configured) the server has no PREVIEWS binding, so no preview is made (one stored already is served)"));
    } else {
        add(500, problem("The server failed; the error was logged"));
    }
    if calls_a_room(id) {
        let why = if id == Signal {
            "The project's signalling hub holds its maximum of connections (room-full)"
        } else if id == Room {
            "The room holds its maximum of connections (room-full), or its stored document could not be loaded (room-unavailable)"
        } else {
            "The room's stored document could not be loaded (room-unavailable)"
        };
        add(503, problem(why));
    }
    out
}
