//! `Range: bytes=…` (RFC 9110, 14.2): one range is served as 206; several ranges, or a header
//! this does not understand, are ignored (the whole content, 200), as the RFC allows.

use crate::api::ApiError;

/// The bytes to send: `offset .. offset + length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// How many bytes.
    pub length: u64,
}

impl ByteRange {
    /// The `Content-Range` value for content of `size` bytes.
    pub fn content_range(&self, size: u64) -> String {
        format!(
            "bytes {}-{}/{size}",
            self.offset,
            self.offset + self.length - 1
        )
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The range of `header` within content of `size` bytes: `Ok(None)` for the whole content,
/// [`ApiError::RangeNotSatisfiable`] when no byte of it exists.
pub fn parse(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    if first.is_empty() {
        // A suffix: the last `n` bytes.
        let Some(n) = number(last) else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable);
        }
        let length = n.min(size);
        return Ok(Some(ByteRange {
            offset: size - length,
            length,
        }));
    }
    let Some(offset) = number(first) else {
        return Ok(None);
    };
    let end = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(e) if e >= offset => Some(e),
            // `last < first` makes the header invalid: ignored.
            _ => return Ok(None),
        }
    };
    if offset >= size {
        return Err(unsatisfiable);
    }
    let end = end.map_or(size - 1, |e| e.min(size - 1));
    Ok(Some(ByteRange {
        offset,
        length: end - offset + 1,
    }))
}
