//! Which assets a document references: every `tandemx://asset/<id>` (or
//! `tandemx://asset/<id>@<version>`) in its live content, counted per asset id. No I/O; the
//! room scans its document at its upkeep moments and records the counts in D1
//! (docs/asset-references.md).
//!
//! The walk reads the document through yrs, so deleted content never counts, and text typed
//! one character per transaction reads as the one string it is. It is bounded whatever a client
//! wrote: an explicit stack (no recursion), values nested deeper than [`Limits::max_depth`] are
//! skipped, and the walk stops after [`Limits::max_values`] values or [`Limits::max_bytes`]
//! bytes of strings; what it found until then is the result, marked [`Scan::truncated`].

use crate::document::render::{root_kind, Kind};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use yrs::types::text::YChange;
use yrs::types::Attrs;
use yrs::{
    Any, Array, ArrayRef, Doc, Map, MapRef, Out, ReadTxn, Text, TextRef, Transact, Xml,
    XmlElementRef, XmlTextRef,
};

/// What every reference starts with.
pub const PREFIX: &str = "tandemx://asset/";
/// Longest asset id a reference may carry (`ast_` and 20 hex digits is 24).
pub const MAX_ID_LEN: usize = 64;
/// Most digits of a reference's version (`@<version>`): JavaScript's safe integers have 16,
/// and 15 digits stay below them.
pub const MAX_VERSION_DIGITS: usize = 15;

/// Bounds of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting visited (a root type is at 1); deeper values are skipped. 64, as the
    /// JSON renderings (`crate::document::MAX_DEPTH`).
    pub max_depth: usize,
    /// Most values visited (shared types, plain values, strings); the walk stops after.
    pub max_values: usize,
    /// Most bytes of strings read; the walk stops before a string that would pass it.
    pub max_bytes: usize,
    /// Most distinct asset ids recorded; references to further ids are counted as dropped.
    pub max_assets: usize,
}

impl Default for Limits {
    /// Half a million values and 32 MiB of text: a document well past what an editor holds,
    /// scanned in about half a second of CPU natively (docs/asset-references.md measures it).
    fn default() -> Self {
        Limits {
            max_depth: crate::document::MAX_DEPTH,
            max_values: 500_000,
            max_bytes: 32 << 20,
            max_assets: 1000,
        }
    }
}

/// The references a document holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// References per asset id (versions are not told apart), in id order.
    pub refs: BTreeMap<String, u64>,
    /// The walk stopped at [`Limits::max_values`] or [`Limits::max_bytes`]: content after that
    /// point was not read, so `refs` may miss some.
    pub truncated: bool,
    /// Values skipped for being nested deeper than [`Limits::max_depth`].
    pub too_deep: u64,
    /// References to ids past [`Limits::max_assets`] distinct ones, not recorded.
    pub dropped: u64,
    /// Values visited.
    pub values: u64,
    /// Bytes of strings read.
    pub bytes: u64,
}

impl Scan {
    /// A digest of `refs` (ids and counts): equal sets give equal digests. SHA-256 cut to
    /// 52 bits, which a JavaScript number, and so the room's integer metadata, holds exactly
    /// (a different set with the same digest is a one in 2^52 chance).
    pub fn digest(&self) -> i64 {
        digest(&self.refs)
    }

    /// `refs` as a JSON object of id to count, for D1's `json_each`.
    pub fn refs_json(&self) -> String {
        serde_json::to_string(&self.refs).unwrap_or_else(|_| "{}".into())
    }
}

/// The digest of a set of references (see [`Scan::digest`]); the empty set's is that of a
/// document without any.
pub fn digest(refs: &BTreeMap<String, u64>) -> i64 {
    let mut hash = hmac_sha256::Hash::new();
    for (id, count) in refs {
        hash.update((id.len() as u64).to_le_bytes());
        hash.update(id.as_bytes());
        hash.update(count.to_le_bytes());
    }
    let bytes = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    (u64::from_le_bytes(first) >> 12) as i64
}

/// Calls `found` with the id of every well-formed reference in `s`. An id is 1 to
/// [`MAX_ID_LEN`] of `A-Za-z0-9._-` after [`PREFIX`]; `@` and 1 to [`MAX_VERSION_DIGITS`]
/// digits may follow. A longer id, or an `@` without such a version after it, makes the
/// reference malformed, and it is ignored.
pub fn for_each_ref(s: &str, mut found: impl FnMut(&str)) {
    for (at, _) in s.match_indices(PREFIX) {
        let rest = &s.as_bytes()[at + PREFIX.len()..];
        let id_len = rest
            .iter()
            .take(MAX_ID_LEN + 1)
            .take_while(|b| is_id_byte(**b))
            .count();
        if id_len == 0 || id_len > MAX_ID_LEN {
            continue;
        }
        let after = &rest[id_len..];
        if after.first() == Some(&b'@') {
            let digits = after[1..]
                .iter()
                .take(MAX_VERSION_DIGITS + 1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || digits > MAX_VERSION_DIGITS {
                continue;
            }
        }
        // ASCII only, so the slice is on character boundaries.
        let start = at + PREFIX.len();
        found(&s[start..start + id_len]);
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The references in the live content of `doc`, within `limits`.
pub fn scan(doc: &Doc, limits: &Limits) -> Scan {
    let txn = doc.transact();
    let mut walk = Walk {
        limits: *limits,
        scan: Scan::default(),
        stack: Vec::new(),
    };
    // In name order, so that a walk cut by a cap reads the same part of the same document.
    let mut roots: Vec<(Arc<str>, Out)> = txn
        .root_refs()
        .map(|(name, out)| (Arc::from(name), out))
        .collect();
    roots.sort_by(|a, b| b.0.cmp(&a.0));
    for (name, out) in roots {
        if let Some(node) = root_node(&txn, &name, out) {
            walk.stack.push((node, 1));
        }
    }
    walk.run(&txn);
    walk.scan
}

/// What the walk visits.
enum Node {
    Out(Out),
    Any(Any),
}

/// A root as the shared type it is. The room's document never declares its roots, so most are
/// untyped branches: their kind is inferred from their content, as the JSON rendering does.
fn root_node<T: ReadTxn>(txn: &T, name: &str, out: Out) -> Option<Node> {
    let branch = match out {
        Out::UndefinedRef(branch) => branch,
        other => return Some(Node::Out(other)),
    };
    Some(Node::Out(match root_kind(txn, name)? {
        Kind::Text => Out::YText(TextRef::from(branch)),
        Kind::Map => Out::YMap(MapRef::from(branch)),
        Kind::Array => Out::YArray(ArrayRef::from(branch)),
        // XML text has formatted text (and maybe attributes); an element or a fragment has
        // children (and maybe attributes).
        Kind::Xml => match TextRef::from(branch).diff(txn, YChange::identity).first() {
            Some(chunk) if matches!(chunk.insert, Out::Any(_)) => {
                Out::YXmlText(XmlTextRef::from(branch))
            }
            _ => Out::YXmlElement(XmlElementRef::from(branch)),
        },
        Kind::Other => return None,
    }))
}

struct Walk {
    limits: Limits,
    scan: Scan,
    stack: Vec<(Node, usize)>,
}

impl Walk {
    fn run<T: ReadTxn>(&mut self, txn: &T) {
        while let Some((node, depth)) = self.stack.pop() {
            if depth > self.limits.max_depth {
                self.scan.too_deep += 1;
                continue;
            }
            if self.scan.values >= self.limits.max_values as u64 {
                self.scan.truncated = true;
                return;
            }
            self.scan.values += 1;
            let read = match node {
                Node::Any(any) => self.any(any, depth),
                Node::Out(out) => self.out(txn, out, depth),
            };
            if !read {
                self.scan.truncated = true;
                return;
            }
        }
    }

    /// Reads one string; `false` when it would pass the byte cap (then nothing of it is read).
    fn text(&mut self, s: &str) -> bool {
        if self.scan.bytes + s.len() as u64 > self.limits.max_bytes as u64 {
            return false;
        }
        self.scan.bytes += s.len() as u64;
        let (refs, max, mut dropped) = (&mut self.scan.refs, self.limits.max_assets, 0);
        for_each_ref(s, |id| {
            if let Some(n) = refs.get_mut(id) {
                *n = n.saturating_add(1);
            } else if refs.len() < max {
                refs.insert(id.to_owned(), 1);
            } else {
                dropped += 1;
            }
        });
        self.scan.dropped += dropped;
        true
    }

    fn push_any(&mut self, any: Any, depth: usize) {
        self.stack.push((Node::Any(any), depth));
    }

    fn any(&mut self, any: Any, depth: usize) -> bool {
        match any {
            Any::String(s) => return self.text(&s),
            Any::Array(items) => {
                for item in items.iter().rev() {
                    self.push_any(item.clone(), depth + 1);
                }
            }
            Any::Map(map) => {
                let mut entries: Vec<(&String, &Any)> = map.iter().collect();
                entries.sort_by(|a, b| b.0.cmp(a.0));
                for (_, value) in entries {
                    self.push_any(value.clone(), depth + 1);
                }
            }
            _ => {}
        }
        true
    }

    fn out<T: ReadTxn>(&mut self, txn: &T, out: Out, depth: usize) -> bool {
        match out {
            Out::Any(any) => return self.any(any, depth),
            Out::YText(t) => return self.formatted(txn, &t, depth),
            Out::YXmlText(t) => {
                self.attributes(t.attributes(txn).collect(), depth);
                return self.formatted(txn, &t, depth);
            }
            Out::YMap(m) => {
                let mut entries: Vec<(&str, Out)> = m.iter(txn).collect();
                entries.sort_by(|a, b| b.0.cmp(a.0));
                for (_, value) in entries {
                    self.stack.push((Node::Out(value), depth + 1));
                }
            }
            Out::YArray(a) => self.children(a.iter(txn).collect(), depth),
            Out::YXmlElement(x) => {
                let children = AsRef::<ArrayRef>::as_ref(&x).iter(txn).collect();
                self.children(children, depth);
                self.attributes(x.attributes(txn).collect(), depth);
            }
            Out::YXmlFragment(f) => {
                self.children(AsRef::<ArrayRef>::as_ref(&f).iter(txn).collect(), depth)
            }
            // Subdocuments are documents of their own; an untyped nested branch has no content
            // this walk can read.
            _ => {}
        }
        true
    }

    fn children(&mut self, children: Vec<Out>, depth: usize) {
        for child in children.into_iter().rev() {
            self.stack.push((Node::Out(child), depth + 1));
        }
    }

    fn attributes(&mut self, mut attributes: Vec<(&str, Out)>, depth: usize) {
        attributes.sort_by(|a, b| b.0.cmp(a.0));
        for (_, value) in attributes {
            self.stack.push((Node::Out(value), depth + 1));
        }
    }

    /// A text with its formatting: its strings read as one (formatting does not cut a
    /// reference in two; an embed does), embeds and nested types visited, and each formatting
    /// value (a link's address, say) read once per stretch it covers.
    fn formatted<T: ReadTxn, X: Text>(&mut self, txn: &T, text: &X, depth: usize) -> bool {
        // The content length, before the diff copies it.
        let remaining = (self.limits.max_bytes as u64).saturating_sub(self.scan.bytes);
        if u64::from(text.len(txn)) > remaining {
            return false;
        }
        let mut run = String::new();
        let mut previous: Option<Box<Attrs>> = None;
        let mut inserts = Vec::new();
        for chunk in text.diff(txn, YChange::identity) {
            match chunk.insert {
                Out::Any(Any::String(s)) => run.push_str(&s),
                other => {
                    if !self.text(&std::mem::take(&mut run)) {
                        return false;
                    }
                    inserts.push(other);
                }
            }
            if let Some(attrs) = &chunk.attributes {
                for (key, value) in attrs.iter() {
                    let same = previous.as_ref().and_then(|p| p.get(key)) == Some(value);
                    if !same && !matches!(value, Any::Null) {
                        inserts.push(Out::Any(value.clone()));
                    }
                }
            }
            previous = chunk.attributes;
        }
        if !self.text(&run) {
            return false;
        }
        self.children(inserts, depth);
        true
    }
}

/// A short description of a scan for logs: how many ids and references, and which caps cut it.
pub fn describe(scan: &Scan) -> String {
    let mut s = format!(
        "{} assets, {} references",
        scan.refs.len(),
        scan.refs.values().sum::<u64>()
    );
    if scan.truncated {
        let _ = write!(
            s,
            ", cut after {} values and {} bytes",
            scan.values, scan.bytes
        );
    }
    if scan.too_deep > 0 {
        let _ = write!(s, ", {} values too deep", scan.too_deep);
    }
    if scan.dropped > 0 {
        let _ = write!(s, ", {} references past the id cap", scan.dropped);
    }
    s
}

#[cfg(test)]
mod tests;
