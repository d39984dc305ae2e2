//! The worker's typed calls to the room ([`crate::room_call`]), and what every call that
//! changes the document shares: the webhook window, the history upkeep, the commit before the
//! answer leaves.

use super::{now_ms, sockets, Live, Loaded, RoomInfo, RoomObject};
use crate::api::ApiError;
use crate::edge::http;
use crate::edge::log::{self, Emit};
use crate::names::{Id, RoomName};
use crate::room::To;
use crate::room_call::{RoomCall, RoomRequest};
use crate::upkeep::Upkeep;
use worker::{Request, Response, Result};

impl RoomObject {
    /// Sends frames the room sends of its own accord (a change made through the HTTP API) to
    /// every connection: now, or after the pending rows' commit.
    pub(super) fn broadcast(&self, frames: &[Vec<u8>]) {
        let sends = match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => room.send(To::All, frames),
            _ => return,
        };
        sockets::send_all(&self.live, &sends);
        sockets::schedule_commit(&self.room, &self.live);
    }

    /// Commits the pending rows now and sends the frames held for them (the output gate holds
    /// them, and whatever this event sends after, until the commit is durable). For answers
    /// that must not leave before a change is stored, such as an HTTP write's response.
    pub(super) fn flush_now(&self) -> Result<()> {
        match sockets::commit(&self.room, &self.live) {
            None => Ok(()),
            Some(failure) => Err(worker::Error::RustError(failure.error.to_string())),
        }
    }

    pub(super) fn health(&self) -> std::result::Result<Response, ApiError> {
        self.state
            .storage()
            .sql()
            .exec("SELECT 1", None)
            .map_err(http::internal("room health"))?;
        http::json(&serde_json::json!({ "ok": true }))
    }
}

impl RoomObject {
    /// The rendering a change made through the HTTP API needs for its webhook event (the
    /// document before it), when a window would open.
    pub(super) fn before_change(&self, doc: &yrs::Doc) -> Option<serde_json::Value> {
        self.changes
            .borrow_mut()
            .before(now_ms(), || crate::document::render_json(doc))
    }

    /// What follows a change stored through the HTTP API (document writes, restores, merges,
    /// forks): the webhook window, the history upkeep, and the commit itself in this event,
    /// since the answer says the change is stored. Only the commit's failure fails the request.
    pub(super) async fn after_api_write(
        &self,
        author: &str,
        before: Option<serde_json::Value>,
    ) -> Result<()> {
        let now = now_ms();
        let window = self.changes.borrow_mut().changed(author, before, now);
        let checkpoint_due = matches!(&*self.room.borrow(), Loaded::Ready(r) if r.compaction_due());
        let history = self
            .upkeep
            .borrow_mut()
            .after_change(checkpoint_due, self.intervals, now);
        if let Err(e) = self.schedule(Upkeep::earliest([window, history])).await {
            let line = log::warn("room.alarm_unscheduled")
                .message("could not schedule the alarm after a change")
                .cause(e);
            self.here(line).emit();
        }
        self.flush_now()
    }

    /// Serves one typed call from the worker ([`crate::room_call`]). The envelope is decoded
    /// before anything else; a malformed or unknown call is refused and changes nothing.
    pub(super) async fn call(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await?;
        let (request, payload) = match RoomRequest::decode(&body) {
            Ok(decoded) => decoded,
            Err(e) => {
                log::error("room_call.refused")
                    .message("refused a malformed room call")
                    .cause(e)
                    .emit();
                return http::problem(&ApiError::InvalidBody("malformed room call".into()), None);
            }
        };
        let RoomRequest {
            project,
            room,
            author,
            call,
        } = request;
        self.learn_names(&RoomInfo {
            project: project.to_string(),
            room: room.to_string(),
        });
        let answer = match call {
            RoomCall::Health => self.health(),
            RoomCall::Delete => self.delete().await,
            RoomCall::Revoke {
                revocation,
                refuse_for_ms,
            } => self.revoke(revocation, refuse_for_ms).await,
            // Only open connections hear of it: a room without any is not loaded for it.
            RoomCall::Notify { notice } => {
                if !self.state.get_websockets().is_empty() {
                    self.load();
                    self.push_frames(&[crate::conversations::notice_frame(&notice)]);
                }
                http::json(&serde_json::json!({ "notified": true }))
            }
            call => {
                self.load();
                self.remember_info(&project, &room).await?;
                // Calls read the log and the document as stored: nothing may be pending.
                self.flush_now()?;
                match call {
                    RoomCall::ReadJson
                    | RoomCall::ReadUpdate { .. }
                    | RoomCall::WriteUpdate
                    | RoomCall::WriteEdits { .. } => self.document(call, payload, &author).await,
                    RoomCall::Converse { actor, role, op } => self.converse(actor, role, op),
                    call => self.history(call, payload, &author).await,
                }
            }
        };
        match answer {
            Ok(resp) => Ok(resp),
            Err(e) => http::problem(&e, None),
        }
    }

    /// Stores the project and room names, once (this instance reads whether they are stored
    /// once, too).
    pub(super) async fn remember_info(&self, project: &Id, room: &RoomName) -> Result<()> {
        let info = RoomInfo {
            project: project.to_string(),
            room: room.to_string(),
        };
        self.learn_names(&info);
        if self.info_stored.get() {
            return Ok(());
        }
        let storage = self.state.storage();
        if storage.get::<RoomInfo>("info").await?.is_none() {
            storage.put("info", info).await?;
        }
        self.info_stored.set(true);
        Ok(())
    }

    /// Deletes the room: closes every connection and erases its storage.
    pub(super) async fn delete(&self) -> std::result::Result<Response, ApiError> {
        self.erase().await.map_err(http::internal("room delete"))?;
        http::json(&serde_json::json!({ "deleted": true }))
    }

    async fn erase(&self) -> Result<()> {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(4404), Some("document deleted"));
        }
        // Write (then erase with the rest) what waits, so no later commit brings it back.
        self.flush_now()?;
        *self.room.borrow_mut() = Loaded::No;
        self.delete_history_objects().await?;
        *self.live.borrow_mut() = Live::new();
        self.changes.borrow_mut().clear();
        self.state.storage().delete_alarm().await?;
        self.upkeep.borrow_mut().forget();
        self.state.storage().delete_all().await?;
        self.info_stored.set(false);
        Ok(())
    }

    /// Writes a checkpoint when enough was logged since the last one, or, when the room is
    /// `idle` (its last connection left), when anything was: the next load then reads one blob
    /// and answers its first client without decoding it (`Room::load`).
    pub(super) fn compact_if_due(&self, idle: bool) {
        if self.flush_now().is_err() {
            return;
        }
        if let Loaded::Ready(room) = &mut *self.room.borrow_mut() {
            if room.compaction_due() || (idle && room.logged_since_checkpoint() > 0) {
                if let Err(e) = room.compact() {
                    // The log still holds every update; compaction is retried on the next one.
                    self.here(log::error("room.compaction_failed").cause(e))
                        .emit();
                }
            }
        }
    }
}
