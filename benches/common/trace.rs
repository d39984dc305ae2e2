//! Editing traces in the sequential format of `josephg/editing-traces`, replayed into a yrs
//! document as one transaction (so one Yjs update) per keystroke patch.

use flate2::read::GzDecoder;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;
use yrs::{ClientID, Doc, GetString, OffsetKind, Options, Text, TextRef, Transact, TransactionMut};

/// One edit: at `pos`, delete `del` characters, then insert `ins`. Positions count Unicode code
/// points.
#[derive(Debug, Clone, Deserialize)]
pub struct Patch(pub u32, pub u32, pub String);

#[derive(Debug, Deserialize)]
struct Txn {
    patches: Vec<Patch>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(rename = "startContent")]
    start_content: String,
    #[serde(rename = "endContent")]
    end_content: String,
    txns: Vec<Txn>,
}

/// A sequential editing trace, flattened to its patches.
pub struct Trace {
    /// The patches in replay order (an initial insert of `startContent` first, when it is not
    /// empty). Patches that change nothing are dropped: they would produce no update.
    pub patches: Vec<Patch>,
    /// The text after every patch.
    pub end_content: String,
}

impl Trace {
    /// Reads a `.json.gz` (or plain `.json`) trace.
    pub fn load(path: &Path) -> Result<Trace, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json = if path.extension().is_some_and(|e| e == "gz") {
            let mut s = String::new();
            GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            s
        } else {
            String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?
        };
        let raw: Raw =
            serde_json::from_str(&json).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut patches = Vec::new();
        if !raw.start_content.is_empty() {
            patches.push(Patch(0, 0, raw.start_content.clone()));
        }
        for txn in raw.txns {
            // Patches of one transaction are in descending position order, so applying them one
            // after the other is exact.
            patches.extend(
                txn.patches
                    .into_iter()
                    .filter(|p| p.1 > 0 || !p.2.is_empty()),
            );
        }
        // The replay counts positions in UTF-16 units (yrs has no code-point offsets); they equal
        // code points as long as no character lies outside the Basic Multilingual Plane.
        let astral = |s: &str| s.chars().any(|c| c as u32 > 0xFFFF);
        if astral(&raw.end_content) || patches.iter().any(|p| astral(&p.2)) {
            return Err(format!(
                "{}: characters outside the BMP are not supported by this replay",
                path.display()
            ));
        }
        Ok(Trace {
            patches,
            end_content: raw.end_content,
        })
    }
}

/// Name of the text every workload edits.
pub const TEXT: &str = "t";

/// A new document whose text offsets count UTF-16 units (code points for BMP-only traces).
pub fn new_doc(client_id: u64) -> Doc {
    let mut options = Options::with_client_id(ClientID::new(client_id));
    options.offset_kind = OffsetKind::Utf16;
    Doc::with_options(options)
}

/// A document that replays patches and hands back the update of each.
pub struct Replayer {
    doc: Doc,
    text: TextRef,
}

impl Replayer {
    /// A replayer writing as `client_id` into the text named `root`.
    pub fn new(client_id: u64, root: &str) -> Replayer {
        let doc = new_doc(client_id);
        let text = doc.get_or_insert_text(root);
        Replayer { doc, text }
    }

    /// Applies one patch in its own transaction, shifted right by `offset` characters, and
    /// returns the v1 update it made.
    pub fn apply(&self, patch: &Patch, offset: u32) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.edit_in(&mut txn, patch, offset);
        txn.encode_update_v1()
    }

    /// Applies one patch in its own transaction without encoding its update.
    pub fn edit(&self, patch: &Patch, offset: u32) {
        self.edit_in(&mut self.doc.transact_mut(), patch, offset);
    }

    fn edit_in(&self, txn: &mut TransactionMut, patch: &Patch, offset: u32) {
        let pos = patch.0 + offset;
        if patch.1 > 0 {
            self.text.remove_range(txn, pos, patch.1);
        }
        if !patch.2.is_empty() {
            self.text.insert(txn, pos, &patch.2);
        }
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// The document.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }
}
