//! The asset library: records, versions, tags, licences, the trash, downloads (ranges,
//! conditional requests, headers that keep stored files from running), previews made by the
//! previews worker, signed links, and the documents that use an asset (docs/assets.md).
//! Uploads are in [`super::uploads`].

use super::{Call, Result};
use crate::api::ApiError;
use crate::assets::signed::{Link, Serves};
use crate::assets::{self, http_date, range, Licence, PreviewFormat};
use crate::edge::access::{self, Actor};
use crate::edge::d1::{self, num, text};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::{env, http, webhook_queue};
use crate::names::Id;
use crate::routes::{Params, RouteId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::{Bucket, D1Database, Env, Headers, Request, Response, ResponseBody};

/// Default total bytes a project's assets may take (10 GiB).
const DEFAULT_QUOTA_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Default largest file (1 GiB).
const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default largest upload in one request (32 MiB); larger files go in parts.
const DEFAULT_DIRECT_UPLOAD_BYTES: u64 = 32 * 1024 * 1024;
/// Default days a trashed asset waits before it is purged.
const DEFAULT_TRASH_DAYS: u64 = 30;
/// Most versions one asset keeps.
pub const MAX_VERSIONS: u64 = 1_000;
/// Documents named when a delete is refused.
const NAMED_DOCUMENTS: u64 = 10;
/// Largest preview the previews worker may answer.
const MAX_PREVIEW_BYTES: usize = 16 * 1024 * 1024;

/// A project's asset limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub quota: u64,
    pub max_file: u64,
    pub direct: u64,
}

fn var_u64(env: &Env, name: &str, default: u64) -> u64 {
    env.var(name)
        .ok()
        .and_then(|v| v.to_string().trim().parse().ok())
        .unwrap_or(default)
}

/// The project's limits: its own settings, else the server's (`ASSET_*` variables).
pub async fn limits(cx: &Call<'_>) -> Result<Limits> {
    #[derive(Deserialize)]
    struct Row {
        asset_quota_bytes: Option<u64>,
        asset_max_file_bytes: Option<u64>,
    }
    let row: Option<Row> = d1::row(
        &cx.db()?,
        "SELECT asset_quota_bytes, asset_max_file_bytes FROM projects WHERE id = ?",
        &[text(cx.project()?.as_str())],
    )
    .await?;
    let env = cx.env;
    let quota = var_u64(env, "ASSET_QUOTA_BYTES", DEFAULT_QUOTA_BYTES);
    let max_file = var_u64(env, "ASSET_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES);
    Ok(Limits {
        quota: row
            .as_ref()
            .and_then(|r| r.asset_quota_bytes)
            .unwrap_or(quota),
        max_file: row
            .as_ref()
            .and_then(|r| r.asset_max_file_bytes)
            .unwrap_or(max_file),
        direct: var_u64(
            env,
            "ASSET_DIRECT_UPLOAD_BYTES",
            DEFAULT_DIRECT_UPLOAD_BYTES,
        ),
    })
}

/// The bucket.
pub fn bucket(env: &Env) -> Result<Bucket> {
    env.bucket(env::ASSETS)
        .map_err(http::internal("assets bucket"))
}

/// Where a directly uploaded blob is stored: content-addressed within its project.
pub fn blob_key(project: &str, sha: &str) -> String {
    format!("projects/{project}/blobs/{sha}")
}

fn preview_key(project: &str, sha: &str, width: u32, format: PreviewFormat) -> String {
    format!(
        "projects/{project}/previews/{sha}/{width}.{}",
        format.as_str()
    )
}

fn preview_prefix(project: &str, sha: &str) -> String {
    format!("projects/{project}/previews/{sha}/")
}

/// An asset as read from D1 ([`SELECT_ASSET`]).
#[derive(Debug, Clone, Deserialize)]
pub struct AssetRow {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub version: u64,
    pub uploader: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub licence: Option<String>,
    pub licence_text: Option<String>,
    pub attribution: Option<String>,
    pub source_url: Option<String>,
    pub deleted_at: Option<u64>,
    pub tags: String,
    pub used_by: u64,
    pub trash_days: Option<u64>,
}

/// The columns of [`AssetRow`], from `assets a` joined with its current version `v`; `?1` is
/// the project.
pub const SELECT_ASSET: &str = "SELECT a.id, a.name, v.content_type, v.size, v.sha256,
    a.current_version AS version, a.uploader, a.created_at, a.updated_at, a.licence,
    a.licence_text, a.attribution, a.source_url, a.deleted_at,
    (SELECT json_group_array(tag) FROM (SELECT tag FROM asset_tags t
      WHERE t.project_id = a.project_id AND t.asset_id = a.id ORDER BY tag)) AS tags,
    (SELECT COUNT(*) FROM asset_usage u
      WHERE u.project_id = a.project_id AND u.asset_id = a.id) AS used_by,
    (SELECT asset_trash_days FROM projects p WHERE p.id = a.project_id) AS trash_days
  FROM assets a JOIN asset_versions v
    ON v.project_id = a.project_id AND v.asset_id = a.id AND v.version = a.current_version
  WHERE a.project_id = ?1";

impl AssetRow {
    fn licence(&self) -> Option<Licence> {
        let l = Licence {
            spdx: self.licence.clone(),
            text: self.licence_text.clone(),
            attribution: self.attribution.clone(),
            source_url: self.source_url.clone(),
        };
        (l != Licence::default()).then_some(l)
    }

    /// The record as the API answers it; `trash_days` is the server's default.
    pub fn to_json(&self, default_trash_days: u64) -> Value {
        let tags: Value = serde_json::from_str(&self.tags).unwrap_or_else(|_| json!([]));
        let days = self.trash_days.unwrap_or(default_trash_days);
        json!({
            "id": self.id, "name": self.name, "content_type": self.content_type,
            "size": self.size, "sha256": self.sha256, "version": self.version,
            "uploader": self.uploader, "created_at": self.created_at,
            "updated_at": self.updated_at, "tags": tags, "licence": self.licence(),
            "deleted_at": self.deleted_at,
            "purge_at": self.deleted_at.map(|d| d + days * 86_400_000),
            "used_by": self.used_by,
        })
    }
}

/// The asset `id` of the project, trashed or not (404 when there is none).
pub async fn asset_row(db: &D1Database, project: &str, id: &str) -> Result<AssetRow> {
    d1::row(
        db,
        &format!("{SELECT_ASSET} AND a.id = ?2"),
        &[text(project), text(id)],
    )
    .await?
    .ok_or_else(|| ApiError::Missing("asset", id.to_owned()))
}

/// The asset, refused (409) when it is in the trash.
pub async fn live_asset(db: &D1Database, project: &str, id: &str) -> Result<AssetRow> {
    let row = asset_row(db, project, id).await?;
    if row.deleted_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "asset {id} is in the trash; restore it first"
        )));
    }
    Ok(row)
}

/// The default trash days, for [`AssetRow::to_json`].
pub fn default_trash_days(env: &Env) -> u64 {
    var_u64(env, "ASSET_TRASH_DAYS", DEFAULT_TRASH_DAYS)
}

/// A version row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRow {
    pub version: u64,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub uploader: String,
    pub created_at: u64,
}

const VERSION_COLUMNS: &str = "version, name, content_type, size, sha256, uploader, created_at";

async fn version_row(
    db: &D1Database,
    project: &str,
    asset: &str,
    version: u64,
) -> Result<VersionRow> {
    d1::row(
        db,
        &format!(
            "SELECT {VERSION_COLUMNS} FROM asset_versions
             WHERE project_id = ? AND asset_id = ? AND version = ?"
        ),
        &[text(project), text(asset), num(version)],
    )
    .await?
    .ok_or_else(|| ApiError::Missing("asset version", format!("{asset}@{version}")))
}

/// Where a blob is stored.
pub async fn blob_r2_key(db: &D1Database, project: &str, sha: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Row {
        r2_key: String,
    }
    let row: Option<Row> = d1::row(
        db,
        "SELECT r2_key FROM asset_blobs WHERE project_id = ? AND sha256 = ?",
        &[text(project), text(sha)],
    )
    .await?;
    row.map(|r| r.r2_key).ok_or_else(|| {
        log::error("asset.blob_unlisted")
            .message("an asset blob has no row")
            .project(project)
            .field("sha256", sha)
            .emit();
        ApiError::Internal
    })
}

pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    use RouteId::*;
    match id {
        ListAssets => list(cx).await,
        AssetStorage => storage(cx).await,
        GetAsset => {
            let row = asset_row(
                &cx.db()?,
                cx.project()?.as_str(),
                cx.params.asset()?.as_str(),
            )
            .await?;
            http::json(&row.to_json(default_trash_days(cx.env)))
        }
        UpdateAsset => update(cx).await,
        DeleteAsset => delete(cx).await,
        RestoreAsset => restore(cx).await,
        PurgeAsset => purge_route(cx).await,
        GetAssetContent => content(cx, None).await,
        GetAssetVersionContent => {
            let v = cx.params.version()?;
            content(cx, Some(v)).await
        }
        ListAssetVersions => versions(cx).await,
        AssetPreview => preview(cx).await,
        PutAssetTag | DeleteAssetTag => tag(cx, id == PutAssetTag).await,
        SignAssetLink => sign_link(cx).await,
        AssetUsage => usage(cx).await,
        DocumentAssets => document_assets(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

fn query(cx: &Call<'_>, name: &str) -> Option<String> {
    http::query(&cx.req, name)
}

fn flag(cx: &Call<'_>, name: &str) -> Result<bool> {
    match query(cx, name).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::InvalidQuery(format!(
            "{name} must be true or false"
        ))),
    }
}

async fn list(cx: &Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let url = cx.req.inner().url();
    let page = crate::pages::Page::parse(crate::api::url_query(&url), 2)?;
    let mut sql = SELECT_ASSET.to_string();
    let mut args = vec![text(&project)];
    let mut arg = |sql: &mut String, clause: &str, value: JsValue| {
        args.push(value);
        sql.push_str(&clause.replace("?N", &format!("?{}", args.len())));
    };
    if flag(cx, "trashed")? {
        sql.push_str(" AND a.deleted_at IS NOT NULL");
    } else {
        sql.push_str(" AND a.deleted_at IS NULL");
    }
    if flag(cx, "orphans")? {
        sql.push_str(
            " AND NOT EXISTS (SELECT 1 FROM asset_usage u WHERE u.project_id = a.project_id AND u.asset_id = a.id)",
        );
    }
    if let Some(prefix) = query(cx, "prefix") {
        if prefix.chars().count() > assets::MAX_NAME {
            return Err(ApiError::InvalidQuery("prefix is too long".into()));
        }
        // A prefix compared as bytes: no LIKE, so `%` and `_` mean themselves.
        arg(
            &mut sql,
            " AND substr(a.name, 1, length(?N)) = ?N",
            text(&prefix),
        );
    }
    if let Some(tag) = query(cx, "tag") {
        let tag =
            assets::parse_tag(&tag).map_err(|e| ApiError::InvalidQuery(e.problem().detail))?;
        arg(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM asset_tags t WHERE t.project_id = a.project_id AND t.asset_id = a.id AND t.tag = ?N)",
            text(&tag),
        );
    }
    if let Some(ct) = query(cx, "content_type") {
        // `image/*` matches a whole type; otherwise the exact type.
        match assets::parse_type_filter(&ct)? {
            assets::TypeFilter::Major(major) => arg(
                &mut sql,
                " AND substr(v.content_type, 1, length(?N)) = ?N",
                text(&major),
            ),
            assets::TypeFilter::Exact(ct) => arg(&mut sql, " AND v.content_type = ?N", text(&ct)),
        }
    }
    if let Some(uploader) = query(cx, "uploader") {
        if uploader.is_empty() || uploader.chars().count() > assets::MAX_UPLOADER {
            return Err(ApiError::InvalidQuery(format!(
                "uploader is 1 to {} characters",
                assets::MAX_UPLOADER
            )));
        }
        arg(&mut sql, " AND a.uploader = ?N", text(&uploader));
    }
    if let Some(after) = &page.after {
        let name = after[0].as_str().unwrap_or_default().to_owned();
        let id = after[1].as_str().unwrap_or_default().to_owned();
        arg(&mut sql, " AND (a.name, a.id) > (?N", text(&name));
        arg(&mut sql, ", ?N)", text(&id));
    }
    arg(
        &mut sql,
        " ORDER BY a.name, a.id LIMIT ?N",
        num(page.fetch() as u64),
    );
    let mut rows: Vec<AssetRow> = d1::rows(&cx.db()?, &sql, &args).await?;
    let next = page.finish(&mut rows, |r| vec![json!(r.name), json!(r.id)]);
    let days = default_trash_days(cx.env);
    let assets: Vec<Value> = rows.iter().map(|r| r.to_json(days)).collect();
    http::json(&json!({ "assets": assets, "next_cursor": next }))
}

async fn storage(cx: &Call<'_>) -> Result<Response> {
    #[derive(Deserialize)]
    struct Totals {
        bytes: Option<u64>,
        files: u64,
    }
    #[derive(Deserialize)]
    struct Counts {
        assets: u64,
        trashed: u64,
        versions: u64,
    }
    #[derive(Deserialize)]
    struct ByType {
        content_type: String,
        bytes: u64,
        files: u64,
    }
    let project = cx.project()?.as_str();
    let db = cx.db()?;
    let results = d1::batch_results(
        &db,
        vec![
            d1::stmt(&db, "SELECT SUM(size) AS bytes, COUNT(*) AS files FROM asset_blobs WHERE project_id = ?", &[text(project)])?,
            d1::stmt(
                &db,
                "SELECT (SELECT COUNT(*) FROM assets WHERE project_id = ?1 AND deleted_at IS NULL) AS assets,
                        (SELECT COUNT(*) FROM assets WHERE project_id = ?1 AND deleted_at IS NOT NULL) AS trashed,
                        (SELECT COUNT(*) FROM asset_versions WHERE project_id = ?1) AS versions",
                &[text(project)],
            )?,
            d1::stmt(
                &db,
                "SELECT content_type, SUM(size) AS bytes, COUNT(*) AS files FROM asset_blobs
                 WHERE project_id = ? GROUP BY content_type ORDER BY content_type LIMIT 200",
                &[text(project)],
            )?,
        ],
    )
    .await?;
    let first = |i: usize| results.get(i).ok_or(ApiError::Internal);
    let totals: Vec<Totals> = first(0)?.results().map_err(http::internal("storage"))?;
    let counts: Vec<Counts> = first(1)?.results().map_err(http::internal("storage"))?;
    let by_type: Vec<ByType> = first(2)?.results().map_err(http::internal("storage"))?;
    let limits = limits(cx).await?;
    let t = totals.first().ok_or(ApiError::Internal)?;
    let c = counts.first().ok_or(ApiError::Internal)?;
    let mut types = serde_json::Map::new();
    for b in by_type {
        types.insert(
            b.content_type,
            json!({ "bytes": b.bytes, "files": b.files }),
        );
    }
    http::json(&json!({
        "bytes": t.bytes.unwrap_or(0), "files": t.files, "assets": c.assets,
        "versions": c.versions, "trashed": c.trashed, "by_content_type": types,
        "quota_bytes": limits.quota, "max_file_bytes": limits.max_file,
        "direct_upload_bytes": limits.direct,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAsset {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present_object")]
    licence: Option<Option<Licence>>,
}

/// A field that must be an object (or `null`, or absent): serde would otherwise read a struct
/// from an array of its fields in order (`[null, null]` as a licence), which no route documents.
fn object<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    Option::<serde_json::Map<String, Value>>::deserialize(d)?
        .map(|m| serde_json::from_value(Value::Object(m)).map_err(serde::de::Error::custom))
        .transpose()
}

/// [`object`] for a field that may be given as `null` (clear it), distinct from absent (leave
/// it).
fn present_object<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    object(d).map(Some)
}

async fn update(cx: &mut Call<'_>) -> Result<Response> {
    let input: UpdateAsset = cx.body().await?;
    if let Some(name) = &input.name {
        assets::check_name(name)?;
    }
    if let Some(Some(l)) = &input.licence {
        l.check()?;
    }
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let db = cx.db()?;
    live_asset(&db, &project, &asset).await?;
    let now = now_ms();
    let mut stmts = Vec::new();
    if let Some(name) = &input.name {
        stmts.push(d1::stmt(
            &db,
            "UPDATE assets SET name = ?, updated_at = ? WHERE project_id = ? AND id = ?",
            &[text(name), num(now), text(&project), text(&asset)],
        )?);
    }
    if let Some(licence) = &input.licence {
        let l = licence.clone().unwrap_or_default();
        let opt = |v: &Option<String>| v.as_deref().map_or(JsValue::NULL, text);
        stmts.push(d1::stmt(
            &db,
            "UPDATE assets SET licence = ?, licence_text = ?, attribution = ?, source_url = ?, updated_at = ?
             WHERE project_id = ? AND id = ?",
            &[opt(&l.spdx), opt(&l.text), opt(&l.attribution), opt(&l.source_url), num(now), text(&project), text(&asset)],
        )?);
    }
    if !stmts.is_empty() {
        d1::batch(&db, stmts).await?;
    }
    let row = asset_row(&db, &project, &asset).await?;
    http::json(&row.to_json(default_trash_days(cx.env)))
}

#[derive(Deserialize)]
struct UsageRow {
    document: String,
    refs: u64,
}

async fn delete(cx: &mut Call<'_>) -> Result<Response> {
    let force = flag(cx, "force")?;
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let db = cx.db()?;
    live_asset(&db, &project, &asset).await?;
    let users: Vec<UsageRow> = d1::rows(
        &db,
        "SELECT document, refs FROM asset_usage WHERE project_id = ? AND asset_id = ?
         ORDER BY document LIMIT ?",
        &[text(&project), text(&asset), num(NAMED_DOCUMENTS + 1)],
    )
    .await?;
    if !users.is_empty() && !force {
        let mut names: Vec<&str> = users
            .iter()
            .take(NAMED_DOCUMENTS as usize)
            .map(|u| u.document.as_str())
            .collect();
        if users.len() > NAMED_DOCUMENTS as usize {
            names.push("…");
        }
        return Err(ApiError::Conflict(format!(
            "asset {asset} is used by {}; remove the references or delete with ?force=true",
            names.join(", ")
        )));
    }
    let now = now_ms();
    let actor = cx.actor_name();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE assets SET deleted_at = ?, deleted_by = ?, updated_at = ? WHERE project_id = ? AND id = ? AND deleted_at IS NULL",
                &[num(now), text(&actor), num(now), text(&project), text(&asset)],
            )?,
            d1::audit(&db, Some(&project), &actor, "asset.delete", Some(&asset), json!({ "forced": force, "used_by": users.len() }), now)?,
        ],
    )
    .await?;
    let row = asset_row(&db, &project, &asset).await?;
    let body = row.to_json(default_trash_days(cx.env));
    webhook_queue::emit(
        cx.env,
        &project,
        "asset.deleted",
        json!({ "asset": body, "forced": force, "actor": actor }),
        None,
    )
    .await;
    http::json(&body)
}

async fn restore(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let db = cx.db()?;
    let row = asset_row(&db, &project, &asset).await?;
    if row.deleted_at.is_none() {
        return Err(ApiError::Conflict(format!(
            "asset {asset} is not in the trash"
        )));
    }
    let now = now_ms();
    let actor = cx.actor_name();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE assets SET deleted_at = NULL, deleted_by = NULL, updated_at = ? WHERE project_id = ? AND id = ?",
                &[num(now), text(&project), text(&asset)],
            )?,
            d1::audit(&db, Some(&project), &actor, "asset.restore", Some(&asset), json!({}), now)?,
        ],
    )
    .await?;
    let row = asset_row(&db, &project, &asset).await?;
    let body = row.to_json(default_trash_days(cx.env));
    webhook_queue::emit(
        cx.env,
        &project,
        "asset.restored",
        json!({ "asset": body, "actor": actor }),
        None,
    )
    .await;
    http::json(&body)
}

async fn purge_route(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let db = cx.db()?;
    let row = asset_row(&db, &project, &asset).await?;
    if row.deleted_at.is_none() {
        return Err(ApiError::Conflict(format!(
            "asset {asset} is not in the trash; delete it first"
        )));
    }
    purge(cx.env, &db, &project, &asset, &cx.actor_name()).await?;
    http::json(&json!({ "id": asset, "purged": true }))
}

/// Deletes an asset for good: its rows, then every blob no other version uses (R2 objects
/// and their previews too). Used by the purge route and the scheduled sweep.
pub async fn purge(
    env: &Env,
    db: &D1Database,
    project: &str,
    asset: &str,
    actor: &str,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Sha {
        sha256: String,
    }
    let shas: Vec<Sha> = d1::rows(
        db,
        "SELECT DISTINCT sha256 FROM asset_versions WHERE project_id = ? AND asset_id = ?",
        &[text(project), text(asset)],
    )
    .await?;
    let now = now_ms();
    d1::batch(
        db,
        vec![
            d1::stmt(
                db,
                "DELETE FROM asset_tags WHERE project_id = ? AND asset_id = ?",
                &[text(project), text(asset)],
            )?,
            d1::stmt(
                db,
                "DELETE FROM asset_versions WHERE project_id = ? AND asset_id = ?",
                &[text(project), text(asset)],
            )?,
            d1::stmt(
                db,
                "DELETE FROM assets WHERE project_id = ? AND id = ?",
                &[text(project), text(asset)],
            )?,
            d1::audit(
                db,
                Some(project),
                actor,
                "asset.purge",
                Some(asset),
                json!({ "blobs": shas.len() }),
                now,
            )?,
        ],
    )
    .await?;
    for sha in shas {
        drop_blob_if_unused(env, db, project, &sha.sha256).await?;
    }
    Ok(())
}

/// Deletes blob `sha` (its R2 object, previews and row) when no version uses it any more.
pub async fn drop_blob_if_unused(
    env: &Env,
    db: &D1Database,
    project: &str,
    sha: &str,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Row {
        r2_key: String,
        users: u64,
    }
    let row: Option<Row> = d1::row(
        db,
        "SELECT r2_key, (SELECT COUNT(*) FROM asset_versions v WHERE v.project_id = b.project_id AND v.sha256 = b.sha256) AS users
         FROM asset_blobs b WHERE project_id = ? AND sha256 = ?",
        &[text(project), text(sha)],
    )
    .await?;
    let Some(row) = row.filter(|r| r.users == 0) else {
        return Ok(());
    };
    // The row goes first: a blob without a row is garbage the next upload overwrites; a row
    // without its object would be served as missing.
    d1::stmt(
        db,
        "DELETE FROM asset_blobs WHERE project_id = ? AND sha256 = ? AND NOT EXISTS
           (SELECT 1 FROM asset_versions v WHERE v.project_id = ?1 AND v.sha256 = ?2)",
        &[text(project), text(sha)],
    )?
    .run()
    .await
    .map_err(http::internal("drop blob row"))?;
    let bucket = bucket(env)?;
    let mut keys = vec![row.r2_key];
    let previews = bucket
        .list()
        .prefix(preview_prefix(project, sha))
        .limit(100)
        .execute()
        .await
        .map_err(http::internal("list previews"))?;
    keys.extend(previews.objects().iter().map(|o| o.key()));
    bucket
        .delete_multiple(keys)
        .await
        .map_err(http::internal("delete blob"))?;
    Ok(())
}

async fn versions(cx: &Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str();
    let asset = cx.params.asset()?.as_str();
    let db = cx.db()?;
    asset_row(&db, project, asset).await?;
    let rows: Vec<VersionRow> = d1::rows(
        &db,
        &format!(
            "SELECT {VERSION_COLUMNS} FROM asset_versions WHERE project_id = ? AND asset_id = ?
             ORDER BY version DESC LIMIT ?"
        ),
        &[text(project), text(asset), num(MAX_VERSIONS)],
    )
    .await?;
    http::json(&json!({ "versions": rows }))
}

async fn tag(cx: &mut Call<'_>, add: bool) -> Result<Response> {
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let tag = cx.params.tag()?.to_owned();
    let db = cx.db()?;
    let row = live_asset(&db, &project, &asset).await?;
    let now = now_ms();
    if add {
        let tags: Vec<String> = serde_json::from_str(&row.tags).unwrap_or_default();
        if !tags.contains(&tag) && tags.len() >= assets::MAX_TAGS {
            return Err(ApiError::Conflict(format!(
                "an asset has at most {} tags",
                assets::MAX_TAGS
            )));
        }
        d1::batch(
            &db,
            vec![
                d1::stmt(
                    &db,
                    "INSERT OR IGNORE INTO asset_tags (project_id, asset_id, tag) VALUES (?, ?, ?)",
                    &[text(&project), text(&asset), text(&tag)],
                )?,
                d1::stmt(
                    &db,
                    "UPDATE assets SET updated_at = ? WHERE project_id = ? AND id = ?",
                    &[num(now), text(&project), text(&asset)],
                )?,
            ],
        )
        .await?;
    } else {
        d1::batch(
            &db,
            vec![
                d1::stmt(
                    &db,
                    "DELETE FROM asset_tags WHERE project_id = ? AND asset_id = ? AND tag = ?",
                    &[text(&project), text(&asset), text(&tag)],
                )?,
                d1::stmt(
                    &db,
                    "UPDATE assets SET updated_at = ? WHERE project_id = ? AND id = ?",
                    &[num(now), text(&project), text(&asset)],
                )?,
            ],
        )
        .await?;
    }
    let row = asset_row(&db, &project, &asset).await?;
    http::json(&row.to_json(default_trash_days(cx.env)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    download: bool,
    #[serde(default, deserialize_with = "object")]
    preview: Option<PreviewRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    w: u32,
    format: String,
}

async fn sign_link(cx: &mut Call<'_>) -> Result<Response> {
    let input: LinkRequest = cx.body().await?;
    let expires_in = input.expires_in.unwrap_or(3600);
    if expires_in == 0 || expires_in > assets::MAX_LINK_SECONDS {
        return Err(ApiError::InvalidBody(format!(
            "expires_in is 1 to {} seconds",
            assets::MAX_LINK_SECONDS
        )));
    }
    let serves = match &input.preview {
        Some(p) => {
            let width = assets::parse_preview_width(&p.w.to_string())
                .map_err(|e| ApiError::InvalidBody(e.problem().detail))?;
            let format = PreviewFormat::parse(&p.format)
                .map_err(|e| ApiError::InvalidBody(e.problem().detail))?;
            if input.download {
                return Err(ApiError::InvalidBody(
                    "a preview link cannot be a download".into(),
                ));
            }
            Serves::Preview {
                width,
                format: format.as_str(),
            }
        }
        None => Serves::Content {
            download: input.download,
        },
    };
    let project = cx.project()?.as_str().to_owned();
    let asset = cx.params.asset()?.as_str().to_owned();
    let db = cx.db()?;
    let row = live_asset(&db, &project, &asset).await?;
    let version = match input.version {
        Some(v) => version_row(&db, &project, &asset, v).await?.version,
        None => row.version,
    };
    let expires = now_ms() / 1000 + expires_in;
    let link = Link {
        project: &project,
        asset: &asset,
        version,
        serves: serves.clone(),
        expires,
    };
    let sig = link.sign(&access::link_secret(cx.env)?);
    let origin = cx
        .req
        .url()
        .map_err(http::internal("request url"))?
        .origin()
        .ascii_serialization();
    let url = match serves {
        Serves::Content { download } => format!(
            "{origin}/v1/projects/{project}/assets/{asset}/versions/{version}/content?expires={expires}&sig={sig}{}",
            if download { "&download=true" } else { "" }
        ),
        Serves::Preview { width, format } => format!(
            "{origin}/v1/projects/{project}/assets/{asset}/preview?version={version}&w={width}&format={format}&expires={expires}&sig={sig}"
        ),
    };
    super::created(&json!({ "url": url, "version": version, "expires_at": expires * 1000 }))
}

/// The actor of a request that carries a signed link (`sig` in its query): `Some` when the
/// link is valid for this route and not expired, an error when it is not, `None` without one.
pub fn signed_link(req: &Request, env: &Env, params: &Params) -> Result<Option<Actor>> {
    let url = req.inner().url();
    let q = crate::api::url_query(&url);
    let get = |name: &str| q.and_then(|q| crate::api::query_value(q, name));
    let Some(sig) = get("sig") else {
        // Without a signature `expires` means nothing, but is still refused when it is no
        // number, as the document says.
        if get("expires").is_some_and(|e| e.parse::<u64>().is_err()) {
            return Err(ApiError::InvalidQuery(
                "expires must be unix seconds".into(),
            ));
        }
        return Ok(None);
    };
    let refused =
        || ApiError::NotPermitted("the signed link is invalid, altered or expired".into());
    let expires: u64 = get("expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(refused)?;
    let project = params.project()?.as_str();
    let asset = params.asset()?.as_str();
    let (version, serves) = match params.version {
        Some(v) => (
            v,
            Serves::Content {
                download: matches!(get("download").as_deref(), Some("true" | "1")),
            },
        ),
        None => {
            let version = get("version")
                .and_then(|v| v.parse().ok())
                .ok_or_else(refused)?;
            let width = get("w")
                .and_then(|w| assets::parse_preview_width(&w).ok())
                .ok_or_else(refused)?;
            let format = get("format")
                .and_then(|f| PreviewFormat::parse(&f).ok())
                .ok_or_else(refused)?;
            (
                version,
                Serves::Preview {
                    width,
                    format: format.as_str(),
                },
            )
        }
    };
    let link = Link {
        project,
        asset,
        version,
        serves,
        expires,
    };
    if !link.verify(&access::link_secret(env)?, &sig, now_ms() / 1000) {
        return Err(refused());
    }
    Ok(Some(Actor::Link {
        project: project.to_owned(),
    }))
}

/// Whether the request's validators match: `If-None-Match` (any of its tags, weakly), or
/// without it `If-Modified-Since` at or after `modified_secs`.
fn not_modified(req: &Request, etag: &str, modified_secs: u64) -> bool {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    if let Some(inm) = header("if-none-match") {
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    header("if-modified-since")
        .and_then(|d| http_date::parse(&d))
        .is_some_and(|since| since >= modified_secs)
}

fn stored_headers(etag: &str, modified_secs: u64, cache: &str) -> Result<Headers> {
    let h = Headers::new();
    let set = |k: &str, v: &str| h.set(k, v).map_err(http::internal("headers"));
    set("etag", etag)?;
    set("last-modified", &http_date::format(modified_secs))?;
    set("cache-control", cache)?;
    set("content-security-policy", assets::CONTENT_SECURITY_POLICY)?;
    set("x-content-type-options", "nosniff")?;
    set("cross-origin-resource-policy", "same-site")?;
    Ok(h)
}

fn cache_control(cx: &Call<'_>, immutable: bool) -> String {
    if !immutable {
        return "private, no-cache".into();
    }
    match cx.actor {
        // A link's copy may be kept as long as the link lives.
        Actor::Link { .. } => {
            let expires = query(cx, "expires")
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(0);
            let left = expires.saturating_sub(now_ms() / 1000).min(31_536_000);
            format!("private, max-age={left}")
        }
        _ => "private, max-age=31536000, immutable".into(),
    }
}

async fn content(cx: &Call<'_>, version: Option<u64>) -> Result<Response> {
    // Read first: a bad one is refused whatever the answer would be (a 304 included).
    let download = flag(cx, "download")?;
    let project = cx.project()?.as_str();
    let asset = cx.params.asset()?.as_str();
    let db = cx.db()?;
    let row = asset_row(&db, project, asset).await?;
    if row.deleted_at.is_some() {
        return Err(ApiError::Missing(
            "asset",
            format!("{asset} (in the trash)"),
        ));
    }
    let v = match version {
        Some(n) => version_row(&db, project, asset, n).await?,
        None => version_row(&db, project, asset, row.version).await?,
    };
    let etag = format!("\"{}\"", v.sha256);
    let modified = v.created_at / 1000;
    let headers = stored_headers(&etag, modified, &cache_control(cx, version.is_some()))?;
    if not_modified(&cx.req, &etag, modified) {
        return Ok(Response::empty()
            .map_err(http::internal("304"))?
            .with_status(304)
            .with_headers(headers));
    }
    let range_header = cx.req.headers().get("range").ok().flatten();
    // If-Range: a range only of the content the client holds (its tag or date).
    let if_range_ok = match cx.req.headers().get("if-range").ok().flatten() {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(d) => http_date::parse(&d).is_some_and(|d| d >= modified),
    };
    let range = if if_range_ok {
        range::parse(range_header.as_deref(), v.size)?
    } else {
        None
    };
    let key = blob_r2_key(&db, project, &v.sha256).await?;
    let bucket = bucket(cx.env)?;
    let mut get = bucket.get(key);
    if let Some(r) = range {
        get = get.range(worker::Range::OffsetWithLength {
            offset: r.offset,
            length: r.length,
        });
    }
    let object = get
        .execute()
        .await
        .map_err(http::internal("asset get"))?
        .ok_or_else(|| {
            log::error("asset.blob_missing")
                .message("an asset blob is missing from R2")
                .field("asset", asset.to_string())
                .emit();
            ApiError::Internal
        })?;
    let body = object
        .body()
        .ok_or(ApiError::Internal)?
        .response_body()
        .map_err(http::internal("asset body"))?;
    let set = |k: &str, val: &str| headers.set(k, val).map_err(http::internal("headers"));
    set("content-type", &v.content_type)?;
    set("accept-ranges", "bytes")?;
    let download = download || assets::is_active_content(&v.content_type);
    set(
        "content-disposition",
        &assets::content_disposition(&v.name, download),
    )?;
    let (status, length) = match range {
        Some(r) => {
            set("content-range", &r.content_range(v.size))?;
            (206, r.length)
        }
        None => (200, v.size),
    };
    set("content-length", &length.to_string())?;
    Ok(Response::from_body(body)
        .map_err(http::internal("response"))?
        .with_status(status)
        .with_headers(headers))
}

async fn preview(cx: &Call<'_>) -> Result<Response> {
    let width = assets::parse_preview_width(
        &query(cx, "w").ok_or_else(|| ApiError::InvalidQuery("w is required".into()))?,
    )?;
    let format = PreviewFormat::parse(query(cx, "format").as_deref().unwrap_or("webp"))?;
    let project = cx.project()?.as_str();
    let asset = cx.params.asset()?.as_str();
    let db = cx.db()?;
    let row = asset_row(&db, project, asset).await?;
    if row.deleted_at.is_some() {
        return Err(ApiError::Missing(
            "asset",
            format!("{asset} (in the trash)"),
        ));
    }
    let pinned = match query(cx, "version") {
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::InvalidQuery("version must be a number".into()))?,
        ),
        None => None,
    };
    let v = version_row(&db, project, asset, pinned.unwrap_or(row.version)).await?;
    if !assets::RASTER_TYPES.contains(&v.content_type.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "previews are made of PNG, JPEG, GIF and WebP images, not {}",
            v.content_type
        )));
    }
    if v.size > assets::MAX_PREVIEW_SOURCE {
        return Err(ApiError::Unprocessable(
            "image-too-large",
            format!(
                "previews are made of images up to {} bytes",
                assets::MAX_PREVIEW_SOURCE
            ),
        ));
    }
    let etag = format!("\"{}-{width}-{}\"", v.sha256, format.as_str());
    let modified = v.created_at / 1000;
    let headers = stored_headers(&etag, modified, &cache_control(cx, pinned.is_some()))?;
    headers
        .set("content-type", format.content_type())
        .map_err(http::internal("headers"))?;
    if not_modified(&cx.req, &etag, modified) {
        return Ok(Response::empty()
            .map_err(http::internal("304"))?
            .with_status(304)
            .with_headers(headers));
    }
    let bucket = bucket(cx.env)?;
    let cache_key = preview_key(project, &v.sha256, width, format);
    if let Some(cached) = bucket
        .get(cache_key.clone())
        .execute()
        .await
        .map_err(http::internal("preview get"))?
    {
        let body = cached
            .body()
            .ok_or(ApiError::Internal)?
            .response_body()
            .map_err(http::internal("preview body"))?;
        return Ok(Response::from_body(body)
            .map_err(http::internal("response"))?
            .with_headers(headers));
    }
    let source_key = blob_r2_key(&db, project, &v.sha256).await?;
    let source = bucket
        .get(source_key)
        .execute()
        .await
        .map_err(http::internal("preview source"))?
        .ok_or(ApiError::Internal)?;
    let stream = match source
        .body()
        .ok_or(ApiError::Internal)?
        .response_body()
        .map_err(http::internal("source body"))?
    {
        ResponseBody::Stream(s) => s,
        _ => return Err(ApiError::Internal),
    };
    let fetcher = cx
        .env
        .service("PREVIEWS")
        .map_err(|_| ApiError::NotConfigured("PREVIEWS"))?;
    let req_headers = Headers::new();
    req_headers
        .set("content-type", &v.content_type)
        .map_err(http::internal("headers"))?;
    req_headers
        .set("content-length", &v.size.to_string())
        .map_err(http::internal("headers"))?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(req_headers)
        .with_body(Some(stream.into()));
    let url = format!(
        "https://previews.internal/render?w={width}&format={}",
        format.as_str()
    );
    let req = Request::new_with_init(&url, &init).map_err(http::internal("preview request"))?;
    let mut answer = fetcher
        .fetch_request(req)
        .await
        .map_err(http::internal("previews worker"))?;
    let status = answer.status_code();
    let bytes = answer
        .bytes()
        .await
        .map_err(http::internal("preview bytes"))?;
    if status != 200 {
        return Err(ApiError::Relayed {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    if bytes.len() > MAX_PREVIEW_BYTES {
        return Err(ApiError::Internal);
    }
    let meta = worker::HttpMetadata {
        content_type: Some(format.content_type().into()),
        ..Default::default()
    };
    if let Err(e) = bucket
        .put(cache_key, bytes.clone())
        .http_metadata(meta)
        .execute()
        .await
    {
        // Served anyway; made again next time.
        log::warn("preview.cache_failed")
            .message("caching a preview failed; served anyway")
            .cause(e)
            .emit();
    }
    Ok(Response::from_bytes(bytes)
        .map_err(http::internal("response"))?
        .with_headers(headers))
}

async fn usage(cx: &Call<'_>) -> Result<Response> {
    let project = cx.project()?.as_str();
    let asset = cx.params.asset()?.as_str();
    let db = cx.db()?;
    asset_row(&db, project, asset).await?;
    let url = cx.req.inner().url();
    let page = crate::pages::Page::parse(crate::api::url_query(&url), 1)?;
    let after = page
        .after
        .as_ref()
        .and_then(|a| a[0].as_str().map(str::to_owned));
    let mut rows: Vec<UsageRow> = d1::rows(
        &db,
        "SELECT document, refs FROM asset_usage WHERE project_id = ?1 AND asset_id = ?2
           AND (?3 IS NULL OR document > ?3) ORDER BY document LIMIT ?4",
        &[
            text(project),
            text(asset),
            after.as_deref().map_or(JsValue::NULL, text),
            num(page.fetch() as u64),
        ],
    )
    .await?;
    let next = page.finish(&mut rows, |r| vec![json!(r.document)]);
    let documents: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "document": r.document, "refs": r.refs }))
        .collect();
    http::json(&json!({ "asset": asset, "documents": documents, "next_cursor": next }))
}

async fn document_assets(cx: &Call<'_>) -> Result<Response> {
    #[derive(Deserialize)]
    struct Row {
        asset_id: String,
        refs: u64,
    }
    let project = cx.project()?.as_str();
    let document = cx.params.document()?.as_str();
    let db = cx.db()?;
    let used: Vec<Row> = d1::rows(
        &db,
        "SELECT asset_id, refs FROM asset_usage WHERE project_id = ? AND document = ? ORDER BY asset_id LIMIT 1000",
        &[text(project), text(document)],
    )
    .await?;
    let records: Vec<AssetRow> = d1::rows(
        &db,
        &format!("{SELECT_ASSET} AND a.id IN (SELECT asset_id FROM asset_usage WHERE project_id = ?1 AND document = ?2)"),
        &[text(project), text(document)],
    )
    .await?;
    let days = default_trash_days(cx.env);
    let assets: Vec<Value> = used
        .iter()
        .map(|u| {
            let record = records
                .iter()
                .find(|r| r.id == u.asset_id)
                .map(|r| r.to_json(days));
            json!({ "id": u.asset_id, "refs": u.refs, "asset": record })
        })
        .collect();
    http::json(&json!({ "document": document, "assets": assets }))
}

/// An asset id the server makes: `ast_` and 20 hex digits.
pub fn new_asset_id() -> Result<Id> {
    let id = format!(
        "ast_{}",
        crate::codec::hex(&crate::edge::platform::random::<10>()?)
    );
    Id::parse("asset id", &id).map_err(|_| ApiError::Internal)
}
