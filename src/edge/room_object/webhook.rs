//! The room's `document.updated` events: when a coalescing window ([`Changes`]) ends, the alarm
//! summarizes what changed and hands the event to the project's webhook queue.

use super::{now_ms, Loaded, RoomInfo, RoomObject};
use crate::changes::Due;
use crate::edge::log::{self, Emit};
use worker::Result;

impl RoomObject {
    /// Sends `document.updated` if the window has ended; returns when the alarm must come back
    /// for a window still open.
    pub(super) async fn flush_changes(&self, now: u64) -> Result<Option<u64>> {
        let window = match self.changes.borrow_mut().due(now) {
            Due::Nothing => return Ok(None),
            Due::Later(at) => return Ok(Some(at)),
            Due::Now(window) => window,
        };
        let (changes, sv) = match &*self.room.borrow() {
            Loaded::Ready(room) => {
                use yrs::updates::encoder::Encode;
                use yrs::{ReadTxn, Transact};
                let doc = match room.doc() {
                    Ok(doc) => doc,
                    Err(e) => {
                        let line = log::error("webhook.event_failed")
                            .message("no document.updated event: the document is unreadable")
                            .cause(e);
                        self.here(line).emit();
                        return Ok(None);
                    }
                };
                let sv = doc.transact().state_vector().encode_v1();
                let after = crate::document::render_json(doc);
                let changes = crate::webhooks::summarize(&window.before, &after);
                // Kept before any await: the next window's "before", unless a change comes first.
                self.changes.borrow_mut().keep(after);
                (changes, sv)
            }
            _ => return Ok(None),
        };
        let Some(info) = self.state.storage().get::<RoomInfo>("info").await? else {
            log::warn("webhook.event_failed")
                .message("room without stored project and name; no webhook event")
                .emit();
            return Ok(None);
        };
        self.learn_names(&info);
        if !self.changes.borrow().fresh(now) && !self.refresh_webhooks(&info.project).await {
            return Ok(None);
        }
        let data = serde_json::json!({
            "project": info.project,
            "document": info.room,
            "authors": window.authors,
            "changes": changes,
            "state_vector": crate::codec::base64(&sv),
            "since": window.since_ms,
            "until": now,
        });
        crate::edge::webhook_queue::emit(&self.env, &info.project, "document.updated", data, None)
            .await;
        Ok(None)
    }

    /// Asks D1 whether `project` has webhook subscriptions and remembers the answer; on error
    /// assumes it has (the queue filters anyway).
    async fn refresh_webhooks(&self, project: &str) -> bool {
        let answer = match crate::edge::access::db(&self.env) {
            Ok(db) => crate::edge::d1::has_webhooks(&db, project).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(has) => {
                self.changes.borrow_mut().learn(has, now_ms());
                has
            }
            Err(e) => {
                log::warn("webhook.subscriptions_unchecked")
                    .message("checking webhook subscriptions failed; assuming some")
                    .project(project)
                    .cause(format!("{e:?}"))
                    .emit();
                true
            }
        }
    }
}
