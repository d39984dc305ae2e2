//! Documents without a Yjs library: render the root types as plain JSON, and apply JSON edit
//! operations. No I/O; the result of an edit is a Yjs update for the room to apply.

pub(crate) mod render;

pub use render::{any_to_json, render_json, MAX_DEPTH, TRUNCATED};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayRef, Doc, Map, MapRef, OffsetKind, Options, Out, ReadTxn, StateVector, Text,
    TextRef, Transact, TransactionMut, Update, WriteTxn,
};

/// Most operations one edit request may carry.
pub const MAX_OPS: usize = 1000;

/// One JSON edit operation. `path` starts with a root type's name; further elements are map
/// keys (strings) or array indices (numbers) leading to a nested shared type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub enum EditOp {
    /// Sets `key` of the map at `path` to a JSON value.
    #[serde(rename = "map.set")]
    MapSet {
        /// Path to the map.
        path: Vec<Value>,
        /// Key to set.
        key: String,
        /// Plain JSON value.
        value: Value,
    },
    /// Deletes `key` of the map at `path`.
    #[serde(rename = "map.delete")]
    MapDelete {
        /// Path to the map.
        path: Vec<Value>,
        /// Key to delete.
        key: String,
    },
    /// Inserts `text` at `index` (UTF-16 code units, as in JavaScript) of the text at `path`.
    #[serde(rename = "text.insert")]
    TextInsert {
        /// Path to the text.
        path: Vec<Value>,
        /// Position.
        index: u32,
        /// Text to insert.
        text: String,
    },
    /// Deletes `length` code units from `index` of the text at `path`.
    #[serde(rename = "text.delete")]
    TextDelete {
        /// Path to the text.
        path: Vec<Value>,
        /// Position.
        index: u32,
        /// Number of UTF-16 code units.
        length: u32,
    },
    /// Appends values to the array at `path`.
    #[serde(rename = "array.push")]
    ArrayPush {
        /// Path to the array.
        path: Vec<Value>,
        /// Plain JSON values.
        values: Vec<Value>,
    },
    /// Inserts values at `index` of the array at `path`.
    #[serde(rename = "array.insert")]
    ArrayInsert {
        /// Path to the array.
        path: Vec<Value>,
        /// Position.
        index: u32,
        /// Plain JSON values.
        values: Vec<Value>,
    },
    /// Deletes `length` items from `index` of the array at `path`.
    #[serde(rename = "array.delete")]
    ArrayDelete {
        /// Path to the array.
        path: Vec<Value>,
        /// Position.
        index: u32,
        /// Number of items.
        length: u32,
    },
}

/// A request body of edit operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edits {
    /// Applied in order, all or nothing.
    pub ops: Vec<EditOp>,
}

/// Why edits could not be applied. Nothing is applied when any operation fails.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The request has no operations or too many.
    #[error("a request carries 1 to {MAX_OPS} operations, not {0}")]
    Count(usize),
    /// An operation's path or arguments do not fit the document.
    #[error("operation {index}: {why}")]
    Invalid {
        /// Position of the operation in the request.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// The document state could not be copied for the edit.
    #[error("document state: {0}")]
    State(String),
}

fn json_to_any(v: &Value) -> Result<Any, String> {
    Any::from_json(&v.to_string()).map_err(|e| format!("value is not representable: {e}"))
}

/// Applies `edits` on a copy of `doc`'s state, as client `client_id`, and returns the update
/// they make. `doc` itself is not changed: the caller applies the update through the room, so
/// it is stored and broadcast like any other.
pub fn apply_edits(doc: &Doc, edits: &Edits, client_id: u64) -> Result<Vec<u8>, EditError> {
    if edits.ops.is_empty() || edits.ops.len() > MAX_OPS {
        return Err(EditError::Count(edits.ops.len()));
    }
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let mut options = Options::with_client_id(yrs::ClientID::new(client_id));
    options.offset_kind = OffsetKind::Utf16;
    let scratch = Doc::with_options(options);
    let update = Update::decode_v1(&state).map_err(|e| EditError::State(e.to_string()))?;
    scratch
        .transact_mut()
        .apply_update(update)
        .map_err(|e| EditError::State(e.to_string()))?;
    let before = scratch.transact().state_vector();
    {
        let mut txn = scratch.transact_mut();
        for (index, op) in edits.ops.iter().enumerate() {
            apply_op(&mut txn, op).map_err(|why| EditError::Invalid { index, why })?;
        }
    }
    let update = scratch.transact().encode_state_as_update_v1(&before);
    Ok(update)
}

enum Target {
    Text(TextRef),
    Map(MapRef),
    Array(ArrayRef),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Map,
    Array,
}

fn resolve(txn: &mut TransactionMut, path: &[Value], kind: Kind) -> Result<Target, String> {
    let (root, rest) = path
        .split_first()
        .ok_or_else(|| "path is empty: it starts with a root type's name".to_string())?;
    let root = root
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "path[0] must be the name of a root type".to_string())?;
    if rest.is_empty() {
        return Ok(match kind {
            Kind::Text => Target::Text(txn.get_or_insert_text(root)),
            Kind::Map => Target::Map(txn.get_or_insert_map(root)),
            Kind::Array => Target::Array(txn.get_or_insert_array(root)),
        });
    }
    // A nested path walks maps and arrays from a root whose type the next segment implies.
    let mut current = match &rest[0] {
        Value::String(_) => Out::YMap(txn.get_or_insert_map(root)),
        Value::Number(_) => Out::YArray(txn.get_or_insert_array(root)),
        other => {
            return Err(format!(
                "path element {other} is neither a key nor an index"
            ))
        }
    };
    for (i, seg) in rest.iter().enumerate() {
        let next = match (&current, seg) {
            (Out::YMap(m), Value::String(k)) => m.get(txn, k),
            (Out::YArray(a), Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .and_then(|n| a.get(txn, n)),
            _ => {
                return Err(format!(
                    "path element {} ({seg}) does not match the type it indexes",
                    i + 1
                ))
            }
        };
        current = next.ok_or_else(|| format!("path element {} ({seg}) does not exist", i + 1))?;
    }
    match (current, kind) {
        (Out::YText(t), Kind::Text) => Ok(Target::Text(t)),
        (Out::YMap(m), Kind::Map) => Ok(Target::Map(m)),
        (Out::YArray(a), Kind::Array) => Ok(Target::Array(a)),
        _ => Err("the path does not lead to a shared type of the operation's kind".into()),
    }
}

fn apply_op(txn: &mut TransactionMut, op: &EditOp) -> Result<(), String> {
    match op {
        EditOp::MapSet { path, key, value } => {
            let Target::Map(m) = resolve(txn, path, Kind::Map)? else {
                unreachable!()
            };
            m.insert(txn, key.as_str(), json_to_any(value)?);
        }
        EditOp::MapDelete { path, key } => {
            let Target::Map(m) = resolve(txn, path, Kind::Map)? else {
                unreachable!()
            };
            if m.remove(txn, key).is_none() {
                return Err(format!("key {key:?} does not exist"));
            }
        }
        EditOp::TextInsert { path, index, text } => {
            let Target::Text(t) = resolve(txn, path, Kind::Text)? else {
                unreachable!()
            };
            let len = t.len(txn);
            if *index > len {
                return Err(format!("index {index} is past the end ({len})"));
            }
            t.insert(txn, *index, text);
        }
        EditOp::TextDelete {
            path,
            index,
            length,
        } => {
            let Target::Text(t) = resolve(txn, path, Kind::Text)? else {
                unreachable!()
            };
            let len = t.len(txn);
            if u64::from(*index) + u64::from(*length) > u64::from(len) {
                return Err(format!("range {index}+{length} is past the end ({len})"));
            }
            t.remove_range(txn, *index, *length);
        }
        EditOp::ArrayPush { path, values } => {
            let Target::Array(a) = resolve(txn, path, Kind::Array)? else {
                unreachable!()
            };
            for v in values {
                a.push_back(txn, json_to_any(v)?);
            }
        }
        EditOp::ArrayInsert {
            path,
            index,
            values,
        } => {
            let Target::Array(a) = resolve(txn, path, Kind::Array)? else {
                unreachable!()
            };
            let len = a.len(txn);
            if *index > len {
                return Err(format!("index {index} is past the end ({len})"));
            }
            let items = values
                .iter()
                .map(json_to_any)
                .collect::<Result<Vec<_>, _>>()?;
            a.insert_range(txn, *index, items);
        }
        EditOp::ArrayDelete {
            path,
            index,
            length,
        } => {
            let Target::Array(a) = resolve(txn, path, Kind::Array)? else {
                unreachable!()
            };
            let len = a.len(txn);
            if u64::from(*index) + u64::from(*length) > u64::from(len) {
                return Err(format!("range {index}+{length} is past the end ({len})"));
            }
            a.remove_range(txn, *index, *length);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edits(v: Value) -> Edits {
        serde_json::from_value(v).unwrap()
    }

    fn apply(doc: &Doc, v: Value) -> Result<(), EditError> {
        let update = apply_edits(doc, &edits(v), 4242)?;
        doc.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        Ok(())
    }

    #[test]
    fn edits_build_a_document_that_renders_as_json() {
        let doc = Doc::with_client_id(1);
        apply(
            &doc,
            json!({"ops": [
                {"op": "text.insert", "path": ["title"], "index": 0, "text": "Hello"},
                {"op": "text.insert", "path": ["title"], "index": 5, "text": " world"},
                {"op": "text.delete", "path": ["title"], "index": 0, "length": 1},
                {"op": "map.set", "path": ["meta"], "key": "owner", "value": "ada"},
                {"op": "map.set", "path": ["meta"], "key": "tags", "value": ["a", 1, true]},
                {"op": "array.push", "path": ["nodes"], "values": [{"id": 1}, {"id": 2}]},
                {"op": "array.insert", "path": ["nodes"], "index": 0, "values": [{"id": 0}]},
                {"op": "array.delete", "path": ["nodes"], "index": 2, "length": 1}
            ]}),
        )
        .unwrap();
        let rendered = render_json(&doc);
        assert_eq!(rendered["title"], json!("ello world"));
        assert_eq!(
            rendered["meta"],
            json!({"owner": "ada", "tags": ["a", 1.0, true]})
        );
        assert_eq!(rendered["nodes"], json!([{"id": 0.0}, {"id": 1.0}]));
    }

    #[test]
    fn an_undeclared_xml_fragment_renders_as_xml_not_as_an_array() {
        use yrs::{XmlElementPrelim, XmlFragment, XmlTextPrelim};
        let client = Doc::with_client_id(1);
        {
            let frag = client.get_or_insert_xml_fragment("prosemirror");
            let mut txn = client.transact_mut();
            let p = frag.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(&mut txn, XmlTextPrelim::new("hi"));
        }
        // The server only ever receives updates: the root has no declared type there.
        let server = Doc::new();
        let update = client
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(render_json(&server), render_json(&client));
        assert_eq!(
            render_json(&server)["prosemirror"],
            json!("<paragraph>hi</paragraph>")
        );
    }

    #[test]
    fn text_indices_count_utf16_code_units_like_javascript() {
        let doc = Doc::with_client_id(1);
        apply(
            &doc,
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 0, "text": "a😀b"}]}),
        )
        .unwrap();
        // "😀" is two UTF-16 code units: index 3 is before "b".
        apply(
            &doc,
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 3, "text": "!"}]}),
        )
        .unwrap();
        assert_eq!(render_json(&doc)["t"], json!("a😀!b"));
    }

    #[test]
    fn a_failing_operation_applies_nothing() {
        let doc = Doc::with_client_id(1);
        apply(
            &doc,
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 0, "text": "keep"}]}),
        )
        .unwrap();
        let err = apply(
            &doc,
            json!({"ops": [
                {"op": "text.insert", "path": ["t"], "index": 0, "text": "lost "},
                {"op": "text.delete", "path": ["t"], "index": 3, "length": 99}
            ]}),
        )
        .unwrap_err();
        assert!(matches!(err, EditError::Invalid { index: 1, .. }), "{err}");
        assert_eq!(render_json(&doc)["t"], json!("keep"));
        for bad in [
            json!({"ops": []}),
            json!({"ops": [{"op": "map.delete", "path": ["m"], "key": "missing"}]}),
            json!({"ops": [{"op": "text.insert", "path": [], "index": 0, "text": "x"}]}),
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 99, "text": "x"}]}),
            json!({"ops": [{"op": "map.set", "path": ["t", "nested"], "key": "k", "value": 1}]}),
        ] {
            assert!(apply(&doc, bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(render_json(&doc)["t"], json!("keep"));
    }

    #[test]
    fn nested_paths_reach_shared_types_made_by_clients() {
        // A client made a map holding a nested Y.Map and a Y.Text.
        let client = Doc::with_client_id(7);
        {
            let mut txn = client.transact_mut();
            let board = txn.get_or_insert_map("board");
            board.insert(&mut txn, "node1", yrs::MapPrelim::default());
            board.insert(&mut txn, "label", yrs::TextPrelim::new("draft"));
        }
        let server = Doc::with_client_id(1);
        let state = client
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        apply(
            &server,
            json!({"ops": [
                {"op": "map.set", "path": ["board", "node1"], "key": "x", "value": 10},
                {"op": "text.insert", "path": ["board", "label"], "index": 5, "text": " v2"}
            ]}),
        )
        .unwrap();
        let rendered = render_json(&server);
        assert_eq!(rendered["board"]["node1"], json!({"x": 10.0}));
        assert_eq!(rendered["board"]["label"], json!("draft v2"));
    }

    #[test]
    fn undeclared_root_types_are_inferred_when_rendering() {
        let client = Doc::with_client_id(7);
        {
            let mut txn = client.transact_mut();
            txn.get_or_insert_text("notes").insert(&mut txn, 0, "hi");
            txn.get_or_insert_array("list").push_back(&mut txn, 1);
            txn.get_or_insert_map("map").insert(&mut txn, "k", "v");
        }
        let server = Doc::with_client_id(1);
        let state = client
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        assert_eq!(
            render_json(&server),
            json!({"notes": "hi", "list": [1.0], "map": {"k": "v"}})
        );
    }
}
