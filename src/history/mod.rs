//! Document history, the pure part: rebuild a document at any instant. No I/O: states and
//! updates come in as Yjs v1 bytes.

use thiserror::Error;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Transact, Update};

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
