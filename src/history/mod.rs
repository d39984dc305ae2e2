//! Document history, the pure part: rebuild a document at any instant and compare two states.
//! No I/O: states and updates come in as Yjs v1 bytes.
mod diff;
mod myers;

pub use diff::{diff, diff_docs, ArrayOp, Change, Diff, KeyChange, RootDiff, TextOp};
pub use myers::{MAX_DIFF_WORK, MAX_EDIT_DISTANCE};

use crate::document::any_to_json;
use serde_json::{Map as JsonMap, Value};
use thiserror::Error;
use yrs::types::{AsPrelim, ToJson};
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, GetString, In, Map, Out, ReadTxn, Transact, Update};

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
