//! The room's half of the document API: read it as JSON or as a Yjs update, write an update
//! or JSON edit operations. Called through typed [`RoomCall`]s after the worker checked the
//! caller.

use super::{now_ms, unavailable, Loaded, RoomObject};
use crate::api::ApiError;
use crate::edge::http;
use crate::edge::log::{self, Emit};
use crate::edge::sql_store::SqlRoomStore;
use crate::room::{close, Outbox, Room};
use crate::room_call::RoomCall;
use crate::storage::StoreError;
use worker::Response;

type Answer = std::result::Result<Response, ApiError>;

/// What an API write to the document did.
#[derive(serde::Serialize)]
struct Applied {
    /// Whether the document changed.
    changed: bool,
    /// Size of the stored change in bytes (0 when nothing changed).
    bytes: usize,
}

/// The client id of the changes this room writes itself (JSON edits, restores): one per room,
/// chosen once and stored, so that HTTP writes do not each add an entry to the state vector
/// every later sync carries. 32 bits, as Yjs uses, and not an id the document already holds.
pub(super) fn server_client_id(room: &Room<SqlRoomStore>) -> Result<u64, StoreError> {
    const KEY: &str = "server_client_id";
    let store = room.store();
    if let Some(id) = store.meta(KEY)? {
        return Ok(id as u64);
    }
    let taken = match room.doc() {
        Ok(doc) => {
            use yrs::{ReadTxn, Transact};
            doc.transact().state_vector()
        }
        Err(_) => yrs::StateVector::default(),
    };
    let id = loop {
        let id = crate::edge::platform::random_client_id();
        if !taken.contains_client(&yrs::ClientID::new(id)) {
            break id;
        }
    };
    store.set_meta(KEY, id as i64)?;
    Ok(id)
}

impl RoomObject {
    /// Serves a document call: reads answer at once; writes are applied, stored (before the
    /// answer leaves), broadcast, and noted for webhooks and history.
    pub(super) async fn document(&self, call: RoomCall, payload: &[u8], author: &str) -> Answer {
        let (out, change, before) = match self.document_sync(call, payload, author)? {
            Written::Read(resp) => return Ok(resp),
            Written::Change(out, change, before) => (out, change, before),
        };
        self.broadcast(&out.everyone);
        if change.is_some() {
            self.after_api_write(author, before)
                .await
                .map_err(http::internal("document write"))?;
        } else {
            // Nothing changed: the rendering is still the document's.
            self.changes.borrow_mut().unchanged(before);
        }
        http::json(&Applied {
            changed: change.is_some(),
            bytes: change.map_or(0, |c| c.len()),
        })
    }

    /// The synchronous part of [`Self::document`].
    fn document_sync(
        &self,
        call: RoomCall,
        payload: &[u8],
        author: &str,
    ) -> Result<Written, ApiError> {
        use crate::document::{apply_edits, render_json};
        let mut loaded = self.room.borrow_mut();
        let Loaded::Ready(room) = &mut *loaded else {
            return Err(ApiError::RoomUnavailable);
        };
        let update = match call {
            RoomCall::ReadJson => {
                let doc = room.doc().map_err(unavailable)?;
                return Ok(Written::Read(http::json(&render_json(doc))?));
            }
            RoomCall::ReadUpdate { state_vector, v2 } => {
                use yrs::updates::decoder::Decode;
                let sv = match state_vector {
                    // Checked by the worker (`queries::check_state_vector`) before it got here.
                    Some(bytes) => yrs::StateVector::decode_v1(&bytes).map_err(|e| {
                        ApiError::InvalidBody(format!("state_vector is not a v1 state vector: {e}"))
                    })?,
                    None => yrs::StateVector::default(),
                };
                let state = room.encode_state(&sv, v2).map_err(unavailable)?;
                return Ok(Written::Read(binary(state)?));
            }
            RoomCall::WriteUpdate => payload.to_vec(),
            RoomCall::WriteEdits { edits } => {
                let client = server_client_id(room).map_err(super::history_calls::store_error)?;
                let doc = room.doc().map_err(unavailable)?;
                apply_edits(doc, &edits, client).map_err(|e| {
                    if let crate::document::EditError::State(why) = &e {
                        log::error("document.edits_failed")
                            .message("edits: the document state did not copy")
                            .cause(why)
                            .emit();
                    }
                    ApiError::from(e)
                })?
            }
            _ => return Err(ApiError::NotFound),
        };
        let doc = room.doc().map_err(unavailable)?;
        let before = self.before_change(doc);
        match room.apply_external(&update, now_ms(), author) {
            Ok((out, change)) => Ok(Written::Change(out, change, before)),
            Err(rejection) if rejection.code == close::INTERNAL => {
                let line = log::error("document.write_failed").cause(&rejection.detail);
                self.here(line).emit();
                Err(ApiError::Internal)
            }
            Err(rejection) => Err(ApiError::InvalidBody(format!(
                "{}: {}",
                rejection.reason, rejection.detail
            ))),
        }
    }
}

/// What [`RoomObject::document_sync`] did: answered a read, or applied a write (the frames
/// to send, the stored change if any, and the rendering before it for webhooks).
enum Written {
    Read(Response),
    Change(Outbox, Option<Vec<u8>>, Option<serde_json::Value>),
}

/// A binary answer.
pub(super) fn binary(bytes: Vec<u8>) -> Answer {
    let resp = Response::from_bytes(bytes).map_err(http::internal("bytes response"))?;
    let headers = worker::Headers::new();
    headers
        .set("content-type", "application/octet-stream")
        .map_err(http::internal("headers"))?;
    Ok(resp.with_headers(headers))
}
