//! Document history: diffs between states, and documents rebuilt at any instant from a base
//! state and an update log. Fixed client ids, no I/O.

use serde_json::{json, Value};
use std::time::Instant;
use tandemx::document::render_json;
use tandemx::history::{diff, diff_docs, state_at, ArrayOp, Change, HistoryError, TextOp};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, Doc, Map, ReadTxn, StateVector, Text, TextPrelim, Transact, Update,
    XmlElementPrelim, XmlFragment,
};

fn state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn apply(doc: &Doc, update: &[u8]) {
    doc.transact_mut()
        .apply_update(Update::decode_v1(update).unwrap())
        .unwrap();
}

/// A server replica as the room keeps one: built from updates only (so its roots have no
/// declared type) and garbage collecting deleted content.
fn server_from(clients: &[&Doc]) -> Doc {
    let server = Doc::with_client_id(1);
    for client in clients {
        apply(&server, &state(client));
    }
    server
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

fn text_insert(doc: &Doc, root: &str, index: u32, s: &str) {
    let text = doc.get_or_insert_text(root);
    text.insert(&mut doc.transact_mut(), index, s);
}

fn text_delete(doc: &Doc, root: &str, index: u32, len: u32) {
    let text = doc.get_or_insert_text(root);
    text.remove_range(&mut doc.transact_mut(), index, len);
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

// ---- diffs ----

fn text_doc(s: &str) -> Doc {
    let doc = Doc::with_client_id(20);
    text_insert(&doc, "t", 0, s);
    doc
}

fn text_diff(before: &str, after: &str) -> Change {
    let d = diff(&state(&text_doc(before)), &state(&text_doc(after))).unwrap();
    assert_eq!(d.roots.len(), 1, "{before:?} -> {after:?}");
    d.roots[0].change.clone()
}

fn ops(change: &Change) -> Vec<TextOp> {
    match change {
        Change::Text { ops, .. } => ops.clone(),
        other => panic!("not a text change: {other:?}"),
    }
}

/// Applies text ops to `before`, checking deleted text against it.
fn patch(before: &str, ops: &[TextOp]) -> String {
    let units: Vec<u16> = before.encode_utf16().collect();
    let (mut out, mut at) = (Vec::new(), 0);
    for op in ops {
        match op {
            TextOp::Retain(n) => {
                out.extend_from_slice(&units[at..at + n]);
                at += n;
            }
            TextOp::Insert(s) => out.extend(s.encode_utf16()),
            TextOp::Delete(s) => {
                let n = s.encode_utf16().count();
                assert_eq!(String::from_utf16(&units[at..at + n]).unwrap(), *s);
                at += n;
            }
        }
    }
    out.extend_from_slice(&units[at..]);
    String::from_utf16(&out).unwrap()
}

#[test]
fn text_diffs_have_exact_ops() {
    use TextOp::{Delete, Insert, Retain};
    let cases: Vec<(&str, &str, Vec<TextOp>)> = vec![
        (
            "hello world",
            "hello big world",
            vec![Retain(6), Insert("big ".into())],
        ),
        ("hello world", "world", vec![Delete("hello ".into())]),
        (
            "the quick fox",
            "the slow fox",
            vec![Retain(4), Insert("slow".into()), Delete("quick".into())],
        ),
        (
            "one two three",
            "one 2 three four",
            vec![
                Retain(4),
                Insert("2".into()),
                Delete("two".into()),
                Retain(6),
                Insert(" four".into()),
            ],
        ),
        ("a😀b", "a😀!b", vec![Retain(3), Insert("!".into())]),
        ("😀😁", "😁", vec![Delete("😀".into())]),
        // Characters sharing a high surrogate are still whole characters in the ops.
        (
            "x😀y",
            "x😁y",
            vec![Retain(1), Insert("😁".into()), Delete("😀".into())],
        ),
    ];
    for (before, after, want) in cases {
        let change = text_diff(before, after);
        assert_eq!(ops(&change), want, "{before:?} -> {after:?}");
        assert_eq!(patch(before, &want), after);
        let Change::Text {
            inserted,
            deleted,
            coarse,
            ..
        } = change
        else {
            unreachable!()
        };
        assert!(!coarse);
        let units = |ops: &[TextOp], ins: bool| -> usize {
            ops.iter()
                .map(|op| match op {
                    Insert(s) if ins => s.encode_utf16().count(),
                    Delete(s) if !ins => s.encode_utf16().count(),
                    _ => 0,
                })
                .sum()
        };
        assert_eq!(
            (inserted, deleted),
            (units(&want, true), units(&want, false))
        );
    }
}

#[test]
fn diffs_serialize_as_documented() {
    let before = text_doc("hello world");
    let after = text_doc("hello, world");
    let meta = after.get_or_insert_map("meta");
    meta.insert(&mut after.transact_mut(), "k", "v");
    let d = diff_docs(&before, &after);
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"roots": [
            {"root": "meta", "kind": "map", "added": {"k": "v"}, "removed": {}, "changed": {}},
            {"root": "t", "kind": "text", "ops": [{"retain": 5}, {"insert": ","}],
             "inserted": 1, "deleted": 0, "coarse": false}
        ]})
    );
}

#[test]
fn map_diffs_list_added_removed_and_changed_keys() {
    let before = Doc::with_client_id(20);
    let m = before.get_or_insert_map("m");
    {
        let mut txn = before.transact_mut();
        m.insert(&mut txn, "same", 1);
        m.insert(&mut txn, "changed", "old");
        m.insert(&mut txn, "removed", true);
        m.insert(&mut txn, "nested", TextPrelim::new("abc"));
    }
    let after = server_from(&[&before]);
    apply(&after, &{
        let edit = Doc::with_client_id(21);
        apply(&edit, &state(&before));
        let m = edit.get_or_insert_map("m");
        let sv = edit.transact().state_vector();
        {
            let mut txn = edit.transact_mut();
            m.insert(&mut txn, "changed", "new");
            m.remove(&mut txn, "removed");
            m.insert(&mut txn, "added", json_any(json!({"x": [1]})));
            let Some(yrs::Out::YText(t)) = m.get(&txn, "nested") else {
                panic!("nested is a text")
            };
            t.insert(&mut txn, 3, "d");
        }
        let update = edit.transact().encode_state_as_update_v1(&sv);
        update
    });
    let d = diff(&state(&before), &state(&after)).unwrap();
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"roots": [{
            "root": "m", "kind": "map",
            "added": {"added": {"x": [1.0]}},
            "removed": {"removed": true},
            "changed": {
                "changed": {"before": "old", "after": "new"},
                "nested": {"before": "abc", "after": "abcd"}
            }
        }]})
    );
}

fn json_any(v: Value) -> Any {
    Any::from_json(&v.to_string()).unwrap()
}

#[test]
fn array_diffs_have_item_ops() {
    let before = Doc::with_client_id(20);
    let list = before.get_or_insert_array("l");
    list.insert_range(&mut before.transact_mut(), 0, [1, 2, 3, 4, 5]);
    let after = Doc::with_client_id(21);
    apply(&after, &state(&before));
    {
        let list = after.get_or_insert_array("l");
        let mut txn = after.transact_mut();
        list.remove_range(&mut txn, 0, 1);
        list.insert(&mut txn, 2, "x");
        list.push_back(&mut txn, 6);
    }
    let d = diff_docs(&before, &after);
    let Change::Array {
        ops,
        inserted,
        deleted,
        coarse,
    } = &d.roots[0].change
    else {
        panic!("not an array change: {d:?}")
    };
    assert_eq!(
        *ops,
        vec![
            ArrayOp::Delete(vec![json!(1.0)]),
            ArrayOp::Retain(2),
            ArrayOp::Insert(vec![json!("x")]),
            ArrayOp::Retain(2),
            ArrayOp::Insert(vec![json!(6.0)]),
        ]
    );
    assert_eq!((*inserted, *deleted, *coarse), (2, 1, false));
}

#[test]
fn xml_and_new_roots_appear_with_their_kind() {
    let before = Doc::with_client_id(20);
    let prose = before.get_or_insert_xml_fragment("prose");
    prose.insert(&mut before.transact_mut(), 0, XmlElementPrelim::empty("p"));
    let after = server_from(&[&before]);
    apply(&after, &{
        let edit = Doc::with_client_id(21);
        apply(&edit, &state(&before));
        let sv = edit.transact().state_vector();
        let prose = edit.get_or_insert_xml_fragment("prose");
        prose.insert(&mut edit.transact_mut(), 1, XmlElementPrelim::empty("h1"));
        text_insert(&edit, "fresh", 0, "new");
        let update = edit.transact().encode_state_as_update_v1(&sv);
        update
    });
    let d = diff(&state(&before), &state(&after)).unwrap();
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        json!({"roots": [
            {"root": "fresh", "kind": "text", "ops": [{"insert": "new"}],
             "inserted": 3, "deleted": 0, "coarse": false},
            {"root": "prose", "kind": "xml", "before": "<p></p>", "after": "<p></p><h1></h1>"}
        ]})
    );
}

#[test]
fn unchanged_content_gives_an_empty_diff() {
    let a = text_doc("same");
    assert!(diff(&state(&a), &state(&a)).unwrap().is_empty());
    // Same content reached through different edits, and an emptied root against none.
    let b = Doc::with_client_id(21);
    text_insert(&b, "t", 0, "sXame");
    text_delete(&b, "t", 1, 1);
    text_insert(&b, "gone", 0, "x");
    text_delete(&b, "gone", 0, 1);
    assert!(diff(&state(&a), &state(&b)).unwrap().is_empty());
}

/// Deterministic pseudo-random text over `alphabet`.
fn random_text(seed: &mut u64, len: usize, alphabet: &[char]) -> String {
    (0..len)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            alphabet[((*seed >> 33) % alphabet.len() as u64) as usize]
        })
        .collect()
}

#[test]
fn large_texts_diff_within_bounds() {
    let alphabet: Vec<char> = "abcdefghij klmnopqrstuvwxyz😀é".chars().collect();
    let mut seed = 7;
    let before = random_text(&mut seed, 200_000, &alphabet);
    // A few scattered edits: the exact diff is found quickly.
    let mut chars: Vec<char> = before.chars().collect();
    for i in 0..20 {
        let at = 1_000 + i * 9_000;
        chars.splice(at..at + 3, "EDIT".chars());
    }
    let after: String = chars.into_iter().collect();
    let started = Instant::now();
    let change = text_diff(&before, &after);
    let Change::Text {
        ref ops, coarse, ..
    } = change
    else {
        panic!("not a text change")
    };
    assert!(!coarse);
    assert_eq!(patch(&before, ops), after);
    assert_eq!(
        ops.iter()
            .filter(|op| matches!(op, TextOp::Insert(_)))
            .count(),
        20
    );
    println!("200k chars, 20 edits: {:?}", started.elapsed());

    // Unrelated texts: the search gives up early and reports one coarse range.
    let other = random_text(&mut seed, 200_000, &alphabet);
    let started = Instant::now();
    let change = text_diff(&before, &other);
    let elapsed = started.elapsed();
    let Change::Text {
        ref ops, coarse, ..
    } = change
    else {
        panic!("not a text change")
    };
    assert!(coarse);
    assert!(ops.len() <= 3, "{}", ops.len());
    assert_eq!(patch(&before, ops), other);
    println!("200k unrelated chars: {elapsed:?}");
}

#[test]
fn large_arrays_fall_back_to_one_range() {
    let before = Doc::with_client_id(20);
    let after = Doc::with_client_id(21);
    before.get_or_insert_array("l").insert_range(
        &mut before.transact_mut(),
        0,
        (0..20_000).map(|i| i * 2),
    );
    after.get_or_insert_array("l").insert_range(
        &mut after.transact_mut(),
        0,
        (0..20_000).map(|i| i * 2 + 1),
    );
    let d = diff_docs(&before, &after);
    let Change::Array {
        ops,
        inserted,
        deleted,
        coarse,
    } = &d.roots[0].change
    else {
        panic!("not an array change")
    };
    assert!(*coarse);
    assert_eq!((*inserted, *deleted, ops.len()), (20_000, 20_000, 2));
}

#[test]
fn diffs_reject_bad_input() {
    let doc = text_doc("x");
    assert!(matches!(
        diff(&[0xff, 0xff, 0xff], &state(&doc)),
        Err(HistoryError::Decode(_))
    ));
}
