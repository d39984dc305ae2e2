//! Admitting a connection: the worker's [`Admission`], the room's own checks (connection caps,
//! revocations it was told of, D1 when it goes live), the greeting, and the token's expiry.

use super::{new_connection_id, now_ms, sockets, Loaded, RoomObject};
use crate::api::ApiError;
use crate::edge::http;
use crate::edge::log::{self, Emit};
use crate::room::{Connection, Refusal, To, SETTLE_FALLBACK_MS};
use crate::room_call::{Admission, ADMISSION_HEADER};
use crate::upkeep::expiry_alarm_ms;
use worker::{Headers, Request, Response, Result, WebSocketPair};

impl RoomObject {
    /// Accepts a WebSocket for the connection the worker admitted (its [`Admission`]).
    pub(super) async fn connect(&self, req: &Request) -> Result<Response> {
        let admission = req
            .headers()
            .get(ADMISSION_HEADER)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str::<Admission>(&json).ok());
        let Some(mut admission) = admission else {
            log::error("room.no_admission")
                .message("room reached without an admission")
                .emit();
            return http::problem(&ApiError::Internal, None);
        };
        self.remember_info(&admission.project, &admission.room)
            .await?;
        self.changes
            .borrow_mut()
            .learn(admission.webhooks, now_ms());
        self.load();
        let limits = match &*self.room.borrow() {
            Loaded::Ready(room) => *room.limits(),
            _ => return http::problem(&ApiError::RoomUnavailable, None),
        };
        let admitted = {
            let live = self.live.borrow();
            limits.admit(live.len(), live.of_user(&admission.sub))
        };
        if let Err(refusal) = admitted {
            let line = log::warn("room.connection_refused")
                .message("refusing a connection")
                .cause(refusal);
            self.here(line).emit();
            let refused = match refusal {
                Refusal::RoomFull { limit } => ApiError::RoomFull { limit },
                Refusal::UserLimit { limit } => ApiError::TooManyConnections { limit },
            };
            return http::problem(&refused, None);
        }
        if let Err(e) = self.admit(&mut admission).await {
            return http::problem(&e, None);
        }
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let mut conn = Connection::new(
            new_connection_id(),
            admission.sub,
            admission.role,
            Some(admission.exp),
        );
        conn.cred = admission.credential;
        conn.events = admission.events;
        pair.server.serialize_attachment(&conn)?;
        let id = conn.id;
        self.live.borrow_mut().insert(&pair.server, conn);
        let (sends, owes) = match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => {
                let greeting = room.join();
                let mut sends = room.send(To::One(id), &greeting);
                if let Some(query) = room.presence_query() {
                    sends.extend(room.send(To::All, &[query]));
                }
                (sends, room.owes_settle())
            }
            _ => return http::problem(&ApiError::RoomUnavailable, None),
        };
        sockets::send_all(&self.live, &sends);
        if owes {
            sockets::schedule_settle(&self.room, &self.live, SETTLE_FALLBACK_MS);
        }
        self.schedule_at(expiry_alarm_ms(admission.exp)).await?;
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = admission.protocol {
            let headers = Headers::new();
            headers.set("sec-websocket-protocol", &protocol)?;
            return Ok(resp.with_headers(headers));
        }
        Ok(resp)
    }
}
