//! Uploads into the asset library: a file in one request, streamed to R2 (never held whole in
//! memory), or in parts that a client can resume (R2 multipart uploads, tracked in D1). Bytes
//! are stored once per project and SHA-256: a second upload of the same bytes writes nothing.

use super::assets::{
    self as lib, asset_row, blob_key, bucket, default_trash_days, live_asset, new_asset_id,
    AssetRow, MAX_VERSIONS,
};
use super::{Call, Result};
use crate::api::ApiError;
use crate::assets::sniff::{sniff, SNIFF_BYTES};
use crate::assets::{self, PartPlan, Sha256};
use crate::edge::d1::{self, num, text};
use crate::edge::log::{self, Emit};
use crate::edge::platform::{now_ms, random};
use crate::edge::{http, webhook_queue};
use crate::routes::RouteId;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, Response};

/// The header that carries the SHA-256 of a file or upload (64 hex digits).
pub const SHA256_HEADER: &str = "tandemx-sha256";

pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    use RouteId::*;
    match id {
        UploadAsset => direct(cx, false).await,
        UploadAssetVersion => direct(cx, true).await,
        CreateUpload => create(cx).await,
        GetUpload => {
            let up = upload_row(
                &cx.db()?,
                cx.project()?.as_str(),
                cx.params.upload()?.as_str(),
            )
            .await?;
            http::json(&up.to_json(&received(&cx.db()?, &up).await?, "open"))
        }
        AbortUpload => abort(cx).await,
        PutUploadPart => put_part(cx).await,
        CompleteUpload => complete(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

fn header(cx: &Call<'_>, name: &str) -> Option<String> {
    cx.req.headers().get(name).ok().flatten()
}

fn tags_of(list: &[String]) -> Result<Vec<String>> {
    if list.len() > assets::MAX_TAGS {
        return Err(ApiError::InvalidBody(format!(
            "at most {} tags",
            assets::MAX_TAGS
        )));
    }
    let mut tags = Vec::new();
    for t in list {
        let t = assets::parse_tag(t).map_err(|e| ApiError::InvalidBody(e.problem().detail))?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

#[derive(Debug, Deserialize)]
struct Blob {
    r2_key: String,
    size: u64,
    sniffed: Option<String>,
}

async fn blob(db: &D1Database, project: &str, sha: &Sha256) -> Result<Option<Blob>> {
    d1::row(
        db,
        "SELECT r2_key, size, sniffed FROM asset_blobs WHERE project_id = ? AND sha256 = ?",
        &[text(project), text(sha.as_str())],
    )
    .await
}

/// Refuses a new blob of `size` bytes that would take the project past its quota.
pub(super) async fn check_quota(
    db: &D1Database,
    project: &str,
    size: u64,
    quota: u64,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Row {
        bytes: Option<u64>,
    }
    let used: Option<Row> = d1::row(
        db,
        "SELECT SUM(size) AS bytes FROM asset_blobs WHERE project_id = ?",
        &[text(project)],
    )
    .await?;
    let used = used.and_then(|r| r.bytes).unwrap_or(0);
    if used + size > quota {
        return Err(ApiError::QuotaExceeded(format!(
            "the project stores {used} bytes of assets; {size} more would pass its quota of {quota} bytes"
        )));
    }
    Ok(())
}

/// What an upload makes, once its bytes are stored (or found stored).
struct NewFile<'a> {
    project: &'a str,
    /// A new version of this asset; `None`: a new asset.
    asset: Option<&'a str>,
    name: &'a str,
    content_type: &'a str,
    size: u64,
    sha: &'a Sha256,
    sniffed: Option<&'a str>,
    r2_key: &'a str,
    tags: &'a [String],
    uploader: &'a str,
    deduplicated: bool,
}

/// Writes the records of an upload in one D1 batch: the blob (if new), the asset (if new), the
/// version, tags, the upload's rows when it came in parts, and the audit row; then tells the
/// webhooks. Answers the asset record.
async fn record(
    cx: &Call<'_>,
    db: &D1Database,
    file: NewFile<'_>,
    upload: Option<&str>,
) -> Result<Value> {
    let now = now_ms();
    let p = file.project;
    let new_id;
    let asset = match file.asset {
        Some(a) => a,
        None => {
            new_id = new_asset_id()?;
            new_id.as_str()
        }
    };
    let mut stmts = vec![d1::stmt(
        db,
        "INSERT OR IGNORE INTO asset_blobs (project_id, sha256, r2_key, size, content_type, sniffed, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            text(p),
            text(file.sha.as_str()),
            text(file.r2_key),
            num(file.size),
            text(file.content_type),
            file.sniffed.map_or(JsValue::NULL, text),
            num(now),
        ],
    )?];
    if file.asset.is_none() {
        stmts.push(d1::stmt(
            db,
            "INSERT INTO assets (project_id, id, name, current_version, uploader, created_at, updated_at)
             VALUES (?, ?, ?, 1, ?, ?, ?)",
            &[text(p), text(asset), text(file.name), text(file.uploader), num(now), num(now)],
        )?);
    }
    // The next version number is read inside the batch (one transaction), so two uploads of a
    // version at once get two numbers.
    stmts.push(d1::stmt(
        db,
        "INSERT INTO asset_versions (project_id, asset_id, version, name, content_type, size, sha256, uploader, created_at)
         SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8
         FROM asset_versions WHERE project_id = ?1 AND asset_id = ?2",
        &[text(p), text(asset), text(file.name), text(file.content_type), num(file.size), text(file.sha.as_str()), text(file.uploader), num(now)],
    )?);
    stmts.push(d1::stmt(
        db,
        "UPDATE assets SET current_version = (SELECT MAX(version) FROM asset_versions WHERE project_id = ?1 AND asset_id = ?2),
           name = ?3, updated_at = ?4
         WHERE project_id = ?1 AND id = ?2",
        &[text(p), text(asset), text(file.name), num(now)],
    )?);
    for tag in file.tags {
        stmts.push(d1::stmt(
            db,
            "INSERT OR IGNORE INTO asset_tags (project_id, asset_id, tag) VALUES (?, ?, ?)",
            &[text(p), text(asset), text(tag)],
        )?);
    }
    if let Some(up) = upload {
        stmts.push(d1::stmt(
            db,
            "DELETE FROM asset_upload_parts WHERE project_id = ? AND upload_id = ?",
            &[text(p), text(up)],
        )?);
        stmts.push(d1::stmt(
            db,
            "DELETE FROM asset_uploads WHERE project_id = ? AND id = ?",
            &[text(p), text(up)],
        )?);
    }
    let action = if file.asset.is_some() {
        "asset.version"
    } else {
        "asset.upload"
    };
    stmts.push(d1::audit(
        db,
        Some(p),
        file.uploader,
        action,
        Some(asset),
        json!({ "sha256": file.sha, "size": file.size, "content_type": file.content_type, "deduplicated": file.deduplicated }),
        now,
    )?);
    d1::batch(db, stmts).await?;
    let row: AssetRow = asset_row(db, p, asset).await?;
    let mut body = row.to_json(default_trash_days(cx.env));
    let event = if file.asset.is_some() {
        "asset.version_created"
    } else {
        "asset.created"
    };
    webhook_queue::emit(
        cx.env,
        p,
        event,
        json!({ "asset": body, "actor": file.uploader }),
        None,
    )
    .await;
    body["deduplicated"] = json!(file.deduplicated);
    Ok(body)
}

/// Who uploads: the user a room token or `TandemX-Subject` names, or the key itself.
pub(super) async fn uploader(cx: &Call<'_>) -> Result<String> {
    Ok(super::conversations::participant(cx).await?.0)
}

async fn target_asset(
    cx: &Call<'_>,
    db: &D1Database,
    project: &str,
    new_version: bool,
) -> Result<Option<String>> {
    if !new_version {
        return Ok(None);
    }
    let asset = cx.params.asset()?.as_str().to_owned();
    let row = live_asset(db, project, &asset).await?;
    if row.version >= MAX_VERSIONS {
        return Err(ApiError::Conflict(format!(
            "an asset keeps at most {MAX_VERSIONS} versions"
        )));
    }
    Ok(Some(asset))
}

/// `POST .../assets` and `POST .../assets/{asset}/versions`: the body is the file.
async fn direct(cx: &mut Call<'_>, new_version: bool) -> Result<Response> {
    let name = http::query(&cx.req, "name")
        .ok_or_else(|| ApiError::InvalidQuery("name is required".into()))?;
    assets::check_name(&name).map_err(|e| ApiError::InvalidQuery(e.problem().detail))?;
    let tags: Vec<String> = match http::query(&cx.req, "tags") {
        Some(t) if !t.is_empty() => t.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let tags = tags_of(&tags).map_err(|e| ApiError::InvalidQuery(e.problem().detail))?;
    let sha = header(cx, SHA256_HEADER)
        .ok_or_else(|| {
            ApiError::InvalidBody(format!(
                "the {SHA256_HEADER} header (the file's SHA-256, hex) is required"
            ))
        })
        .and_then(|s| {
            Sha256::parse(&s).map_err(|_| {
                ApiError::InvalidBody(format!("{SHA256_HEADER} must be 64 hex digits"))
            })
        })?;
    let size: u64 = header(cx, "content-length")
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::InvalidBody(
                "a Content-Length is required (the file is streamed to storage)".into(),
            )
        })?;
    if size == 0 {
        return Err(ApiError::InvalidBody("the file is empty".into()));
    }
    let declared = header(cx, "content-type");
    let project = cx.project()?.as_str().to_owned();
    let db = cx.db()?;
    let limits = lib::limits(cx).await?;
    if size > limits.max_file {
        return Err(ApiError::FileTooLarge {
            limit: limits.max_file,
        });
    }
    if size > limits.direct {
        return Err(ApiError::BodyTooLarge {
            limit: limits.direct as usize,
        });
    }
    let asset = target_asset(cx, &db, &project, new_version).await?;
    let who = uploader(cx).await?;
    if let Some(found) = blob(&db, &project, &sha).await? {
        // Stored already: nothing is read or written but the records.
        if found.size != size {
            return Err(ApiError::Unprocessable(
                "digest-mismatch",
                format!("{SHA256_HEADER} names stored bytes of another size"),
            ));
        }
        let content_type = assets::settle(declared.as_deref(), found.sniffed.as_deref())?;
        let file = NewFile {
            project: &project,
            asset: asset.as_deref(),
            name: &name,
            content_type: &content_type,
            size,
            sha: &sha,
            sniffed: found.sniffed.as_deref(),
            r2_key: &found.r2_key,
            tags: &tags,
            uploader: &who,
            deduplicated: true,
        };
        let body = record(cx, &db, file, None).await?;
        return super::created(&body);
    }
    check_quota(&db, &project, size, limits.quota).await?;
    // The first bytes decide the type before anything is stored; the rest streams through.
    let mut stream = cx.req.stream().map_err(http::internal("upload body"))?;
    let mut head: Vec<Vec<u8>> = Vec::new();
    let mut head_len = 0usize;
    while head_len < SNIFF_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => {
                head_len += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => return Err(ApiError::InvalidBody(format!("reading the body: {e}"))),
            None => break,
        }
    }
    let first: Vec<u8> = head.iter().flatten().take(SNIFF_BYTES).copied().collect();
    let sniffed = sniff(&first);
    let content_type = assets::settle(declared.as_deref(), sniffed)?;
    let body = futures::stream::iter(head.into_iter().map(Ok)).chain(stream);
    let key = blob_key(&project, sha.as_str());
    match put_blob(cx.env, &key, body, size, &sha, &content_type).await {
        Ok(()) => {}
        Err(PutError::Length) => {
            return Err(ApiError::InvalidBody(format!(
                "the body is not Content-Length ({size}) bytes"
            )))
        }
        Err(PutError::Digest) => {
            return Err(ApiError::Unprocessable(
                "digest-mismatch",
                format!("the body's SHA-256 is not the {SHA256_HEADER} given; nothing was stored"),
            ))
        }
        Err(PutError::Failed(e)) => return Err(e),
    }
    let file = NewFile {
        project: &project,
        asset: asset.as_deref(),
        name: &name,
        content_type: &content_type,
        size,
        sha: &sha,
        sniffed,
        r2_key: &key,
        tags: &tags,
        uploader: &who,
        deduplicated: false,
    };
    let body = record(cx, &db, file, None).await?;
    super::created(&body)
}

/// Why [`put_blob`] stored nothing.
pub(super) enum PutError {
    /// The stream was not the length announced.
    Length,
    /// R2 found another SHA-256 than the one given.
    Digest,
    /// Anything else (logged).
    Failed(ApiError),
}

/// Streams `body`, exactly `size` bytes, into R2 at `key`, never holding it whole: R2 checks
/// its SHA-256 against `sha` and stores nothing when it differs.
pub(super) async fn put_blob(
    env: &worker::Env,
    key: &str,
    body: impl futures::Stream<Item = worker::Result<Vec<u8>>> + 'static,
    size: u64,
    sha: &Sha256,
    content_type: &str,
) -> std::result::Result<(), PutError> {
    let meta = worker::HttpMetadata {
        content_type: Some(content_type.to_owned()),
        ..Default::default()
    };
    let put = bucket(env)
        .map_err(PutError::Failed)?
        .put(key.to_owned(), worker::FixedLengthStream::wrap(body, size))
        .sha256(sha.bytes().to_vec())
        .http_metadata(meta)
        .execute()
        .await;
    let Err(e) = put else {
        return Ok(());
    };
    let message = e.to_string();
    let lower = message.to_ascii_lowercase();
    if message.contains("fixed length") {
        return Err(PutError::Length);
    }
    if lower.contains("sha-256")
        || lower.contains("checksum")
        || message.contains("didn't match")
        || lower.contains("digest")
    {
        return Err(PutError::Digest);
    }
    log::error("asset.put_failed").cause(message).emit();
    Err(PutError::Failed(ApiError::Internal))
}

/// `POST .../uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUpload {
    name: String,
    size: u64,
    sha256: Sha256,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    part_size: Option<u64>,
    #[serde(default)]
    asset: Option<crate::names::Id>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct UploadRow {
    id: String,
    r2_key: String,
    r2_upload_id: String,
    asset_id: Option<String>,
    name: String,
    content_type: String,
    size: u64,
    sha256: String,
    part_size: u64,
    parts: u64,
    uploader: String,
    created_at: u64,
    expires_at: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct PartRow {
    part_number: u64,
    etag: String,
    size: u64,
}

impl UploadRow {
    fn to_json(&self, parts: &[PartRow], state: &str) -> Value {
        let received: Vec<Value> = parts
            .iter()
            .map(|p| json!({ "part_number": p.part_number, "size": p.size }))
            .collect();
        json!({
            "id": self.id, "name": self.name, "content_type": self.content_type, "size": self.size,
            "sha256": self.sha256, "part_size": self.part_size, "parts": self.parts,
            "asset": self.asset_id, "uploader": self.uploader, "created_at": self.created_at,
            "expires_at": self.expires_at, "received": received, "state": state,
        })
    }

    fn plan(&self) -> PartPlan {
        PartPlan {
            size: self.size,
            part_size: self.part_size,
            parts: self.parts,
        }
    }
}

async fn upload_row(db: &D1Database, project: &str, id: &str) -> Result<UploadRow> {
    let row: Option<UploadRow> = d1::row(
        db,
        "SELECT id, r2_key, r2_upload_id, asset_id, name, content_type, size, sha256, part_size, parts,
                uploader, created_at, expires_at
         FROM asset_uploads WHERE project_id = ? AND id = ?",
        &[text(project), text(id)],
    )
    .await?;
    match row {
        Some(r) if r.expires_at > now_ms() => Ok(r),
        _ => Err(ApiError::Missing("upload", id.to_owned())),
    }
}

async fn received(db: &D1Database, up: &UploadRow) -> Result<Vec<PartRow>> {
    d1::rows(
        db,
        "SELECT part_number, etag, size FROM asset_upload_parts u
         WHERE project_id = (SELECT project_id FROM asset_uploads WHERE id = ?1) AND upload_id = ?1
         ORDER BY part_number LIMIT 10000",
        &[text(&up.id)],
    )
    .await
}

async fn create(cx: &mut Call<'_>) -> Result<Response> {
    let input: NewUpload = cx.body().await?;
    assets::check_name(&input.name)?;
    let tags = tags_of(&input.tags)?;
    let declared = match &input.content_type {
        Some(ct) if !ct.is_empty() => Some(assets::parse_content_type(ct)?),
        _ => None,
    };
    let plan = PartPlan::new(input.size, input.part_size)?;
    let project = cx.project()?.as_str().to_owned();
    let db = cx.db()?;
    let limits = lib::limits(cx).await?;
    if input.size > limits.max_file {
        return Err(ApiError::FileTooLarge {
            limit: limits.max_file,
        });
    }
    let asset = match &input.asset {
        Some(a) => {
            let row = live_asset(&db, &project, a.as_str()).await?;
            if row.version >= MAX_VERSIONS {
                return Err(ApiError::Conflict(format!(
                    "an asset keeps at most {MAX_VERSIONS} versions"
                )));
            }
            Some(a.as_str().to_owned())
        }
        None => None,
    };
    let who = uploader(cx).await?;
    if let Some(found) = blob(&db, &project, &input.sha256).await? {
        if found.size != input.size {
            return Err(ApiError::Unprocessable(
                "digest-mismatch",
                "sha256 names stored bytes of another size".into(),
            ));
        }
        let content_type = assets::settle(declared.as_deref(), found.sniffed.as_deref())?;
        let file = NewFile {
            project: &project,
            asset: asset.as_deref(),
            name: &input.name,
            content_type: &content_type,
            size: input.size,
            sha: &input.sha256,
            sniffed: found.sniffed.as_deref(),
            r2_key: &found.r2_key,
            tags: &tags,
            uploader: &who,
            deduplicated: true,
        };
        let body = record(cx, &db, file, None).await?;
        return super::created(&json!({ "complete": true, "upload": null, "asset": body }));
    }
    check_quota(&db, &project, input.size, limits.quota).await?;
    let id = format!("upl_{}", crate::codec::hex(&random::<10>()?));
    // Parts go to a key of their own: the digest is only known to be right once all are in.
    let key = format!("projects/{project}/uploads/{id}");
    let meta = worker::HttpMetadata {
        content_type: Some(
            declared
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        ),
        ..Default::default()
    };
    let multipart = bucket(cx.env)?
        .create_multipart_upload(key.clone())
        .http_metadata(meta)
        .execute()
        .await
        .map_err(http::internal("create multipart upload"))?;
    let r2_upload_id = multipart.upload_id().await;
    let now = now_ms();
    let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
    d1::stmt(
        &db,
        "INSERT INTO asset_uploads (project_id, id, r2_key, r2_upload_id, asset_id, name, content_type, size, sha256,
            part_size, parts, uploader, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            text(&project), text(&id), text(&key), text(&r2_upload_id), asset.as_deref().map_or(JsValue::NULL, text),
            text(&input.name), text(declared.as_deref().unwrap_or("")), num(plan.size), text(input.sha256.as_str()),
            num(plan.part_size), num(plan.parts), text(&format!("{who}\n{tags_json}")), num(now),
            num(now + assets::UPLOAD_TTL_MS),
        ],
    )?
    .run()
    .await
    .map_err(http::internal("record upload"))?;
    let up = upload_row(&db, &project, &id).await?;
    super::created(
        &json!({ "complete": false, "upload": public(&up).to_json(&[], "open"), "asset": null }),
    )
}

/// The uploader column holds the uploader and, after a line feed, the tags to apply.
fn split_uploader(up: &UploadRow) -> (String, Vec<String>) {
    match up.uploader.split_once('\n') {
        Some((who, tags)) => (
            who.to_owned(),
            serde_json::from_str(tags).unwrap_or_default(),
        ),
        None => (up.uploader.clone(), Vec::new()),
    }
}

fn public(up: &UploadRow) -> UploadRow {
    let mut shown = up.clone();
    shown.uploader = split_uploader(up).0;
    shown
}

async fn put_part(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let n = cx.params.part()?;
    let db = cx.db()?;
    let up = upload_row(&db, &project, cx.params.upload()?.as_str()).await?;
    let want = up
        .plan()
        .part_len(n)
        .ok_or_else(|| ApiError::Missing("part", n.to_string()))?;
    let got: Option<u64> = header(cx, "content-length").and_then(|l| l.trim().parse().ok());
    if got != Some(want) {
        return Err(ApiError::InvalidBody(format!(
            "part {n} must be exactly {want} bytes, with that Content-Length"
        )));
    }
    let body = cx
        .req
        .inner()
        .body()
        .ok_or_else(|| ApiError::InvalidBody("the part is empty".into()))?;
    let multipart = bucket(cx.env)?
        .resume_multipart_upload(up.r2_key.clone(), up.r2_upload_id.clone())
        .map_err(http::internal("resume upload"))?;
    let part = multipart
        .upload_part(n as u16, worker::Data::ReadableStream(body))
        .await
        .map_err(|e| {
            log::error("upload.part_failed")
                .field("upload", up.id.as_str())
                .field("part", n)
                .cause(e)
                .emit();
            ApiError::InvalidBody(format!(
                "part {n} could not be stored: the body ended early or the upload is gone"
            ))
        })?;
    d1::stmt(
        &db,
        "INSERT OR REPLACE INTO asset_upload_parts (project_id, upload_id, part_number, etag, size, uploaded_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[text(&project), text(&up.id), num(n), text(&part.etag()), num(want), num(now_ms())],
    )?
    .run()
    .await
    .map_err(http::internal("record part"))?;
    http::json(&json!({ "part_number": n, "size": want }))
}

async fn abort(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let db = cx.db()?;
    let up = upload_row(&db, &project, cx.params.upload()?.as_str()).await?;
    let parts = received(&db, &up).await?;
    drop_upload(cx.env, &db, &project, &up.id, &up.r2_key, &up.r2_upload_id).await?;
    http::json(&public(&up).to_json(&parts, "aborted"))
}

/// Aborts an upload in R2 and deletes its rows.
pub async fn drop_upload(
    env: &worker::Env,
    db: &D1Database,
    project: &str,
    id: &str,
    key: &str,
    r2_upload_id: &str,
) -> Result<()> {
    if let Ok(m) = bucket(env)?.resume_multipart_upload(key.to_owned(), r2_upload_id.to_owned()) {
        if let Err(e) = m.abort().await {
            // Gone already (completed or expired in R2): the rows go all the same.
            log::warn("upload.abort_failed")
                .project(project)
                .field("upload", id)
                .cause(e)
                .emit();
        }
    }
    d1::batch(
        db,
        vec![
            d1::stmt(
                db,
                "DELETE FROM asset_upload_parts WHERE project_id = ? AND upload_id = ?",
                &[text(project), text(id)],
            )?,
            d1::stmt(
                db,
                "DELETE FROM asset_uploads WHERE project_id = ? AND id = ?",
                &[text(project), text(id)],
            )?,
        ],
    )
    .await
}

/// The SHA-256 of a stream, computed by the runtime (`crypto.DigestStream`), not in wasm.
async fn digest(stream: worker::web_sys::ReadableStream) -> Result<Vec<u8>> {
    use worker::js_sys::{ArrayBuffer, Function, Promise, Reflect, Uint8Array};
    let fail = |what: &'static str| {
        move |e: JsValue| {
            log::error("internal.failed")
                .field("what", what)
                .cause(format!("{e:?}"))
                .emit();
            ApiError::Internal
        }
    };
    let global = worker::js_sys::global();
    let crypto = Reflect::get(&global, &"crypto".into()).map_err(fail("crypto"))?;
    let class: Function = Reflect::get(&crypto, &"DigestStream".into())
        .map_err(fail("DigestStream"))?
        .dyn_into()
        .map_err(fail("DigestStream"))?;
    let sink = Reflect::construct(&class, &worker::js_sys::Array::of1(&"SHA-256".into()))
        .map_err(fail("new DigestStream"))?;
    let pipe_to: Function = Reflect::get(&stream, &"pipeTo".into())
        .map_err(fail("pipeTo"))?
        .dyn_into()
        .map_err(fail("pipeTo"))?;
    let piped: Promise = pipe_to
        .call1(&stream, &sink)
        .map_err(fail("pipeTo"))?
        .dyn_into()
        .map_err(fail("pipeTo"))?;
    worker::wasm_bindgen_futures::JsFuture::from(piped)
        .await
        .map_err(fail("pipe"))?;
    let digest: Promise = Reflect::get(&sink, &"digest".into())
        .map_err(fail("digest"))?
        .dyn_into()
        .map_err(fail("digest"))?;
    let buffer: ArrayBuffer = worker::wasm_bindgen_futures::JsFuture::from(digest)
        .await
        .map_err(fail("digest"))?
        .dyn_into()
        .map_err(fail("digest"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

async fn complete(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let db = cx.db()?;
    let up = upload_row(&db, &project, cx.params.upload()?.as_str()).await?;
    let parts = received(&db, &up).await?;
    if parts.len() as u64 != up.parts {
        let missing: Vec<String> = (1..=up.parts)
            .filter(|n| !parts.iter().any(|p| p.part_number == *n))
            .take(20)
            .map(|n| n.to_string())
            .collect();
        return Err(ApiError::Conflict(format!(
            "{} of {} parts received; missing: {}{}",
            parts.len(),
            up.parts,
            missing.join(", "),
            if (up.parts as usize - parts.len()) > missing.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    let asset = match &up.asset_id {
        Some(a) => Some(live_asset(&db, &project, a).await?.id),
        None => None,
    };
    let bucket = bucket(cx.env)?;
    let multipart = bucket
        .resume_multipart_upload(up.r2_key.clone(), up.r2_upload_id.clone())
        .map_err(http::internal("resume upload"))?;
    let uploaded: Vec<worker::UploadedPart> = parts
        .iter()
        .map(|p| worker::UploadedPart::new(p.part_number as u16, p.etag.clone()))
        .collect();
    let object = multipart.complete(uploaded).await.map_err(|e| {
        log::error("upload.complete_failed")
            .field("upload", up.id.as_str())
            .cause(e)
            .emit();
        ApiError::Conflict(
            "the parts could not be joined; upload the parts again or start over".into(),
        )
    })?;
    let failed = |why: ApiError| async {
        let _ = bucket.delete(up.r2_key.clone()).await;
        let _ = drop_upload(cx.env, &db, &project, &up.id, &up.r2_key, &up.r2_upload_id).await;
        Err::<Response, ApiError>(why)
    };
    if object.size() != up.size {
        return failed(ApiError::Unprocessable(
            "size-mismatch",
            format!("the parts hold {} bytes, not {}", object.size(), up.size),
        ))
        .await;
    }
    // What the bytes are, from their first ones.
    let head = bucket
        .get(up.r2_key.clone())
        .range(worker::Range::Prefix {
            length: SNIFF_BYTES as u64,
        })
        .execute()
        .await
        .map_err(http::internal("upload head"))?
        .ok_or(ApiError::Internal)?
        .body()
        .ok_or(ApiError::Internal)?
        .bytes()
        .await
        .map_err(http::internal("upload head"))?;
    let sniffed = sniff(&head);
    let declared = (!up.content_type.is_empty()).then_some(up.content_type.as_str());
    let content_type = match assets::settle(declared, sniffed) {
        Ok(ct) => ct,
        Err(e) => return failed(e).await,
    };
    let whole = bucket
        .get(up.r2_key.clone())
        .execute()
        .await
        .map_err(http::internal("upload body"))?
        .ok_or(ApiError::Internal)?;
    let stream = match whole
        .body()
        .ok_or(ApiError::Internal)?
        .response_body()
        .map_err(http::internal("upload body"))?
    {
        worker::ResponseBody::Stream(s) => s,
        _ => return Err(ApiError::Internal),
    };
    let sha = Sha256::parse(&up.sha256)?;
    if digest(stream).await? != sha.bytes() {
        return failed(ApiError::Unprocessable(
            "digest-mismatch",
            "the parts' SHA-256 is not the sha256 the upload was started with; nothing was kept"
                .into(),
        ))
        .await;
    }
    let (who, tags) = split_uploader(&up);
    // The same bytes may have been stored meanwhile: then this copy goes.
    let existing = blob(&db, &project, &sha).await?;
    let (key, deduplicated) = match &existing {
        Some(b) => (b.r2_key.clone(), true),
        None => (up.r2_key.clone(), false),
    };
    let file = NewFile {
        project: &project,
        asset: asset.as_deref(),
        name: &up.name,
        content_type: &content_type,
        size: up.size,
        sha: &sha,
        sniffed,
        r2_key: &key,
        tags: &tags,
        uploader: &who,
        deduplicated,
    };
    let body = record(cx, &db, file, Some(&up.id)).await?;
    if deduplicated {
        let _ = bucket.delete(up.r2_key.clone()).await;
    }
    super::created(&body)
}
