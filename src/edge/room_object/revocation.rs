//! The room's half of revocation (see `src/edge/revocation.rs`): closing or downgrading the
//! connections a revoked credential admitted, refusing it at admission for as long as other
//! isolates may still admit it from their caches, and keeping the document's "live" mark in
//! D1 right, so that revocations reach this room while it has connections.

use super::{now_ms, Loaded, RoomObject};
use crate::api::ApiError;
use crate::auth::AuthError;
use crate::edge::access::{self, Holder};
use crate::edge::log::{self, Emit};
use crate::edge::{d1, http};
use crate::room::{close, Connection};
use crate::room_call::{Admission, Revocation, Verdict};
use worker::{Response, WebSocket};

/// Storage key of the revocations this room refuses at admission, with their end (unix ms).
const REFUSED: &str = "refused";
/// `room_meta` key of the live mark this room set in D1 (unix ms).
const LIVE_SINCE: &str = "live_since";

/// Revocations the room still refuses, each until a time.
pub(super) type Refused = Vec<(Revocation, u64)>;

impl RoomObject {
    /// Serves [`crate::room_call::RoomCall::Revoke`].
    pub(super) async fn revoke(
        &self,
        revocation: Revocation,
        refuse_for_ms: u64,
    ) -> std::result::Result<Response, ApiError> {
        let now = now_ms();
        let mut refused = self.refused().await;
        refused.retain(|(_, until)| *until > now);
        refused.push((revocation.clone(), now.saturating_add(refuse_for_ms)));
        self.state
            .storage()
            .put(REFUSED, &refused)
            .await
            .map_err(http::internal("revocations"))?;
        *self.refused.borrow_mut() = Some(refused);
        self.load();
        let (mut closed, mut downgraded) = (0, 0);
        for ws in self.state.get_websockets() {
            let Ok(Some(conn)) = self.connection(&ws) else {
                continue;
            };
            match revocation.verdict(&conn.sub, conn.role, &conn.cred) {
                Verdict::Keep => {}
                Verdict::Close => {
                    self.drop_revoked(&ws);
                    closed += 1;
                }
                Verdict::Downgrade(role) => {
                    self.downgrade(&ws, conn, role)
                        .map_err(http::internal("downgrade"))?;
                    downgraded += 1;
                }
            }
        }
        self.after_leave().await;
        http::json(&serde_json::json!({ "closed": closed, "downgraded": downgraded }))
    }

    /// Closes a connection whose credential was revoked, and forgets it.
    fn drop_revoked(&self, ws: &WebSocket) {
        let _ = ws.close(Some(close::REVOKED), Some("revoked"));
        self.leave(ws);
    }

    /// Keeps a connection with a lower role, in memory and in its attachment.
    fn downgrade(
        &self,
        ws: &WebSocket,
        mut conn: Connection,
        role: crate::auth::Role,
    ) -> worker::Result<()> {
        conn.role = role;
        ws.serialize_attachment(&conn)?;
        if let Some((_, live)) = self.live.borrow_mut().conns.get_mut(&conn.id) {
            live.role = role;
        }
        Ok(())
    }

    /// The revocations this room refuses, read from storage once per instance.
    async fn refused(&self) -> Refused {
        if let Some(refused) = &*self.refused.borrow() {
            return refused.clone();
        }
        let stored: Refused = match self.state.storage().get::<Refused>(REFUSED).await {
            Ok(Some(r)) => r,
            Ok(None) => Vec::new(),
            Err(e) => {
                let line = log::error("revocation.unreadable")
                    .message("reading revocations failed")
                    .cause(e);
                self.here(line).emit();
                Vec::new()
            }
        };
        *self.refused.borrow_mut() = Some(stored.clone());
        stored
    }

    /// Checks a connection the worker admitted against what this room knows: revocations it
    /// was told of (another isolate may have admitted it from its cache), and, when the room
    /// goes live, D1 itself (see [`access::mark_live_and_check`]). May lower its role.
    pub(super) async fn admit(&self, admission: &mut Admission) -> Result<(), ApiError> {
        let now = now_ms();
        for (revocation, until) in self.refused().await {
            if until <= now {
                continue;
            }
            match revocation.verdict(&admission.sub, admission.role, &admission.credential) {
                Verdict::Keep => {}
                Verdict::Close => return Err(AuthError::Revoked.into()),
                Verdict::Downgrade(role) => admission.role = role,
            }
        }
        if self.live_since.get().is_some() {
            return Ok(());
        }
        let holder = Holder {
            project: admission.project.as_str(),
            room: admission.room.as_str(),
            sub: &admission.sub,
            role: admission.role,
            cred: &admission.credential,
        };
        match access::mark_live_and_check(&self.env, &holder, now).await? {
            Verdict::Keep => {}
            Verdict::Close => return Err(AuthError::Revoked.into()),
            Verdict::Downgrade(role) => admission.role = role,
        }
        self.live_since.set(Some(now));
        if let Loaded::Ready(room) = &*self.room.borrow() {
            if let Err(e) = room.store().set_meta(LIVE_SINCE, now as i64) {
                let line = log::warn("room.live_mark_unremembered")
                    .message("remembering the live mark failed")
                    .cause(e);
                self.here(line).emit();
            }
        }
        Ok(())
    }

    /// The live mark this room set, when it woke with connections (its instance did not set
    /// it, but the mark stands until the last connection leaves).
    pub(super) fn restore_live_mark(&self) {
        if let Loaded::Ready(room) = &*self.room.borrow() {
            let since = room.store().meta(LIVE_SINCE).ok().flatten().unwrap_or(0);
            self.live_since.set(Some(since as u64));
        }
    }

    /// After connections left: once none is left, the room's live mark in D1 is cleared
    /// (unless it went live again meanwhile: then the mark is a newer one and stays).
    pub(super) async fn after_leave(&self) {
        if self.live.borrow().len() > 0 {
            return;
        }
        let Some(since) = self.live_since.take() else {
            return;
        };
        let Some(info) = self.info().await else {
            return;
        };
        let result = match access::db(&self.env) {
            Ok(db) => d1::set_live(&db, &info.project, &info.room, None, since).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log::warn("room.live_mark_uncleared")
                .message("clearing the live mark failed")
                .project(&info.project)
                .room(&info.room)
                .cause(format!("{e:?}"))
                .emit();
        }
    }
}
