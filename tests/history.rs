//! Document history against simulated replicas: restoring versions as new changes, diffs
//! between states, and documents rebuilt at any instant. Fixed client ids, no I/O.

use serde_json::{json, Value};
use std::time::Instant;
use tandemx::document::{render_json, MAX_DEPTH, TRUNCATED};
use tandemx::history::{
    diff, diff_docs, replay_start, restore_update, state_at, ArrayOp, Change, Diff, HistoryError,
    TextOp,
};
use tandemx::webhooks::summarize;
use yrs::types::text::YChange;
use yrs::types::Attrs;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayPrelim, Doc, GetString, Map, MapPrelim, ReadTxn, StateVector, Text,
    TextPrelim, Transact, Update, WriteTxn, Xml, XmlElementPrelim, XmlFragment, XmlTextPrelim,
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

#[test]
fn a_replay_starts_at_its_base_only_while_the_log_after_it_is_kept() {
    // Nothing pruned: from the version, or from the start without one.
    assert_eq!(replay_start(Some(4), Some(1), 9), Some(4));
    assert_eq!(replay_start(None, Some(1), 9), Some(0));
    assert_eq!(replay_start(None, None, 0), Some(0));
    // Retention removed entries 1..=4 and kept a version at 4: from it (or a later one) on.
    assert_eq!(replay_start(Some(4), Some(5), 9), Some(4));
    assert_eq!(replay_start(Some(7), Some(5), 9), Some(7));
    // An older version (named, kept by retention) or none: entries after it are gone.
    assert_eq!(replay_start(Some(2), Some(5), 9), None);
    assert_eq!(replay_start(Some(0), Some(5), 9), None);
    assert_eq!(replay_start(None, Some(5), 9), None);
    // The whole log pruned up to a version at the head: that version is the document.
    assert_eq!(replay_start(Some(9), None, 9), Some(9));
    assert_eq!(replay_start(Some(8), None, 9), None);
    assert_eq!(replay_start(None, None, 9), None);
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

// ---- restores ----

/// Client id of the restores.
const RESTORER: u64 = 900;

/// Sends each doc what the other lacks.
fn sync(a: &Doc, b: &Doc) {
    let to_b = a
        .transact()
        .encode_state_as_update_v1(&b.transact().state_vector());
    let to_a = b
        .transact()
        .encode_state_as_update_v1(&a.transact().state_vector());
    apply(b, &to_b);
    apply(a, &to_a);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Restores `version` on `server`, applies the update on the server and on `replicas` (which
/// hold the server's state), and checks that all of them now have the version's content.
fn restore_everywhere(server: &Doc, version: &[u8], replicas: &[&Doc]) -> Vec<u8> {
    let update = restore_update(server, version, RESTORER)
        .unwrap()
        .expect("the content differs from the version");
    let version_doc = state_at(Some(version), []).unwrap();
    let expected = content(&version_doc);
    for doc in std::iter::once(server).chain(replicas.iter().copied()) {
        apply(doc, &update);
        assert_eq!(content(doc), expected);
        assert_eq!(diff_docs(&version_doc, doc), Diff::default());
    }
    update
}

#[test]
fn text_edits_are_reverted_and_deleted_text_comes_back() {
    let (a, b) = (Doc::with_client_id(10), Doc::with_client_id(11));
    text_insert(&a, "body", 0, "hello brave new world");
    sync(&a, &b);
    let server = server_from(&[&a]);
    let version = state(&server);

    text_delete(&a, "body", 0, 6); // "brave new world"
    text_insert(&a, "body", 5, " old"); // "brave old new world"
    text_insert(&b, "body", 21, "!");
    text_delete(&b, "body", 6, 4); // b: "hello e new world!"
    sync(&a, &b);
    apply(&server, &state(&a));
    assert_eq!(content(&server), json!({"body": "e old new world!"}));
    // The server collected the deleted "hello ": it can only come back from the version.
    assert!(!contains(&state(&server), b"hello"));

    restore_everywhere(&server, &version, &[&a, &b]);
    assert_eq!(content(&a), json!({"body": "hello brave new world"}));
}

#[test]
fn formatting_is_restored() {
    let a = Doc::with_client_id(10);
    let text = a.get_or_insert_text("doc");
    let bold = Attrs::from([("bold".into(), Any::Bool(true))]);
    let italic = Attrs::from([("italic".into(), Any::Bool(true))]);
    text.insert_with_attributes(&mut a.transact_mut(), 0, "hello", bold.clone());
    // Typing after bold text continues it unless told otherwise.
    let plain = Attrs::from([("bold".into(), Any::Null)]);
    text.insert_with_attributes(&mut a.transact_mut(), 5, " world", plain.clone());
    let server = server_from(&[&a]);
    let version = state(&server);

    text.format(&mut a.transact_mut(), 0, 2, plain);
    text.format(&mut a.transact_mut(), 6, 5, italic);
    apply(&server, &state(&a));

    let update = restore_update(&server, &version, RESTORER)
        .unwrap()
        .unwrap();
    apply(&a, &update);
    let chunks: Vec<(String, Option<Attrs>)> = text
        .diff(&a.transact(), YChange::identity)
        .into_iter()
        .map(|d| (d.insert.to_string(&a.transact()), d.attributes.map(|a| *a)))
        .collect();
    assert_eq!(
        chunks,
        vec![("hello".into(), Some(bold)), (" world".into(), None)]
    );
    // Formatting is content too: a second restore has nothing to do.
    apply(&server, &update);
    assert_eq!(restore_update(&server, &version, RESTORER).unwrap(), None);
}

#[test]
fn map_keys_and_nested_types_are_restored() {
    let a = Doc::with_client_id(10);
    let meta = a.get_or_insert_map("meta");
    {
        let mut txn = a.transact_mut();
        meta.insert(&mut txn, "title", "draft");
        meta.insert(&mut txn, "count", 1);
        meta.insert(&mut txn, "gone", true);
        meta.insert(&mut txn, "note", TextPrelim::new("hello"));
    }
    let server = server_from(&[&a]);
    let version = state(&server);
    {
        let mut txn = a.transact_mut();
        meta.insert(&mut txn, "title", "final");
        meta.insert(&mut txn, "title", "final 2");
        meta.remove(&mut txn, "gone");
        meta.insert(&mut txn, "extra", "x");
        let child = meta.insert(&mut txn, "child", MapPrelim::default());
        child.insert(&mut txn, "x", 1);
        let Some(yrs::Out::YText(note)) = meta.get(&txn, "note") else {
            panic!("note is a text")
        };
        note.remove_range(&mut txn, 0, 2);
        note.insert(&mut txn, 3, " world");
    }
    apply(&server, &state(&a));
    assert_eq!(
        content(&server)["meta"],
        json!({"title": "final 2", "count": 1.0, "extra": "x", "child": {"x": 1.0}, "note": "llo world"})
    );
    restore_everywhere(&server, &version, &[&a]);
    assert_eq!(
        content(&a)["meta"],
        json!({"title": "draft", "count": 1.0, "gone": true, "note": "hello"})
    );
}

#[test]
fn array_edits_are_reverted() {
    let a = Doc::with_client_id(10);
    let list = a.get_or_insert_array("list");
    {
        let mut txn = a.transact_mut();
        list.insert_range(&mut txn, 0, [1, 2, 3, 4]);
        list.push_back(&mut txn, MapPrelim::from([("id", Any::from(5))]));
    }
    let server = server_from(&[&a]);
    let version = state(&server);
    {
        let mut txn = a.transact_mut();
        list.remove_range(&mut txn, 1, 2);
        list.insert(&mut txn, 0, "first");
        list.push_back(&mut txn, ArrayPrelim::from([7, 8]));
    }
    apply(&server, &state(&a));
    assert_eq!(
        content(&server)["list"],
        json!(["first", 1.0, 4.0, {"id": 5.0}, [7.0, 8.0]])
    );
    restore_everywhere(&server, &version, &[&a]);
    assert_eq!(
        content(&a)["list"],
        json!([1.0, 2.0, 3.0, 4.0, {"id": 5.0}])
    );
}

#[test]
fn xml_fragments_are_restored() {
    let a = Doc::with_client_id(10);
    let prose = a.get_or_insert_xml_fragment("prose");
    {
        let mut txn = a.transact_mut();
        let p = prose.insert(&mut txn, 0, XmlElementPrelim::empty("p"));
        p.insert_attribute(&mut txn, "align", "left");
        p.insert(&mut txn, 0, XmlTextPrelim::new("hello"));
    }
    let server = server_from(&[&a]);
    let version = state(&server);
    let before = prose.get_string(&a.transact());
    {
        let mut txn = a.transact_mut();
        let Some(yrs::XmlOut::Element(p)) = prose.get(&txn, 0) else {
            panic!("p is an element")
        };
        p.insert_attribute(&mut txn, "align", "right");
        let Some(yrs::XmlOut::Text(t)) = p.get(&txn, 0) else {
            panic!("the paragraph has text")
        };
        t.insert(&mut txn, 5, " world");
        prose.insert(&mut txn, 0, XmlElementPrelim::empty("h1"));
    }
    apply(&server, &state(&a));
    assert_ne!(prose.get_string(&a.transact()), before);

    // `render_json` renders an XML root with no declared type as an array of nodes, so the
    // replica (which declared it) is compared through its XML string and the diff.
    let update = restore_everywhere(&server, &version, &[]);
    apply(&a, &update);
    assert!(diff_docs(&state_at(Some(&version), []).unwrap(), &a).is_empty());
    assert_eq!(prose.get_string(&a.transact()), before);
    assert_eq!(before, "<p align=\"left\">hello</p>");
}

#[test]
fn roots_made_after_the_version_end_up_empty() {
    let a = Doc::with_client_id(10);
    text_insert(&a, "body", 0, "kept");
    let server = server_from(&[&a]);
    let version = state(&server);
    text_insert(&a, "late_text", 0, "new");
    a.get_or_insert_map("late_map")
        .insert(&mut a.transact_mut(), "k", "v");
    a.get_or_insert_array("late_list")
        .push_back(&mut a.transact_mut(), 1);
    apply(&server, &state(&a));
    restore_everywhere(&server, &version, &[&a]);
    let rendered = render_json(&a);
    assert_eq!(rendered["late_text"], json!(""));
    assert_eq!(rendered["late_map"], json!({}));
    assert_eq!(rendered["late_list"], json!([]));
}

#[test]
fn restoring_the_empty_version_empties_everything() {
    let empty = state(&Doc::with_client_id(5));
    let a = Doc::with_client_id(10);
    text_insert(&a, "body", 0, "text");
    a.get_or_insert_map("meta")
        .insert(&mut a.transact_mut(), "k", "v");
    let server = server_from(&[&a]);
    restore_everywhere(&server, &empty, &[&a]);
    assert_eq!(content(&a), json!({}));
}

#[test]
fn a_restore_works_on_a_replica_with_declared_types() {
    // `current` may be a client's doc, whose roots have types, rather than the server's.
    let a = Doc::with_client_id(10);
    text_insert(&a, "body", 0, "one two");
    let version = state(&a);
    text_delete(&a, "body", 0, 4);
    let update = restore_update(&a, &version, RESTORER).unwrap().unwrap();
    apply(&a, &update);
    assert_eq!(content(&a), json!({"body": "one two"}));
}

#[test]
fn replicas_converge_with_a_concurrent_edit() {
    let (a, b, c) = (
        Doc::with_client_id(10),
        Doc::with_client_id(11),
        Doc::with_client_id(12),
    );
    text_insert(&a, "body", 0, "base text");
    a.get_or_insert_map("meta")
        .insert(&mut a.transact_mut(), "k", "v1");
    sync(&a, &b);
    sync(&a, &c);
    let server = server_from(&[&a]);
    let version = state(&server);
    text_insert(&a, "body", 4, " changed");
    a.get_or_insert_map("meta")
        .insert(&mut a.transact_mut(), "k", "v2");
    sync(&a, &b);
    sync(&a, &c);
    apply(&server, &state(&a));
    // c edits concurrently with the restore; the server has not seen it yet.
    text_insert(&c, "body", 0, "C: ");
    c.get_or_insert_map("meta")
        .insert(&mut c.transact_mut(), "c", true);

    let update = restore_update(&server, &version, RESTORER)
        .unwrap()
        .unwrap();
    apply(&server, &update);
    apply(&a, &update);
    apply(&b, &update);
    sync(&c, &server);
    sync(&server, &a);
    sync(&server, &b);
    let rendered = content(&server);
    assert_eq!(content(&a), rendered);
    assert_eq!(content(&b), rendered);
    assert_eq!(content(&c), rendered);
    assert_eq!(rendered["meta"]["k"], json!("v1"));
}

#[test]
fn restoring_twice_is_a_no_op_the_second_time() {
    let a = Doc::with_client_id(10);
    text_insert(&a, "body", 0, "version");
    let server = server_from(&[&a]);
    let version = state(&server);
    assert_eq!(restore_update(&server, &version, RESTORER).unwrap(), None);
    text_insert(&a, "body", 7, " 2");
    text_insert(&a, "other", 0, "x");
    apply(&server, &state(&a));
    restore_everywhere(&server, &version, &[]);
    assert_eq!(restore_update(&server, &version, RESTORER).unwrap(), None);
}

#[test]
fn a_version_with_collected_deletions_is_restored() {
    let a = Doc::with_client_id(10);
    let server = Doc::with_client_id(1);
    let meta = a.get_or_insert_map("meta");
    text_insert(&a, "body", 0, "temporary text, kept text");
    text_delete(&a, "body", 0, 16);
    for i in 0..5 {
        meta.insert(&mut a.transact_mut(), "k", i);
    }
    let list = a.get_or_insert_array("list");
    list.insert_range(&mut a.transact_mut(), 0, [1, 2, 3]);
    list.remove_range(&mut a.transact_mut(), 0, 2);
    apply(&server, &state(&a));
    let version = state(&server);
    assert!(!contains(&version, b"temporary"));

    text_delete(&a, "body", 0, 4);
    text_insert(&a, "body", 0, "more ");
    meta.insert(&mut a.transact_mut(), "k", "later");
    list.remove_range(&mut a.transact_mut(), 0, 1);
    apply(&server, &state(&a));
    restore_everywhere(&server, &version, &[&a]);
    assert_eq!(
        content(&a),
        json!({"body": "kept text", "meta": {"k": 4.0}, "list": [3.0]})
    );
}

#[test]
fn deleted_nested_types_come_back_with_their_content() {
    let a = Doc::with_client_id(10);
    let meta = a.get_or_insert_map("meta");
    let list = a.get_or_insert_array("list");
    let prose = a.get_or_insert_xml_fragment("prose");
    {
        let mut txn = a.transact_mut();
        meta.insert(&mut txn, "note", TextPrelim::new("a note"));
        let child = meta.insert(&mut txn, "child", MapPrelim::default());
        child.insert(&mut txn, "deep", TextPrelim::new("deep text"));
        list.push_back(&mut txn, MapPrelim::from([("id", Any::from(1))]));
        list.push_back(&mut txn, ArrayPrelim::from([1, 2]));
        let p = prose.insert(&mut txn, 0, XmlElementPrelim::empty("p"));
        p.insert(&mut txn, 0, XmlTextPrelim::new("para"));
    }
    let server = server_from(&[&a]);
    let version = state(&server);
    let before = prose.get_string(&a.transact());
    {
        let mut txn = a.transact_mut();
        meta.remove(&mut txn, "note");
        meta.remove(&mut txn, "child");
        list.remove_range(&mut txn, 0, 2);
        prose.remove_range(&mut txn, 0, 1);
    }
    // Typed and erased again after the version: collected on the server.
    text_insert(&a, "body", 0, "ephemeral");
    text_delete(&a, "body", 0, 9);
    apply(&server, &state(&a));
    assert!(!contains(&state(&server), b"deep text"));

    let update = restore_everywhere(&server, &version, &[]);
    apply(&a, &update);
    assert!(diff_docs(&state_at(Some(&version), []).unwrap(), &a).is_empty());
    assert_eq!(
        content(&a)["meta"],
        json!({"note": "a note", "child": {"deep": "deep text"}})
    );
    assert_eq!(content(&a)["list"], json!([{"id": 1.0}, [1.0, 2.0]]));
    assert_eq!(prose.get_string(&a.transact()), before);
}

#[test]
fn versions_are_restored_in_any_order() {
    let a = Doc::with_client_id(10);
    let server = Doc::with_client_id(1);
    let mut versions = Vec::new();
    let edit = |i: u32| {
        text_insert(&a, "body", 0, &format!("edit {i}. "));
        a.get_or_insert_map("meta")
            .insert(&mut a.transact_mut(), "last", i);
        if i % 2 == 1 {
            text_delete(&a, "body", 3, 5);
        }
        apply(&server, &state(&a));
    };
    for i in 0..3 {
        edit(i);
        versions.push(state(&server));
    }
    // One client id for every restore, as a server would use: each restore continues that
    // client's clock from the current state.
    for (step, pick) in [0, 2, 1, 0, 2, 2].into_iter().enumerate() {
        let update = restore_update(&server, &versions[pick], RESTORER).unwrap();
        // Restoring the version just restored (step 5) has nothing to do.
        assert_eq!(update.is_none(), step == 5);
        if let Some(update) = update {
            apply(&server, &update);
            apply(&a, &update);
        }
        let want = state_at(Some(&versions[pick]), []).unwrap();
        assert!(diff_docs(&want, &server).is_empty());
        assert_eq!(content(&a), content(&want));
        if step == 1 {
            // A version taken after a restore.
            edit(10);
            versions.push(state(&server));
        }
    }
    let update = restore_update(&server, &versions[3], RESTORER)
        .unwrap()
        .unwrap();
    apply(&server, &update);
    assert!(diff_docs(&state_at(Some(&versions[3]), []).unwrap(), &server).is_empty());
}

/// Random edits by three replicas that sync at random; a version is taken at random and
/// restored later; everyone must end with the version's content.
#[test]
fn random_histories_restore_exactly() {
    let mut seed = 42u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n.max(1)
    };
    let mut restored = 0;
    for round in 0..150 {
        let docs: Vec<Doc> = (0..3).map(|i| Doc::with_client_id(10 + i)).collect();
        let server = Doc::with_client_id(1);
        let mut version = None;
        let version_at = next(50);
        for step in 0..60 {
            let doc = &docs[next(3) as usize];
            random_edit(doc, &mut next);
            if next(4) == 0 {
                let other = &docs[next(3) as usize];
                sync(doc, other);
            }
            if next(3) == 0 {
                apply(&server, &state(doc));
            }
            if step == version_at {
                version = Some(state(&server));
            }
        }
        for doc in &docs {
            apply(&server, &state(doc));
        }
        for doc in &docs {
            apply(doc, &state(&server));
        }
        let version = version.unwrap();
        let want = state_at(Some(&version), []).unwrap();
        let Some(update) = restore_update(&server, &version, RESTORER).unwrap() else {
            assert!(diff_docs(&want, &server).is_empty());
            continue;
        };
        // The first replica edits concurrently with the restore.
        random_edit(&docs[0], &mut next);
        for doc in docs[1..].iter().chain([&server]) {
            apply(doc, &update);
            assert!(
                diff_docs(&want, doc).is_empty(),
                "round {round}: {:?}",
                diff_docs(&want, doc)
            );
        }
        assert_eq!(content(&server), content(&want));
        assert_eq!(restore_update(&server, &version, RESTORER).unwrap(), None);
        // Once everyone has exchanged updates, they converge on the version plus that edit.
        apply(&docs[0], &update);
        for doc in &docs {
            sync(doc, &server);
        }
        for doc in &docs {
            sync(doc, &server);
            assert_eq!(content(doc), content(&server), "round {round}");
        }
        restored += 1;
    }
    assert!(restored > 100, "{restored}");
}

fn random_edit(doc: &Doc, next: &mut impl FnMut(u64) -> u64) {
    // ASCII only: offsets here are bytes, and random ones must not split a character.
    let words = ["a", "bc", "def", "xyz "];
    let word = words[next(words.len() as u64) as usize];
    let mut txn = doc.transact_mut();
    match next(6) {
        0 | 1 => {
            let text = txn.get_or_insert_text("text");
            let len = text.len(&txn);
            if next(3) == 0 && len > 0 {
                let at = next(len as u64) as u32;
                let n = (next(4) as u32 + 1).min(len - at);
                if next(2) == 0 {
                    text.remove_range(&mut txn, at, n);
                } else {
                    let value = [Any::Bool(true), Any::Null][next(2) as usize].clone();
                    text.format(&mut txn, at, n, Attrs::from([("bold".into(), value)]));
                }
            } else {
                text.insert(&mut txn, next(len as u64 + 1) as u32, word);
            }
        }
        2 | 3 => {
            let map = txn.get_or_insert_map("map");
            let key = ["k1", "k2", "k3", "k4"][next(4) as usize];
            match next(4) {
                0 => {
                    map.remove(&mut txn, key);
                }
                1 => {
                    map.insert(&mut txn, key, TextPrelim::new(word));
                }
                _ => {
                    map.insert(&mut txn, key, word);
                }
            }
        }
        _ => {
            let list = txn.get_or_insert_array("list");
            let len = list.len(&txn);
            if next(3) == 0 && len > 0 {
                list.remove(&mut txn, next(len as u64) as u32);
            } else {
                list.insert(&mut txn, next(len as u64 + 1) as u32, word);
            }
        }
    }
}

#[test]
fn restores_reject_bad_input() {
    let doc = Doc::with_client_id(10);
    text_insert(&doc, "t", 0, "x");
    assert!(matches!(
        restore_update(&doc, &[0xff, 0xff, 0xff], RESTORER),
        Err(HistoryError::Decode(_))
    ));
    assert!(matches!(
        restore_update(&doc, &state(&Doc::with_client_id(5)), 1 << 53),
        Err(HistoryError::ClientId(_))
    ));
}

// ---- deeply nested documents ----

/// How deep the documents below nest: far past what any walk may recurse.
const DEEP: usize = 10_000;

/// Stack of the threads that read deep documents: room for walks that stop at
/// `document::MAX_DEPTH` levels, far too little for one that recursed once per level of
/// [`DEEP`] (an overflow aborts the test binary, which fails the run).
const SMALL_STACK: usize = 256 * 1024;

fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

/// Runs `f` with a stack large enough for yrs itself to build and drop a deeply nested plain
/// value (its `Any` drops recursively), so the tests reach what is under test.
fn on_large_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

/// A client's document whose root map `m` holds `a` → `a` → … [`DEEP`] Y.Maps deep (built one
/// level at a time: a nested prelim would recurse in yrs), with `leaf: "v1"` in the last one,
/// which is returned.
fn deep_maps() -> (Doc, yrs::MapRef) {
    let doc = Doc::with_client_id(30);
    let mut map = doc.get_or_insert_map("m");
    let mut txn = doc.transact_mut();
    txn.get_or_insert_text("title").insert(&mut txn, 0, "deep");
    for _ in 0..DEEP {
        map = map.insert(&mut txn, "a", MapPrelim::default());
    }
    map.insert(&mut txn, "leaf", "v1");
    drop(txn);
    (doc, map)
}

/// How many objects and arrays `value` nests, counted with an explicit stack.
fn json_depth(value: &Value) -> usize {
    let (mut deepest, mut stack) = (0, vec![(value, 0)]);
    while let Some((value, depth)) = stack.pop() {
        let children: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(map) => map.values().collect(),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.into_iter().map(|v| (v, depth + 1)));
    }
    deepest
}

/// Checks that a rendering is cut at the bound: the document object, then at most
/// `MAX_DEPTH` levels, then the marker.
fn assert_cut(rendered: &Value) {
    assert!(
        json_depth(rendered) <= MAX_DEPTH + 2,
        "{}",
        json_depth(rendered)
    );
    let json = serde_json::to_string(rendered).unwrap();
    assert!(json.contains(TRUNCATED), "no marker");
    assert_eq!(&serde_json::from_str::<Value>(&json).unwrap(), rendered);
}

#[test]
fn a_deeply_nested_document_renders_within_the_bound() {
    let (client, _) = deep_maps();
    let full = state(&client);
    let rendered = on_small_stack(|| {
        let rendered = render_json(&client);
        assert_cut(&rendered);
        assert_eq!(rendered["title"], json!("deep"));
        // A replica built from updates, whose roots are typed by their content, as a room's
        // document is; a version; the document at an instant, from a base and log entries.
        let server = state_at(None, [full.as_slice()]).unwrap();
        assert_eq!(render_json(&server), rendered);
        let update = server
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(render_json(&state_at(Some(&update), []).unwrap()), rendered);
        rendered
    });
    // The map levels above the marker are all there.
    let mut value = &rendered["m"];
    for _ in 1..MAX_DEPTH {
        value = &value["a"];
    }
    assert!(value["a"][TRUNCATED].is_string(), "{value}");
}

#[test]
fn a_deeply_nested_plain_value_renders_within_the_bound() {
    on_large_stack(|| {
        let deep = (0..DEEP).fold(Any::from("leaf"), |v, _| {
            Any::from(std::collections::HashMap::from([("a".to_string(), v)]))
        });
        let before = Doc::with_client_id(31);
        before
            .get_or_insert_map("m")
            .insert(&mut before.transact_mut(), "small", 1);
        let after = Doc::with_client_id(31);
        {
            let mut txn = after.transact_mut();
            let m = txn.get_or_insert_map("m");
            m.insert(&mut txn, "small", 1);
            m.insert(&mut txn, "deep", deep);
        }
        on_small_stack(|| {
            let rendered = render_json(&after);
            assert_cut(&rendered);
            let d = diff_docs(&before, &after);
            let Change::Map { added, .. } = &d.roots[0].change else {
                panic!("{d:?}")
            };
            assert!(json_depth(&added["deep"]) <= MAX_DEPTH + 1);
            assert!(serde_json::to_string(&d).unwrap().contains(TRUNCATED));
            let s = summarize(&render_json(&before), &rendered);
            assert_eq!(s.iter().find(|c| c.root == "m").unwrap().keys, vec!["deep"]);
        });
    });
}

#[test]
fn deeply_nested_xml_renders_whole() {
    let client = Doc::with_client_id(32);
    let frag = client.get_or_insert_xml_fragment("prose");
    let inner = {
        let mut txn = client.transact_mut();
        let mut node = frag.push_back(&mut txn, XmlElementPrelim::empty("div"));
        for _ in 0..DEEP {
            node = node.push_back(&mut txn, XmlElementPrelim::empty("div"));
        }
        node.push_back(&mut txn, XmlTextPrelim::new("one"))
    };
    let version = state(&client);
    inner.insert(&mut client.transact_mut(), 3, " two");
    let current = state(&client);
    let expected = |text: &str| {
        format!(
            "{}{text}{}",
            "<div>".repeat(DEEP + 1),
            "</div>".repeat(DEEP + 1)
        )
    };
    on_small_stack(|| {
        let server = state_at(Some(&current), []).unwrap();
        assert_eq!(render_json(&server)["prose"], json!(expected("one two")));
        let d = diff(&version, &current).unwrap();
        assert_eq!(
            d.roots[0].change,
            Change::Xml {
                before: json!(expected("one")),
                after: json!(expected("one two"))
            }
        );
    });
}

#[test]
fn diffs_of_deeply_nested_documents_see_changes_below_the_bound() {
    let (client, leaf) = deep_maps();
    let version = state(&client);
    let version_sv = client.transact().state_vector();
    leaf.insert(&mut client.transact_mut(), "leaf", "v2");
    let current = state(&client);
    // What a branch holds that its parent lacks, as a merge brings it.
    let branch_update = client.transact().encode_state_as_update_v1(&version_sv);
    on_small_stack(|| {
        let d = diff(&version, &current).unwrap();
        assert_eq!(d.roots.len(), 1, "{d:?}");
        assert_eq!(d.roots[0].root, "m");
        let Change::Map {
            added,
            removed,
            changed,
        } = &d.roots[0].change
        else {
            panic!("{d:?}")
        };
        assert!(added.is_empty() && removed.is_empty());
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["a"]);
        assert_ne!(changed["a"].before, changed["a"].after);
        assert!(serde_json::to_string(&d).unwrap().contains(TRUNCATED));
        assert!(diff(&current, &current).unwrap().is_empty());
        // A merge preview: the parent's state with the branch's changes, against the parent.
        let merged = state_at(Some(&version), [branch_update.as_slice()]).unwrap();
        let merged = merged
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(diff(&version, &merged).unwrap(), d);
    });
}

#[test]
fn summaries_of_deeply_nested_documents_name_the_changed_key() {
    let (client, leaf) = deep_maps();
    let before = render_json(&client);
    leaf.insert(&mut client.transact_mut(), "leaf", "v2");
    on_small_stack(|| {
        let after = render_json(&client);
        let changes = summarize(&before, &after);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].root, "m");
        assert_eq!(changes[0].kind, "map");
        assert_eq!(changes[0].keys, vec!["a"]);
        assert!(summarize(&after, &after).is_empty());
    });
}

#[test]
fn a_deeply_nested_document_is_restored() {
    let (client, leaf) = deep_maps();
    let version = state(&client);
    leaf.insert(&mut client.transact_mut(), "leaf", "v2");
    let server = server_from(&[&client]);
    on_small_stack(|| {
        let update = restore_update(&server, &version, RESTORER)
            .unwrap()
            .expect("the leaf differs");
        apply(&server, &update);
        assert!(diff(&version, &state(&server)).unwrap().is_empty());
        assert_eq!(restore_update(&server, &version, RESTORER).unwrap(), None);
    });
}
