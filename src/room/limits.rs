//! The bounds a room enforces, and what it answers when one is broken: the admission of a new
//! connection ([`Limits::admit`]) and the close codes of a refused frame ([`Rejection`]).

use crate::presence::PresenceLimits;
use crate::protocol::FrameError;
use crate::ratelimit::Rates;
use thiserror::Error;

/// Limits a room enforces. Documented in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest frame accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Most connections one room holds at once.
    pub max_connections: usize,
    /// Most connections one user (`sub`) holds in one room at once, so that one shared link
    /// cannot fill the room ([`Limits::admit`]).
    pub max_connections_per_user: usize,
    /// Most awareness states present in the room; a new state over it is ignored.
    pub max_awareness_states: usize,
    /// Largest awareness state (its JSON text) in bytes; a larger one is ignored.
    pub max_awareness_state_bytes: usize,
    /// Write a checkpoint after this many updates since the last one...
    pub compact_after_updates: usize,
    /// ...or after this many bytes of updates, whichever comes first.
    pub compact_after_bytes: usize,
    /// Traffic one connection may send (a user gets a multiple of it).
    pub rates: Rates,
    /// How changes are written and when frames that depend on them may leave.
    pub durability: super::Durability,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 8 * 1024 * 1024,
            max_connections: 1000,
            max_connections_per_user: 32,
            // Twice a full room of stock clients (one state each); with the size cap below,
            // presence holds 16 MiB at most.
            max_awareness_states: 2048,
            // Cursors, names and selections take hundreds of bytes.
            max_awareness_state_bytes: 8 * 1024,
            compact_after_updates: 2000,
            compact_after_bytes: 4 * 1024 * 1024,
            rates: Rates::default(),
            durability: super::Durability::default(),
        }
    }
}

impl Limits {
    /// Whether a new connection of a user may join a room that holds `room_connections`
    /// connections, `user_connections` of them that user's. The edge asks before it accepts the
    /// socket and answers a refusal with [`Refusal::status`].
    pub fn admit(&self, room_connections: usize, user_connections: usize) -> Result<(), Refusal> {
        if room_connections >= self.max_connections {
            return Err(Refusal::RoomFull {
                limit: self.max_connections,
            });
        }
        if user_connections >= self.max_connections_per_user {
            return Err(Refusal::UserLimit {
                limit: self.max_connections_per_user,
            });
        }
        Ok(())
    }

    pub(super) fn presence(&self) -> PresenceLimits {
        PresenceLimits {
            max_states: self.max_awareness_states,
            max_state_bytes: self.max_awareness_state_bytes,
        }
    }
}

/// Why a connection is refused before its socket is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The room holds [`Limits::max_connections`].
    #[error("room is full: {limit} connections")]
    RoomFull {
        /// The limit in force.
        limit: usize,
    },
    /// The user holds [`Limits::max_connections_per_user`] in this room.
    #[error("too many connections of one user: {limit}")]
    UserLimit {
        /// The limit in force.
        limit: usize,
    },
}

impl Refusal {
    /// The HTTP status to answer the upgrade with: 503 when the room is full (it is not the
    /// caller's doing), 429 when the caller's own connections fill its share. Refusing before
    /// the upgrade costs no socket, greeting or attachment, and a client sees a failed connect
    /// and backs off, where a socket closed at once would reconnect in a loop.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::RoomFull { .. } => 503,
            Refusal::UserLimit { .. } => 429,
        }
    }
}

/// WebSocket close codes the room uses (RFC 6455 section 7.4.1).
pub mod close {
    /// The frame type or message type is not one the server speaks.
    pub const UNSUPPORTED: u16 = 1003;
    /// The message did not decode or the update did not apply.
    pub const INVALID: u16 = 1007;
    /// The frame breaks a bound of the protocol that its data does not: more than
    /// [`MAX_MESSAGES_PER_FRAME`](crate::protocol::MAX_MESSAGES_PER_FRAME) messages. Not 1007,
    /// which says the data is inconsistent with its type; each message may be well formed.
    pub const POLICY: u16 = 1008;
    /// The frame is larger than the room accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The room could not load or store the document.
    pub const INTERNAL: u16 = 1011;
    /// The connection's token expired: fetch a fresh one and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4401;
    /// What admitted the connection was revoked (project deleted, key, signing key or token
    /// revoked, member removed): a fresh token is needed, and may be refused.
    pub const REVOKED: u16 = 4403;
    /// The connection or its user sent more than the rate limits allow.
    pub const RATE_LIMITED: u16 = 4429;
}

/// Why a connection is closed. The reason goes to the client; `detail` only to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// WebSocket close code.
    pub code: u16,
    /// Short reason sent in the close frame (at most 123 bytes by RFC 6455).
    pub reason: &'static str,
    /// Full cause, for the log.
    pub detail: String,
}

impl Rejection {
    pub(super) fn new(code: u16, reason: &'static str, detail: impl Into<String>) -> Self {
        Rejection {
            code,
            reason,
            detail: detail.into(),
        }
    }
}

impl From<FrameError> for Rejection {
    fn from(e: FrameError) -> Self {
        if e.is_unsupported() {
            Rejection::new(
                close::UNSUPPORTED,
                "unsupported message type",
                e.to_string(),
            )
        } else if let FrameError::TooManyMessages(_) = e {
            Rejection::new(
                close::POLICY,
                "too many messages in one frame",
                e.to_string(),
            )
        } else {
            Rejection::new(close::INVALID, "malformed message", e.to_string())
        }
    }
}
