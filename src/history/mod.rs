//! Document history, the pure part: rebuild a document at any instant, compare two states,
//! make the update that restores an earlier version as a new change, and cut pages of history
//! to a byte budget. No I/O: states and updates come in as Yjs v1 bytes and the caller stores
//! and broadcasts what comes out.

mod diff;
mod myers;
mod page;

pub use diff::{diff, diff_docs, ArrayOp, Change, Diff, KeyChange, RootDiff, TextOp};
pub use myers::{MAX_DIFF_WORK, MAX_EDIT_DISTANCE};
pub use page::{base64_len, cut_page, PageCut, PAGE_BYTES};

pub(crate) use crate::document::render::{read_root, root_kind, Kind};

use crate::document::render::{out_json, text_delta, Mode};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use thiserror::Error;
use yrs::branch::{Branch, BranchPtr};
use yrs::undo::{Options as UndoOptions, UndoManager};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, Options, Origin, Out, ReadTxn, Transact, Update, WriteTxn};

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

pub(crate) fn root_names<T: ReadTxn>(txn: &T) -> Vec<String> {
    txn.root_refs().map(|(name, _)| name.to_string()).collect()
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
/// their formatting, at any depth (below [`crate::document::MAX_DEPTH`], the marker's digest
/// covers the content with its formatting).
fn fingerprint<T: ReadTxn>(txn: &T) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let names: BTreeSet<String> = root_names(txn).into_iter().collect();
    for name in names {
        let value = match root_kind(txn, &name) {
            None => continue,
            Some(Kind::Text) => txn
                .get_text(name.as_str())
                .map_or(Value::Null, |t| text_delta(txn, &t, 1)),
            Some(Kind::Map) => txn.get_map(name.as_str()).map_or(Value::Null, |m| {
                out_json(txn, &Out::YMap(m), 1, Mode::Formatted)
            }),
            Some(Kind::Array) => txn.get_array(name.as_str()).map_or(Value::Null, |a| {
                out_json(txn, &Out::YArray(a), 1, Mode::Formatted)
            }),
            Some(kind) => read_root(txn, &name, kind),
        };
        if !is_empty(&value) {
            out.insert(name, value);
        }
    }
    out
}
