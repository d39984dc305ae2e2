//! TandemX: a real-time collaboration backend for Yjs on Cloudflare Workers.
//!
//! The core modules are platform-free and tested natively; `edge` is the worker and is only
//! compiled for `wasm32`, so a core module that reaches for the platform fails the native build.

// The OpenAPI schemas (src/openapi.rs) nest `json!` deeper than the default limit allows.
#![recursion_limit = "256"]

pub mod api;
pub mod asset_refs;
pub mod assets;
pub mod auth;
pub mod changes;
pub mod codec;
pub mod conversations;
pub mod document;
pub mod history;
pub mod ice;
pub mod log;
pub mod names;
pub mod net;
pub mod openapi;
pub mod pages;
pub mod prescan;
pub mod presence;
pub mod protocol;
pub mod queries;
pub mod ratelimit;
pub mod request_id;
pub mod room;
pub mod room_call;
pub mod routes;
pub mod signal;
pub mod storage;
pub mod ttl_cache;
pub mod upkeep;
pub mod versions;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
mod edge;
