//! Validation of lib0 v1 encodings (updates, state vectors, awareness updates) before yrs
//! decodes them, with no allocation beyond a list of client ids.
//!
//! yrs 0.28.1 trusts its input in ways a client must not be able to reach:
//! - `Cursor::read_exact` (`encoding/read.rs`) checks `next + len > buf.len()` without
//!   overflow: on wasm32, where `usize` is 32 bits, a length near `u32::MAX` wraps, passes the
//!   check, and the slice index then panics (`read.rs:86`), which traps the worker;
//! - `Any::decode` (`any.rs`) recurses once per nested array or map, so two bytes per level
//!   overflow the stack;
//! - counts are reserved before anything is read (`try_reserve(len)`), so a few bytes can ask
//!   for gigabytes;
//! - clocks are added without overflow checks (`clock += block.len()` in `update.rs`), and a
//!   block range that wraps makes yrs divide by zero or unwrap an error when the update is
//!   applied (`block_store.rs`, `transaction.rs`);
//! - delete-set ranges are taken as sorted and disjoint (`IdRanges::from_raw`).
//!
//! The scanner walks the same layout as yrs's `DecoderV1` (`Update::decode`,
//! `Update::decode_block`, `ItemContent::decode`, `Any::decode`, `IdSet::decode`,
//! `StateVector::decode`, `AwarenessUpdate::decode`), field for field, and accepts only input on
//! which every read stays in bounds, every declared count fits the bytes left (each item takes
//! at least one byte, so a count over the rest is a lie), nesting stays within
//! [`MAX_NESTING`], clocks do not overflow, and nothing is left over. It is stricter than yrs
//! where Yjs peers never write what yrs would accept: varints longer than ten bytes, client ids
//! over 2^53 (JavaScript numbers), a client listed twice in one update, unsorted or empty
//! delete ranges.
//!
//! The nesting of shared types (a map in a map in a map...) is a property of the document: each
//! level is an item naming its parent, which may be in an earlier update. Within one update the
//! scanner follows the levels it can see (a parent written out, or an origin that is a shared
//! type of the same update) and refuses more than [`MAX_TYPE_NESTING`] of them, and more than
//! [`MAX_TYPES_PER_UPDATE`] shared types, which bounds what it keeps. A chain built one level
//! per update, or hidden behind origins that are not types, is not seen: yrs deletes such
//! chains recursively, and Yjs clients recurse on them too (docs/security.md).

mod reader;

pub(crate) use reader::Reader;
use thiserror::Error;

/// Deepest nesting of arrays and maps accepted in `Any` values and in JSON content: far beyond
/// what documents hold, far below what would exhaust the worker's stack.
pub const MAX_NESTING: usize = 64;

/// Largest client id accepted: JavaScript's `Number.MAX_SAFE_INTEGER`, beyond which no Yjs
/// peer can write one (yrs masks larger ids to 53 bits, so two would collide).
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Deepest nesting of shared types one update may build: far beyond what editors write (rich
/// text nests lists and blocks a few dozen deep), far below the thousands of levels at which
/// yrs (deleting) and Yjs clients (integrating, collecting garbage) run out of stack.
pub const MAX_TYPE_NESTING: u32 = 256;

/// Most shared types one update may create (what the nesting check remembers per update): a
/// canvas of tens of thousands of nodes, each a map, fits.
pub const MAX_TYPES_PER_UPDATE: usize = 200_000;

// Block info bits and content kinds (yrs `block.rs`, Yjs `structs/Item.js`).
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;

/// Why an encoding was refused. Offsets count from the start of the scanned bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// The input ends inside a value.
    #[error("input ends early at byte {0}")]
    Truncated(usize),
    /// A varint runs past ten bytes.
    #[error("varint too long at byte {0}")]
    VarIntTooLong(usize),
    /// A number does not fit its field (a clock over `u32`, a client id over 2^53).
    #[error("value {value} out of range at byte {at}")]
    OutOfRange {
        /// Offset of the number.
        at: usize,
        /// The number read.
        value: u64,
    },
    /// A length or count declares more than the remaining bytes can hold.
    #[error("length {declared} at byte {at} exceeds the {remaining} bytes left")]
    Overrun {
        /// Offset of the length.
        at: usize,
        /// The declared length or count.
        declared: u64,
        /// Bytes left after it.
        remaining: usize,
    },
    /// A string is not UTF-8.
    #[error("invalid utf-8 at byte {0}")]
    Utf8(usize),
    /// JSON content or an awareness state is not JSON.
    #[error("invalid json at byte {0}")]
    Json(usize),
    /// Arrays or maps nest deeper than [`MAX_NESTING`].
    #[error("nesting deeper than {MAX_NESTING} at byte {0}")]
    TooDeep(usize),
    /// A tag names no kind yrs 0.28.1 decodes.
    #[error("unknown {kind} tag {tag} at byte {at}")]
    UnknownTag {
        /// What the tag selects (block content, type, any).
        kind: &'static str,
        /// The tag.
        tag: u8,
        /// Offset of the tag.
        at: usize,
    },
    /// A GC or skip block of length 0 (yrs refuses it too).
    #[error("empty block at byte {0}")]
    EmptyBlock(usize),
    /// A block or delete range runs past clock `u32::MAX`.
    #[error("clock overflows at byte {0}")]
    ClockOverflow(usize),
    /// A client appears twice among an update's blocks.
    #[error("client {0} listed twice")]
    DuplicateClient(u64),
    /// Delete ranges of a client are empty, overlapping or out of order.
    #[error("unsorted or empty delete range at byte {0}")]
    DeleteRange(usize),
    /// Bytes follow the encoded value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// Shared types nest deeper than [`MAX_TYPE_NESTING`] within one update.
    #[error("shared types nested deeper than {MAX_TYPE_NESTING} at byte {0}")]
    TypesTooDeep(usize),
    /// More shared types than [`MAX_TYPES_PER_UPDATE`] in one update.
    #[error("more than {MAX_TYPES_PER_UPDATE} shared types in one update")]
    TooManyTypes,
}

/// The shared types an update creates, with how deep each sits (a root's child is at 1), as
/// far as the update shows it.
#[derive(Default)]
struct Nesting {
    types: std::collections::HashMap<(u64, u32), u32>,
}

impl Nesting {
    /// The depth of the parent of an item whose parent is the type `id` (0: a root, or a type
    /// this update does not show).
    fn of_parent(&self, id: (u64, u32)) -> u32 {
        self.types.get(&id).copied().unwrap_or(0)
    }

    /// The depth of the parent of an item next to `origin`: the origin's own parent, when the
    /// origin is a type of this update (else unknown: 0).
    fn of_sibling(&self, origin: (u64, u32)) -> u32 {
        self.types.get(&origin).map_or(0, |d| d.saturating_sub(1))
    }

    fn add(&mut self, id: (u64, u32), depth: u32, at: usize) -> Result<(), ScanError> {
        if depth > MAX_TYPE_NESTING {
            return Err(ScanError::TypesTooDeep(at));
        }
        if self.types.len() >= MAX_TYPES_PER_UPDATE {
            return Err(ScanError::TooManyTypes);
        }
        self.types.insert(id, depth);
        Ok(())
    }
}

/// Checks a v1 update (SyncStep2, Update, an HTTP write) before `Update::decode_v1` reads it.
pub fn check_update_v1(update: &[u8]) -> Result<(), ScanError> {
    let mut r = Reader::new(update);
    let clients = r.count(3)?;
    let mut seen = Vec::with_capacity(clients.min(64));
    let mut nesting = Nesting::default();
    for _ in 0..clients {
        // Blocks come before the client and clock (`Update::decode`); each takes two bytes.
        let blocks = r.count(2)?;
        let client = r.client()?;
        seen.push(client);
        let mut clock = r.var_u32()?;
        for _ in 0..blocks {
            let at = r.pos;
            let len = block(&mut r, (client, clock), &mut nesting)?;
            // `clock + len` is where the next block starts; yrs adds without a check.
            clock = clock.checked_add(len).ok_or(ScanError::ClockOverflow(at))?;
        }
    }
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        return Err(ScanError::DuplicateClient(w[0]));
    }
    delete_set(&mut r)?;
    r.finish()
}

/// Checks a v1 state vector (SyncStep1, a `state_vector` parameter) before
/// `StateVector::decode_v1` reads it.
pub fn check_state_vector_v1(sv: &[u8]) -> Result<(), ScanError> {
    let mut r = Reader::new(sv);
    for _ in 0..r.count(2)? {
        r.client()?;
        r.var_u32()?;
    }
    r.finish()
}

/// Checks an awareness update before `AwarenessUpdate::decode_v1` reads it: each state must be
/// JSON, since the room relays it and every client parses it.
pub fn check_awareness_v1(update: &[u8]) -> Result<(), ScanError> {
    let mut r = Reader::new(update);
    // Client id, clock and the state's length: three bytes at least.
    for _ in 0..r.count_u64(3)? {
        r.client()?;
        r.var_u32()?;
        r.json()?;
    }
    r.finish()
}

/// One block of `Update::decode_block`, the block at `id`; returns how far it moves the
/// client's clock.
fn block(r: &mut Reader<'_>, id: (u64, u32), nesting: &mut Nesting) -> Result<u32, ScanError> {
    let at = r.pos;
    let info = r.u8()?;
    match info {
        BLOCK_GC | BLOCK_SKIP => match r.var_u32()? {
            0 => Err(ScanError::EmptyBlock(at)),
            len => Ok(len),
        },
        _ => {
            let mut parent_depth = 0;
            if info & HAS_ORIGIN != 0 {
                parent_depth = parent_depth.max(nesting.of_sibling(r.id()?));
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                parent_depth = parent_depth.max(nesting.of_sibling(r.id()?));
            }
            // Without origins the parent is written out (yrs `cant_copy_parent_info`).
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                if r.var_u32()? == 1 {
                    r.string()?;
                } else {
                    parent_depth = nesting.of_parent(r.id()?);
                }
                if info & HAS_PARENT_SUB != 0 {
                    r.string()?;
                }
            }
            let kind = info & 0b1111;
            let len = content(r, kind)?;
            if kind == 7 {
                nesting.add(id, parent_depth.saturating_add(1), at)?;
            }
            Ok(len)
        }
    }
}

/// The content of an item (`ItemContent::decode`); returns its length as yrs counts it
/// (`ItemContent::len_utf16`). An item of length 0 is dropped by yrs and moves no clock.
fn content(r: &mut Reader<'_>, kind: u8) -> Result<u32, ScanError> {
    let at = r.pos;
    match kind {
        // Deleted: a length.
        1 => r.var_u32(),
        // JSON: yrs reads `len + 1` strings (`while remaining >= 0`), and a `len` over `i32`
        // makes its reservation fail.
        2 => {
            let len = r.var_u32()?;
            if len > i32::MAX as u32 {
                return Err(ScanError::OutOfRange {
                    at,
                    value: len.into(),
                });
            }
            let strings = len + 1;
            r.fits(at, strings.into(), 1)?;
            for _ in 0..strings {
                r.string()?;
            }
            Ok(strings)
        }
        // Binary.
        3 => r.buf().map(|_| 1),
        // String: its length in UTF-16 code units.
        4 => r
            .string()
            .map(|s| s.encode_utf16().count().try_into().unwrap_or(u32::MAX)),
        // Embed: JSON.
        5 => r.json().map(|_| 1),
        // Format: a key and JSON.
        6 => {
            r.string()?;
            r.json().map(|_| 1)
        }
        // Type (`TypeRef::decode`): weak links are a yrs feature this build leaves out.
        7 => {
            let at = r.pos;
            match r.u8()? {
                0 | 1 | 2 | 4 | 5 | 6 | 9 | 15 => {}
                // An XML element carries its tag name.
                3 => {
                    r.string()?;
                }
                tag => {
                    return Err(ScanError::UnknownTag {
                        kind: "type",
                        tag,
                        at,
                    })
                }
            }
            Ok(1)
        }
        // Any: a count of values.
        8 => {
            let len = r.count(1)?;
            for _ in 0..len {
                any(r, 0)?;
            }
            Ok(len as u32)
        }
        // Doc (`Options::decode`): a guid and the options as an `Any`.
        9 => {
            r.string()?;
            any(r, 0).map(|_| 1)
        }
        // 0 and 10 are GC and skip, which have no content; 11 (move in older Yjs) and above
        // are unknown to yrs 0.28.1.
        tag => Err(ScanError::UnknownTag {
            kind: "content",
            tag,
            at,
        }),
    }
}

/// One `Any` value (`Any::decode`) inside `depth` arrays or maps.
fn any(r: &mut Reader<'_>, depth: usize) -> Result<(), ScanError> {
    let at = r.pos;
    match r.u8()? {
        // Undefined, null, false, true.
        127 | 126 | 121 | 120 => {}
        // Integer: a signed varint.
        125 => r.var_i64()?,
        // Float32, float64, bigint.
        124 => {
            r.exact(4)?;
        }
        123 | 122 => {
            r.exact(8)?;
        }
        // String, buffer.
        119 => {
            r.string()?;
        }
        116 => {
            r.buf()?;
        }
        // Map: each entry is a key and a value, two bytes at least.
        118 => {
            let len = r.nested_count(depth, at, 2)?;
            for _ in 0..len {
                r.string()?;
                any(r, depth + 1)?;
            }
        }
        // Array.
        117 => {
            let len = r.nested_count(depth, at, 1)?;
            for _ in 0..len {
                any(r, depth + 1)?;
            }
        }
        tag => {
            return Err(ScanError::UnknownTag {
                kind: "any",
                tag,
                at,
            })
        }
    }
    Ok(())
}

/// The delete set ending every update (`IdSet::decode`).
fn delete_set(r: &mut Reader<'_>) -> Result<(), ScanError> {
    for _ in 0..r.count(2)? {
        r.client()?;
        let mut end = 0u32;
        for i in 0..r.count(2)? {
            let at = r.pos;
            let clock = r.var_u32()?;
            let len = r.var_u32()?;
            // yrs keeps the ranges as they come (`IdRanges::from_raw`, "assumes sorted").
            if len == 0 || (i > 0 && clock < end) {
                return Err(ScanError::DeleteRange(at));
            }
            end = clock.checked_add(len).ok_or(ScanError::ClockOverflow(at))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
