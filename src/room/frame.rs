//! A frame from a client, from its arrival to what it causes: the rate meters charge it, every
//! message is checked and decoded ([`Plan`]), and only then does the room act on it, so a frame
//! is taken whole or refused with nothing changed.

use super::{close, decode_update, unavailable, Connection, Frame, Outbox, Rejection, Room};
use crate::protocol::{self, FrameError, Raw, EMPTY_UPDATE, MAX_MESSAGES_PER_FRAME};
use crate::ratelimit::{Meter, USER_MULTIPLIER};
use crate::storage::RoomStore;
use yrs::sync::awareness::AwarenessUpdate;
use yrs::{ReadTxn, StateVector, Transact, Update};

/// A frame's messages, checked and decoded, before the room acts on any of them.
#[derive(Default)]
struct Plan {
    /// The state vector of the first SyncStep1: repeats in one frame get one answer.
    sync_step1: Option<StateVector>,
    /// Updates of a connection that may write, to apply together.
    updates: Vec<Update>,
    /// Whether a read-only connection sent anything but an empty update (one answer a frame).
    denied: bool,
    awareness: Vec<AwarenessUpdate>,
    /// Whether the frame asks for every awareness state (one answer a frame).
    query: bool,
}

impl<S: RoomStore> Room<S> {
    /// Handles one frame from `conn`. On `Err` the connection must be closed with the rejection;
    /// the document, the store, the presence and every other connection are untouched: every
    /// message of the frame is checked and decoded before any is acted on, and the frame's
    /// updates are applied together or not at all.
    pub fn receive(
        &mut self,
        conn: &mut Connection,
        frame: Frame<'_>,
        now_ms: u64,
    ) -> Result<Outbox, Rejection> {
        if conn.expired(now_ms) {
            return Err(Rejection::new(
                close::TOKEN_EXPIRED,
                "token expired",
                format!("token of {} expired", conn.sub),
            ));
        }
        // Split the frame into its messages (framing only), so the rate meter can count them;
        // a frame refused before that costs one message.
        let (len, messages, split) = match frame {
            Frame::Text(t) => (
                t.len(),
                1,
                Err(Rejection::new(
                    close::UNSUPPORTED,
                    "text frames are not supported",
                    "text frame",
                )),
            ),
            Frame::Binary(b) if b.len() > self.limits.max_frame_bytes => (
                b.len(),
                1,
                Err(Rejection::new(
                    close::TOO_BIG,
                    "frame too large",
                    format!(
                        "frame of {} bytes over the limit of {}",
                        b.len(),
                        self.limits.max_frame_bytes
                    ),
                )),
            ),
            Frame::Binary(b) => match protocol::split(b) {
                Ok(split) => (b.len(), split.len(), Ok(split)),
                Err(e) => {
                    let n = match e {
                        FrameError::TooManyMessages(n) => n,
                        _ => 1,
                    };
                    (b.len(), n, Err(Rejection::from(e)))
                }
            },
        };
        self.charge(conn, messages, len, now_ms)?;
        let plan = self.plan(conn, &split?)?;
        self.act(conn, plan, now_ms)
    }

    /// Charges a frame to the meters of the connection and of its user.
    fn charge(
        &mut self,
        conn: &Connection,
        messages: usize,
        len: usize,
        now_ms: u64,
    ) -> Result<(), Rejection> {
        let rates = self.limits.rates;
        let conn_ok = self
            .meters
            .entry(conn.id)
            .or_insert_with(|| Meter::new(&rates, 1.0, now_ms))
            .charge(messages, len, now_ms);
        let user_ok = self
            .user_meters
            .entry(conn.sub.clone())
            .or_insert_with(|| Meter::new(&rates, USER_MULTIPLIER, now_ms))
            .charge(messages, len, now_ms);
        if conn_ok && user_ok {
            return Ok(());
        }
        let who = if conn_ok { "user" } else { "connection" };
        Err(Rejection::new(
            close::RATE_LIMITED,
            "rate limit exceeded",
            format!("{who} rate limit exceeded by {} ({})", conn.id, conn.sub),
        ))
    }

    /// Checks and decodes every message of a frame; changes nothing.
    fn plan(&self, conn: &Connection, messages: &[Raw<'_>]) -> Result<Plan, Rejection> {
        debug_assert!(messages.len() <= MAX_MESSAGES_PER_FRAME);
        let mut plan = Plan::default();
        for msg in messages {
            match *msg {
                Raw::SyncStep1(sv) => {
                    let sv = protocol::state_vector(sv)?;
                    plan.sync_step1.get_or_insert(sv);
                }
                // The role is checked before anything decodes the payload, as y-sweet and
                // y-partyserver do: a read-only connection's bytes never reach a decoder. An
                // empty update is what a client with nothing new answers the greeting with.
                Raw::SyncStep2(u) | Raw::Update(u) if !conn.can_write() => {
                    plan.denied |= u != EMPTY_UPDATE;
                }
                Raw::SyncStep2(u) | Raw::Update(u) => plan.updates.push(decode_update(u)?),
                Raw::Awareness(a) => plan.awareness.push(protocol::awareness_update(a)?),
                Raw::QueryAwareness => plan.query = true,
                Raw::Auth => {}
            }
        }
        Ok(plan)
    }

    /// Acts on a checked frame. Only the document step can fail, and it fails whole, before
    /// anything else happens.
    fn act(&mut self, conn: &mut Connection, plan: Plan, now_ms: u64) -> Result<Outbox, Rejection> {
        let mut out = Outbox::default();
        if !plan.updates.is_empty() {
            if let Some(change) = self.apply(plan.updates, now_ms, &conn.author())? {
                out.others.push(protocol::update(change));
                out.document_changed = true;
            }
        }
        if let Some(sv) = plan.sync_step1 {
            // Fails only when the document cannot be decoded, and then the updates above failed
            // first: either way nothing has changed yet.
            let diff = if sv.is_empty() {
                self.full_state()
            } else {
                self.doc()
                    .map(|doc| doc.transact().encode_state_as_update_v1(&sv))
            };
            out.reply
                .push(protocol::sync_step2(diff.map_err(unavailable)?));
        }
        if plan.denied {
            // y-protocols auth: tell the client, as the reference server's permission hook
            // would; nothing is applied, stored or broadcast.
            out.reply.push(protocol::permission_denied(
                "read-only: your role cannot change this document",
            ));
        }
        for update in &plan.awareness {
            let owned = conn.owned.len();
            let change = self.presence.apply_from(conn.id, &mut conn.owned, update);
            out.connection_changed |= conn.owned.len() != owned;
            out.awareness_ignored += change.ignored;
            if !change.is_empty() {
                out.everyone
                    .push(protocol::awareness(self.presence.encode(&change.all())));
            }
        }
        if plan.query {
            if let Some(states) = self.presence.snapshot() {
                out.reply.push(protocol::awareness(states));
            }
        }
        Ok(out)
    }
}
