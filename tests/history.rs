//! Document history: documents rebuilt at any instant from a base state and an update log.
//! Fixed client ids, no I/O.

use serde_json::{json, Value};
use tandemx::document::render_json;
use tandemx::history::{state_at, HistoryError};
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

fn state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// `render_json` without empty roots: an emptied root is as good as none, since Yjs cannot
/// delete roots (a restore empties the roots made after the version).
fn content(doc: &Doc) -> Value {
    let Value::Object(roots) = render_json(doc) else {
        unreachable!()
    };
    let not_empty = |v: &Value| {
        !matches!(v, Value::String(s) if s.is_empty())
            && !matches!(v, Value::Object(o) if o.is_empty())
            && !matches!(v, Value::Array(a) if a.is_empty())
    };
    Value::Object(roots.into_iter().filter(|(_, v)| not_empty(v)).collect())
}

// ---- documents at any instant ----

/// Every transaction's update, in order, like a room's update log.
fn logged(doc: &Doc, edits: &[&dyn Fn(&mut yrs::TransactionMut)]) -> Vec<Vec<u8>> {
    edits
        .iter()
        .map(|edit| {
            let mut txn = doc.transact_mut();
            edit(&mut txn);
            txn.encode_update_v1()
        })
        .collect()
}

#[test]
fn documents_are_rebuilt_at_any_instant() {
    let doc = Doc::with_client_id(10);
    let text = doc.get_or_insert_text("t");
    let log = logged(
        &doc,
        &[
            &|txn| text.insert(txn, 0, "one"),
            &|txn| text.insert(txn, 3, " two"),
            &|txn| text.remove_range(txn, 0, 4),
            &|txn| text.insert(txn, 3, " three"),
        ],
    );
    let expected = ["", "one", "one two", "two", "two three"];
    for (n, want) in expected.iter().enumerate() {
        let at = state_at(None, log[..n].iter().map(Vec::as_slice)).unwrap();
        assert_eq!(content(&at), content_of(want));
    }
    // From a compacted base plus the updates after it.
    let base = state(&state_at(None, log[..2].iter().map(Vec::as_slice)).unwrap());
    let at = state_at(Some(&base), log[2..].iter().map(Vec::as_slice)).unwrap();
    assert_eq!(content(&at), json!({"t": "two three"}));
    // A gap in the log is reported rather than rendered wrong.
    let gap = [log[0].as_slice(), log[2].as_slice()];
    assert!(matches!(state_at(None, gap), Err(HistoryError::Incomplete)));
}

fn content_of(text: &str) -> Value {
    if text.is_empty() {
        json!({})
    } else {
        json!({ "t": text })
    }
}
