//! Revocations that reach open connections. A change that stops a credential from admitting
//! anyone (a project deleted, a key or signing key or token revoked, a member removed or
//! downgraded) is written to D1 first; then every room of the project that has open
//! connections (as the rooms record it: `documents.live_since`) is told, and closes or
//! downgrades the connections it concerns before the API answers. See docs/security.md for
//! the timeline and the rooms that go live meanwhile.

use super::log::{self, Emit};
use super::{access, d1, env, room_client::RoomClient};
use crate::names::{Id, RoomName};
use crate::room_call::{Revocation, RoomCall};
use futures::future::join_all;
use worker::Env;

/// Rooms told at once (each is a call to its Durable Object).
const CONCURRENCY: usize = 25;

/// How long a room refuses a revoked credential at admission: as long as another isolate may
/// still admit it from its cache, and a second more.
pub fn refuse_for_ms(env: &Env) -> u64 {
    (env::count_or(env, env::ACCESS_CACHE_SECONDS, 5) as u64 + 1) * 1000
}

/// Tells every live room of `project` about `revocation`; returns how many rooms answered.
/// Failures are logged: the change itself is already in D1, which every later admission and
/// every room going live reads.
pub async fn fan_out(env: &Env, project: &Id, revocation: Revocation) -> usize {
    // The project's signalling hub too (docs/signalling.md).
    super::signal_hub::revoke(env, project, &revocation).await;
    let rooms = match access::db(env) {
        Ok(db) => d1::live_rooms(&db, project.as_str()).await,
        Err(e) => Err(e),
    };
    let rooms = match rooms {
        Ok(rooms) => rooms,
        Err(e) => {
            log::error("revocation.rooms_unlisted")
                .message("listing live rooms failed")
                .project(project)
                .cause(format!("{e:?}"))
                .emit();
            return 0;
        }
    };
    let names: Vec<RoomName> = rooms
        .iter()
        .filter_map(|r| RoomName::parse(r).ok())
        .collect();
    let refuse_for_ms = refuse_for_ms(env);
    let mut reached = 0;
    for chunk in names.chunks(CONCURRENCY) {
        let calls = chunk.iter().map(|room| {
            let revocation = revocation.clone();
            async move {
                let client = RoomClient {
                    env,
                    project,
                    room,
                    author: String::new(),
                };
                let call = RoomCall::Revoke {
                    revocation,
                    refuse_for_ms,
                };
                match client.send(call, &[]).await {
                    Ok(_) => true,
                    Err(e) => {
                        log::error("revocation.undelivered")
                            .message("revocation did not reach a room")
                            .project(project)
                            .room(room)
                            .cause(format!("{e:?}"))
                            .emit();
                        false
                    }
                }
            }
        });
        reached += join_all(calls).await.into_iter().filter(|ok| *ok).count();
    }
    reached
}
