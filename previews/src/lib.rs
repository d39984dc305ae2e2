//! TandemX previews: scales a stored image to a preview and encodes it as PNG, JPEG or WebP.
//!
//! A worker of its own (deployed as `tandemx-previews`) so that the image codecs stay out of the
//! main worker's bundle and out of room wake-ups; the main worker reaches it through its service
//! binding `PREVIEWS`. The rendering ([`render`]) and the request rules ([`request`]) are plain
//! Rust, tested natively; `edge` is the worker and is only compiled for `wasm32`.

pub mod problem;
pub mod render;
pub mod request;

pub use render::{render, Format, RenderError, Rendered, SourceType};

#[cfg(target_arch = "wasm32")]
mod edge;
