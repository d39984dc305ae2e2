//! Text encodings of bytes, written once: lowercase hex (ids, digests) and base64 (updates and
//! state vectors in JSON).

use jwt_simple::prelude::Base64;
use jwt_simple::reexports::ct_codecs::{Decoder, Encoder};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    // Encoding into a buffer it sizes itself cannot fail.
    Base64::encode_to_string(bytes).unwrap_or_default()
}

/// URL-safe base64 without padding of `bytes` (ids and cursors that go into URLs).
pub fn base64url(bytes: &[u8]) -> String {
    jwt_simple::prelude::Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

/// Decodes standard base64.
pub fn from_base64(s: &str) -> Result<Vec<u8>, String> {
    Base64::decode_to_vec(s, None).map_err(|e| format!("not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(hex(&[]), "");
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(from_base64("aGk=").unwrap(), b"hi");
        assert!(from_base64("***").is_err());
    }
}
