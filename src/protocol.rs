//! Yjs wire protocol framing (y-protocols sync + awareness), with no I/O.
//!
//! Every frame the server sends carries exactly one message: stock y-websocket v2/v3 clients
//! read only the first message of a frame, so the server never batches two messages into one
//! frame. Frames from clients may carry up to [`MAX_MESSAGES_PER_FRAME`].
//! The layout is the one of `y-protocols` (`sync.js`, `awareness.js`) and of the `y-websocket`
//! provider: a varuint message type, then a type-specific body.

use crate::prescan::{self, Reader, ScanError};
use thiserror::Error;
use yrs::sync::awareness::AwarenessUpdate;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::StateVector;

/// Message type of a sync message (step 1, step 2 or update).
pub const MSG_SYNC: u64 = 0;
/// Message type of an awareness update.
pub const MSG_AWARENESS: u64 = 1;
/// Message type of an auth message (permission denied / granted).
pub const MSG_AUTH: u64 = 2;
/// Message type of a query for all awareness states.
pub const MSG_QUERY_AWARENESS: u64 = 3;

/// Most messages one frame may carry. Stock clients send one per frame; a few more allow for
/// clients that batch (a sync reply with an awareness update), and the bound keeps one frame's
/// work, and the rate meter's charge for it, proportionate.
pub const MAX_MESSAGES_PER_FRAME: usize = 16;

/// The v1 update of a document with nothing in it (no blocks, no deletions): what Yjs's
/// `encodeStateAsUpdate` gives for an empty document, and so what a client with nothing new
/// sends as its SyncStep2 reply.
pub const EMPTY_UPDATE: [u8; 2] = [0, 0];

/// A message of a frame, split from it but not decoded: payloads are the bytes as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    /// SyncStep1 and its v1 state vector.
    SyncStep1(&'a [u8]),
    /// SyncStep2 and its v1 update.
    SyncStep2(&'a [u8]),
    /// Update and its v1 update.
    Update(&'a [u8]),
    /// An awareness update.
    Awareness(&'a [u8]),
    /// A query for every awareness state.
    QueryAwareness,
    /// An auth message (the protocol defines none from a client).
    Auth,
}

/// A message received from a client, decoded far enough for the room to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The client's state vector: it wants what it lacks (answered with SyncStep2).
    SyncStep1(StateVector),
    /// A v1 update that answers the server's SyncStep1.
    SyncStep2(Vec<u8>),
    /// A v1 update made by the client.
    Update(Vec<u8>),
    /// Presence of one or more awareness clients.
    Awareness(AwarenessUpdate),
    /// The client asks for every known awareness state.
    QueryAwareness,
    /// An auth message from a client; the protocol defines none in this direction.
    Auth,
}

/// Why a frame could not be understood.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The frame is empty.
    #[error("empty frame")]
    Empty,
    /// The message type is not one of the y-protocols types.
    #[error("unknown message type {0}")]
    UnknownType(u64),
    /// The sync sub-type is not step 1, step 2 or update.
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    /// The frame holds more than [`MAX_MESSAGES_PER_FRAME`] messages (counted up to one more).
    #[error("more than {MAX_MESSAGES_PER_FRAME} messages in one frame")]
    TooManyMessages(usize),
    /// The frame, or a payload in it, ended early or held bytes that do not decode.
    #[error("malformed message: {0}")]
    Scan(#[from] ScanError),
    /// yrs refused a payload the pre-scan let through.
    #[error("malformed message: {0}")]
    Malformed(#[from] yrs::encoding::read::Error),
}

impl FrameError {
    /// Whether the frame was well formed but of a type the server does not speak
    /// (close code 1003), as opposed to malformed data (close code 1007).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            FrameError::UnknownType(_) | FrameError::UnknownSyncType(_)
        )
    }
}

/// Splits one binary frame into its messages, in order, reading only the framing: a message
/// type, a sync sub-type, a length-prefixed payload. Nothing is returned unless the whole frame
/// splits, and a frame of more than [`MAX_MESSAGES_PER_FRAME`] messages is refused once the
/// one over is found.
pub fn split(frame: &[u8]) -> Result<Vec<Raw<'_>>, FrameError> {
    if frame.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut r = Reader::new(frame);
    let mut out = Vec::with_capacity(1);
    while r.remaining() > 0 {
        if out.len() == MAX_MESSAGES_PER_FRAME {
            return Err(FrameError::TooManyMessages(out.len() + 1));
        }
        out.push(split_one(&mut r)?);
    }
    Ok(out)
}

fn split_one<'a>(r: &mut Reader<'a>) -> Result<Raw<'a>, FrameError> {
    Ok(match r.var_u64()? {
        MSG_SYNC => match r.var_u64()? {
            0 => Raw::SyncStep1(r.buf()?),
            1 => Raw::SyncStep2(r.buf()?),
            2 => Raw::Update(r.buf()?),
            other => return Err(FrameError::UnknownSyncType(other)),
        },
        MSG_AWARENESS => Raw::Awareness(r.buf()?),
        MSG_QUERY_AWARENESS => Raw::QueryAwareness,
        MSG_AUTH => {
            // y-protocols `auth.js`: a permission varuint, then a reason when denied.
            if r.var_u64()? == 0 {
                r.string()?;
            }
            Raw::Auth
        }
        other => return Err(FrameError::UnknownType(other)),
    })
}

/// Decodes one binary frame into its messages, in order.
///
/// Stock clients send one message per frame; a frame holding several back to back (as some
/// other Yjs clients write them) is read whole. Every payload is pre-scanned
/// ([`crate::prescan`]), so the update bytes returned are safe to give to yrs. Nothing is
/// returned unless every message in the frame decodes, so a frame is acted on entirely or not
/// at all.
pub fn decode(frame: &[u8]) -> Result<Vec<Incoming>, FrameError> {
    split(frame)?.into_iter().map(decode_raw).collect()
}

/// Decodes one split message, pre-scanning its payload first.
pub fn decode_raw(msg: Raw<'_>) -> Result<Incoming, FrameError> {
    Ok(match msg {
        Raw::SyncStep1(sv) => Incoming::SyncStep1(state_vector(sv)?),
        Raw::SyncStep2(u) => {
            prescan::check_update_v1(u)?;
            Incoming::SyncStep2(u.to_vec())
        }
        Raw::Update(u) => {
            prescan::check_update_v1(u)?;
            Incoming::Update(u.to_vec())
        }
        Raw::Awareness(a) => Incoming::Awareness(awareness_update(a)?),
        Raw::QueryAwareness => Incoming::QueryAwareness,
        Raw::Auth => Incoming::Auth,
    })
}

/// Pre-scans and decodes a v1 state vector.
pub fn state_vector(sv: &[u8]) -> Result<StateVector, FrameError> {
    prescan::check_state_vector_v1(sv)?;
    Ok(StateVector::decode_v1(sv)?)
}

/// Pre-scans and decodes an awareness update.
pub fn awareness_update(update: &[u8]) -> Result<AwarenessUpdate, FrameError> {
    prescan::check_awareness_v1(update)?;
    Ok(AwarenessUpdate::decode_v1(update)?)
}

/// Encodes SyncStep1 carrying the server's state vector.
pub fn sync_step1(sv: &StateVector) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep1(sv.clone())).encode_v1()
}

/// Encodes SyncStep2 carrying a v1 update.
pub fn sync_step2(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep2(update)).encode_v1()
}

/// Encodes a sync Update carrying a v1 update.
pub fn update(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

/// Encodes an awareness message.
pub fn awareness(update: AwarenessUpdate) -> Vec<u8> {
    Message::Awareness(update).encode_v1()
}

/// Encodes a query for every awareness state the client knows.
pub fn query_awareness() -> Vec<u8> {
    Message::AwarenessQuery.encode_v1()
}

/// Encodes the y-protocols "permission denied" auth message with a reason.
pub fn permission_denied(reason: &str) -> Vec<u8> {
    Message::Auth(Some(reason.to_owned())).encode_v1()
}

/// Whether a frame holds a SyncStep2 or an Update (the only messages that change a document),
/// by its framing alone: what a room asks before it renders the document for a webhook summary.
pub fn may_change_document(frame: &[u8]) -> bool {
    split(frame).is_ok_and(|messages| {
        messages
            .iter()
            .any(|m| matches!(m, Raw::SyncStep2(_) | Raw::Update(_)))
    })
}

/// The kinds of messages in a frame, for the log (`sync-step1,awareness`; `malformed`).
pub fn describe(frame: &[u8]) -> String {
    match split(frame) {
        Ok(messages) => messages
            .iter()
            .map(|m| match m {
                Raw::SyncStep1(_) => "sync-step1",
                Raw::SyncStep2(_) => "sync-step2",
                Raw::Update(_) => "update",
                Raw::Awareness(_) => "awareness",
                Raw::QueryAwareness => "query-awareness",
                Raw::Auth => "auth",
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use yrs::sync::awareness::AwarenessUpdateEntry;
    use yrs::{ClientID, Doc, GetString, ReadTxn, Text, Transact};

    fn text_update(client: u64, s: &str) -> Vec<u8> {
        let doc = Doc::with_client_id(client);
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, s);
        txn.encode_update_v1()
    }

    fn one(frame: &[u8]) -> Incoming {
        let mut msgs = decode(frame).unwrap();
        assert_eq!(msgs.len(), 1);
        msgs.remove(0)
    }

    #[test]
    fn only_sync_step2_and_updates_may_change_a_document() {
        let sv = StateVector::default();
        assert!(!may_change_document(&sync_step1(&sv)));
        assert!(!may_change_document(&query_awareness()));
        assert!(may_change_document(&update(text_update(1, "x"))));
        assert!(may_change_document(&sync_step2(text_update(1, "x"))));
        let mut both = query_awareness();
        both.extend(update(text_update(1, "x")));
        assert!(
            may_change_document(&both),
            "not only the first message counts"
        );
        assert!(!may_change_document(&[0xff]));
    }

    #[test]
    fn round_trips_every_message_the_server_sends() {
        let sv = StateVector::default();
        assert_eq!(one(&sync_step1(&sv)), Incoming::SyncStep1(sv));
        let u = text_update(1, "hi");
        assert_eq!(one(&sync_step2(u.clone())), Incoming::SyncStep2(u.clone()));
        assert_eq!(one(&update(u.clone())), Incoming::Update(u));
        assert_eq!(one(&query_awareness()), Incoming::QueryAwareness);
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(7),
            AwarenessUpdateEntry {
                clock: 3,
                json: Arc::from("{\"name\":\"ada\"}"),
            },
        );
        let aw = AwarenessUpdate { clients };
        assert_eq!(one(&awareness(aw.clone())), Incoming::Awareness(aw));
        assert_eq!(one(&permission_denied("read-only")), Incoming::Auth);
    }

    #[test]
    fn matches_the_bytes_of_y_protocols() {
        // y-protocols writeSyncStep1 of an empty doc: [0 sync, 0 step1, len 1, 0 clients].
        assert_eq!(sync_step1(&StateVector::default()), vec![0, 0, 1, 0]);
        // messageQueryAwareness is a lone varuint 3.
        assert_eq!(query_awareness(), vec![3]);
    }

    #[test]
    fn rejects_unknown_types_as_unsupported() {
        let err = decode(&[9, 0]).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        let err = decode(&[0, 7, 0]).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
    }

    #[test]
    fn rejects_truncated_and_trailing_frames_as_malformed() {
        for frame in [
            &[][..],
            &[0][..],
            &[0, 2][..],
            &[0, 2, 10, 1, 2][..],
            &[1, 5, 1][..],
            &[0xff][..],
        ] {
            let err = decode(frame).unwrap_err();
            assert!(!err.is_unsupported(), "{frame:?}: {err}");
        }
        // A valid message followed by garbage: nothing of the frame is returned.
        let mut frame = update(text_update(1, "x"));
        frame.extend_from_slice(&[0, 2, 50]);
        assert!(decode(&frame).is_err());
    }

    #[test]
    fn reads_several_messages_of_one_frame_in_order() {
        let mut frame = sync_step1(&StateVector::default());
        frame.extend(query_awareness());
        assert_eq!(
            decode(&frame).unwrap(),
            vec![
                Incoming::SyncStep1(StateVector::default()),
                Incoming::QueryAwareness
            ]
        );
    }

    #[test]
    fn a_frame_splits_into_at_most_16_messages() {
        let query = query_awareness();
        let frame = query.repeat(MAX_MESSAGES_PER_FRAME);
        assert_eq!(split(&frame).unwrap().len(), MAX_MESSAGES_PER_FRAME);
        let frame = query.repeat(MAX_MESSAGES_PER_FRAME + 1);
        assert!(matches!(
            split(&frame),
            Err(FrameError::TooManyMessages(17))
        ));
    }

    #[test]
    fn payload_lengths_are_checked_against_the_frame() {
        // A length near u32::MAX: yrs's own reader wraps on wasm32 and panics.
        let frame = [0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            split(&frame),
            Err(FrameError::Scan(ScanError::Overrun { .. }))
        ));
        // Split, the payloads are the bytes as they came; decoding pre-scans them.
        let frame = update(vec![9, 9]);
        assert_eq!(split(&frame).unwrap(), vec![Raw::Update(&[9, 9])]);
        assert!(matches!(decode(&frame), Err(FrameError::Scan(_))));
    }

    #[test]
    fn decoded_update_applies() {
        let frame = update(text_update(1, "hello"));
        let Incoming::Update(u) = one(&frame) else {
            panic!("not an update")
        };
        let doc = Doc::with_client_id(2);
        let text = doc.get_or_insert_text("t");
        doc.transact_mut()
            .apply_update(yrs::Update::decode_v1(&u).unwrap())
            .unwrap();
        assert_eq!(text.get_string(&doc.transact()), "hello");
        assert_eq!(doc.transact().state_vector().get(&ClientID::new(1)), 5);
    }
}
