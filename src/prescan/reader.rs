//! A bounds-checked reader of lib0 v1 primitives, and the JSON check.

use super::{ScanError, MAX_CLIENT_ID, MAX_NESTING};
use serde::de::IgnoredAny;

/// A varint of ten bytes carries 70 bits, more than any value the formats hold.
const MAX_VARINT_BYTES: usize = 10;

/// Checks that `json` is JSON nested at most [`MAX_NESTING`] deep, without building it.
fn check_json(json: &str) -> Result<(), JsonError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(JsonError::TooDeep);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    // `IgnoredAny` checks the syntax without building values.
    serde_json::from_str::<IgnoredAny>(json)
        .map(|_| ())
        .map_err(|_| JsonError::Invalid)
}

enum JsonError {
    TooDeep,
    Invalid,
}

/// A bounds-checked reader of lib0 v1 primitives. The protocol framing reads with it too:
/// yrs's `Cursor::read_buf` has the wasm32 overflow described in [`crate::prescan`].
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), ScanError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(ScanError::Trailing(n)),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ScanError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(ScanError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn exact(&mut self, len: usize) -> Result<&'a [u8], ScanError> {
        if len > self.remaining() {
            return Err(ScanError::Truncated(self.pos));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// An unsigned varint of at most ten bytes whose value fits in 64 bits.
    pub(crate) fn var_u64(&mut self) -> Result<u64, ScanError> {
        let at = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte holds bit 63 alone.
            if i == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(ScanError::VarIntTooLong(at));
            }
            value |= bits << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(ScanError::VarIntTooLong(at))
    }

    /// An unsigned varint that fits in 32 bits (yrs wraps larger ones; Yjs writes none).
    pub(crate) fn var_u32(&mut self) -> Result<u32, ScanError> {
        let at = self.pos;
        let value = self.var_u64()?;
        u32::try_from(value).map_err(|_| ScanError::OutOfRange { at, value })
    }

    /// A signed varint (lib0 `writeVarInt`): six bits in the first byte, then seven per byte.
    /// At most ten bytes, and no bit past 62, so yrs's `read_var_i64` neither shifts past 63
    /// nor negates `i64::MIN`.
    pub(super) fn var_i64(&mut self) -> Result<(), ScanError> {
        let at = self.pos;
        if self.u8()? < 0x80 {
            return Ok(());
        }
        for i in 1..MAX_VARINT_BYTES {
            let b = self.u8()?;
            if i == MAX_VARINT_BYTES - 1 && b & 0x7e != 0 {
                return Err(ScanError::VarIntTooLong(at));
            }
            if b < 0x80 {
                return Ok(());
            }
        }
        Err(ScanError::VarIntTooLong(at))
    }

    /// A client id, at most [`MAX_CLIENT_ID`].
    pub(super) fn client(&mut self) -> Result<u64, ScanError> {
        let at = self.pos;
        match self.var_u64()? {
            value if value > MAX_CLIENT_ID => Err(ScanError::OutOfRange { at, value }),
            value => Ok(value),
        }
    }

    /// An id (client, clock) that another block refers to. Its clock is below `u32::MAX`:
    /// yrs looks for the state after it (`clock + 1`).
    pub(super) fn id(&mut self) -> Result<(u64, u32), ScanError> {
        let client = self.client()?;
        let at = self.pos;
        match self.var_u32()? {
            u32::MAX => Err(ScanError::ClockOverflow(at)),
            clock => Ok((client, clock)),
        }
    }

    /// A count of items of at least `min_bytes` each, read as a `u32` varint.
    pub(super) fn count(&mut self, min_bytes: usize) -> Result<usize, ScanError> {
        let at = self.pos;
        let n = self.var_u32()?;
        self.fits(at, n.into(), min_bytes)
    }

    /// A count read as a 64-bit varint (yrs reads these as `usize`).
    pub(super) fn count_u64(&mut self, min_bytes: usize) -> Result<usize, ScanError> {
        let at = self.pos;
        let n = self.var_u64()?;
        self.fits(at, n, min_bytes)
    }

    /// The count of a map or array inside `depth` others: it is level `depth + 1`, at most
    /// [`MAX_NESTING`] (as in [`check_json`], empty containers count).
    pub(super) fn nested_count(
        &mut self,
        depth: usize,
        at: usize,
        min_bytes: usize,
    ) -> Result<usize, ScanError> {
        if depth >= MAX_NESTING {
            return Err(ScanError::TooDeep(at));
        }
        self.count_u64(min_bytes)
    }

    /// Whether `n` items of at least `min_bytes` each fit in what is left.
    pub(super) fn fits(&self, at: usize, n: u64, min_bytes: usize) -> Result<usize, ScanError> {
        let remaining = self.remaining();
        match usize::try_from(n) {
            Ok(len) if len.saturating_mul(min_bytes) <= remaining => Ok(len),
            _ => Err(ScanError::Overrun {
                at,
                declared: n,
                remaining,
            }),
        }
    }

    /// A byte string with a `u32` varint length (yrs `read_buf`).
    pub(crate) fn buf(&mut self) -> Result<&'a [u8], ScanError> {
        let at = self.pos;
        let len = self.var_u32()?;
        let remaining = self.remaining();
        if len as usize > remaining {
            return Err(ScanError::Overrun {
                at,
                declared: len.into(),
                remaining,
            });
        }
        self.exact(len as usize)
    }

    /// A UTF-8 string (yrs `read_string`).
    pub(crate) fn string(&mut self) -> Result<&'a str, ScanError> {
        let at = self.pos;
        let bytes = self.buf()?;
        std::str::from_utf8(bytes).map_err(|_| ScanError::Utf8(at))
    }

    /// A string holding JSON (yrs `read_json`, awareness states).
    pub(super) fn json(&mut self) -> Result<(), ScanError> {
        let at = self.pos;
        check_json(self.string()?).map_err(|e| match e {
            JsonError::TooDeep => ScanError::TooDeep(at),
            JsonError::Invalid => ScanError::Json(at),
        })
    }
}
