//! The worker's side of [`crate::room_call`]: one typed call to one room's Durable Object.
//! Every call goes to the same internal URL with the call in its body; nothing a client sent
//! is ever part of a URL.

use super::log::{self, Emit};
use super::{env, http};
use crate::api::ApiError;
use crate::names::{Id, RoomName};
use crate::room_call::{RoomCall, RoomRequest, CALL_URL};
use serde::de::DeserializeOwned;
use worker::{Env, Method, Request, RequestInit, Response, Stub};

type Result<T> = std::result::Result<T, ApiError>;

/// The Durable Object of `room` in `project`. Its name is built from typed values only; a
/// project id holds no `:`, so the name reads back one way.
pub fn stub(env: &Env, project: &Id, room: &RoomName) -> Result<Stub> {
    env.durable_object(env::ROOMS)
        .and_then(|ns| ns.get_by_name(&format!("room:{project}:{room}")))
        .map_err(http::internal("room stub"))
}

/// A room, as the worker calls it on behalf of `author`.
pub struct RoomClient<'a> {
    /// The worker's environment.
    pub env: &'a Env,
    /// The room's project.
    pub project: &'a Id,
    /// The room's name.
    pub room: &'a RoomName,
    /// Who is calling (as the audit log names them).
    pub author: String,
}

impl RoomClient<'_> {
    /// Sends `call` (with `payload` for calls that take one) and returns the room's answer when
    /// it succeeded; a problem the room answered comes back as [`ApiError::Relayed`].
    pub async fn send(&self, call: RoomCall, payload: &[u8]) -> Result<Response> {
        let request = RoomRequest {
            project: self.project.clone(),
            room: self.room.clone(),
            author: self.author.clone(),
            call,
        };
        let body = request.encode(payload).map_err(|e| {
            log::error("room_call.unencodable")
                .project(self.project)
                .room(self.room)
                .cause(e)
                .emit();
            ApiError::Internal
        })?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(
            worker::js_sys::Uint8Array::from(body.as_slice()).into(),
        ));
        let req = Request::new_with_init(CALL_URL, &init).map_err(http::internal("room call"))?;
        let mut resp = stub(self.env, self.project, self.room)?
            .fetch_with_request(req)
            .await
            .map_err(http::internal("room fetch"))?;
        if resp.status_code() >= 300 {
            let status = resp.status_code();
            let body = resp.text().await.map_err(http::internal("room problem"))?;
            return Err(ApiError::Relayed { status, body });
        }
        Ok(resp)
    }

    /// [`Self::send`], reading a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, call: RoomCall, payload: &[u8]) -> Result<T> {
        self.send(call, payload)
            .await?
            .json()
            .await
            .map_err(http::internal("room json"))
    }

    /// [`Self::send`], reading a binary answer.
    pub async fn bytes(&self, call: RoomCall, payload: &[u8]) -> Result<Vec<u8>> {
        self.send(call, payload)
            .await?
            .bytes()
            .await
            .map_err(http::internal("room bytes"))
    }
}
