//! Document archives (docs/archive.md): export a document with the asset files it references
//! as one ustar file, streamed from R2 with its length known up front; import such a file into
//! a new document, streamed from the request into R2, every check made before anything is
//! written where it can be, and what was written taken back when a later step fails.
//!
//! The references are found by scanning the document's JSON rendering
//! ([`crate::assets::refs`]) until the document scanner of asset usage lands.

use super::assets::{self as lib, blob_key, bucket, AssetRow, SELECT_ASSET};
use super::uploads::{check_quota, put_blob, uploader, PutError};
use super::{Call, Result};
use crate::api::ApiError;
use crate::assets::archive::{
    asset_path, landing, ArchivedAsset, Landing, Manifest, MissingAsset, FORMAT, MANIFEST,
    MAX_ASSETS, MAX_IMPORT_BYTES, MAX_MANIFEST_BYTES, MAX_STATE_BYTES, RENDERING, STATE,
};
use crate::assets::refs::{scan_json, AssetRef};
use crate::assets::sniff::{sniff, SNIFF_BYTES};
use crate::assets::tar::{self, Event, Reader};
use crate::assets::{self, Licence, Sha256};
use crate::edge::d1::{self, num, text, DocumentState};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::room_client::RoomClient;
use crate::edge::{http, webhook_queue};
use crate::room_call::{ForkReply, RoomCall};
use futures::stream::{self, LocalBoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use worker::{Bucket, D1Database, Env, Headers, Response, ResponseBody};

type Chunks = LocalBoxStream<'static, worker::Result<Vec<u8>>>;

fn stream_error(what: String) -> worker::Error {
    worker::Error::RustError(what)
}

/// `GET .../documents/{document}/export`.
pub async fn export(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let name = cx.params.document()?.clone();
    let db = cx.db()?;
    match d1::document_state(&db, project.as_str(), name.as_str()).await? {
        DocumentState::Deleted => return Err(ApiError::DocumentDeleted),
        DocumentState::Missing => return Err(ApiError::Missing("document", name.to_string())),
        DocumentState::Live => {}
    }
    let room = RoomClient {
        env: cx.env,
        project: &project,
        room: &name,
        author: cx.actor_name(),
    };
    // One read of the state; the rendering is made from it, so the two agree exactly.
    let state = room
        .bytes(
            RoomCall::ReadUpdate {
                state_vector: None,
                v2: false,
            },
            &[],
        )
        .await?;
    crate::prescan::check_update_v1(&state).map_err(|e| {
        log::error("export.bad_state")
            .message("export: the room's state does not scan")
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    let doc = crate::history::state_at(Some(&state), []).map_err(|e| {
        log::error("export.bad_state")
            .message("export: the room's state does not apply")
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    let content = crate::document::render_json(&doc);
    drop(doc);
    let refs = scan_json(&content, MAX_ASSETS)
        .map_err(|e| ApiError::Unprocessable("too-many-assets", e.to_string()))?;
    let rendering = serde_json::to_vec(&json!({ "name": name, "content": content }))
        .map_err(|_| ApiError::Internal)?;
    drop(content);
    let (assets, files, missing) = resolve(&db, project.as_str(), &refs).await?;
    let now = now_ms();
    let manifest = Manifest {
        format: FORMAT.into(),
        document: name.to_string(),
        exported_at: now,
        assets,
        missing,
    };
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|_| ApiError::Internal)?;
    let mtime = now / 1000;
    let mut sizes = vec![
        manifest.len() as u64,
        state.len() as u64,
        rendering.len() as u64,
    ];
    sizes.extend(files.iter().map(|f| f.size));
    let total = tar::archive_len(sizes);
    let mut parts: Vec<Part> = vec![
        Part::Bytes(MANIFEST, manifest),
        Part::Bytes(STATE, state),
        Part::Bytes(RENDERING, rendering),
    ];
    parts.extend(files.into_iter().map(Part::File));
    let bucket = bucket(cx.env)?;
    let body = stream::iter(parts)
        .then(move |part| entry(bucket.clone(), part, mtime))
        .flatten()
        .chain(stream::once(async { Ok(tar::END.to_vec()) }));
    // A fixed-length stream: the response carries its Content-Length, and a file that is not
    // the size its row says fails the response instead of corrupting the archive.
    let fixed: worker::worker_sys::FixedLengthStream =
        worker::FixedLengthStream::wrap(body, total).into();
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(http::internal("headers"));
    set("content-type", "application/x-tar")?;
    set(
        "content-disposition",
        &assets::content_disposition(&format!("{name}.tar"), true),
    )?;
    set("cache-control", "private, no-store")?;
    Ok(Response::from_body(ResponseBody::Stream(fixed.readable()))
        .map_err(http::internal("archive response"))?
        .with_headers(headers))
}

/// One stored file of an export.
struct File {
    sha256: String,
    r2_key: String,
    size: u64,
}

/// One entry of an export.
enum Part {
    /// Bytes made here.
    Bytes(&'static str, Vec<u8>),
    /// A file read from R2 as the response is sent.
    File(File),
}

/// The chunks of one entry: its header, its data, its padding.
async fn entry(bucket: Bucket, part: Part, mtime: u64) -> Chunks {
    let (name, size) = match &part {
        Part::Bytes(name, data) => ((*name).to_owned(), data.len() as u64),
        Part::File(f) => (asset_path(&f.sha256), f.size),
    };
    let header = match tar::header(&name, size, mtime) {
        Ok(h) => h.to_vec(),
        Err(e) => {
            return stream::once(async move { Err(stream_error(e.to_string())) }).boxed_local()
        }
    };
    let pad = vec![0u8; tar::padding(size)];
    let data: Chunks = match part {
        Part::Bytes(_, data) => stream::once(async move { Ok(data) }).boxed_local(),
        Part::File(f) => match bucket.get(f.r2_key.clone()).execute().await {
            Ok(Some(object)) => match object.body().map(|b| b.stream()) {
                Some(Ok(s)) => worker::FixedLengthStream::wrap(s, f.size).boxed_local(),
                _ => failed(format!("asset file {} has no body", f.sha256)),
            },
            Ok(None) => failed(format!("asset file {} is missing from storage", f.sha256)),
            Err(e) => failed(format!("asset file {}: {e}", f.sha256)),
        },
    };
    stream::once(async move { Ok(header) })
        .chain(data)
        .chain(stream::once(async move { Ok(pad) }))
        .filter(|c| std::future::ready(!matches!(c, Ok(c) if c.is_empty())))
        .boxed_local()
}

fn failed(why: String) -> Chunks {
    log::error("export.failed").cause(&why).emit();
    stream::once(async move { Err(stream_error(why)) }).boxed_local()
}

/// A version as exported, with where its file is.
#[derive(Debug, Deserialize)]
struct VersionFile {
    asset_id: String,
    version: u64,
    name: String,
    content_type: String,
    size: u64,
    sha256: String,
    r2_key: Option<String>,
}

/// The asset versions `refs` name: those the archive holds (with their files, each once) and
/// those it cannot (no such asset, in the trash, no such version, no stored file).
async fn resolve(
    db: &D1Database,
    project: &str,
    refs: &BTreeSet<AssetRef>,
) -> Result<(Vec<ArchivedAsset>, Vec<File>, Vec<MissingAsset>)> {
    let ids: BTreeSet<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    let ids_json = serde_json::to_string(&ids).map_err(|_| ApiError::Internal)?;
    // Bound as one JSON text: D1 takes at most 100 parameters a statement.
    let rows: Vec<AssetRow> = d1::rows(
        db,
        &format!("{SELECT_ASSET} AND a.id IN (SELECT value FROM json_each(?2))"),
        &[text(project), text(&ids_json)],
    )
    .await?;
    let rows: BTreeMap<&str, &AssetRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut missing = Vec::new();
    let mut wanted: BTreeSet<(&str, u64)> = BTreeSet::new();
    for r in refs {
        let gone = |reason: &str| MissingAsset {
            id: r.id.clone(),
            version: r.version,
            reason: reason.into(),
        };
        match rows.get(r.id.as_str()) {
            None => missing.push(gone("no such asset in the project")),
            Some(row) if row.deleted_at.is_some() => {
                missing.push(gone("the asset is in the trash"))
            }
            Some(row) => {
                wanted.insert((row.id.as_str(), r.version.unwrap_or(row.version)));
            }
        }
    }
    let pairs = serde_json::to_string(&wanted.iter().collect::<Vec<_>>())
        .map_err(|_| ApiError::Internal)?;
    let versions: Vec<VersionFile> = d1::rows(
        db,
        "SELECT v.asset_id, v.version, v.name, v.content_type, v.size, v.sha256, b.r2_key
         FROM json_each(?2) j
         JOIN asset_versions v ON v.project_id = ?1
           AND v.asset_id = json_extract(j.value, '$[0]') AND v.version = json_extract(j.value, '$[1]')
         LEFT JOIN asset_blobs b ON b.project_id = v.project_id AND b.sha256 = v.sha256
         ORDER BY v.asset_id, v.version",
        &[text(project), text(&pairs)],
    )
    .await?;
    let mut assets = Vec::new();
    let mut files: Vec<File> = Vec::new();
    for (id, version) in &wanted {
        let Some(v) = versions
            .iter()
            .find(|v| v.asset_id == *id && v.version == *version)
        else {
            missing.push(MissingAsset {
                id: (*id).to_owned(),
                version: Some(*version),
                reason: "no such version".into(),
            });
            continue;
        };
        let (Some(key), Ok(sha)) = (&v.r2_key, Sha256::parse(&v.sha256)) else {
            log::error("asset.file_missing")
                .message("an asset version has no stored file")
                .field("asset", *id)
                .field("version", *version)
                .emit();
            missing.push(MissingAsset {
                id: (*id).to_owned(),
                version: Some(*version),
                reason: "its file is not stored".into(),
            });
            continue;
        };
        let row = rows[id];
        let licence = Licence {
            spdx: row.licence.clone(),
            text: row.licence_text.clone(),
            attribution: row.attribution.clone(),
            source_url: row.source_url.clone(),
        };
        if !files.iter().any(|f| f.sha256 == v.sha256) {
            files.push(File {
                sha256: v.sha256.clone(),
                r2_key: key.clone(),
                size: v.size,
            });
        }
        assets.push(ArchivedAsset {
            id: v.asset_id.clone(),
            version: v.version,
            current: v.version == row.version,
            name: v.name.clone(),
            content_type: v.content_type.clone(),
            size: v.size,
            path: asset_path(sha.as_str()),
            sha256: sha,
            licence: (licence != Licence::default()).then_some(licence),
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        });
    }
    Ok((assets, files, missing))
}

/// What the import reader found, owned.
enum Next {
    Entry { name: String, size: u64 },
    Data(Vec<u8>),
    EntryEnd,
    End,
}

fn bad_tar(e: tar::TarError) -> ApiError {
    ApiError::InvalidBody(format!("the body is not a ustar archive: {e}"))
}

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::Unprocessable("invalid-archive", why.into())
}

/// The request body read as an archive, one event at a time, never more than a chunk held.
struct Source {
    body: Chunks,
    reader: Reader,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
    read: u64,
    /// Why reading failed while the body was streamed into storage (whose error says less).
    failure: Option<ApiError>,
}

impl Source {
    fn new(body: Chunks) -> Source {
        Source {
            body,
            reader: Reader::new(),
            chunk: Vec::new(),
            at: 0,
            ended: false,
            read: 0,
            failure: None,
        }
    }

    async fn next(&mut self) -> Result<Next> {
        loop {
            if self.at >= self.chunk.len() && !self.ended {
                match self.body.next().await {
                    Some(Ok(chunk)) => {
                        self.read += chunk.len() as u64;
                        if self.read > MAX_IMPORT_BYTES {
                            return Err(ApiError::BodyTooLarge {
                                limit: MAX_IMPORT_BYTES as usize,
                            });
                        }
                        self.chunk = chunk;
                        self.at = 0;
                    }
                    Some(Err(e)) => {
                        return Err(ApiError::InvalidBody(format!("reading the body: {e}")))
                    }
                    None => self.ended = true,
                }
            }
            let (used, event) = self.reader.step(&self.chunk[self.at..]).map_err(bad_tar)?;
            let next = match event {
                Some(Event::Entry { name, size }) => Some(Next::Entry { name, size }),
                Some(Event::Data(d)) => Some(Next::Data(d.to_vec())),
                Some(Event::EntryEnd) => Some(Next::EntryEnd),
                Some(Event::End) => Some(Next::End),
                None => None,
            };
            self.at += used;
            if let Some(next) = next {
                return Ok(next);
            }
            if self.ended && self.at >= self.chunk.len() {
                self.reader.finish().map_err(bad_tar)?;
                return Ok(Next::End);
            }
        }
    }

    /// Reads and drops the rest of the body (at most [`MAX_IMPORT_BYTES`] in all): a client
    /// still sending it may not read the answer before it is done.
    async fn drain(&mut self) {
        while !self.ended && self.read <= MAX_IMPORT_BYTES {
            match self.body.next().await {
                Some(Ok(chunk)) => self.read += chunk.len() as u64,
                _ => self.ended = true,
            }
        }
    }
}

/// The request's [`Source`], out of its slot only while one event is read.
type Slot = Rc<RefCell<Option<Source>>>;

/// The next event of the archive in `slot`.
async fn pull(slot: &Slot) -> Result<Next> {
    let taken = slot.borrow_mut().take();
    let mut s = taken.ok_or(ApiError::Internal)?;
    let next = s.next().await;
    *slot.borrow_mut() = Some(s);
    next
}

/// The current entry's data, whole (`size` is bounded by the caller).
async fn read_entry(slot: &Slot, size: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size as usize);
    loop {
        match pull(slot).await? {
            Next::Data(d) => out.extend_from_slice(&d),
            Next::EntryEnd => return Ok(out),
            _ => return Err(ApiError::Internal),
        }
    }
}

/// Skips the current entry's data.
async fn skip_entry(slot: &Slot) -> Result<()> {
    loop {
        match pull(slot).await? {
            Next::Data(_) => {}
            Next::EntryEnd => return Ok(()),
            _ => return Err(ApiError::Internal),
        }
    }
}

/// Reads what follows the end blocks: zeros only, up to the end of the body.
async fn finish(slot: &Slot) -> Result<()> {
    loop {
        let done = slot
            .borrow()
            .as_ref()
            .is_none_or(|s| s.ended && s.at >= s.chunk.len());
        if done {
            return Ok(());
        }
        pull(slot).await?;
    }
}

/// Reads and checks the first entry, the manifest.
async fn read_manifest(slot: &Slot, max_file: u64) -> Result<Manifest> {
    let bytes = match pull(slot).await? {
        Next::Entry { name, size } if name == MANIFEST => {
            if size > MAX_MANIFEST_BYTES {
                return Err(invalid(format!(
                    "{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes"
                )));
            }
            read_entry(slot, size).await?
        }
        Next::Entry { name, .. } => {
            return Err(invalid(format!(
                "the first entry must be {MANIFEST}, not {name:?}"
            )))
        }
        _ => return Err(invalid("the archive is empty")),
    };
    Manifest::parse(&bytes, max_file)
}

/// How each file of the manifest is handled: stored from the archive, or already in the
/// project (its entry is skipped).
struct Plan<'m> {
    /// Assets created, by id, with their versions.
    create: BTreeMap<&'m str, Vec<&'m ArchivedAsset>>,
    /// Assets the project has already, the same.
    reuse: Vec<&'m str>,
    /// Files to store: digest, size, and the declared types of the versions that use it.
    store: BTreeMap<&'m str, (u64, Vec<&'m str>)>,
    /// Files the created versions use that the project stores already: digest and what their
    /// first bytes showed.
    stored: BTreeMap<&'m str, Option<String>>,
}

async fn plan<'m>(
    db: &D1Database,
    project: &str,
    manifest: &'m Manifest,
    quota: u64,
) -> Result<Plan<'m>> {
    #[derive(Deserialize)]
    struct Existing {
        asset_id: String,
        version: u64,
        sha256: String,
    }
    let by_asset = manifest.by_asset();
    let ids: Vec<&str> = by_asset.keys().copied().collect();
    let ids_json = serde_json::to_string(&ids).map_err(|_| ApiError::Internal)?;
    let existing: Vec<Existing> = d1::rows(
        db,
        "SELECT asset_id, version, sha256 FROM asset_versions
         WHERE project_id = ?1 AND asset_id IN (SELECT value FROM json_each(?2))",
        &[text(project), text(&ids_json)],
    )
    .await?;
    let mut plan = Plan {
        create: BTreeMap::new(),
        reuse: Vec::new(),
        store: BTreeMap::new(),
        stored: BTreeMap::new(),
    };
    for (id, versions) in by_asset {
        let theirs: Vec<(u64, String)> = existing
            .iter()
            .filter(|e| e.asset_id == id)
            .map(|e| (e.version, e.sha256.clone()))
            .collect();
        match landing(id, &versions, &theirs)? {
            Landing::Reuse => plan.reuse.push(id),
            Landing::Create => {
                plan.create.insert(id, versions);
            }
        }
    }
    // The files the project stores already, in one query.
    let shas: BTreeSet<&str> = plan
        .create
        .values()
        .flatten()
        .map(|a| a.sha256.as_str())
        .collect();
    let have = stored_blobs(db, project, &shas).await?;
    let mut new_bytes = 0;
    for a in plan.create.values().flatten() {
        let sha = a.sha256.as_str();
        if let Some((_, types)) = plan.store.get_mut(sha) {
            types.push(a.content_type.as_str());
            continue;
        }
        if plan.stored.contains_key(sha) {
            continue;
        }
        match have.iter().find(|b| b.sha256 == sha) {
            Some(found) if found.size == a.size => {
                plan.stored.insert(sha, found.sniffed.clone());
            }
            Some(_) => {
                return Err(ApiError::Unprocessable(
                    "digest-mismatch",
                    format!("the manifest gives {sha} another size than the stored file's"),
                ))
            }
            None => {
                new_bytes += a.size;
                plan.store
                    .insert(sha, (a.size, vec![a.content_type.as_str()]));
            }
        }
    }
    if new_bytes > 0 {
        check_quota(db, project, new_bytes, quota).await?;
    }
    Ok(plan)
}

/// A stored file of the project.
#[derive(Debug, Deserialize)]
struct StoredBlob {
    sha256: String,
    size: u64,
    sniffed: Option<String>,
}

/// The project's stored files among `shas`, in one query.
async fn stored_blobs(
    db: &D1Database,
    project: &str,
    shas: &BTreeSet<&str>,
) -> Result<Vec<StoredBlob>> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(shas).map_err(|_| ApiError::Internal)?;
    d1::rows(
        db,
        "SELECT sha256, size, sniffed FROM asset_blobs
         WHERE project_id = ?1 AND sha256 IN (SELECT value FROM json_each(?2))",
        &[text(project), text(&list)],
    )
    .await
}

/// Everything the archive held after its manifest, read and stored.
struct Read {
    state: Vec<u8>,
    /// Files stored in R2 by this import, with what their first bytes showed.
    sniffed: BTreeMap<String, Option<&'static str>>,
}

/// Reads the entries after the manifest: the state (bounded, scanned), the rendering (skipped),
/// and each file, streamed into R2 when the project lacks it. `stored` collects the R2 keys
/// written, for [`take_back`].
async fn read_entries(
    env: &Env,
    project: &str,
    src: &Slot,
    manifest: &Manifest,
    plan: &Plan<'_>,
    stored: &mut Vec<(String, String)>,
) -> Result<Read> {
    let mut state: Option<Vec<u8>> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut sniffed = BTreeMap::new();
    loop {
        let (name, size) = match pull(src).await? {
            Next::Entry { name, size } => (name, size),
            Next::End => {
                finish(src).await?;
                break;
            }
            _ => return Err(ApiError::Internal),
        };
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("{name} is in the archive twice")));
        }
        if name == STATE {
            if size > MAX_STATE_BYTES {
                return Err(invalid(format!(
                    "{STATE} is larger than {MAX_STATE_BYTES} bytes"
                )));
            }
            let bytes = read_entry(src, size).await?;
            // Never handed to yrs (here or in the room) before it scans.
            crate::prescan::check_update_v1(&bytes)
                .map_err(|e| invalid(format!("{STATE} is not a Yjs v1 update: {e}")))?;
            state = Some(bytes);
            continue;
        }
        if name == RENDERING || name == MANIFEST {
            skip_entry(src).await?;
            continue;
        }
        let Some(sha) = name.strip_prefix("assets/") else {
            return Err(invalid(format!(
                "{name:?} is not an entry of a document archive"
            )));
        };
        let Some((_, want)) = manifest
            .files()
            .into_iter()
            .find(|(f, _)| f.as_str() == sha)
        else {
            return Err(invalid(format!("{name} is not in the manifest")));
        };
        if want != size {
            return Err(invalid(format!(
                "{name} holds {size} bytes; the manifest says {want}"
            )));
        }
        let Some((_, types)) = plan.store.get(sha) else {
            // In the project already, or of an asset it has: the archive's copy is not needed.
            skip_entry(src).await?;
            continue;
        };
        // The first bytes decide the type before anything is stored; the rest streams through.
        let mut head: Vec<Vec<u8>> = Vec::new();
        let mut head_len = 0;
        let mut complete = false;
        while head_len < SNIFF_BYTES {
            match pull(src).await? {
                Next::Data(d) => {
                    head_len += d.len();
                    head.push(d);
                }
                Next::EntryEnd => {
                    complete = true;
                    break;
                }
                _ => return Err(ApiError::Internal),
            }
        }
        let first: Vec<u8> = head.iter().flatten().take(SNIFF_BYTES).copied().collect();
        let found = sniff(&first);
        for declared in types {
            assets::settle(Some(declared), found)
                .map_err(|e| invalid(format!("{name}: {}", e.problem().detail)))?;
        }
        let rest: Chunks = if complete {
            stream::empty().boxed_local()
        } else {
            stream::unfold(src.clone(), |src| async move {
                let item = match pull(&src).await {
                    Ok(Next::Data(d)) => Some(Ok(d)),
                    Ok(Next::EntryEnd) => None,
                    Ok(_) => Some(Err(stream_error("the entry ended early".into()))),
                    Err(e) => {
                        let message = e.problem().detail;
                        if let Some(s) = src.borrow_mut().as_mut() {
                            s.failure = Some(e);
                        }
                        Some(Err(stream_error(message)))
                    }
                };
                item.map(|i| (i, src))
            })
            .boxed_local()
        };
        let body = stream::iter(head.into_iter().map(Ok)).chain(rest);
        let key = blob_key(project, sha);
        let sha_value = Sha256::parse(sha)?;
        let ct = types[0];
        let put = put_blob(env, &key, body, size, &sha_value, ct).await;
        if let Some(e) = src.borrow_mut().as_mut().and_then(|s| s.failure.take()) {
            return Err(e);
        }
        match put {
            Ok(()) => {}
            Err(PutError::Digest) => {
                return Err(ApiError::Unprocessable(
                    "digest-mismatch",
                    format!("the SHA-256 of {name} is not its name; nothing was imported"),
                ))
            }
            Err(PutError::Length) => {
                return Err(invalid(format!("{name} is not {size} bytes")));
            }
            Err(PutError::Failed(e)) => return Err(e),
        }
        stored.push((sha.to_owned(), key));
        sniffed.insert(sha.to_owned(), found);
    }
    let state = state.ok_or_else(|| invalid(format!("the archive has no {STATE}")))?;
    if let Some(sha) = plan.store.keys().find(|sha| !sniffed.contains_key(**sha)) {
        return Err(invalid(format!(
            "the archive lacks {} (the manifest lists it)",
            asset_path(sha)
        )));
    }
    Ok(Read { state, sniffed })
}

/// Deletes the files this import stored that no row names (the rows were not written).
async fn take_back(env: &Env, db: &D1Database, project: &str, stored: &[(String, String)]) {
    if stored.is_empty() {
        return;
    }
    let Ok(bucket) = bucket(env) else { return };
    let shas: BTreeSet<&str> = stored.iter().map(|(sha, _)| sha.as_str()).collect();
    let named = match stored_blobs(db, project, &shas).await {
        Ok(rows) => rows,
        Err(e) => {
            log::error("import.cleanup_failed")
                .message("import: checking what to take back failed")
                .project(project)
                .cause(format!("{e:?}"))
                .emit();
            return;
        }
    };
    for (sha, key) in stored {
        if named.iter().any(|b| &b.sha256 == sha) {
            continue;
        }
        if let Err(e) = bucket.delete(key.clone()).await {
            log::error("import.cleanup_failed")
                .message("import: taking back a stored file failed")
                .project(project)
                .field("key", key.as_str())
                .cause(e)
                .emit();
        }
    }
}

/// `POST .../documents/{document}/import`: the body is an archive.
pub async fn import(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let name = cx.params.document()?.clone();
    let length = cx.req.headers().get("content-length").ok().flatten();
    crate::api::check_content_length(length.as_deref(), MAX_IMPORT_BYTES as usize)?;
    let db = cx.db()?;
    let (p, doc_name) = (project.as_str(), name.as_str());
    if d1::document_state(&db, p, doc_name).await? == DocumentState::Live {
        return Err(ApiError::Conflict(format!("document {doc_name:?} exists")));
    }
    let limits = lib::limits(cx).await?;
    let who = uploader(cx).await?;
    if cx.req.inner().body().is_none() {
        return Err(ApiError::InvalidBody(
            "the body is the archive (application/x-tar)".into(),
        ));
    }
    let body: Chunks = cx
        .req
        .stream()
        .map_err(http::internal("archive body"))?
        .boxed_local();
    let src: Slot = Rc::new(RefCell::new(Some(Source::new(body))));
    let mut stored = Vec::new();
    let outcome = async {
        let manifest = read_manifest(&src, limits.max_file).await?;
        let plan = plan(&db, p, &manifest, limits.quota).await?;
        let read = read_entries(cx.env, p, &src, &manifest, &plan, &mut stored).await?;
        // Checked again: another import or a client may have made it meanwhile.
        if d1::document_state(&db, p, doc_name).await? == DocumentState::Live {
            return Err(ApiError::Conflict(format!("document {doc_name:?} exists")));
        }
        record(cx, &db, &plan, &read, &who).await
    }
    .await;
    match outcome {
        Ok(body) => super::created(&body),
        Err(e) => {
            take_back(cx.env, &db, p, &stored).await;
            let rest = src.borrow_mut().take();
            if let Some(mut rest) = rest {
                rest.drain().await;
            }
            Err(e)
        }
    }
}

/// Starts the room from the archive's state, then writes every row in one D1 batch (taking the
/// room back when that fails): blobs, assets, versions, tags, the document, the audit entry.
async fn record(
    cx: &Call<'_>,
    db: &D1Database,
    plan: &Plan<'_>,
    read: &Read,
    who: &str,
) -> Result<Value> {
    let project = cx.project()?;
    let name = cx.params.document()?;
    let (p, doc_name) = (project.as_str(), name.as_str());
    // The stored type of each version: declared, checked against its file's first bytes.
    let mut versions = Vec::new();
    let mut assets_json = Vec::new();
    let mut tags = Vec::new();
    let mut blobs = Vec::new();
    for (id, list) in &plan.create {
        for a in list {
            let sha = a.sha256.as_str();
            let found = match read.sniffed.get(sha) {
                Some(s) => *s,
                None => plan.stored.get(sha).and_then(|s| s.as_deref()),
            };
            let content_type = assets::settle(Some(&a.content_type), found)
                .map_err(|e| invalid(format!("{id}@{}: {}", a.version, e.problem().detail)))?;
            if read.sniffed.contains_key(sha) && !blobs.iter().any(|b: &Value| b["sha256"] == sha) {
                blobs.push(
                    json!({ "sha256": sha, "size": a.size, "content_type": content_type,
                    "sniffed": found, "r2_key": blob_key(p, sha) }),
                );
            }
            versions.push(json!({ "id": id, "version": a.version, "name": a.name,
                "content_type": content_type, "size": a.size, "sha256": sha }));
        }
        let last = list.last().ok_or(ApiError::Internal)?;
        let l = last.licence.clone().unwrap_or_default();
        assets_json.push(
            json!({ "id": id, "name": last.name, "version": last.version,
            "licence": l.spdx, "licence_text": l.text, "attribution": l.attribution,
            "source_url": l.source_url }),
        );
        for t in &last.tags {
            tags.push(json!({ "id": id, "tag": t }));
        }
    }
    let room = RoomClient {
        env: cx.env,
        project,
        room: name,
        author: cx.actor_name(),
    };
    let started: ForkReply = room.json(RoomCall::Import, &read.state).await?;
    let now = now_ms();
    let actor = cx.actor_name();
    let j = |v: &Vec<Value>| serde_json::to_string(v).map_err(|_| ApiError::Internal);
    let detail = json!({ "assets_created": plan.create.len(), "assets_reused": plan.reuse.len(),
        "files_stored": read.sniffed.len(), "bytes": read.state.len() });
    let stmts = vec![
        d1::stmt(
            db,
            "INSERT OR IGNORE INTO asset_blobs (project_id, sha256, r2_key, size, content_type, sniffed, created_at)
             SELECT ?1, json_extract(value, '$.sha256'), json_extract(value, '$.r2_key'), json_extract(value, '$.size'),
                    json_extract(value, '$.content_type'), json_extract(value, '$.sniffed'), ?3
             FROM json_each(?2)",
            &[text(p), text(&j(&blobs)?), num(now)],
        )?,
        d1::stmt(
            db,
            "INSERT INTO assets (project_id, id, name, current_version, uploader, licence, licence_text,
                                 attribution, source_url, created_at, updated_at)
             SELECT ?1, json_extract(value, '$.id'), json_extract(value, '$.name'), json_extract(value, '$.version'), ?3,
                    json_extract(value, '$.licence'), json_extract(value, '$.licence_text'),
                    json_extract(value, '$.attribution'), json_extract(value, '$.source_url'), ?4, ?4
             FROM json_each(?2)",
            &[text(p), text(&j(&assets_json)?), text(who), num(now)],
        )?,
        d1::stmt(
            db,
            "INSERT INTO asset_versions (project_id, asset_id, version, name, content_type, size, sha256, uploader, created_at)
             SELECT ?1, json_extract(value, '$.id'), json_extract(value, '$.version'), json_extract(value, '$.name'),
                    json_extract(value, '$.content_type'), json_extract(value, '$.size'), json_extract(value, '$.sha256'), ?3, ?4
             FROM json_each(?2)",
            &[text(p), text(&j(&versions)?), text(who), num(now)],
        )?,
        d1::stmt(
            db,
            "INSERT OR IGNORE INTO asset_tags (project_id, asset_id, tag)
             SELECT ?1, json_extract(value, '$.id'), json_extract(value, '$.tag') FROM json_each(?2)",
            &[text(p), text(&j(&tags)?)],
        )?,
        d1::live_document(db, p, doc_name, now, &actor)?,
        d1::audit(db, Some(p), &actor, "document.imported", Some(doc_name), detail.clone(), now)?,
    ];
    if let Err(e) = d1::batch(db, stmts).await {
        // Nothing of the import may stay: the room goes back to empty.
        if let Err(wipe) = room.send(RoomCall::Delete, &[]).await {
            log::error("import.wipe_failed")
                .message("import: wiping the room after a failed batch failed")
                .project(p)
                .room(doc_name)
                .cause(format!("{wipe:?}"))
                .emit();
        }
        return Err(e);
    }
    webhook_queue::emit(
        cx.env,
        p,
        "document.created",
        json!({ "project": p, "document": doc_name, "by": actor }),
        None,
    )
    .await;
    Ok(json!({
        "name": doc_name, "created_at": now, "created_by": actor,
        "version": started.version,
        "assets": { "created": plan.create.keys().collect::<Vec<_>>(), "reused": plan.reuse },
        "files": { "stored": read.sniffed.len(), "deduplicated": plan.stored.len() },
    }))
}
