//! [`RoomStore`] on the Durable Object's SQLite storage.
//!
//! SQL calls are synchronous, and the runtime holds back every message the object sends until
//! the writes made before it are durable (output gates:
//! <https://blog.cloudflare.com/durable-objects-easy-fast-correct-choose-three/>). So an update
//! appended here before the room broadcasts it is on disk before any other client can see it.
//!
//! Compaction does not depend on a multi-statement transaction: new snapshot chunks are written
//! under a new generation, then one row switches the current generation, then old rows are
//! removed. A crash at any point leaves a readable state with every update in it.

use crate::storage::{chunks, join_chunks, RoomStore, StoreError, Stored};
use std::collections::BTreeMap;
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS room_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_chunks (
  gen INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (gen, idx));
CREATE TABLE IF NOT EXISTS updates (
  seq INTEGER NOT NULL, part INTEGER NOT NULL, parts INTEGER NOT NULL,
  at INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seq, part));
";

/// Numbered chunks of one stored blob.
type Parts = Vec<(u32, Vec<u8>)>;

/// The room's storage in its Durable Object's SQLite database.
pub struct SqlRoomStore {
    sql: SqlStorage,
    next_seq: i64,
    generation: i64,
}

fn backend(e: worker::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn int(v: &SqlStorageValue) -> Result<i64, StoreError> {
    match v {
        SqlStorageValue::Integer(i) => Ok(*i),
        other => Err(StoreError::Inconsistent(format!(
            "expected an integer, found {other:?}"
        ))),
    }
}

fn blob(v: SqlStorageValue) -> Result<Vec<u8>, StoreError> {
    match v {
        SqlStorageValue::Blob(b) => Ok(b),
        other => Err(StoreError::Inconsistent(format!(
            "expected a blob, found {other:?}"
        ))),
    }
}

impl SqlRoomStore {
    /// Opens the store, creating its tables on first use.
    pub fn open(sql: SqlStorage) -> Result<Self, StoreError> {
        sql.exec(SCHEMA, None).map_err(backend)?;
        let mut store = SqlRoomStore {
            sql,
            next_seq: 1,
            generation: 0,
        };
        store.generation = store.meta("snapshot_gen")?.unwrap_or(0);
        let max: Vec<Vec<SqlStorageValue>> = store
            .sql
            .exec("SELECT COALESCE(MAX(seq), 0) FROM updates", None)
            .map_err(backend)?
            .raw()
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let upto = store.meta("snapshot_upto")?.unwrap_or(0);
        let last = max
            .first()
            .and_then(|r| r.first())
            .map(int)
            .transpose()?
            .unwrap_or(0);
        store.next_seq = last.max(upto) + 1;
        Ok(store)
    }

    fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let rows: Vec<Vec<SqlStorageValue>> = self
            .sql
            .exec(
                "SELECT value FROM room_meta WHERE key = ?",
                vec![key.into()],
            )
            .map_err(backend)?
            .raw()
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        rows.first().and_then(|r| r.first()).map(int).transpose()
    }

    fn set_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
        self.sql
            .exec(
                "INSERT INTO room_meta (key, value) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![key.into(), value.into()],
            )
            .map_err(backend)?;
        Ok(())
    }
}

impl RoomStore for SqlRoomStore {
    fn load(&self) -> Result<Stored, StoreError> {
        let snapshot = if self.generation > 0 {
            let rows = self
                .sql
                .exec(
                    "SELECT idx, data FROM snapshot_chunks WHERE gen = ? ORDER BY idx",
                    vec![self.generation.into()],
                )
                .map_err(backend)?
                .raw()
                .map(|row| {
                    let mut row = row.map_err(backend)?.into_iter();
                    let idx = int(&row.next().unwrap_or(SqlStorageValue::Null))?;
                    let data = blob(row.next().unwrap_or(SqlStorageValue::Null))?;
                    Ok((idx as u32, data))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            if rows.is_empty() {
                return Err(StoreError::Inconsistent(format!(
                    "snapshot generation {} has no chunks",
                    self.generation
                )));
            }
            Some(join_chunks(rows)?)
        } else {
            None
        };
        let upto = self.meta("snapshot_upto")?.unwrap_or(0);
        let mut by_seq: BTreeMap<i64, (i64, Parts)> = BTreeMap::new();
        let cursor = self
            .sql
            .exec(
                "SELECT seq, part, parts, data FROM updates WHERE seq > ? ORDER BY seq, part",
                vec![upto.into()],
            )
            .map_err(backend)?;
        for row in cursor.raw() {
            let mut row = row.map_err(backend)?.into_iter();
            let mut next = || row.next().unwrap_or(SqlStorageValue::Null);
            let (seq, part, parts) = (int(&next())?, int(&next())?, int(&next())?);
            let data = blob(next())?;
            let entry = by_seq.entry(seq).or_insert((parts, Vec::new()));
            entry.1.push((part as u32, data));
        }
        let mut updates = Vec::with_capacity(by_seq.len());
        for (seq, (parts, rows)) in by_seq {
            if rows.len() as i64 != parts {
                return Err(StoreError::Inconsistent(format!(
                    "update {seq} has {} of {parts} parts",
                    rows.len()
                )));
            }
            updates.push(join_chunks(rows)?);
        }
        Ok(Stored { snapshot, updates })
    }

    fn append(&mut self, update: &[u8], at_ms: u64) -> Result<(), StoreError> {
        let parts = chunks(update);
        let count = parts.len() as i64;
        for (i, part) in parts.into_iter().enumerate() {
            self.sql
                .exec(
                    "INSERT INTO updates (seq, part, parts, at, data) VALUES (?, ?, ?, ?, ?)",
                    vec![
                        self.next_seq.into(),
                        (i as i64).into(),
                        count.into(),
                        (at_ms as i64).into(),
                        part.to_vec().into(),
                    ],
                )
                .map_err(backend)?;
        }
        self.next_seq += 1;
        Ok(())
    }

    fn compact(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        let gen = self.generation + 1;
        let upto = self.next_seq - 1;
        // Leftovers of a compaction cut short must not join the new snapshot.
        self.sql
            .exec(
                "DELETE FROM snapshot_chunks WHERE gen = ?",
                vec![gen.into()],
            )
            .map_err(backend)?;
        for (i, part) in chunks(snapshot).into_iter().enumerate() {
            self.sql
                .exec(
                    "INSERT INTO snapshot_chunks (gen, idx, data) VALUES (?, ?, ?)",
                    vec![gen.into(), (i as i64).into(), part.to_vec().into()],
                )
                .map_err(backend)?;
        }
        // Switch generation first: should the next write not happen, the log still holds updates
        // the snapshot already has, and applying a Yjs update twice is harmless.
        self.set_meta("snapshot_gen", gen)?;
        self.set_meta("snapshot_upto", upto)?;
        self.generation = gen;
        // Clean up what the switch made unreachable.
        self.sql
            .exec(
                "DELETE FROM snapshot_chunks WHERE gen <> ?",
                vec![gen.into()],
            )
            .map_err(backend)?;
        self.sql
            .exec("DELETE FROM updates WHERE seq <= ?", vec![upto.into()])
            .map_err(backend)?;
        Ok(())
    }
}
