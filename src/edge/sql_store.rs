//! [`RoomStore`] on the Durable Object's SQLite storage.
//!
//! SQL calls are synchronous, and the runtime holds back every message the object sends until
//! the writes made before it are durable (output gates:
//! <https://blog.cloudflare.com/durable-objects-easy-fast-correct-choose-three/>). So an update
//! appended here before the room broadcasts it is on disk before any other client can see it.
//!
//! A checkpoint does not depend on a multi-statement transaction: new snapshot chunks are written
//! under a new generation, then one row switches the current generation, then old rows are
//! removed. A crash at any point leaves a readable state with every update in it.
//!
//! The log (`log`, one row per update, keyed by `seq`) is also the document's history: each row
//! keeps its time and author. Versions (`versions`, `version_chunks`) are in `versions.rs`.

use crate::storage::{chunks, join_chunks, LogEntry, RoomStore, StoreError, Stored, CHUNK_BYTES};
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS room_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_chunks (
  gen INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (gen, idx));
CREATE TABLE IF NOT EXISTS log (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, author TEXT NOT NULL,
  parts INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS log_parts (
  seq INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (seq, idx)) WITHOUT ROWID;
DROP INDEX IF EXISTS log_by_time;
CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT, description TEXT,
  author TEXT NOT NULL, authors TEXT NOT NULL, at INTEGER NOT NULL, seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL, storage TEXT NOT NULL, chunks INTEGER NOT NULL, location TEXT);
CREATE TABLE IF NOT EXISTS version_chunks (
  version INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (version, idx)) WITHOUT ROWID;
";

/// The log of the first schema (`updates`, keyed by `(seq, part)`), moved into `log` once.
const MIGRATE_UPDATES: &str = "
INSERT OR IGNORE INTO log (seq, at, author, parts, data)
  SELECT seq, at, '', parts, data FROM updates WHERE part = 0;
INSERT OR IGNORE INTO log_parts (seq, idx, data)
  SELECT seq, part, data FROM updates WHERE part > 0;
DROP TABLE updates;
";

/// Numbered chunks of one stored blob.
type Parts = Vec<(u32, Vec<u8>)>;

/// The room's storage in its Durable Object's SQLite database.
pub struct SqlRoomStore {
    sql: SqlStorage,
    next_seq: i64,
    generation: i64,
}

/// Writes one log row (and the side-table chunks of a large update).
fn insert_log_row(
    sql: &SqlStorage,
    seq: i64,
    at_ms: u64,
    author: &str,
    update: &[u8],
) -> Result<(), StoreError> {
    let parts = chunks(update);
    // One row (one B-tree insert) for the usual small update; only the chunks of an update
    // over CHUNK_BYTES go to the side table.
    sql.exec(
        "INSERT INTO log (seq, at, author, parts, data) VALUES (?, ?, ?, ?, ?)",
        Some(vec![
            seq.into(),
            (at_ms as i64).into(),
            author.into(),
            (parts.len() as i64).into(),
            parts[0].to_vec().into(),
        ]),
    )
    .map_err(backend)?;
    for (i, part) in parts.iter().enumerate().skip(1) {
        sql.exec(
            "INSERT INTO log_parts (seq, idx, data) VALUES (?, ?, ?)",
            Some(vec![seq.into(), (i as i64).into(), part.to_vec().into()]),
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Log rows written by one `INSERT`: four parameters each (`parts` is 1), 80 of the 100 a
/// statement may bind.
const ROWS_PER_INSERT: usize = 20;

/// An upper bound past every sequence number and time, as large as a bound parameter can be
/// and still reach SQLite exactly (JavaScript numbers are exact up to 2^53 - 1; a larger i64 is
/// rounded, with a warning printed at every use).
pub const NO_LIMIT: u64 = (1 << 53) - 1;

/// Writes `rows` into `sql`, in order. Small updates go [`ROWS_PER_INSERT`] to a statement
/// (each statement is a call into the runtime, and a burst of keystrokes is many small rows), at
/// most `CHUNK_BYTES` of them; a larger update goes alone, with its chunks. Returns how many
/// were written before a failure, with the failure.
fn insert_rows(sql: &SqlStorage, rows: &[LogEntry]) -> (usize, Result<(), StoreError>) {
    let mut written = 0;
    while written < rows.len() {
        // At most CHUNK_BYTES of updates per statement, as per row.
        let mut bytes = 0;
        let batch = rows[written..]
            .iter()
            .take(ROWS_PER_INSERT)
            .take_while(|row| {
                bytes += row.update.len();
                bytes <= CHUNK_BYTES
            })
            .count();
        let result = if batch <= 1 {
            let row = &rows[written];
            insert_log_row(sql, row.seq as i64, row.at_ms, &row.author, &row.update).map(|_| 1)
        } else {
            insert_log_rows(sql, &rows[written..written + batch]).map(|_| batch)
        };
        match result {
            Ok(n) => written += n,
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

/// Writes small log rows (one part each) with one statement.
fn insert_log_rows(sql: &SqlStorage, rows: &[LogEntry]) -> Result<(), StoreError> {
    let mut query = String::from("INSERT INTO log (seq, at, author, parts, data) VALUES ");
    let mut params = Vec::with_capacity(rows.len() * 4);
    for (i, row) in rows.iter().enumerate() {
        query.push_str(if i == 0 {
            "(?, ?, ?, 1, ?)"
        } else {
            ", (?, ?, ?, 1, ?)"
        });
        params.push((row.seq as i64).into());
        params.push((row.at_ms as i64).into());
        params.push(row.author.as_str().into());
        params.push(row.update.clone().into());
    }
    sql.exec(&query, Some(params)).map_err(backend)?;
    Ok(())
}

pub(super) fn backend(e: worker::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn int(v: &SqlStorageValue) -> Result<i64, StoreError> {
    match v {
        SqlStorageValue::Integer(i) => Ok(*i),
        other => Err(StoreError::Inconsistent(format!(
            "expected an integer, found {other:?}"
        ))),
    }
}

pub(super) fn blob(v: SqlStorageValue) -> Result<Vec<u8>, StoreError> {
    match v {
        SqlStorageValue::Blob(b) => Ok(b),
        other => Err(StoreError::Inconsistent(format!(
            "expected a blob, found {other:?}"
        ))),
    }
}

pub(super) fn string(v: SqlStorageValue) -> Result<Option<String>, StoreError> {
    match v {
        SqlStorageValue::String(s) => Ok(Some(s)),
        SqlStorageValue::Null => Ok(None),
        other => Err(StoreError::Inconsistent(format!(
            "expected text, found {other:?}"
        ))),
    }
}

/// Runs a query on `sql` and collects its rows.
pub(super) fn rows(
    sql: &SqlStorage,
    query: &str,
    params: Vec<SqlStorageValue>,
) -> Result<Vec<Vec<SqlStorageValue>>, StoreError> {
    let params = (!params.is_empty()).then_some(params);
    sql.exec(query, params)
        .map_err(backend)?
        .raw()
        .collect::<Result<_, _>>()
        .map_err(backend)
}

impl SqlRoomStore {
    /// Opens the store, creating its tables on first use and moving a first-schema log over.
    pub fn open(sql: SqlStorage) -> Result<Self, StoreError> {
        sql.exec(SCHEMA, None).map_err(backend)?;
        let mut store = SqlRoomStore {
            sql,
            next_seq: 1,
            generation: 0,
        };
        let old = store.rows(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'updates'",
            vec![],
        )?;
        if old.first().and_then(|r| r.first()).map(int).transpose()? == Some(1) {
            store.sql.exec(MIGRATE_UPDATES, None).map_err(backend)?;
        }
        store.generation = store.meta("snapshot_gen")?.unwrap_or(0);
        let last = store.scalar("SELECT COALESCE(MAX(seq), 0) FROM log", vec![])?;
        let upto = store.meta("snapshot_upto")?.unwrap_or(0);
        store.next_seq = last.max(upto) + 1;
        Ok(store)
    }

    /// Runs a query and collects its rows.
    pub(super) fn rows(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<Vec<SqlStorageValue>>, StoreError> {
        rows(&self.sql, query, params)
    }

    /// Runs a statement.
    pub(super) fn exec(&self, query: &str, params: Vec<SqlStorageValue>) -> Result<(), StoreError> {
        let params = if params.is_empty() {
            None
        } else {
            Some(params)
        };
        self.sql.exec(query, params).map_err(backend)?;
        Ok(())
    }

    /// The first column of the first row, as an integer (0 when NULL or no row).
    pub(super) fn scalar(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<i64, StoreError> {
        match self.rows(query, params)?.first().and_then(|r| r.first()) {
            None | Some(SqlStorageValue::Null) => Ok(0),
            Some(v) => int(v),
        }
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let rows = self.rows(
            "SELECT value FROM room_meta WHERE key = ?",
            vec![key.into()],
        )?;
        rows.first().and_then(|r| r.first()).map(int).transpose()
    }

    pub(super) fn set_meta(&self, key: &str, value: i64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO room_meta (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![key.into(), value.into()],
        )
    }

    /// The log positions `(start, end]` of the entries with `seq > after` and `at` in
    /// `[from, to]`.
    fn log_bounds(&self, after: u64, from_ms: u64, to_ms: u64) -> Result<(u64, u64), StoreError> {
        let start = match from_ms {
            0 => after,
            _ => after.max(self.seq_at(from_ms - 1)?),
        };
        let end = match to_ms {
            t if t >= NO_LIMIT => self.head(),
            t => self.seq_at(t)?,
        };
        Ok((start, end))
    }

    /// The position and stored size (bytes) of the entries [`Self::log_between`] would read
    /// for `seq > after` and `at` in `[from, to]`, oldest first, at most `limit`, without
    /// reading their data: a page is cut by size before anything large is read.
    pub fn log_sizes(
        &self,
        after: u64,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, usize)>, StoreError> {
        let (start, end) = self.log_bounds(after, from_ms, to_ms)?;
        let rows = self.rows(
            "SELECT seq, length(data) + COALESCE((SELECT SUM(length(p.data)) FROM log_parts p
               WHERE p.seq = log.seq), 0)
             FROM log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            vec![
                (start as i64).into(),
                (end as i64).into(),
                (limit as i64).into(),
            ],
        )?;
        rows.into_iter()
            .map(|row| {
                let mut row = row.into_iter();
                let mut next = || row.next().unwrap_or(SqlStorageValue::Null);
                Ok((int(&next())? as u64, int(&next())? as usize))
            })
            .collect()
    }

    /// Log entries in `(after, upto]`, oldest first.
    pub fn log_between(&self, after: u64, upto: u64) -> Result<Vec<LogEntry>, StoreError> {
        let rows = self.rows(
            "SELECT seq, at, author, parts, data FROM log WHERE seq > ? AND seq <= ? ORDER BY seq",
            vec![
                (after.min(NO_LIMIT) as i64).into(),
                (upto.min(NO_LIMIT) as i64).into(),
            ],
        )?;
        rows.into_iter().map(|row| self.entry(row)).collect()
    }

    fn entry(&self, row: Vec<SqlStorageValue>) -> Result<LogEntry, StoreError> {
        let mut row = row.into_iter();
        let mut next = || row.next().unwrap_or(SqlStorageValue::Null);
        let (seq, at) = (int(&next())?, int(&next())?);
        let author = string(next())?.unwrap_or_default();
        let parts = int(&next())?;
        let first = blob(next())?;
        let update = if parts > 1 {
            let mut chunks = vec![(0, first)];
            chunks.extend(self.parts(seq)?);
            if chunks.len() as i64 != parts {
                return Err(StoreError::Inconsistent(format!(
                    "update {seq} has {} of {parts} parts",
                    chunks.len()
                )));
            }
            join_chunks(chunks)?
        } else {
            first
        };
        Ok(LogEntry {
            seq: seq as u64,
            at_ms: at as u64,
            author,
            update,
        })
    }

    fn parts(&self, seq: i64) -> Result<Parts, StoreError> {
        self.rows(
            "SELECT idx, data FROM log_parts WHERE seq = ? ORDER BY idx",
            vec![seq.into()],
        )?
        .into_iter()
        .map(|row| {
            let mut row = row.into_iter();
            let idx = int(&row.next().unwrap_or(SqlStorageValue::Null))?;
            Ok((
                idx as u32,
                blob(row.next().unwrap_or(SqlStorageValue::Null))?,
            ))
        })
        .collect()
    }

    /// Distinct authors of the entries in `(after, upto]`, sorted.
    pub fn authors_between(&self, after: u64, upto: u64) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(
            "SELECT DISTINCT author FROM log WHERE seq > ? AND seq <= ? AND author <> '' ORDER BY author",
            vec![
                (after.min(NO_LIMIT) as i64).into(),
                (upto.min(NO_LIMIT) as i64).into(),
            ],
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(
                    string(r.into_iter().next().unwrap_or(SqlStorageValue::Null))?
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The last entry logged at or before `at_ms` (0 when none).
    pub fn seq_at(&self, at_ms: u64) -> Result<u64, StoreError> {
        // Entries are appended in time order, so `at` grows with `seq` and a binary search by
        // primary key finds the answer: no index on `at`, whose upkeep would double the B-tree
        // writes of every append.
        let Some((mut lo, first_at)) = self.first_entry_after(0)? else {
            return Ok(0);
        };
        if first_at > at_ms {
            return Ok(0);
        }
        let mut hi = self.head();
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let at = self.scalar(
                "SELECT COALESCE(MAX(at), 0) FROM log WHERE seq = ?",
                vec![(mid as i64).into()],
            )? as u64;
            if at <= at_ms {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// The oldest entry still in the log, as `(seq, at)`.
    pub fn first_entry_after(&self, seq: u64) -> Result<Option<(u64, u64)>, StoreError> {
        let rows = self.rows(
            "SELECT seq, at FROM log WHERE seq > ? ORDER BY seq LIMIT 1",
            vec![(seq as i64).into()],
        )?;
        match rows.first() {
            Some(r) => Ok(Some((
                int(r.first().unwrap_or(&SqlStorageValue::Null))? as u64,
                int(r.get(1).unwrap_or(&SqlStorageValue::Null))? as u64,
            ))),
            None => Ok(None),
        }
    }

    /// Number of log entries after `seq`.
    pub fn count_after(&self, seq: u64) -> Result<u64, StoreError> {
        Ok(self.scalar(
            "SELECT COUNT(*) FROM log WHERE seq > ?",
            vec![(seq as i64).into()],
        )? as u64)
    }

    /// The last log entry the checkpoint holds (0 without one).
    pub fn checkpoint_upto(&self) -> Result<u64, StoreError> {
        Ok(self.meta("snapshot_upto")?.unwrap_or(0) as u64)
    }

    /// Removes log entries up to `seq` (retention), never past the checkpoint: loading needs
    /// every entry after it.
    pub fn prune_log(&self, upto: u64) -> Result<(), StoreError> {
        let upto = upto.min(self.meta("snapshot_upto")?.unwrap_or(0) as u64) as i64;
        self.exec("DELETE FROM log_parts WHERE seq <= ?", vec![upto.into()])?;
        self.exec("DELETE FROM log WHERE seq <= ?", vec![upto.into()])
    }
}

impl RoomStore for SqlRoomStore {
    /// Everything appended so far: rows still waiting for their commit are written first, so a
    /// room that reloads after a failed update never forgets a change it already sent.
    fn load(&self) -> Result<Stored, StoreError> {
        let snapshot = if self.generation > 0 {
            let rows = self
                .rows(
                    "SELECT idx, data FROM snapshot_chunks WHERE gen = ? ORDER BY idx",
                    vec![self.generation.into()],
                )?
                .into_iter()
                .map(|row| {
                    let mut row = row.into_iter();
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
        let upto = self.meta("snapshot_upto")?.unwrap_or(0) as u64;
        let updates = self
            .log_between(upto, NO_LIMIT)?
            .into_iter()
            .map(|e| e.update)
            .collect();
        Ok(Stored { snapshot, updates })
    }

    /// Writes the rows at once (SQL calls are synchronous; the output gate holds whatever the
    /// room sends next until they are durable). Rows at or below the head are stored already (a
    /// commit that failed part way is retried with all its rows) and are skipped.
    fn append(&mut self, rows: &[LogEntry]) -> Result<(), StoreError> {
        let head = self.head();
        let fresh = match rows.iter().position(|r| r.seq > head) {
            Some(i) => &rows[i..],
            None => return Ok(()),
        };
        if fresh[0].seq != head + 1 {
            return Err(StoreError::Inconsistent(format!(
                "row {} appended after {head}",
                fresh[0].seq
            )));
        }
        let (written, result) = insert_rows(&self.sql, fresh);
        self.next_seq += written as i64;
        result
    }

    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        let gen = self.generation + 1;
        let upto = self.next_seq - 1;
        // Leftovers of a checkpoint cut short must not join the new one.
        self.exec(
            "DELETE FROM snapshot_chunks WHERE gen = ?",
            vec![gen.into()],
        )?;
        for (i, part) in chunks(snapshot).into_iter().enumerate() {
            self.exec(
                "INSERT INTO snapshot_chunks (gen, idx, data) VALUES (?, ?, ?)",
                vec![gen.into(), (i as i64).into(), part.to_vec().into()],
            )?;
        }
        // Switch generation, then clean up what the switch made unreachable. The log stays: it
        // is the history (retention prunes it).
        self.set_meta("snapshot_gen", gen)?;
        self.set_meta("snapshot_upto", upto)?;
        self.generation = gen;
        self.exec(
            "DELETE FROM snapshot_chunks WHERE gen <> ?",
            vec![gen.into()],
        )
    }

    fn head(&self) -> u64 {
        (self.next_seq - 1) as u64
    }
}
