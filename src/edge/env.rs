//! Binding and variable names, matching `wrangler.toml`, and the limits read from variables.

use crate::room::Limits;
use worker::Env;

/// Durable Object namespace of rooms (one SQLite-backed object per room).
pub const ROOMS: &str = "ROOMS";
/// D1 database of project metadata.
pub const DB: &str = "DB";
/// R2 bucket of assets.
pub const ASSETS: &str = "ASSETS";

/// Variable overriding [`Limits::max_frame_bytes`].
pub const MAX_FRAME_BYTES: &str = "MAX_FRAME_BYTES";
/// Variable overriding [`Limits::max_connections`].
pub const MAX_CONNECTIONS_PER_ROOM: &str = "MAX_CONNECTIONS_PER_ROOM";
/// Variable overriding [`Limits::compact_after_updates`].
pub const COMPACT_AFTER_UPDATES: &str = "COMPACT_AFTER_UPDATES";

fn number(env: &Env, name: &str) -> Option<usize> {
    let value = env.var(name).ok()?.to_string();
    match value.trim().parse() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            worker::console_warn!("ignoring {name}={value:?}: not a positive integer");
            None
        }
    }
}

/// The room limits: defaults, overridden by variables where set.
pub fn limits(env: &Env) -> Limits {
    let mut limits = Limits::default();
    if let Some(n) = number(env, MAX_FRAME_BYTES) {
        limits.max_frame_bytes = n;
    }
    if let Some(n) = number(env, MAX_CONNECTIONS_PER_ROOM) {
        limits.max_connections = n;
    }
    if let Some(n) = number(env, COMPACT_AFTER_UPDATES) {
        limits.compact_after_updates = n;
    }
    limits
}
