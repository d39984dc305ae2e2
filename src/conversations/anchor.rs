//! Where a thread is attached: a range of text (two Yjs relative positions), a point on a
//! canvas (optionally on a node), or the document as a whole — and where that is now.
//!
//! A relative position arrives as the base64 of `Y.encodeRelativePosition`. It is parsed here,
//! byte by byte with every length bounded, into a yrs [`StickyIndex`]: client bytes never reach
//! a yrs decoder (some malformed input panics there). Resolving it against the document gives
//! the range's index and its text now; a range whose text is gone is **orphaned**, and comes
//! back when the same text reappears where it was (an undo, a restored version: both insert
//! new items, which the old positions do not name).

use serde::{Deserialize, Serialize};
use yrs::branch::BranchID;
use yrs::types::TypeRef;
use yrs::{Assoc, Doc, GetString, IndexScope, ReadTxn, StickyIndex, Transact, ID};

/// Longest encoded relative position (an item id is two varints and an assoc byte; a root
/// type's name is the longest case).
pub const MAX_POSITION_BYTES: usize = 300;
/// Longest root type or map key a point anchor names, in characters.
pub const MAX_NODE_NAME: usize = 200;
/// Most characters of quoted text kept with a thread (the text it was opened on).
pub const MAX_QUOTE_CHARS: usize = 1_000;
/// How far (bytes of UTF-8) from where an orphaned range collapsed its quoted text may stand
/// again for the range to count as restored (an undo of a deletion that took more than it).
pub const RESTORE_REACH: usize = 2_000;

/// An anchor as a client sends it and as it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Anchor {
    /// The document as a whole. A struct variant, so that fields besides `type` are refused
    /// as they are on the other kinds.
    Document {},
    /// A range of a shared text between two relative positions.
    Text {
        /// Start: base64 of `Y.encodeRelativePosition`.
        start: String,
        /// End (exclusive).
        end: String,
    },
    /// A point on a canvas, optionally on a node (an entry of a root map).
    Point {
        /// Canvas x.
        x: f64,
        /// Canvas y.
        y: f64,
        /// The node the point is on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeRef>,
    },
}

/// A node of a canvas: the key of an entry in a root map (`doc.getMap(map).get(key)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRef {
    /// The root map's name.
    pub map: String,
    /// The node's key in it.
    pub key: String,
}

/// Where an anchor is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Its anchored text or node is gone (the thread is kept, and comes back with it).
    pub orphaned: bool,
    /// Text anchors: the start, in UTF-16 code units as Yjs counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Text anchors: the length, in UTF-16 code units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Text anchors: the anchored text as it is now (at most [`MAX_QUOTE_CHARS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Text anchors: the root type holding the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Position {
    fn whole() -> Position {
        Position {
            orphaned: false,
            index: None,
            length: None,
            quote: None,
            text: None,
        }
    }

    fn orphaned() -> Position {
        Position {
            orphaned: true,
            ..Position::whole()
        }
    }
}

impl Anchor {
    /// Checks the anchor's shape and bounds (positions parse, coordinates are finite).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Anchor::Document {} => Ok(()),
            Anchor::Text { start, end } => {
                parse_position(start).map_err(|e| format!("start: {e}"))?;
                parse_position(end).map_err(|e| format!("end: {e}"))?;
                Ok(())
            }
            Anchor::Point { x, y, node } => {
                if !x.is_finite() || !y.is_finite() || x.abs() > 1e12 || y.abs() > 1e12 {
                    return Err("x and y are finite numbers within ±1e12".into());
                }
                if let Some(n) = node {
                    for (what, s) in [("map", &n.map), ("key", &n.key)] {
                        if s.is_empty()
                            || s.chars().count() > MAX_NODE_NAME
                            || s.chars().any(char::is_control)
                        {
                            return Err(format!(
                                "node {what} is 1 to {MAX_NODE_NAME} printable characters"
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Where the anchor is in `doc` now. `quote` is the text the thread was opened on: when a
    /// text range has collapsed (its text deleted) and that text stands right where it was,
    /// the range resolves to it again.
    pub fn resolve(&self, doc: &Doc, quote: Option<&str>) -> Position {
        match self {
            Anchor::Document {} => Position::whole(),
            Anchor::Point { node: None, .. } => Position::whole(),
            Anchor::Point {
                node: Some(node), ..
            } => {
                let txn = doc.transact();
                let present = txn
                    .get_map(node.map.as_str())
                    .is_some_and(|m| yrs::Map::contains_key(&m, &txn, &node.key));
                if present {
                    Position::whole()
                } else {
                    Position::orphaned()
                }
            }
            Anchor::Text { start, end } => {
                let (Ok(start), Ok(end)) = (parse_position(start), parse_position(end)) else {
                    return Position::orphaned();
                };
                resolve_range(doc, &start, &end, quote)
            }
        }
    }
}

/// Resolves a text range; see [`Anchor::resolve`].
fn resolve_range(
    doc: &Doc,
    start: &StickyIndex,
    end: &StickyIndex,
    quote: Option<&str>,
) -> Position {
    let txn = doc.transact();
    let (Some(s), Some(e)) = (start.get_offset(&txn), end.get_offset(&txn)) else {
        return Position::orphaned();
    };
    if s.branch != e.branch {
        return Position::orphaned();
    }
    // A root type that arrived in an update and was never asked for by name is `Undefined`.
    if !matches!(
        s.branch.type_ref(),
        TypeRef::Text | TypeRef::XmlText | TypeRef::Undefined
    ) {
        return Position::orphaned();
    }
    // A text nested in another type resolves too, but no root names it.
    let root = match s.branch.id() {
        BranchID::Root(name) => Some(name.to_string()),
        BranchID::Nested(_) => None,
    };
    let text = yrs::TextRef::from(s.branch);
    let string = text.get_string(&txn);
    // The document's offsets are bytes of UTF-8 (yrs's default): clamp to char boundaries.
    let clamp = |i: u32| {
        let mut i = (i as usize).min(string.len());
        while !string.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (from, to) = (clamp(s.index), clamp(e.index));
    let utf16 = |bytes: &str| bytes.encode_utf16().count() as u64;
    let found = |from: usize, to: usize| Position {
        orphaned: false,
        index: Some(utf16(&string[..from])),
        length: Some(utf16(&string[from..to])),
        quote: Some(string[from..to].chars().take(MAX_QUOTE_CHARS).collect()),
        text: root.clone(),
    };
    if to > from {
        return found(from, to);
    }
    // Collapsed: the text is gone, unless the quoted text stands again where it was. An undo
    // or a restore inserts what was deleted as new items beside the deleted ones, so the
    // words come back within the span that was deleted: the nearest occurrence of the quote
    // within [`RESTORE_REACH`] bytes (plus its own length) of the collapsed point counts.
    if let Some(q) = quote.filter(|q| !q.is_empty()) {
        let reach = RESTORE_REACH + q.len();
        let lo = clamp(from.saturating_sub(reach) as u32);
        let hi = clamp((from + reach).min(string.len()) as u32);
        let best = string[lo..hi]
            .match_indices(q)
            .map(|(i, _)| lo + i)
            .min_by_key(|&i| {
                if i + q.len() <= from {
                    from - (i + q.len())
                } else {
                    i.saturating_sub(from)
                }
            });
        if let Some(i) = best {
            return found(i, i + q.len());
        }
    }
    Position {
        index: Some(utf16(&string[..from])),
        length: Some(0),
        quote: None,
        text: root,
        ..Position::orphaned()
    }
}

/// Parses the base64 of a `Y.encodeRelativePosition` into a sticky index: a varuint tag (0: an
/// item id, 1: a root type name, 2: a nested type's id), its fields, and an optional varint
/// association (0: after, -1: before).
pub fn parse_position(b64: &str) -> Result<StickyIndex, String> {
    if b64.len() > MAX_POSITION_BYTES * 4 / 3 + 4 {
        return Err("a relative position is too long".into());
    }
    let bytes = crate::codec::from_base64(b64).map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() > MAX_POSITION_BYTES {
        return Err("a relative position is too long".into());
    }
    let mut r = Bytes { buf: &bytes, at: 0 };
    let scope = match r.varuint()? {
        0 => IndexScope::Relative(r.id()?),
        1 => {
            let len = r.varuint()? as usize;
            let name = r.take(len)?;
            let name = std::str::from_utf8(name).map_err(|_| "a type name is not UTF-8")?;
            IndexScope::Root(name.into())
        }
        2 => IndexScope::Nested(r.id()?),
        tag => return Err(format!("unknown relative position kind {tag}")),
    };
    let assoc = match r.rest() {
        [] | [0x00] => Assoc::After,
        [0x41] => Assoc::Before,
        _ => return Err("a relative position ends with its association (0 or -1)".into()),
    };
    Ok(StickyIndex::new(scope, assoc))
}

/// Encodes a sticky index as `Y.encodeRelativePosition` does, base64 (tests, the SDK's peers).
pub fn encode_position(index: &StickyIndex) -> String {
    crate::codec::base64(&yrs::updates::encoder::Encode::encode_v1(index))
}

struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn varuint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.at)
                .ok_or("a relative position ends early")?;
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // Yjs numbers are at most 53 bits.
                return if value < (1 << 53) {
                    Ok(value)
                } else {
                    Err("a number above 2^53".into())
                };
            }
            if shift >= 49 {
                break;
            }
        }
        Err("a number above 2^53".into())
    }

    fn id(&mut self) -> Result<ID, String> {
        let client = self.varuint()?;
        let clock = u32::try_from(self.varuint()?).map_err(|_| "a clock above 2^32")?;
        Ok(ID::new(yrs::block::ClientID::new(client), clock))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("a length overflows")?;
        let s = self
            .buf
            .get(self.at..end)
            .ok_or("a relative position ends early")?;
        self.at = end;
        Ok(s)
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.at..]
    }
}
