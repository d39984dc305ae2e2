//! The room's conversations: threads, comments, reactions and chat, stored beside the document
//! (`edge::conversation_store`) and served to the worker through [`ConvOp`] calls. Anchors are
//! resolved against the room's document; every change is pushed as a small event to the
//! connections that asked for events.

use super::{now_ms, sockets, unavailable, Loaded, RoomObject};
use crate::api::ApiError;
use crate::auth::Role;
use crate::conversations::{
    event_frame, ConvError, ConvOp, ConvReply, ConversationStore, Conversations, Event,
    Participant, Position, Thread, MAX_PAGE,
};
use crate::edge::conversation_store::SqlConversations;
use crate::edge::http;
use crate::edge::log::{self, Emit};
use crate::room::To;
use serde_json::{json, Value};
use worker::Response;

type Answer = std::result::Result<Response, ApiError>;

fn conv_error(e: ConvError) -> ApiError {
    if let ConvError::Store(e) = &e {
        log::error("conversations.store_failed").cause(e).emit();
    }
    e.into()
}

/// The answer to a change: its value and its events.
fn one<T: serde::Serialize>(
    (v, events): (T, Vec<Event>),
) -> std::result::Result<ConvReply, ApiError> {
    Ok(ConvReply {
        value: value(&v)?,
        events,
    })
}

fn value<T: serde::Serialize>(v: &T) -> std::result::Result<Value, ApiError> {
    serde_json::to_value(v).map_err(http::internal("conversation json"))
}

impl RoomObject {
    /// Serves a conversation operation for `actor` with `role` (the worker checked both).
    pub(super) fn converse(&self, actor: String, role: Role, op: ConvOp) -> Answer {
        let participant = Participant { id: actor, role };
        let mut store =
            SqlConversations::open(self.state.storage().sql()).map_err(|e| conv_error(e.into()))?;
        let reply = {
            let room = self.room.borrow();
            let Loaded::Ready(room) = &*room else {
                return Err(ApiError::RoomUnavailable);
            };
            let doc = room.doc().map_err(unavailable)?;
            let resolve = |t: &Thread| t.anchor.resolve(doc, t.quote.as_deref());
            let mut conv = Conversations {
                store: &mut store,
                now: now_ms(),
            };
            match op {
                ConvOp::ListThreads {
                    since,
                    after,
                    limit,
                    resolved,
                } => {
                    let mut page = conv
                        .list(since, after, limit as usize, resolve)
                        .map_err(conv_error)?;
                    let full = page.len() == (limit as usize).clamp(1, MAX_PAGE);
                    let next = full.then(|| page.last().map(|v| v.thread.id)).flatten();
                    if let Some(want) = resolved {
                        page.retain(|v| v.thread.resolved.is_some() == want);
                    }
                    let seq = conv.store_seq().map_err(conv_error)?;
                    ConvReply {
                        value: json!({ "threads": value(&page)?, "next_after": next, "seq": seq }),
                        events: Vec::new(),
                    }
                }
                ConvOp::GetThread { thread } => ConvReply {
                    value: value(&conv.view(thread, resolve).map_err(conv_error)?)?,
                    events: Vec::new(),
                },
                ConvOp::CreateThread { new } => {
                    let position: Position = new.anchor.resolve(doc, None);
                    one(conv
                        .create_thread(&participant, new, &position)
                        .map_err(conv_error)?)?
                }
                ConvOp::AddComment { thread, body } => one(conv
                    .add_comment(&participant, thread, body)
                    .map_err(conv_error)?)?,
                ConvOp::EditComment {
                    thread,
                    comment,
                    body,
                } => one(conv
                    .edit_comment(&participant, thread, comment, body)
                    .map_err(conv_error)?)?,
                ConvOp::DeleteComment { thread, comment } => one(conv
                    .delete_comment(&participant, thread, comment)
                    .map_err(conv_error)?)?,
                ConvOp::React {
                    thread,
                    comment,
                    emoji,
                    add,
                } => one(conv
                    .react(&participant, thread, comment, &emoji, add)
                    .map_err(conv_error)?)?,
                ConvOp::SetResolved { thread, resolved } => one(conv
                    .set_resolved(&participant, thread, resolved)
                    .map_err(conv_error)?)?,
                ConvOp::SetMetadata { thread, metadata } => one(conv
                    .set_metadata(&participant, thread, metadata)
                    .map_err(conv_error)?)?,
                ConvOp::DeleteThread { thread } => one(conv
                    .delete_thread(&participant, thread)
                    .map_err(conv_error)?)?,
                ConvOp::PostChat { body } => {
                    one(conv.post_chat(&participant, body).map_err(conv_error)?)?
                }
                ConvOp::ListChat {
                    before,
                    since,
                    limit,
                } => {
                    let limit = (limit as usize).clamp(1, MAX_PAGE);
                    let messages = match since {
                        Some(since) => conv.store.chat_since(since, before, limit),
                        None => conv.store.chat_before(before, limit),
                    }
                    .map_err(|e| conv_error(e.into()))?;
                    let next_before = (since.is_none() && messages.len() == limit)
                        .then(|| messages.last().map(|m| m.id))
                        .flatten();
                    ConvReply {
                        value: json!({ "messages": value(&messages)?, "next_before": next_before }),
                        events: Vec::new(),
                    }
                }
            }
        };
        self.push_events(&reply.events);
        http::json(&reply)
    }

    /// Sends each event to the connections that asked for events.
    pub(super) fn push_events(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let frames: Vec<Vec<u8>> = events.iter().map(event_frame).collect();
        self.push_frames(&frames);
    }

    /// Sends frames to the connections that asked for events, after anything pending.
    pub(super) fn push_frames(&self, frames: &[Vec<u8>]) {
        let sends = match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => room.send(To::Events, frames),
            _ => return,
        };
        sockets::send_all(&self.live, &sends);
    }
}
