//! TandemX: a real-time collaboration backend for Yjs on Cloudflare Workers.
//!
//! The core modules are platform-free and tested natively; `edge` is the worker and is only
//! compiled for `wasm32`, so a core module that reaches for the platform fails the native build.

pub mod api;
pub mod auth;
pub mod document;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod room;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod edge;
