//! Group commit: the room's changes wait as pending log rows, and the frames that depend on
//! them wait with them, until [`Room::commit`] hands the rows to the store. The rule that
//! matters most — no frame leaves before the rows it depends on are stored — is kept here,
//! where a native test reaches it; the edge only runs `commit` when [`Room::commit_after`]
//! says, and sends what it releases.
//!
//! With strict durability ([`Durability::relaxed`] off), once a row is pending every frame the
//! room sends waits behind it, whoever it is for, so frames keep their order; `commit` releases
//! them. With relaxed durability frames leave at once and rows are written within
//! `flush_ms`: lower latency, and a change another client has seen may be lost to a crash in
//! that window.

use super::{Outbox, Room, RoomError};
use crate::storage::{LogEntry, RoomStore, StoreError};

/// Strict durability: a commit of at least this many rows marks a burst, after which the next
/// commit waits for the rest of [`Durability::commit_gap_ms`] to take more rows at once.
pub const BURST_ROWS: usize = 4;

/// How changes are written (`DURABILITY`, `RELAXED_FLUSH_MS`, `COMMIT_GAP_MS`; docs/protocol.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Send frames at once and write rows within `flush_ms`, instead of holding frames until
    /// their rows are written.
    pub relaxed: bool,
    /// With relaxed durability, how long a row may wait to be written.
    pub flush_ms: u64,
    /// With strict durability, during a burst: the least time between two commits.
    pub commit_gap_ms: u64,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            relaxed: false,
            flush_ms: 10,
            commit_gap_ms: 2,
        }
    }
}

impl Durability {
    /// How long after `now` the next commit should run, given the last one (`at`, `rows`). A
    /// lone change is written at the next turn; during a burst (the last commit carried
    /// [`BURST_ROWS`] or more) the next waits for the rest of the gap, taking all that arrives.
    pub fn delay(&self, last: (u64, usize), now: u64) -> u64 {
        if self.relaxed {
            return self.flush_ms;
        }
        let (at, rows) = last;
        if rows >= BURST_ROWS {
            at.saturating_add(self.commit_gap_ms).saturating_sub(now)
        } else {
            0
        }
    }
}

/// Who a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum To {
    /// One connection.
    One(u64),
    /// Every connection but one.
    AllBut(u64),
    /// Every connection.
    All,
    /// Every connection that asked for conversation events.
    Events,
}

impl To {
    /// Whether `conn` is among the recipients.
    pub fn includes(self, conn: &super::Connection) -> bool {
        match self {
            To::One(one) => conn.id == one,
            To::AllBut(but) => conn.id != but,
            To::All => true,
            To::Events => conn.events,
        }
    }
}

/// A frame and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// Who it is for.
    pub to: To,
    /// The frame.
    pub frame: Vec<u8>,
}

/// A commit that failed. With strict durability the pending rows and the frames waiting for
/// them are dropped and the document is reloaded from storage (memory never runs ahead of it);
/// the connections those frames were for must be closed, so that their clients send again what
/// the room lacks. With relaxed durability the frames left already: the rows stay pending for
/// the next commit.
#[derive(Debug)]
pub struct CommitFailure {
    /// The storage error.
    pub error: StoreError,
    /// Recipients of the dropped frames (empty with relaxed durability).
    pub close: Vec<To>,
}

/// The room's pending rows and the frames waiting for them.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Log rows not written yet, in log order.
    pub rows: Vec<LogEntry>,
    /// Frames that wait for `rows`, in the order they must leave.
    pub held: Vec<Send>,
    /// When the last commit ran and how many rows it wrote.
    pub last_commit: (u64, usize),
    /// Whether the caller was told to commit and has not yet.
    pub scheduled: bool,
}

impl<S: RoomStore> Room<S> {
    /// The frames of `out`, from connection `from`, as they may leave: all of them at once, or
    /// (strict durability, while rows are pending) none, each held until [`Room::commit`].
    pub fn dispatch(&mut self, from: u64, out: &Outbox) -> Vec<Send> {
        let frames = out
            .reply
            .iter()
            .map(|f| (To::One(from), f))
            .chain(out.others.iter().map(|f| (To::AllBut(from), f)))
            .chain(out.everyone.iter().map(|f| (To::All, f)))
            .map(|(to, frame)| Send {
                to,
                frame: frame.clone(),
            });
        self.route(frames)
    }

    /// [`Room::dispatch`] for frames the room sends of its own accord (a settle, a change made
    /// through the HTTP API): to `to`.
    pub fn send(&mut self, to: To, frames: &[Vec<u8>]) -> Vec<Send> {
        let frames = frames.iter().map(|frame| Send {
            to,
            frame: frame.clone(),
        });
        self.route(frames)
    }

    fn route(&mut self, frames: impl Iterator<Item = Send>) -> Vec<Send> {
        let p = &mut self.pending;
        if self.limits.durability.relaxed || (p.rows.is_empty() && p.held.is_empty()) {
            return frames.collect();
        }
        p.held.extend(frames);
        Vec::new()
    }

    /// Whether rows wait for a commit.
    pub fn has_pending(&self) -> bool {
        !self.pending.rows.is_empty()
    }

    /// When (ms from `now`) the caller should run [`Room::commit`]: `Some` once per batch of
    /// pending rows, `None` when nothing waits or a commit is already scheduled.
    pub fn commit_after(&mut self, now: u64) -> Option<u64> {
        let p = &mut self.pending;
        if (p.rows.is_empty() && p.held.is_empty()) || p.scheduled {
            return None;
        }
        p.scheduled = true;
        Some(self.limits.durability.delay(p.last_commit, now))
    }

    /// Writes the pending rows (all or none) and returns the frames that waited for them. The
    /// output gate of the runtime then holds those frames until the write is durable.
    pub fn commit(&mut self, now: u64) -> Result<Vec<Send>, CommitFailure> {
        self.pending.scheduled = false;
        if self.pending.rows.is_empty() {
            return Ok(std::mem::take(&mut self.pending.held));
        }
        match self.store.append(&self.pending.rows) {
            Ok(()) => {
                let rows = std::mem::take(&mut self.pending.rows);
                self.log_updates += rows.len();
                self.log_bytes += rows.iter().map(|r| r.update.len()).sum::<usize>();
                self.pending.last_commit = (now, rows.len());
                Ok(std::mem::take(&mut self.pending.held))
            }
            Err(error) if self.limits.durability.relaxed => Err(CommitFailure {
                error,
                close: Vec::new(),
            }),
            Err(error) => {
                self.pending.rows.clear();
                let mut close: Vec<To> = Vec::new();
                for send in self.pending.held.drain(..) {
                    if !close.contains(&send.to) {
                        close.push(send.to);
                    }
                }
                self.next_seq = self.store.head() + 1;
                self.reload_after_failure();
                Err(CommitFailure { error, close })
            }
        }
    }

    /// Queues a change as the next log row.
    pub(super) fn log(&mut self, update: Vec<u8>, now_ms: u64, author: &str) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.rows.push(LogEntry {
            seq,
            at_ms: now_ms,
            author: author.to_owned(),
            update,
        });
    }

    /// The updates of the pending rows, for a reload (storage plus what waits for it).
    pub(super) fn pending_updates(&self) -> impl Iterator<Item = &[u8]> {
        self.pending.rows.iter().map(|r| r.update.as_slice())
    }

    /// The log position of the newest change, pending or written.
    pub fn head(&self) -> u64 {
        self.next_seq - 1
    }

    /// Checks that nothing is pending, for operations that read or rewrite storage as a whole
    /// (checkpoints): the caller commits first.
    pub(super) fn require_committed(&self) -> Result<(), RoomError> {
        match self.pending.rows.is_empty() {
            true => Ok(()),
            false => Err(RoomError::Pending(self.pending.rows.len())),
        }
    }
}
