//! Persistence of a room: a checkpoint plus an append-only log of updates.
//!
//! The room writes through [`RoomStore`] before anything that depends on a write leaves the room.
//! The edge implements it on the Durable Object's SQLite storage; [`MemoryStore`] backs tests.
//!
//! The log is the document's history: every change with its time and author. A checkpoint (the
//! whole state as one update) only shortens loading; it does not remove log entries, which stay
//! until the retention policy prunes them (see `docs/history.md`).

use thiserror::Error;

/// Largest piece of a stored blob. Durable Object SQLite rows and values are limited to 2 MB
/// (<https://developers.cloudflare.com/durable-objects/platform/limits/>), so snapshots and
/// large updates are split into chunks well under it.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// What a room finds in storage when it loads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The latest checkpoint (a v1 update of the whole state), if the room has one.
    pub snapshot: Option<Vec<u8>>,
    /// Updates appended since the checkpoint, oldest first (v1 updates).
    pub updates: Vec<Vec<u8>>,
}

impl Stored {
    /// Total stored bytes of the snapshot and the log.
    pub fn bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len)
            + self.updates.iter().map(Vec::len).sum::<usize>()
    }
}

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backend refused or failed the operation.
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored chunks are missing or out of order.
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

/// Durable storage of one room.
pub trait RoomStore {
    /// Reads the checkpoint and every update appended after it.
    fn load(&self) -> Result<Stored, StoreError>;
    /// Writes `rows`, the next entries of the log in order: when it returns `Ok` they are
    /// stored. Rows at or below `head()` are stored already and skipped (a commit that failed
    /// part way is retried whole); the first other one must be `head() + 1`. (On Durable Objects the
    /// runtime's output gate then holds every message the room sends until they are durable.)
    fn append(&mut self, rows: &[LogEntry]) -> Result<(), StoreError>;
    /// Makes `snapshot` (the whole state up to the last appended update) the new checkpoint,
    /// atomically. The log keeps its entries.
    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<(), StoreError>;
    /// Sequence number of the last appended update (0 when none).
    fn head(&self) -> u64;
}

/// One logged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was stored, unix ms.
    pub at_ms: u64,
    /// Who made it (a user `sub`, an API key id, `admin`).
    pub author: String,
    /// The change, a v1 update.
    pub update: Vec<u8>,
}

/// Splits `data` into pieces of at most [`CHUNK_BYTES`]; an empty blob is one empty chunk, so
/// every stored blob has at least one row.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return vec![data];
    }
    data.chunks(CHUNK_BYTES).collect()
}

/// Joins chunks read back as `(index, bytes)` rows, checking that none is missing.
pub fn join_chunks(rows: Vec<(u32, Vec<u8>)>) -> Result<Vec<u8>, StoreError> {
    let mut rows = rows;
    rows.sort_by_key(|(idx, _)| *idx);
    let mut out = Vec::with_capacity(rows.iter().map(|(_, b)| b.len()).sum());
    for (expected, (idx, bytes)) in rows.into_iter().enumerate() {
        if idx as usize != expected {
            return Err(StoreError::Inconsistent(format!(
                "chunk {expected} missing (found {idx})"
            )));
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// In-memory store for tests, with switchable failures.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    /// The current contents: checkpoint and the updates after it.
    pub stored: Stored,
    /// The whole log, history included.
    pub log: Vec<LogEntry>,
    /// When set, every write fails (a full disk, a lost storage backend).
    pub fail_writes: bool,
    /// Number of rows appended.
    pub appends: usize,
    /// Number of successful checkpoints.
    pub checkpoints: usize,
}

impl RoomStore for MemoryStore {
    fn load(&self) -> Result<Stored, StoreError> {
        Ok(self.stored.clone())
    }

    fn append(&mut self, rows: &[LogEntry]) -> Result<(), StoreError> {
        if self.fail_writes {
            return Err(StoreError::Backend("writes disabled".into()));
        }
        let head = self.head();
        for row in rows.iter().filter(|r| r.seq > head) {
            if row.seq != self.head() + 1 {
                return Err(StoreError::Inconsistent(format!(
                    "row {} appended after {}",
                    row.seq,
                    self.head()
                )));
            }
            self.stored.updates.push(row.update.clone());
            self.appends += 1;
            self.log.push(row.clone());
        }
        Ok(())
    }

    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<(), StoreError> {
        if self.fail_writes {
            return Err(StoreError::Backend("writes disabled".into()));
        }
        self.stored = Stored {
            snapshot: Some(snapshot.to_vec()),
            updates: Vec::new(),
        };
        self.checkpoints += 1;
        Ok(())
    }

    fn head(&self) -> u64 {
        self.log.last().map_or(0, |e| e.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_across_the_row_limit() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let parts = chunks(&data);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= CHUNK_BYTES));
        let rows: Vec<(u32, Vec<u8>)> = parts
            .iter()
            .enumerate()
            .rev()
            .map(|(i, p)| (i as u32, p.to_vec()))
            .collect();
        assert_eq!(join_chunks(rows).unwrap(), data);
    }

    #[test]
    fn empty_blob_is_one_chunk() {
        assert_eq!(chunks(&[]), vec![&[0u8; 0][..]]);
        assert_eq!(join_chunks(vec![(0, vec![])]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_a_short_blob() {
        let err = join_chunks(vec![(0, vec![1]), (2, vec![3])]).unwrap_err();
        assert!(matches!(err, StoreError::Inconsistent(_)), "{err}");
    }
}
