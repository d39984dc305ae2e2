//! JSON edit requests at the edge: what a request is refused for before the room sees it, and
//! what the room's refusal of the rest means.
//!
//! An edit request can fail for two different reasons. It can be malformed — an empty path, a
//! path that does not start with a root's name, a value nested too deep, more bytes than a
//! request may insert: those depend on the request alone, so [`check_edits`] refuses them here
//! (400). Or it can be well formed and not fit the document as it is now — a text operation on a
//! map, an index past the end, a key that is not there: only the room can tell, and its refusal
//! is a conflict with the document's current state (409, RFC 9110, 15.5.10), which a client
//! resolves by reading the document again, not by changing how it writes requests.

use super::ApiError;
use crate::document::render::json_within;
use crate::document::{EditOp, Edits, MAX_DEPTH, MAX_INSERT_BYTES, MAX_OPS};
use serde_json::Value;

/// Refuses (400) what is wrong with `edits` whatever the document holds. The rules are those of
/// [`crate::document::apply_edits`] that read the request only, in the same terms.
pub fn check_edits(edits: &Edits) -> Result<(), ApiError> {
    if edits.ops.is_empty() || edits.ops.len() > MAX_OPS {
        return Err(ApiError::InvalidBody(format!(
            "a request carries 1 to {MAX_OPS} operations, not {}",
            edits.ops.len()
        )));
    }
    let mut budget = MAX_INSERT_BYTES;
    for (index, op) in edits.ops.iter().enumerate() {
        check_op(op, &mut budget)
            .map_err(|why| ApiError::InvalidBody(format!("operation {index}: {why}")))?;
    }
    Ok(())
}

/// The room's refusal of edits that passed [`check_edits`]: they do not fit the document as it
/// is (409, with the room's words). Any other error passes unchanged.
pub fn edit_refusal(err: ApiError) -> ApiError {
    match err {
        ApiError::Relayed { status: 400, body } => {
            let detail = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|p| p["detail"].as_str().map(str::to_owned))
                .unwrap_or(body);
            ApiError::Conflict(detail)
        }
        other => other,
    }
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
    // Values go in at the path's depth (a root is level 1), as `apply_edits` counts it.
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

fn spend(budget: &mut usize, bytes: usize) -> Result<(), String> {
    *budget = budget.checked_sub(bytes).ok_or_else(|| {
        format!("the request inserts more than {MAX_INSERT_BYTES} bytes of text and values")
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::apply_edits;
    use serde_json::json;
    use yrs::{Doc, Text, Transact};

    fn edits(v: Value) -> Edits {
        serde_json::from_value(v).unwrap()
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |v, _| json!([v]))
    }

    /// Malformed whatever the document holds: refused here, and by the room too.
    #[test]
    fn malformed_requests_are_refused_before_the_room() {
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
            json!({"ops": [{"op": "map.set", "path": ["m"], "key": "k", "value": nested(MAX_DEPTH)}]}),
            json!({"ops": [{"op": "array.push", "path": ["a"], "values": [nested(MAX_DEPTH)]}]}),
            json!({"ops": [
                {"op": "text.insert", "path": ["t"], "index": 0, "text": long},
                {"op": "text.insert", "path": ["t"], "index": 0, "text": long}
            ]}),
        ] {
            let e = edits(bad.clone());
            assert_eq!(check_edits(&e).unwrap_err().status(), 400, "{bad}");
            assert!(
                apply_edits(&doc, &e, 7).is_err(),
                "the room refuses {bad} too"
            );
        }
        let many = json!({"ops": vec![json!({"op": "map.delete", "path": ["m"], "key": "k"}); MAX_OPS + 1]});
        assert!(check_edits(&edits(many)).is_err());
    }

    /// Well formed: passed here; the room refuses them only for what the document holds.
    #[test]
    fn what_depends_on_the_document_is_left_to_the_room() {
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
            assert!(apply_edits(&doc, &e, 7).is_err(), "{conflict} does not fit");
        }
        for fits in [
            json!({"ops": [{"op": "text.insert", "path": ["t"], "index": 3, "text": "d"}]}),
            json!({"ops": [{"op": "map.set", "path": ["m"], "key": "k", "value": nested(MAX_DEPTH - 1)}]}),
        ] {
            let e = edits(fits.clone());
            assert!(check_edits(&e).is_ok(), "{fits}");
            assert!(apply_edits(&doc, &e, 7).is_ok(), "{fits}");
        }
    }

    #[test]
    fn the_rooms_refusal_of_a_well_formed_request_is_a_conflict() {
        let problem = ApiError::InvalidBody("operation 0: index 99 is past the end (3)".into());
        let body = serde_json::to_string(&problem.problem()).unwrap();
        let e = edit_refusal(ApiError::Relayed { status: 400, body });
        assert_eq!(e.status(), 409);
        assert_eq!(e.problem().error, "conflict");
        assert_eq!(
            e.problem().detail,
            "operation 0: index 99 is past the end (3)"
        );
        // Anything else the room answers passes as it is.
        let unavailable = ApiError::Relayed {
            status: 503,
            body: "{}".into(),
        };
        assert_eq!(edit_refusal(unavailable.clone()), unavailable);
        assert_eq!(edit_refusal(ApiError::Internal), ApiError::Internal);
    }
}
