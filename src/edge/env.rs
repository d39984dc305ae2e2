//! Binding and variable names, matching `wrangler.toml`, and the limits read from variables.

use super::log::{self, Emit};
use crate::room::Limits;
use worker::Env;

/// Durable Object namespace of rooms (one SQLite-backed object per room).
pub const ROOMS: &str = "ROOMS";
/// Durable Object namespace of per-project webhook queues.
pub const WEBHOOKS: &str = "WEBHOOKS";
/// Durable Object namespace of y-webrtc signalling hubs (one per project).
pub const SIGNALS: &str = "SIGNALS";
/// D1 database of project metadata.
pub const DB: &str = "DB";
/// R2 bucket of assets.
pub const ASSETS: &str = "ASSETS";
/// The demo app's static files (`[assets]`; [`super::static_files`]).
pub const STATIC: &str = "STATIC";
/// Rate Limiting binding counting API writes per caller.
pub const WRITE_LIMITER: &str = "WRITE_LIMITER";
/// Rate Limiting binding counting minted room tokens per caller and per user.
pub const MINT_LIMITER: &str = "MINT_LIMITER";
/// Rate limit binding: threads, comments and chat messages created per user and project.
pub const COMMENT_LIMITER: &str = "COMMENT_LIMITER";

/// Variable overriding [`Limits::max_frame_bytes`].
pub const MAX_FRAME_BYTES: &str = "MAX_FRAME_BYTES";
/// Variable overriding [`Limits::max_connections`].
pub const MAX_CONNECTIONS_PER_ROOM: &str = "MAX_CONNECTIONS_PER_ROOM";
/// Variable overriding [`Limits::compact_after_updates`].
pub const COMPACT_AFTER_UPDATES: &str = "COMPACT_AFTER_UPDATES";
/// Variable overriding [`Limits::max_connections_per_user`].
pub const MAX_CONNECTIONS_PER_USER: &str = "MAX_CONNECTIONS_PER_USER";
/// Variable overriding [`Limits::max_awareness_states`].
pub const MAX_AWARENESS_STATES: &str = "MAX_AWARENESS_STATES";
/// Variable overriding [`Limits::max_awareness_state_bytes`].
pub const MAX_AWARENESS_STATE_BYTES: &str = "MAX_AWARENESS_STATE_BYTES";

fn number(env: &Env, name: &str) -> Option<usize> {
    let value = env.var(name).ok()?.to_string();
    match value.trim().parse() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            log::warn("config.ignored")
                .message("not a positive integer; ignored")
                .field("var", name)
                .field("value", value.as_str())
                .emit();
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
    if let Some(n) = number(env, MAX_CONNECTIONS_PER_USER) {
        limits.max_connections_per_user = n;
    }
    if let Some(n) = number(env, MAX_AWARENESS_STATES) {
        limits.max_awareness_states = n;
    }
    if let Some(n) = number(env, MAX_AWARENESS_STATE_BYTES) {
        limits.max_awareness_state_bytes = n;
    }
    // Bursts scale with the sustained rates: five seconds' worth of messages, sixteen of bytes.
    if let Some(n) = number(env, RATE_MESSAGES_PER_SECOND) {
        limits.rates.messages_per_second = n as f64;
        limits.rates.message_burst = 5.0 * n as f64;
    }
    if let Some(n) = number(env, RATE_BYTES_PER_SECOND) {
        limits.rates.bytes_per_second = n as f64;
        limits.rates.byte_burst = 16.0 * n as f64;
    }
    limits.durability = crate::room::Durability {
        relaxed: relaxed_durability(env),
        flush_ms: number_or(env, RELAXED_FLUSH_MS, 10) as u64,
        commit_gap_ms: count_or(env, COMMIT_GAP_MS, 2) as u64,
    };
    limits
}

/// Secret that signs the room tokens this server mints (at least 32 characters).
pub const TOKEN_SECRET: &str = "TOKEN_SECRET";
/// Secret that creates projects (the bootstrap credential).
pub const ADMIN_SECRET: &str = "ADMIN_SECRET";
/// `true` turns on the development routes (`POST /v1/dev/token`). Never in production.
pub const DEV_MODE: &str = "DEV_MODE";
/// Variable overriding [`crate::ratelimit::Rates::messages_per_second`].
pub const RATE_MESSAGES_PER_SECOND: &str = "RATE_MESSAGES_PER_SECOND";
/// Variable overriding [`crate::ratelimit::Rates::bytes_per_second`].
pub const RATE_BYTES_PER_SECOND: &str = "RATE_BYTES_PER_SECOND";

/// First retry delay of a webhook message, in ms (doubling after).
pub const WEBHOOK_RETRY_BASE_MS: &str = "WEBHOOK_RETRY_BASE_MS";
/// Attempts per webhook message before it is given up.
pub const WEBHOOK_MAX_ATTEMPTS: &str = "WEBHOOK_MAX_ATTEMPTS";
/// Failed attempts in a row after which a subscription is disabled.
pub const WEBHOOK_DISABLE_AFTER: &str = "WEBHOOK_DISABLE_AFTER";
/// Seconds a room gathers changes before sending one `document.updated`.
pub const WEBHOOK_COALESCE_SECONDS: &str = "WEBHOOK_COALESCE_SECONDS";
/// `true` lets webhooks go to loopback, private and other non-public addresses (local
/// development only; see `crate::net` and docs/api.md).
pub const WEBHOOK_ALLOW_PRIVATE: &str = "WEBHOOK_ALLOW_PRIVATE";
/// Seconds a rotated-out webhook secret keeps signing beside the new one (default 86400).
pub const WEBHOOK_SECRET_GRACE_SECONDS: &str = "WEBHOOK_SECRET_GRACE_SECONDS";

/// A positive integer variable, or `default`.
pub fn number_or(env: &Env, name: &str, default: usize) -> usize {
    number(env, name).unwrap_or(default)
}

/// A variable that may be 0 (off), or `default` when unset or not a whole number.
pub fn count_or(env: &Env, name: &str, default: usize) -> usize {
    let Ok(value) = env.var(name).map(|v| v.to_string()) else {
        return default;
    };
    value.trim().parse().unwrap_or_else(|_| {
        log::warn("config.ignored")
            .message("not a whole number; ignored")
            .field("var", name)
            .field("value", value.as_str())
            .emit();
        default
    })
}

/// `strict` (default): a change is stored before anyone receives it. `relaxed`: it is sent at
/// once and stored within `RELAXED_FLUSH_MS`, several changes per commit (docs/protocol.md).
pub const DURABILITY: &str = "DURABILITY";
/// With relaxed durability, how long a change may wait to be written, in ms (default 10).
pub const RELAXED_FLUSH_MS: &str = "RELAXED_FLUSH_MS";
/// Strict durability, during a burst of changes (the last commit carried several): the next
/// commit waits until this many ms after the last, and takes everything that arrived meanwhile.
/// A lone change, or one at a time, is written at once (docs/protocol.md).
pub const COMMIT_GAP_MS: &str = "COMMIT_GAP_MS";

/// Seconds an isolate trusts what D1 said about a room connection it let in (project, minting
/// key, signing key, document); 0 reads D1 for every connection. See docs/api.md.
pub const ACCESS_CACHE_SECONDS: &str = "ACCESS_CACHE_SECONDS";

/// Whether `DURABILITY` is `relaxed`.
pub fn relaxed_durability(env: &Env) -> bool {
    match env.var(DURABILITY).map(|v| v.to_string()) {
        Ok(v) if v.trim().eq_ignore_ascii_case("relaxed") => true,
        Ok(v) if v.trim().eq_ignore_ascii_case("strict") || v.trim().is_empty() => false,
        Ok(v) => {
            log::warn("config.ignored")
                .message("DURABILITY is strict or relaxed; using strict")
                .field("var", DURABILITY)
                .field("value", v.as_str())
                .emit();
            false
        }
        Err(_) => false,
    }
}

/// Seconds of activity after which a room takes an automatic version (default 300).
pub const AUTO_VERSION_SECONDS: &str = "AUTO_VERSION_SECONDS";
/// Versions larger than this many bytes are stored in R2 (default 1 MiB).
pub const VERSION_INLINE_BYTES: &str = "VERSION_INLINE_BYTES";
/// History kept for projects that set no `history_retention_days`, in seconds (default 30 days).
pub const HISTORY_RETENTION_SECONDS: &str = "HISTORY_RETENTION_SECONDS";
/// How often a room with history applies its project's retention, in seconds (default a day):
/// dormant documents are pruned too.
pub const RETENTION_CHECK_SECONDS: &str = "RETENTION_CHECK_SECONDS";

/// Seconds after a change by which a room records which assets its document references
/// (default 30; docs/asset-references.md).
pub const ASSET_USAGE_SECONDS: &str = "ASSET_USAGE_SECONDS";

/// The history policy: defaults, overridden by variables where set; retention comes from the
/// project (`history_retention_days`) and is set by the caller.
pub fn history_policy(env: &Env) -> crate::versions::Policy {
    let mut policy = crate::versions::Policy::default();
    if let Some(n) = number(env, AUTO_VERSION_SECONDS) {
        policy.interval_ms = n as u64 * 1000;
    }
    if let Some(n) = number(env, VERSION_INLINE_BYTES) {
        policy.inline_limit = n;
    }
    if let Some(n) = number(env, HISTORY_RETENTION_SECONDS) {
        policy.retention_ms = Some(n as u64 * 1000);
    }
    policy
}

/// STUN URLs handed to call participants, comma-separated (docs/calls.md; default Cloudflare's
/// `stun:stun.cloudflare.com:3478`; empty: none).
pub const ICE_STUN_URLS: &str = "ICE_STUN_URLS";
/// TURN URLs of a server that shares [`TURN_SECRET`] (the TURN REST API, coturn's
/// `use-auth-secret`), comma-separated.
pub const TURN_URLS: &str = "TURN_URLS";
/// The TURN REST API shared secret (a secret).
pub const TURN_SECRET: &str = "TURN_SECRET";
/// Lifetime of TURN credentials, in seconds (default 3600, 60 to 86400).
pub const TURN_TTL_SECONDS: &str = "TURN_TTL_SECONDS";
/// Cloudflare Realtime TURN key id: credentials are minted there per request.
pub const CLOUDFLARE_TURN_KEY_ID: &str = "CLOUDFLARE_TURN_KEY_ID";
/// The API token of [`CLOUDFLARE_TURN_KEY_ID`] (a secret).
pub const CLOUDFLARE_TURN_API_TOKEN: &str = "CLOUDFLARE_TURN_API_TOKEN";
/// Where Cloudflare's TURN API is (default `https://rtc.live.cloudflare.com/v1/turn/keys`);
/// set for tests that stand a local server in for it.
pub const CLOUDFLARE_TURN_API: &str = "CLOUDFLARE_TURN_API";
