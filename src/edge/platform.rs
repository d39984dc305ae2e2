//! The runtime's clock and randomness, written once. Core code takes both as values.

use super::log::Emit;
use crate::api::ApiError;
use worker::js_sys::{Date, Math};

/// Current time, unix milliseconds.
pub fn now_ms() -> u64 {
    Date::now() as u64
}

/// `N` random bytes from the platform's CSPRNG (`crypto.getRandomValues`).
pub fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom_02::getrandom(&mut buf).map_err(|e| {
        super::log::error("platform.random_failed").cause(e).emit();
        ApiError::Internal
    })?;
    Ok(buf)
}

/// A random client id for changes the server writes itself: 32 bits, as Yjs uses. Not secret,
/// so `Math.random` does.
pub fn random_client_id() -> u64 {
    (Math::random() * 4_294_967_295.0) as u64
}

/// A random id within JavaScript's safe integers (a socket attachment keeps it exactly). Not
/// secret.
pub fn random_safe_id() -> u64 {
    (Math::random() * 9_007_199_254_740_991.0) as u64
}
