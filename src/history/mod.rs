//! Document history, the pure part: rebuild a document at any instant, compare two states, and
//! make the update that restores an earlier version as a new change. No I/O: states and updates
//! come in as Yjs v1 bytes and the caller stores and broadcasts what comes out.

mod diff;
mod myers;

pub use diff::{diff, diff_docs, ArrayOp, Change, Diff, KeyChange, RootDiff, TextOp};
pub use myers::{MAX_DIFF_WORK, MAX_EDIT_DISTANCE};

use crate::document::any_to_json;
use serde_json::{Map as JsonMap, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use thiserror::Error;
use yrs::branch::{Branch, BranchPtr};
use yrs::types::text::YChange;
use yrs::types::{AsPrelim, ToJson};
use yrs::undo::{Options as UndoOptions, UndoManager};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ClientID, Doc, GetString, In, Map, Options, Origin, Out, ReadTxn, Text, Transact,
    Update, WriteTxn,
};

/// Client ids are 53-bit in Yjs (a JavaScript safe integer).
const CLIENT_ID_LIMIT: u64 = 1 << 53;

/// Marks the transaction that replays the changes made since the version, so the undo manager
/// tracks that transaction and nothing else.
const REPLAY_ORIGIN: &str = "tandemx.history.replay";

/// Guid of the throwaway copy a restore works on; guids are not part of updates.
const SCRATCH_GUID: &str = "tandemx.history.scratch";

/// Why a history operation failed.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A state or update is not a valid Yjs v1 update.
    #[error("invalid update: {0}")]
    Decode(#[from] yrs::encoding::read::Error),
    /// An update could not be integrated into the document.
    #[error("update could not be applied: {0}")]
    Apply(#[from] yrs::error::UpdateError),
    /// The updates depend on changes that none of them carries.
    #[error("the updates depend on changes that are missing")]
    Incomplete,
    /// The client id for the restore does not fit Yjs's 53 bits.
    #[error("client id {0} is not below 2^53")]
    ClientId(u64),
    /// Undoing the changes since the version did not reproduce the version's content.
    #[error("the version could not be restored exactly")]
    Mismatch,
}

/// A document built from an optional full state (`base`) and then `updates` in order: the
/// document as it was at any instant of its update log. The result is for reading; it has a
/// random client id, as a fresh replica would.
pub fn state_at<'a>(
    base: Option<&[u8]>,
    updates: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Doc, HistoryError> {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        if let Some(base) = base {
            txn.apply_update(Update::decode_v1(base)?)?;
        }
        for update in updates {
            txn.apply_update(Update::decode_v1(update)?)?;
        }
        // yrs parks updates whose dependencies are missing instead of failing; a document
        // silently missing part of its content would render wrong, so say so.
        if txn.has_missing_updates() {
            return Err(HistoryError::Incomplete);
        }
    }
    Ok(doc)
}

/// Where a replay to an instant starts: after `base_seq`, the log position held by the newest
/// version taken by then (`None` without one: the empty document, position 0). The replay
/// needs every log entry after that position up to the instant; retention removes the oldest
/// entries, so `first_kept` is the oldest entry left (`None`: the log is empty) and `head` the
/// newest position ever logged. `None` when entries the replay may need are gone: their times
/// went with them, so whether they precede the instant is no longer known.
pub fn replay_start(base_seq: Option<u64>, first_kept: Option<u64>, head: u64) -> Option<u64> {
    let from = base_seq.unwrap_or(0);
    let kept = head <= from || first_kept.is_some_and(|first| first <= from + 1);
    kept.then_some(from)
}

/// The update that makes `current`'s content equal to the version's again, as a new change by
/// `client_id` that every replica holding `current`'s state can apply (history is not
/// rewritten), or `None` when the content already is the version's.
///
/// `version_state` is a full state of the same document taken earlier
/// (`encode_state_as_update_v1` against an empty state vector), so causally before `current`.
/// `client_id` must be unused by other replicas, as for any Yjs client.
///
/// This is the Yjs "revert to snapshot" recipe: replay the changes made since the version onto
/// a copy of the version while an undo manager watches, undo them, and ship what the undo did.
/// The copy keeps the version's content, so text deleted since (and garbage collected in
/// `current`) comes back. Roots created since the version end up empty: Yjs cannot delete
/// roots.
pub fn restore_update(
    current: &Doc,
    version_state: &[u8],
    client_id: u64,
) -> Result<Option<Vec<u8>>, HistoryError> {
    if client_id >= CLIENT_ID_LIMIT {
        return Err(HistoryError::ClientId(client_id));
    }
    // A fixed guid keeps this free of randomness. Formatting cleanup stays off (as this
    // constructor sets it): its deletions would be captured with the replay and undone too.
    let mut options =
        Options::with_guid_and_client_id(SCRATCH_GUID.into(), ClientID::new(client_id));
    // Undoing a deletion copies the deleted content back, so the copy must keep it.
    options.skip_gc = true;
    let scratch = Doc::with_options(options);
    {
        let mut txn = scratch.transact_mut();
        txn.apply_update(Update::decode_v1(version_state)?)?;
        if txn.has_missing_updates() {
            return Err(HistoryError::Incomplete);
        }
    }
    let version = fingerprint(&scratch.transact());
    let version_sv = scratch.transact().state_vector();
    let (since_version, current_sv, current_roots) = {
        let txn = current.transact();
        if fingerprint(&txn) == version {
            return Ok(None);
        }
        // Every root of either side, with its kind now.
        let names: BTreeSet<String> = root_names(&txn)
            .into_iter()
            .chain(root_names(&scratch.transact()))
            .collect();
        let roots: Vec<(String, Option<Kind>)> = names
            .into_iter()
            .map(|name| {
                let kind = root_kind(&txn, &name);
                (name, kind)
            })
            .collect();
        (
            txn.encode_state_as_update_v1(&version_sv),
            txn.state_vector(),
            roots,
        )
    };

    let mut undo = UndoManager::<()>::with_options(UndoOptions {
        capture_timeout_millis: 0,
        tracked_origins: HashSet::from([Origin::from(REPLAY_ORIGIN)]),
        capture_transaction: None,
        // The default clock reads the system time, which wasm32 does not have; one transaction
        // is captured, so time does not matter.
        timestamp: Arc::new(|| 0),
        init_undo_stack: Vec::new(),
        init_redo_stack: Vec::new(),
    });
    let roots: Vec<BranchPtr> = {
        // Two things keep the undo manager from seeing the replay, fixed by giving every root
        // (in the version or in `current`) a type before it: yrs reports changes only for roots
        // with a type, and a root only ever received through updates has none; and a root made
        // since the version must exist to be in scope. Root types are not encoded in updates,
        // so this changes nothing on the wire; the type (as inferred from the content, which
        // is what other replicas would declare) only serves this copy.
        let mut txn = scratch.transact_mut();
        let mut roots = Vec::with_capacity(current_roots.len());
        for (name, now) in &current_roots {
            let name = name.as_str();
            let root = match root_kind(&txn, name).or(*now) {
                Some(Kind::Text) => branch(txn.get_or_insert_text(name)),
                Some(Kind::Array) => branch(txn.get_or_insert_array(name)),
                Some(Kind::Xml) => branch(txn.get_or_insert_xml_fragment(name)),
                _ => branch(txn.get_or_insert_map(name)),
            };
            roots.push(root);
        }
        roots
    };
    for root in &roots {
        undo.expand_scope(&scratch, root);
    }
    {
        let mut txn = scratch.transact_mut_with(REPLAY_ORIGIN);
        txn.apply_update(Update::decode_v1(&since_version)?)?;
        if txn.has_missing_updates() {
            return Err(HistoryError::Incomplete);
        }
    }
    undo.undo_blocking();
    drop(undo);
    // Check the recipe's result rather than trust it: shipping an update that restores
    // something else would be worse than failing.
    if fingerprint(&scratch.transact()) != version {
        return Err(HistoryError::Mismatch);
    }
    let update = scratch.transact().encode_state_as_update_v1(&current_sv);
    Ok(Some(update))
}

fn branch<T: AsRef<Branch>>(shared: T) -> BranchPtr {
    BranchPtr::from(shared.as_ref())
}

/// What a root type holds, as far as rendering and diffing care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Map,
    Array,
    Xml,
    Other,
}

pub(crate) fn root_names<T: ReadTxn>(txn: &T) -> Vec<String> {
    txn.root_refs().map(|(name, _)| name.to_string()).collect()
}

/// The kind of root `name`; `None` when it is missing, or was only received through updates
/// and is empty, so nothing tells its type.
pub(crate) fn root_kind<T: ReadTxn>(txn: &T, name: &str) -> Option<Kind> {
    match txn.get(name)? {
        Out::YText(_) => Some(Kind::Text),
        Out::YMap(_) => Some(Kind::Map),
        Out::YArray(_) => Some(Kind::Array),
        Out::YXmlFragment(_) | Out::YXmlElement(_) | Out::YXmlText(_) => Some(Kind::Xml),
        Out::UndefinedRef(branch) => {
            let map_len = txn.get_map(name).map_or(0, |m| m.len(txn));
            if branch.len() == 0 && map_len == 0 {
                return None;
            }
            // Inferred from the content like `document::render_json` does, except that a list
            // of XML nodes is an XML fragment rather than an array.
            match Out::UndefinedRef(branch).as_prelim(txn) {
                In::Text(_) => Some(Kind::Text),
                In::XmlText(_) | In::XmlElement(_) | In::XmlFragment(_) => Some(Kind::Xml),
                In::Array(_) => match txn.get_array(name).and_then(|a| a.get(txn, 0)) {
                    Some(Out::YXmlElement(_) | Out::YXmlText(_)) => Some(Kind::Xml),
                    _ => Some(Kind::Array),
                },
                In::Map(_) => Some(Kind::Map),
                _ => Some(Kind::Other),
            }
        }
        _ => Some(Kind::Other),
    }
}

/// Root `name` read as `kind`, as plain JSON: texts and XML as strings, maps as objects, arrays
/// as arrays (nested shared types as their plain JSON, as in `render_json`).
pub(crate) fn read_root<T: ReadTxn>(txn: &T, name: &str, kind: Kind) -> Value {
    match kind {
        Kind::Text => Value::String(
            txn.get_text(name)
                .map(|t| t.get_string(txn))
                .unwrap_or_default(),
        ),
        Kind::Map => txn
            .get_map(name)
            .map_or(Value::Object(JsonMap::new()), |m| {
                any_to_json(&m.to_json(txn))
            }),
        Kind::Array => txn
            .get_array(name)
            .map_or(Value::Array(Vec::new()), |a| any_to_json(&a.to_json(txn))),
        Kind::Xml => Value::String(match txn.get(name) {
            Some(Out::YXmlElement(x)) => x.get_string(txn),
            Some(Out::YXmlText(x)) => x.get_string(txn),
            _ => txn
                .get_xml_fragment(name)
                .map(|x| x.get_string(txn))
                .unwrap_or_default(),
        }),
        Kind::Other => txn
            .get(name)
            .map_or(Value::Null, |o| any_to_json(&o.to_json(txn))),
    }
}

/// Whether a rendering is the empty value of its kind: an empty root is the same as a missing
/// one, since roots cannot be deleted.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Everything a restore must reproduce, per non-empty root: like `read_root` but texts keep
/// their formatting, at any depth.
fn fingerprint<T: ReadTxn>(txn: &T) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let names: BTreeSet<String> = root_names(txn).into_iter().collect();
    for name in names {
        let value = match root_kind(txn, &name) {
            None => continue,
            Some(Kind::Text) => txn
                .get_text(name.as_str())
                .map_or(Value::Null, |t| delta(txn, &t)),
            Some(Kind::Map) => txn
                .get_map(name.as_str())
                .map_or(Value::Null, |m| deep(txn, &Out::YMap(m))),
            Some(Kind::Array) => txn
                .get_array(name.as_str())
                .map_or(Value::Null, |a| deep(txn, &Out::YArray(a))),
            Some(kind) => read_root(txn, &name, kind),
        };
        if !is_empty(&value) {
            out.insert(name, value);
        }
    }
    out
}

/// A text's content with its formatting, in a canonical form: attributes set to null are
/// dropped and neighbouring strings with the same attributes merged, so equal content compares
/// equal however it is split into items.
fn delta<T: ReadTxn>(txn: &T, text: &yrs::TextRef) -> Value {
    let mut chunks: Vec<(Value, JsonMap<String, Value>)> = Vec::new();
    for chunk in text.diff(txn, YChange::identity) {
        let insert = deep(txn, &chunk.insert);
        let attributes: JsonMap<String, Value> = chunk
            .attributes
            .iter()
            .flat_map(|a| a.iter())
            .filter(|(_, v)| !matches!(v, Any::Null))
            .map(|(k, v)| (k.to_string(), any_to_json(v)))
            .collect();
        match (chunks.last_mut(), &insert) {
            (Some((Value::String(prev), attrs)), Value::String(s)) if *attrs == attributes => {
                prev.push_str(s)
            }
            _ => chunks.push((insert, attributes)),
        }
    }
    chunks
        .into_iter()
        .map(|(insert, attributes)| serde_json::json!({"insert": insert, "attributes": attributes}))
        .collect()
}

fn deep<T: ReadTxn>(txn: &T, out: &Out) -> Value {
    match out {
        Out::YText(t) => delta(txn, t),
        Out::YMap(m) => Value::Object(
            m.iter(txn)
                .map(|(k, v)| (k.to_string(), deep(txn, &v)))
                .collect(),
        ),
        Out::YArray(a) => Value::Array(a.iter(txn).map(|v| deep(txn, &v)).collect()),
        Out::YXmlElement(x) => Value::String(x.get_string(txn)),
        Out::YXmlFragment(x) => Value::String(x.get_string(txn)),
        Out::YXmlText(x) => Value::String(x.get_string(txn)),
        other => any_to_json(&other.to_json(txn)),
    }
}
