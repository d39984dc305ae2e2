//! Documents without a Yjs library: render the root types as plain JSON, and apply JSON edit
//! operations. No I/O; the result of an edit is a Yjs update for the room to apply.

pub(crate) mod render;

pub use render::{any_to_json, render_json, MAX_DEPTH, TRUNCATED};

use render::{json_within, root_kind, Kind};
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
    /// An operation is wrong whatever the document holds ([`check_edits`]): its path is not a
    /// root's name followed by keys and indices, a value nests too deep for its path, or the
    /// request inserts more than [`MAX_INSERT_BYTES`].
    #[error("operation {index}: {why}")]
    Malformed {
        /// Position of the operation in the request.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A well-formed operation does not fit the document as it is now: its target has another
    /// type, an index is past the end, a key is not there.
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

/// Most bytes of text, keys and JSON values (serialized compactly) one request may insert: as
/// much as the API's body limit lets a request carry, so over HTTP this refuses only what a body
/// could not hold anyway (but for numbers written with an exponent, which serialize longer).
/// Kept here too so that the rule holds for any caller.
pub const MAX_INSERT_BYTES: usize = crate::api::MAX_BODY_BYTES;

impl From<EditError> for crate::api::ApiError {
    /// A malformed request is 400; one that does not fit the document is a conflict with its
    /// current state (409, RFC 9110, 15.5.10), resolved by reading the document again.
    fn from(e: EditError) -> Self {
        use crate::api::ApiError;
        match e {
            EditError::Count(_) | EditError::Malformed { .. } => {
                ApiError::InvalidBody(e.to_string())
            }
            EditError::Invalid { .. } => ApiError::Conflict(e.to_string()),
            EditError::State(_) => ApiError::Internal,
        }
    }
}

/// Checks what is wrong with `edits` whatever the document holds: 1 to [`MAX_OPS`]
/// operations; each path a root's name, then map keys (strings) and array indices (integers a
/// Yjs array can hold); each value nesting at most as deep as its path leaves room for under
/// [`MAX_DEPTH`] (so that everything edits write renders whole); at most [`MAX_INSERT_BYTES`]
/// of text, keys and values in all. [`apply_edits`] checks it first; the worker checks it too,
/// so that a malformed request never wakes a room.
pub fn check_edits(edits: &Edits) -> Result<(), EditError> {
    if edits.ops.is_empty() || edits.ops.len() > MAX_OPS {
        return Err(EditError::Count(edits.ops.len()));
    }
    let mut budget = MAX_INSERT_BYTES;
    for (index, op) in edits.ops.iter().enumerate() {
        check_op(op, &mut budget).map_err(|why| EditError::Malformed { index, why })?;
    }
    Ok(())
}

fn check_op(op: &EditOp, budget: &mut usize) -> Result<(), String> {
    let path = match op {
        EditOp::MapSet { path, .. }
        | EditOp::MapDelete { path, .. }
        | EditOp::TextInsert { path, .. }
        | EditOp::TextDelete { path, .. }
        | EditOp::ArrayPush { path, .. }
        | EditOp::ArrayInsert { path, .. }
        | EditOp::ArrayDelete { path, .. } => path,
    };
    check_path(path)?;
    // A value goes in at its path's depth (a root is level 1, as in [`render`]), so it may
    // nest `MAX_DEPTH - level` levels of its own. Checked before anything serializes it:
    // serializing recurses once per level.
    let room = MAX_DEPTH.saturating_sub(path.len());
    let value = |v: &Value, budget: &mut usize| {
        if !json_within(v, room) {
            return Err(format!(
                "the value nests more than {room} levels: at this path it would be deeper than \
                 {MAX_DEPTH} in the document"
            ));
        }
        spend(budget, v.to_string().len())
    };
    match op {
        EditOp::MapSet { key, value: v, .. } => {
            spend(budget, key.len())?;
            value(v, budget)
        }
        EditOp::TextInsert { text, .. } => spend(budget, text.len()),
        EditOp::ArrayPush { values, .. } | EditOp::ArrayInsert { values, .. } => {
            values.iter().try_for_each(|v| value(v, budget))
        }
        EditOp::MapDelete { .. } | EditOp::TextDelete { .. } | EditOp::ArrayDelete { .. } => Ok(()),
    }
}

/// A path is a root's name, then map keys (strings) and array indices (integers a Yjs array
/// can hold: 0 to 2^32 - 1).
fn check_path(path: &[Value]) -> Result<(), String> {
    let (root, rest) = path
        .split_first()
        .ok_or_else(|| "path is empty: it starts with a root type's name".to_string())?;
    if root.as_str().is_none_or(str::is_empty) {
        return Err("path[0] must be the name of a root type".into());
    }
    for (i, seg) in rest.iter().enumerate() {
        let fits = match seg {
            Value::String(_) => true,
            Value::Number(n) => n.as_u64().is_some_and(|n| u32::try_from(n).is_ok()),
            _ => false,
        };
        if !fits {
            return Err(format!(
                "path element {} ({seg}) is neither a key nor an index from 0 to {}",
                i + 1,
                u32::MAX
            ));
        }
    }
    Ok(())
}

/// Applies `edits` on a copy of `doc`'s state, as client `client_id`, and returns the update
/// they make. `doc` itself is not changed: the caller applies the update through the room, so
/// it is stored and broadcast like any other.
///
/// A malformed request is refused first ([`check_edits`]). An operation is refused
/// ([`EditError::Invalid`]) when it does not fit the document: its target exists with another
/// type (a text op on a map root, say, whether the root's type was declared or is inferred from
/// content received through updates), an index is past the end, a key is not there.
pub fn apply_edits(doc: &Doc, edits: &Edits, client_id: u64) -> Result<Vec<u8>, EditError> {
    check_edits(edits)?;
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

/// Takes `bytes` from what the request may still insert.
fn spend(budget: &mut usize, bytes: usize) -> Result<(), String> {
    *budget = budget.checked_sub(bytes).ok_or_else(|| {
        format!("the request inserts more than {MAX_INSERT_BYTES} bytes of text and values")
    })?;
    Ok(())
}

/// A JSON value of an edit as a yrs value (its depth was checked by [`check_edits`]).
fn json_to_any(v: &Value) -> Result<Any, String> {
    Any::from_json(&v.to_string()).map_err(|e| format!("value is not representable: {e}"))
}

enum Target {
    Text(TextRef),
    Map(MapRef),
    Array(ArrayRef),
}

/// The kind of a nested value, for messages.
fn out_kind(out: &Out) -> Kind {
    match out {
        Out::YText(_) => Kind::Text,
        Out::YMap(_) => Kind::Map,
        Out::YArray(_) => Kind::Array,
        Out::YXmlElement(_) | Out::YXmlFragment(_) | Out::YXmlText(_) => Kind::Xml,
        _ => Kind::Other,
    }
}

/// The shared type of `kind` (text, map or array) that `path` leads to. A root that does not
/// exist yet is made; one that exists must already be of the kind the path needs, since
/// writing another kind's content into a shared type corrupts it for every client (yrs would
/// take a text insert into a map root as list items of the map).
fn resolve(txn: &mut TransactionMut, path: &[Value], kind: Kind) -> Result<Target, String> {
    let (root, rest) = path
        .split_first()
        .ok_or_else(|| "path is empty: it starts with a root type's name".to_string())?;
    let root = root
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "path[0] must be the name of a root type".to_string())?;
    // A nested path walks maps and arrays from a root whose type the next segment implies.
    let root_is = match rest.first() {
        None => kind,
        Some(Value::String(_)) => Kind::Map,
        Some(Value::Number(_)) => Kind::Array,
        Some(other) => {
            return Err(format!(
                "path element {other} is neither a key nor an index"
            ))
        }
    };
    // Declared roots have their type; a root only received through updates has its type
    // inferred from its content, as rendering does; an empty one can become anything.
    if let Some(found) = root_kind(&*txn, root) {
        if found != root_is {
            return Err(format!(
                "root {root:?} is {}, not {}",
                found.name(),
                root_is.name()
            ));
        }
    }
    let mut current = match root_is {
        Kind::Text => Out::YText(txn.get_or_insert_text(root)),
        Kind::Array => Out::YArray(txn.get_or_insert_array(root)),
        _ => Out::YMap(txn.get_or_insert_map(root)),
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
        (other, _) => Err(format!(
            "the path leads to {}, not {}",
            out_kind(&other).name(),
            kind.name()
        )),
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
    use crate::api::ApiError;
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
        let server = replica(&client);
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
        let server = replica(&client);
        assert_eq!(
            render_json(&server),
            json!({"notes": "hi", "list": [1.0], "map": {"k": "v"}})
        );
    }

    /// A server replica of `client`: built from updates only, so no root has a declared type.
    pub(super) fn replica(client: &Doc) -> Doc {
        let server = Doc::with_client_id(1);
        let state = client
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        server
    }

    /// One op of each kind aimed at `path`.
    fn ops_at(path: Value) -> [(Kind, Value); 7] {
        [
            (
                Kind::Text,
                json!({"op": "text.insert", "path": path, "index": 0, "text": "x"}),
            ),
            (
                Kind::Text,
                json!({"op": "text.delete", "path": path, "index": 0, "length": 0}),
            ),
            (
                Kind::Map,
                json!({"op": "map.set", "path": path, "key": "k", "value": 1}),
            ),
            (
                Kind::Map,
                json!({"op": "map.delete", "path": path, "key": "k"}),
            ),
            (
                Kind::Array,
                json!({"op": "array.push", "path": path, "values": [1]}),
            ),
            (
                Kind::Array,
                json!({"op": "array.insert", "path": path, "index": 0, "values": [1]}),
            ),
            (
                Kind::Array,
                json!({"op": "array.delete", "path": path, "index": 0, "length": 0}),
            ),
        ]
    }

    /// Checks that every op of another kind than `kind` at `path` is refused, as the second op
    /// of its request (after one that would succeed), and that nothing is applied.
    fn only_ops_of_kind_apply(doc: &Doc, path: Value, kind: Kind) {
        let before = render_json(doc);
        let fine = json!({"op": "map.set", "path": ["elsewhere"], "key": "k", "value": 1});
        for (op_kind, op) in ops_at(path.clone()) {
            if op_kind == kind {
                continue;
            }
            let err = apply(doc, json!({"ops": [fine, op]})).unwrap_err();
            assert!(
                matches!(&err, EditError::Invalid { index: 1, why } if why.contains(kind.name())),
                "{op}: {err}"
            );
            assert_eq!(render_json(doc), before, "{op} changed the document");
        }
    }

    #[test]
    fn an_operation_on_a_root_of_another_type_is_refused() {
        use yrs::{XmlElementPrelim, XmlFragment};
        let client = Doc::with_client_id(7);
        {
            let mut txn = client.transact_mut();
            txn.get_or_insert_text("t").insert(&mut txn, 0, "hi");
            txn.get_or_insert_map("m").insert(&mut txn, "k", "v");
            txn.get_or_insert_array("a").push_back(&mut txn, 1);
            txn.get_or_insert_xml_fragment("x")
                .push_back(&mut txn, XmlElementPrelim::empty("p"));
        }
        // Both a replica where the roots' types are inferred from their content, and the
        // client's own document, where they are declared.
        for doc in [replica(&client), client] {
            only_ops_of_kind_apply(&doc, json!(["t"]), Kind::Text);
            only_ops_of_kind_apply(&doc, json!(["m"]), Kind::Map);
            only_ops_of_kind_apply(&doc, json!(["a"]), Kind::Array);
            for (_, op) in ops_at(json!(["x"])) {
                let err = apply(&doc, json!({"ops": [op]})).unwrap_err();
                assert!(
                    matches!(&err, EditError::Invalid { index: 0, why } if why.contains("XML")),
                    "{err}"
                );
            }
            // A nested path implies its root's type (a key: a map; an index: an array).
            for (path, why) in [
                (json!(["t", "k"]), "root \"t\" is a text, not a map"),
                (json!(["t", 0]), "root \"t\" is a text, not an array"),
                (json!(["a", "k"]), "root \"a\" is an array, not a map"),
                (json!(["m", 0]), "root \"m\" is a map, not an array"),
            ] {
                let op = json!({"op": "map.set", "path": path, "key": "k", "value": 1});
                let err = apply(&doc, json!({"ops": [op]})).unwrap_err();
                assert_eq!(
                    err,
                    EditError::Invalid {
                        index: 0,
                        why: why.into()
                    }
                );
            }
            // The ops that match still apply.
            apply(
                &doc,
                json!({"ops": [
                    {"op": "text.insert", "path": ["t"], "index": 2, "text": "!"},
                    {"op": "map.set", "path": ["m"], "key": "j", "value": 2},
                    {"op": "array.push", "path": ["a"], "values": [2]}
                ]}),
            )
            .unwrap();
            let rendered = render_json(&doc);
            assert_eq!(rendered["t"], json!("hi!"));
            assert_eq!(rendered["m"], json!({"k": "v", "j": 2.0}));
            assert_eq!(rendered["a"], json!([1.0, 2.0]));
        }
    }

    #[test]
    fn a_root_made_by_an_operation_keeps_its_type_for_the_rest_of_the_request() {
        let doc = Doc::with_client_id(1);
        let err = apply(
            &doc,
            json!({"ops": [
                {"op": "text.insert", "path": ["new"], "index": 0, "text": "x"},
                {"op": "array.push", "path": ["new"], "values": [1]}
            ]}),
        )
        .unwrap_err();
        assert!(matches!(err, EditError::Invalid { index: 1, .. }), "{err}");
        assert_eq!(render_json(&doc), json!({}));
    }

    #[test]
    fn an_operation_on_a_nested_type_of_another_type_is_refused() {
        let client = Doc::with_client_id(7);
        {
            let mut txn = client.transact_mut();
            let board = txn.get_or_insert_map("board");
            board.insert(&mut txn, "node", yrs::MapPrelim::default());
            board.insert(&mut txn, "label", yrs::TextPrelim::new("draft"));
            board.insert(&mut txn, "list", yrs::ArrayPrelim::default());
            board.insert(&mut txn, "plain", 5);
            let rows = txn.get_or_insert_array("rows");
            rows.push_back(&mut txn, yrs::MapPrelim::default());
            rows.push_back(&mut txn, yrs::TextPrelim::new("row"));
        }
        let server = replica(&client);
        only_ops_of_kind_apply(&server, json!(["board", "node"]), Kind::Map);
        only_ops_of_kind_apply(&server, json!(["board", "label"]), Kind::Text);
        only_ops_of_kind_apply(&server, json!(["board", "list"]), Kind::Array);
        only_ops_of_kind_apply(&server, json!(["rows", 0]), Kind::Map);
        only_ops_of_kind_apply(&server, json!(["rows", 1]), Kind::Text);
        // A plain value is no shared type at all.
        let op = json!({"op": "map.set", "path": ["board", "plain"], "key": "k", "value": 1});
        let err = apply(&server, json!({"ops": [op]})).unwrap_err();
        assert_eq!(
            err,
            EditError::Invalid {
                index: 0,
                why: "the path leads to a value of another type, not a map".into()
            }
        );
        apply(
            &server,
            json!({"ops": [
                {"op": "map.set", "path": ["rows", 0], "key": "k", "value": 1},
                {"op": "text.insert", "path": ["rows", 1], "index": 3, "text": "!"},
                {"op": "array.push", "path": ["board", "list"], "values": ["x"]}
            ]}),
        )
        .unwrap();
        let rendered = render_json(&server);
        assert_eq!(rendered["rows"], json!([{"k": 1.0}, "row!"]));
        assert_eq!(rendered["board"]["list"], json!(["x"]));
    }

    /// `[[…[leaf]…]]`, `levels` arrays deep (0: `leaf` itself).
    fn nested(levels: usize, leaf: Value) -> Value {
        (0..levels).fold(leaf, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn values_may_not_nest_past_the_rendering_bound() {
        let client = Doc::with_client_id(7);
        client.get_or_insert_map("m").insert(
            &mut client.transact_mut(),
            "node",
            yrs::MapPrelim::default(),
        );
        let doc = replica(&client);
        // Into a root (level 1), a value may nest 63 levels: its deepest array is at 64.
        let set = |path: Value, value: Value| json!({"ops": [{"op": "map.set", "path": path, "key": "v", "value": value}]});
        apply(&doc, set(json!(["m"]), nested(MAX_DEPTH - 1, json!(1)))).unwrap();
        let err = apply(&doc, set(json!(["m"]), nested(MAX_DEPTH, json!(1)))).unwrap_err();
        assert!(
            matches!(&err, EditError::Malformed { index: 0, why } if why.contains("63 levels"))
        );
        // One level further down, one level less.
        apply(
            &doc,
            set(json!(["m", "node"]), nested(MAX_DEPTH - 2, json!(1))),
        )
        .unwrap();
        assert!(apply(
            &doc,
            set(json!(["m", "node"]), nested(MAX_DEPTH - 1, json!(1)))
        )
        .is_err());
        // Array items too, each on its own; serde_json parses up to 128 levels.
        let push = |values: Value| json!({"ops": [{"op": "array.insert", "path": ["l"], "index": 0, "values": values}]});
        apply(&doc, push(json!([1, nested(MAX_DEPTH - 2, json!({}))]))).unwrap();
        assert!(apply(&doc, push(json!([1, nested(MAX_DEPTH - 1, json!({}))]))).is_err());
        let deep: Edits = serde_json::from_str(&format!(
            r#"{{"ops": [{{"op": "array.push", "path": ["l"], "values": [{}1{}]}}]}}"#,
            "[".repeat(120),
            "]".repeat(120)
        ))
        .unwrap();
        assert!(apply_edits(&doc, &deep, 4242).is_err());
        // What was accepted renders whole.
        let rendered = serde_json::to_string(&render_json(&doc)).unwrap();
        assert!(!rendered.contains(TRUNCATED), "{rendered}");
    }

    #[test]
    fn a_request_inserts_at_most_its_byte_budget() {
        let doc = Doc::with_client_id(1);
        let half = "x".repeat(MAX_INSERT_BYTES / 2);
        let err = apply(
            &doc,
            json!({"ops": [
                {"op": "text.insert", "path": ["t"], "index": 0, "text": half},
                {"op": "map.set", "path": ["m"], "key": "k", "value": half}
            ]}),
        )
        .unwrap_err();
        assert!(
            matches!(err, EditError::Malformed { index: 1, .. }),
            "{err}"
        );
        assert_eq!(render_json(&doc), json!({}));
        apply(
            &doc,
            json!({"ops": [
                {"op": "text.insert", "path": ["t"], "index": 0, "text": half},
                {"op": "text.insert", "path": ["t"], "index": 0, "text": half}
            ]}),
        )
        .unwrap();
    }

    /// Malformed whatever the document holds: 400, by the check and by `apply_edits` alike.
    #[test]
    fn malformed_requests_are_refused_by_the_check_and_by_apply_alike() {
        let doc = Doc::with_client_id(1);
        let long = "x".repeat(MAX_INSERT_BYTES / 2 + 1);
        for bad in [
            json!({"ops": []}),
            json!({"ops": [{"op": "text.insert", "path": [], "index": 0, "text": "x"}]}),
            json!({"ops": [{"op": "text.insert", "path": [""], "index": 0, "text": "x"}]}),
            json!({"ops": [{"op": "text.insert", "path": [0], "index": 0, "text": "x"}]}),
            json!({"ops": [{"op": "map.set", "path": ["m", true], "key": "k", "value": 1}]}),
            json!({"ops": [{"op": "map.set", "path": ["m", -1], "key": "k", "value": 1}]}),
            json!({"ops": [{"op": "map.set", "path": ["m", 4294967296u64], "key": "k", "value": 1}]}),
            json!({"ops": [{"op": "map.set", "path": ["m"], "key": "k", "value": nested(MAX_DEPTH, json!(1))}]}),
            json!({"ops": [{"op": "array.push", "path": ["a"], "values": [nested(MAX_DEPTH, json!(1))]}]}),
            json!({"ops": [
                {"op": "text.insert", "path": ["t"], "index": 0, "text": long},
                {"op": "text.insert", "path": ["t"], "index": 0, "text": long}
            ]}),
        ] {
            let e = edits(bad.clone());
            let refused = check_edits(&e).unwrap_err();
            assert_eq!(ApiError::from(refused.clone()).status(), 400, "{bad}");
            assert_eq!(
                apply_edits(&doc, &e, 7).unwrap_err(),
                refused,
                "the room refuses {bad} the same"
            );
        }
        let many = json!({"ops": vec![json!({"op": "map.delete", "path": ["m"], "key": "k"}); MAX_OPS + 1]});
        assert_eq!(
            ApiError::from(check_edits(&edits(many)).unwrap_err()).status(),
            400
        );
    }

    /// Well formed: they pass the check; `apply_edits` refuses them for what the document holds (409).
    #[test]
    fn what_depends_on_the_document_is_a_conflict() {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "abc");
        for conflict in [
            json!({"ops": [{"op": "map.set", "path": ["t"], "key": "k", "value": 1}]}),
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 99, "text": "x"}]}),
            json!({"ops": [{"op": "text.delete", "path": ["t"], "index": 1, "length": 9}]}),
            json!({"ops": [{"op": "map.delete", "path": ["m"], "key": "missing"}]}),
            json!({"ops": [{"op": "map.set", "path": ["m", "no-such-key"], "key": "k", "value": 1}]}),
            json!({"ops": [{"op": "array.delete", "path": ["a", 3], "index": 0, "length": 1}]}),
        ] {
            let e = edits(conflict.clone());
            assert!(check_edits(&e).is_ok(), "{conflict}");
            let refused = apply_edits(&doc, &e, 7).unwrap_err();
            assert!(
                matches!(refused, EditError::Invalid { .. }),
                "{conflict} does not fit"
            );
            assert_eq!(ApiError::from(refused).status(), 409, "{conflict}");
        }
        for fits in [
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 3, "text": "d"}]}),
            json!({"ops": [{"op": "map.set", "path": ["m"], "key": "k", "value": nested(MAX_DEPTH - 1, json!(1))}]}),
        ] {
            let e = edits(fits.clone());
            assert!(check_edits(&e).is_ok(), "{fits}");
            assert!(apply_edits(&doc, &e, 7).is_ok(), "{fits}");
        }
    }
}
