//! Versions of a room in its SQLite storage, with large ones in R2.
//!
//! A version is the whole state as one v1 update plus who/when/why. Small ones are chunked into
//! `version_chunks`; ones over [`Policy::inline_limit`](crate::versions::Policy) go to R2 as
//! chunks under `history/<project>/<room>/<version key>/<index>`, written before the row that
//! points at them, so a listed version always has its bytes.

use super::sql_store::{backend, blob, int, string, SqlRoomStore, NO_LIMIT};
use crate::storage::{chunks, join_chunks, RoomStore, StoreError};
use crate::versions::{HistoryState, Placement, Version, VersionKind};
use worker::{Bucket, SqlStorageValue};

/// Size of one R2 chunk of a large version.
const R2_CHUNK_BYTES: usize = 4 * 1024 * 1024;

const COLUMNS: &str =
    "id, kind, name, description, author, authors, at, seq, bytes, storage, chunks, location";

/// A version row with where its bytes are.
pub struct StoredVersion {
    /// What the API shows.
    pub version: Version,
    /// Number of chunks.
    pub chunks: u32,
    /// R2 key prefix, for versions in R2.
    pub location: Option<String>,
}

fn row_to_stored(row: Vec<SqlStorageValue>) -> Result<StoredVersion, StoreError> {
    let mut row = row.into_iter();
    let mut next = || row.next().unwrap_or(SqlStorageValue::Null);
    let id = int(&next())? as u64;
    let kind_s = string(next())?.unwrap_or_default();
    let kind = VersionKind::parse(&kind_s)
        .ok_or_else(|| StoreError::Inconsistent(format!("version kind {kind_s:?}")))?;
    let name = string(next())?;
    let description = string(next())?;
    let author = string(next())?.unwrap_or_default();
    let authors: Vec<String> =
        serde_json::from_str(&string(next())?.unwrap_or_default()).unwrap_or_default();
    let at = int(&next())? as u64;
    let seq = int(&next())? as u64;
    let bytes = int(&next())? as u64;
    let storage = match string(next())?.as_deref() {
        Some("r2") => Placement::R2,
        _ => Placement::Sql,
    };
    let chunks = int(&next())? as u32;
    let location = string(next())?;
    Ok(StoredVersion {
        version: Version {
            id,
            kind,
            name,
            description,
            author,
            authors,
            at,
            seq,
            bytes,
            storage,
        },
        chunks,
        location,
    })
}

/// Versions newest first, at most `limit`, with ids below `before`.
pub fn list(store: &SqlRoomStore, limit: usize, before: u64) -> Result<Vec<Version>, StoreError> {
    let rows = store.rows(
        &format!("SELECT {COLUMNS} FROM versions WHERE id < ? ORDER BY id DESC LIMIT ?"),
        vec![(before.min(NO_LIMIT) as i64).into(), (limit as i64).into()],
    )?;
    rows.into_iter()
        .map(|r| row_to_stored(r).map(|s| s.version))
        .collect()
}

/// Every version as `(id, kind, at, seq)`, oldest first (for retention).
pub fn all(store: &SqlRoomStore) -> Result<Vec<(u64, VersionKind, u64, u64)>, StoreError> {
    let rows = store.rows(
        &format!("SELECT {COLUMNS} FROM versions ORDER BY id"),
        vec![],
    )?;
    rows.into_iter()
        .map(|r| {
            let v = row_to_stored(r)?.version;
            Ok((v.id, v.kind, v.at, v.seq))
        })
        .collect()
}

/// One version.
pub fn get(store: &SqlRoomStore, id: u64) -> Result<Option<StoredVersion>, StoreError> {
    let rows = store.rows(
        &format!("SELECT {COLUMNS} FROM versions WHERE id = ?"),
        vec![(id.min(NO_LIMIT) as i64).into()],
    )?;
    rows.into_iter().next().map(row_to_stored).transpose()
}

/// The newest version taken at or before `at_ms` (by log position among those).
pub fn latest_at(store: &SqlRoomStore, at_ms: u64) -> Result<Option<StoredVersion>, StoreError> {
    let rows = store.rows(
        &format!("SELECT {COLUMNS} FROM versions WHERE at <= ? ORDER BY seq DESC, id DESC LIMIT 1"),
        vec![(at_ms.min(NO_LIMIT) as i64).into()],
    )?;
    rows.into_iter().next().map(row_to_stored).transpose()
}

/// What the automatic-version policy needs.
pub fn history_state(store: &SqlRoomStore) -> Result<HistoryState, StoreError> {
    let versioned_seq = store.scalar("SELECT MAX(seq) FROM versions", vec![])? as u64;
    let first = store.first_entry_after(versioned_seq)?;
    Ok(HistoryState {
        head_seq: store.head(),
        versioned_seq,
        first_unversioned_at: first.map(|(_, at)| at),
    })
}

/// What to record about a new version.
pub struct NewVersion {
    /// Why it exists.
    pub kind: VersionKind,
    /// Name, if any.
    pub name: Option<String>,
    /// Description, if any.
    pub description: Option<String>,
    /// Who created it.
    pub author: String,
    /// When, unix ms.
    pub at: u64,
    /// The last log entry the state includes.
    pub seq: u64,
}

/// Where a version's state goes, decided before any write.
pub enum Target {
    /// Into `version_chunks`.
    Sql,
    /// Into R2 under this key prefix.
    R2(String),
}

/// Writes a version's chunks to R2 (the async half of storing a large version; call
/// [`insert`] after it succeeds).
pub async fn put_r2(bucket: &Bucket, prefix: &str, state: &[u8]) -> worker::Result<u32> {
    let parts: Vec<&[u8]> = if state.is_empty() {
        vec![state]
    } else {
        state.chunks(R2_CHUNK_BYTES).collect()
    };
    for (i, part) in parts.iter().enumerate() {
        bucket
            .put(format!("{prefix}/{i}"), part.to_vec())
            .execute()
            .await?;
    }
    Ok(parts.len() as u32)
}

/// Records a version. For [`Target::Sql`] the chunks are written here; for [`Target::R2`] they
/// must already be in R2 (`r2_chunks` of them).
pub fn insert(
    store: &SqlRoomStore,
    new: &NewVersion,
    state: &[u8],
    target: &Target,
    r2_chunks: u32,
) -> Result<Version, StoreError> {
    let previous = store.scalar(
        "SELECT MAX(seq) FROM versions WHERE seq <= ?",
        vec![(new.seq as i64).into()],
    )? as u64;
    let authors = store.authors_between(previous, new.seq)?;
    // Ids are never reused, even after the newest version is deleted: a client holding an id
    // must not get another version with it.
    let next = store.meta("version_next")?.unwrap_or(1);
    let id = next.max(store.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM versions", vec![])?);
    store.set_meta("version_next", id + 1)?;
    let (storage, count, location) = match target {
        Target::Sql => {
            let parts = chunks(state);
            for (i, part) in parts.iter().enumerate() {
                store.exec(
                    "INSERT INTO version_chunks (version, idx, data) VALUES (?, ?, ?)",
                    vec![id.into(), (i as i64).into(), part.to_vec().into()],
                )?;
            }
            ("sql", parts.len() as i64, SqlStorageValue::Null)
        }
        Target::R2(prefix) => ("r2", r2_chunks as i64, prefix.as_str().into()),
    };
    let opt = |s: &Option<String>| s.as_deref().map_or(SqlStorageValue::Null, Into::into);
    store.exec(
        &format!("INSERT INTO versions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        vec![
            id.into(),
            new.kind.as_str().into(),
            opt(&new.name),
            opt(&new.description),
            new.author.as_str().into(),
            serde_json::to_string(&authors)
                .unwrap_or_else(|_| "[]".into())
                .into(),
            (new.at as i64).into(),
            (new.seq as i64).into(),
            (state.len() as i64).into(),
            storage.into(),
            count.into(),
            location,
        ],
    )?;
    get(store, id as u64)?
        .map(|s| s.version)
        .ok_or_else(|| StoreError::Inconsistent("version not found after insert".into()))
}

/// The state of a version stored in SQLite; `None` for one in R2 (read it with [`read_r2`]).
pub fn read_sql(
    store: &SqlRoomStore,
    stored: &StoredVersion,
) -> Result<Option<Vec<u8>>, StoreError> {
    if stored.version.storage == Placement::R2 {
        return Ok(None);
    }
    let rows = store
        .rows(
            "SELECT idx, data FROM version_chunks WHERE version = ? ORDER BY idx",
            vec![(stored.version.id as i64).into()],
        )?
        .into_iter()
        .map(|row| {
            let mut row = row.into_iter();
            let idx = int(&row.next().unwrap_or(SqlStorageValue::Null))? as u32;
            Ok((idx, blob(row.next().unwrap_or(SqlStorageValue::Null))?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if rows.len() as u32 != stored.chunks {
        return Err(StoreError::Inconsistent(format!(
            "version {} has {} of {} chunks",
            stored.version.id,
            rows.len(),
            stored.chunks
        )));
    }
    join_chunks(rows).map(Some)
}

/// The state of a version stored in R2.
pub async fn read_r2(bucket: &Bucket, stored: &StoredVersion) -> Result<Vec<u8>, StoreError> {
    let prefix = stored
        .location
        .as_deref()
        .ok_or_else(|| StoreError::Inconsistent("version in R2 without a location".into()))?;
    let mut out = Vec::with_capacity(stored.version.bytes as usize);
    for i in 0..stored.chunks {
        let key = format!("{prefix}/{i}");
        let object = bucket
            .get(&key)
            .execute()
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::Inconsistent(format!("R2 object {key} missing")))?;
        let body = object
            .body()
            .ok_or_else(|| StoreError::Inconsistent(format!("R2 object {key} has no body")))?;
        out.extend(body.bytes().await.map_err(backend)?);
    }
    Ok(out)
}

/// Deletes a version's row and chunks; returns the R2 keys to delete afterwards.
pub fn delete(store: &SqlRoomStore, stored: &StoredVersion) -> Result<Vec<String>, StoreError> {
    let id = stored.version.id as i64;
    store.exec(
        "DELETE FROM version_chunks WHERE version = ?",
        vec![id.into()],
    )?;
    store.exec("DELETE FROM versions WHERE id = ?", vec![id.into()])?;
    Ok(match &stored.location {
        Some(prefix) => (0..stored.chunks)
            .map(|i| format!("{prefix}/{i}"))
            .collect(),
        None => Vec::new(),
    })
}
