//! What changed between two states of a document, root by root: character diffs of texts,
//! item diffs of arrays, key changes of maps, and before/after renderings of the rest.

use super::myers::{script, Run};
use super::{read_root, root_kind, root_names, state_at, HistoryError, Kind};
use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use std::collections::{BTreeMap, BTreeSet};
use yrs::{Doc, Transact};

/// The changes between two states of a document. Only roots whose content changed appear; an
/// empty root counts as missing, since roots cannot be deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    /// Changed roots, sorted by name.
    pub roots: Vec<RootDiff>,
}

impl Diff {
    /// Whether the two states have the same content.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// The change of one root type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootDiff {
    /// Root type name.
    pub root: String,
    /// What changed, serialized inline and tagged with `kind`.
    #[serde(flatten)]
    pub change: Change,
}

/// What changed in a root, by the root's kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Change {
    /// A text, as Quill-delta-like ops over UTF-16 code units (as in JavaScript and in
    /// [`crate::document`] edits).
    Text {
        /// Ops turning the old text into the new one; no trailing retain.
        ops: Vec<TextOp>,
        /// Code units inserted.
        inserted: usize,
        /// Code units deleted.
        deleted: usize,
        /// Whether the ops are one range from the common prefix to the common suffix, because
        /// the minimal diff was too costly to find (see [`super::MAX_EDIT_DISTANCE`]).
        coarse: bool,
    },
    /// A map's keys, with plain JSON values.
    Map {
        /// Keys only in the new state, with their values.
        added: BTreeMap<String, Value>,
        /// Keys only in the old state, with their values.
        removed: BTreeMap<String, Value>,
        /// Keys in both with different values.
        changed: BTreeMap<String, KeyChange>,
    },
    /// An array, as ops over its items (plain JSON values).
    Array {
        /// Ops turning the old items into the new ones; no trailing retain.
        ops: Vec<ArrayOp>,
        /// Items inserted.
        inserted: usize,
        /// Items deleted.
        deleted: usize,
        /// As for texts.
        coarse: bool,
    },
    /// An XML fragment, rendered as XML strings.
    Xml {
        /// Old rendering.
        before: Value,
        /// New rendering.
        after: Value,
    },
    /// Anything else, including a root whose kind differs between the states.
    Other {
        /// Old rendering.
        before: Value,
        /// New rendering.
        after: Value,
    },
}

/// One op of a text diff; serialized as `{"retain": n}`, `{"insert": "…"}` or `{"delete": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextOp {
    /// Keeps this many code units.
    Retain(usize),
    /// Inserts this text.
    Insert(String),
    /// Deletes this text, which the old state had at this position.
    Delete(String),
}

/// One op of an array diff; serialized as `{"retain": n}`, `{"insert": [...]}` or
/// `{"delete": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrayOp {
    /// Keeps this many items.
    Retain(usize),
    /// Inserts these items.
    Insert(Vec<Value>),
    /// Deletes these items, which the old state had at this position.
    Delete(Vec<Value>),
}

/// A map key whose value changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyChange {
    /// Old value.
    pub before: Value,
    /// New value.
    pub after: Value,
}

/// The changes from one full document state to another (Yjs v1 updates).
pub fn diff(before_state: &[u8], after_state: &[u8]) -> Result<Diff, HistoryError> {
    let before = state_at(Some(before_state), [])?;
    let after = state_at(Some(after_state), [])?;
    Ok(diff_docs(&before, &after))
}

/// The changes from one document to another.
pub fn diff_docs(before: &Doc, after: &Doc) -> Diff {
    let (b, a) = (before.transact(), after.transact());
    let names: BTreeSet<String> = root_names(&b).into_iter().chain(root_names(&a)).collect();
    let mut roots = Vec::new();
    for name in names {
        // A root missing (or empty and untyped) on one side is read as empty of the other
        // side's kind.
        let (old_kind, new_kind) = match (root_kind(&b, &name), root_kind(&a, &name)) {
            (None, None) => continue,
            (Some(k), None) | (None, Some(k)) => (k, k),
            (Some(old), Some(new)) => (old, new),
        };
        let old = read_root(&b, &name, old_kind);
        let new = read_root(&a, &name, new_kind);
        if old == new {
            continue;
        }
        let change = match (old_kind == new_kind, old_kind, old, new) {
            (true, Kind::Text, Value::String(old), Value::String(new)) => text_change(&old, &new),
            (true, Kind::Map, Value::Object(old), Value::Object(new)) => map_change(old, new),
            (true, Kind::Array, Value::Array(old), Value::Array(new)) => array_change(old, new),
            (true, Kind::Xml, before, after) => Change::Xml { before, after },
            (_, _, before, after) => Change::Other { before, after },
        };
        roots.push(RootDiff { root: name, change });
    }
    Diff { roots }
}

fn utf16_len(chars: &[char]) -> usize {
    chars.iter().map(|c| c.len_utf16()).sum()
}

fn text_change(old: &str, new: &str) -> Change {
    // Diffing characters rather than UTF-16 units never splits a surrogate pair; lengths are
    // still reported in UTF-16 units.
    let a: Vec<char> = old.chars().collect();
    let b: Vec<char> = new.chars().collect();
    let (runs, coarse) = script(&a, &b);
    let (mut i, mut j, mut inserted, mut deleted) = (0, 0, 0, 0);
    let ops = runs
        .into_iter()
        .map(|run| match run {
            Run::Equal(n) => {
                let op = TextOp::Retain(utf16_len(&a[i..i + n]));
                (i, j) = (i + n, j + n);
                op
            }
            Run::Insert(n) => {
                inserted += utf16_len(&b[j..j + n]);
                j += n;
                TextOp::Insert(b[j - n..j].iter().collect())
            }
            Run::Delete(n) => {
                deleted += utf16_len(&a[i..i + n]);
                i += n;
                TextOp::Delete(a[i - n..i].iter().collect())
            }
        })
        .collect();
    Change::Text {
        ops,
        inserted,
        deleted,
        coarse,
    }
}

fn array_change(old: Vec<Value>, new: Vec<Value>) -> Change {
    let (runs, coarse) = script(&old, &new);
    let (mut i, mut j, mut inserted, mut deleted) = (0, 0, 0, 0);
    let ops = runs
        .into_iter()
        .map(|run| match run {
            Run::Equal(n) => {
                (i, j) = (i + n, j + n);
                ArrayOp::Retain(n)
            }
            Run::Insert(n) => {
                (inserted, j) = (inserted + n, j + n);
                ArrayOp::Insert(new[j - n..j].to_vec())
            }
            Run::Delete(n) => {
                (deleted, i) = (deleted + n, i + n);
                ArrayOp::Delete(old[i - n..i].to_vec())
            }
        })
        .collect();
    Change::Array {
        ops,
        inserted,
        deleted,
        coarse,
    }
}

fn map_change(mut old: JsonMap<String, Value>, new: JsonMap<String, Value>) -> Change {
    let (mut added, mut changed) = (BTreeMap::new(), BTreeMap::new());
    for (key, after) in new {
        match old.remove(&key) {
            None => {
                added.insert(key, after);
            }
            Some(before) if before != after => {
                changed.insert(key, KeyChange { before, after });
            }
            Some(_) => {}
        }
    }
    Change::Map {
        added,
        removed: old.into_iter().collect(),
        changed,
    }
}
