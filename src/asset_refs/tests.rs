use super::*;
use std::collections::HashMap;
use yrs::updates::decoder::Decode;
use yrs::{
    ArrayPrelim, GetString, MapPrelim, StateVector, Update, XmlElementPrelim, XmlFragment,
    XmlTextPrelim,
};

const A: &str = "ast_0123456789abcdef0123";
const B: &str = "ast_fedcba9876543210fedc";

fn uri(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The document as the room holds it: decoded from updates, so no root type is declared.
fn replica(client: &Doc) -> Doc {
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

/// The references in `doc`, as scanned directly and as the room's replica: they must agree.
fn refs(doc: &Doc) -> BTreeMap<String, u64> {
    let direct = scan(doc, &Limits::default());
    let stored = scan(&replica(doc), &Limits::default());
    assert_eq!(direct.refs, stored.refs, "direct and replica scans differ");
    assert!(!stored.truncated);
    stored.refs
}

fn set(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect()
}

fn found(s: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for_each_ref(s, |id| ids.push(id.to_owned()));
    ids
}

#[test]
fn references_parse_by_the_grammar() {
    assert_eq!(found(&uri(A)), [A]);
    assert_eq!(found(&format!("{}@12 and {}@3", uri(A), uri(A))), [A, A]);
    assert_eq!(found(&format!("<img src=\"{}\">", uri(B))), [B]);
    assert_eq!(found("tandemx://asset/x.y_z-1 rest"), ["x.y_z-1"]);
    // Nothing after the prefix, or a character outside the id's alphabet first.
    for malformed in [
        "tandemx://asset/",
        "tandemx://asset/ ast_1",
        "tandemx://asset/!ast_1",
        "tandemx://asset/ä",
        "tandemx://asset//x",
        "TANDEMX://ASSET/ast_1",
        "tandemx://assets/ast_1",
    ] {
        assert!(found(malformed).is_empty(), "{malformed:?}");
    }
    // The id ends at the first character outside it.
    assert_eq!(found("tandemx://asset/ab?c"), ["ab"]);
    assert_eq!(found("tandemx://asset/abä"), ["ab"]);
    // Ids of 1 to 64 characters; a longer one is malformed, not cut.
    let longest = "a".repeat(MAX_ID_LEN);
    assert_eq!(found(&uri(&longest)), [longest.as_str()]);
    assert!(found(&uri(&"a".repeat(MAX_ID_LEN + 1))).is_empty());
    // Versions of 1 to 15 digits; an `@` without one makes the reference malformed.
    assert_eq!(found(&format!("{}@{}", uri(A), "9".repeat(15))), [A]);
    assert!(found(&format!("{}@{}", uri(A), "9".repeat(16))).is_empty());
    assert!(found(&format!("{}@", uri(A))).is_empty());
    assert!(found(&format!("{}@v2", uri(A))).is_empty());
    assert_eq!(found(&format!("{}@2x", uri(A))), [A]);
}

#[test]
fn map_values_count() {
    let doc = Doc::with_client_id(7);
    let board = doc.get_or_insert_map("board");
    {
        let mut txn = doc.transact_mut();
        let node = board.insert(&mut txn, "n1", MapPrelim::default());
        node.insert(&mut txn, "type", "image");
        node.insert(&mut txn, "src", uri(A));
        board.insert(&mut txn, "plain", format!("{}@2", uri(B)));
    }
    assert_eq!(refs(&doc), set(&[(A, 1), (B, 1)]));
    // A second reference counts 2.
    board.insert(&mut doc.transact_mut(), "again", uri(A));
    assert_eq!(refs(&doc), set(&[(A, 2), (B, 1)]));
}

#[test]
fn text_typed_character_by_character_counts_once() {
    let doc = Doc::with_client_id(7);
    let text = doc.get_or_insert_text("notes");
    text.insert(&mut doc.transact_mut(), 0, "see ");
    for c in format!("{}@4 now", uri(A)).chars() {
        let mut txn = doc.transact_mut();
        let at = text.len(&txn);
        text.insert(&mut txn, at, &c.to_string());
    }
    assert_eq!(refs(&doc), set(&[(A, 1)]));
    // Formatting over part of it does not cut it in two; an embed does.
    {
        let mut txn = doc.transact_mut();
        let bold = Attrs::from([(Arc::from("bold"), Any::Bool(true))]);
        text.format(&mut txn, 8, 6, bold);
    }
    assert_eq!(refs(&doc), set(&[(A, 1)]));
    text.insert_embed(&mut doc.transact_mut(), 10, Any::from(1));
    assert_eq!(refs(&doc), set(&[]));
}

#[test]
fn text_embeds_and_links_count() {
    let doc = Doc::with_client_id(7);
    let text = doc.get_or_insert_text("rich");
    {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "a picture: ");
        let embed = Any::from(HashMap::from([("image".to_string(), Any::from(uri(A)))]));
        text.insert_embed(&mut txn, 11, embed);
        // A link over a stretch whose other formatting changes midway counts once.
        let link = Attrs::from([(Arc::from("link"), Any::from(uri(B)))]);
        text.insert_with_attributes(&mut txn, 12, "click here", link);
        let bold = Attrs::from([(Arc::from("bold"), Any::Bool(true))]);
        text.format(&mut txn, 17, 5, bold);
    }
    assert_eq!(refs(&doc), set(&[(A, 1), (B, 1)]));
}

#[test]
fn xml_attributes_and_text_count() {
    let doc = Doc::with_client_id(7);
    let frag = doc.get_or_insert_xml_fragment("prosemirror");
    {
        let mut txn = doc.transact_mut();
        let figure = frag.push_back(&mut txn, XmlElementPrelim::empty("figure"));
        let img = figure.push_back(&mut txn, XmlElementPrelim::empty("img"));
        img.insert_attribute(&mut txn, "src", uri(A));
        let p = frag.push_back(&mut txn, XmlElementPrelim::empty("p"));
        let text = p.push_back(&mut txn, XmlTextPrelim::new(format!("see {}", uri(B))));
        text.insert_attribute(&mut txn, "data-poster", uri(A));
    }
    assert_eq!(refs(&doc), set(&[(A, 2), (B, 1)]));
}

#[test]
fn nested_arrays_and_plain_values_count() {
    let doc = Doc::with_client_id(7);
    let list = doc.get_or_insert_array("list");
    {
        let mut txn = doc.transact_mut();
        let inner = list.push_back(&mut txn, ArrayPrelim::default());
        let deeper = inner.push_back(&mut txn, ArrayPrelim::default());
        deeper.push_back(&mut txn, uri(A));
        // A plain JSON value: arrays in maps in arrays.
        let json = Any::from(vec![Any::from(HashMap::from([(
            "layers".to_string(),
            Any::from(vec![Any::from(uri(B)), Any::from(format!("{}@1", uri(B)))]),
        )]))]);
        list.push_back(&mut txn, json);
        list.push_back(&mut txn, 42);
    }
    assert_eq!(refs(&doc), set(&[(A, 1), (B, 2)]));
}

#[test]
fn deleted_references_do_not_count() {
    let doc = Doc::with_client_id(7);
    let board = doc.get_or_insert_map("board");
    let text = doc.get_or_insert_text("notes");
    {
        let mut txn = doc.transact_mut();
        board.insert(&mut txn, "img", uri(A));
        text.insert(&mut txn, 0, &format!("x {} y", uri(B)));
    }
    assert_eq!(refs(&doc), set(&[(A, 1), (B, 1)]));
    board.remove(&mut doc.transact_mut(), "img");
    assert_eq!(refs(&doc), set(&[(B, 1)]));
    // A map value overwritten: only the live one counts.
    board.insert(&mut doc.transact_mut(), "img", uri(A));
    board.insert(&mut doc.transact_mut(), "img", "gone");
    // One character of the id deleted: the rest is another id, or none.
    text.remove_range(&mut doc.transact_mut(), 2, PREFIX.len() as u32 + 1);
    assert_eq!(text.get_string(&doc.transact()), format!("x {} y", &B[1..]));
    assert_eq!(refs(&doc), set(&[]));
}

#[test]
fn values_deeper_than_the_bound_are_skipped() {
    let doc = Doc::with_client_id(7);
    let mut map = doc.get_or_insert_map("m");
    {
        let mut txn = doc.transact_mut();
        // The root is at depth 1: its value at 2, … the value in the 63rd nested map at 64.
        for _ in 0..62 {
            map = map.insert(&mut txn, "a", MapPrelim::default());
        }
        map.insert(&mut txn, "ok", uri(A));
        let deeper = map.insert(&mut txn, "deeper", MapPrelim::default());
        deeper.insert(&mut txn, "lost", uri(B));
    }
    let scan = scan(&replica(&doc), &Limits::default());
    assert_eq!(scan.refs, set(&[(A, 1)]));
    assert_eq!(scan.too_deep, 1);
    assert!(!scan.truncated);
}

#[test]
fn the_caps_cut_the_walk() {
    let doc = Doc::with_client_id(7);
    let board = doc.get_or_insert_map("board");
    {
        let mut txn = doc.transact_mut();
        for i in 0..100 {
            board.insert(&mut txn, format!("k{i:03}"), uri(&format!("id{i:03}")));
        }
    }
    let doc = replica(&doc);
    // The root and ten values.
    let values = Limits {
        max_values: 11,
        ..Limits::default()
    };
    let cut = scan(&doc, &values);
    assert!(cut.truncated);
    assert_eq!(cut.values, 11);
    // In key order: the first ten.
    let first: Vec<String> = (0..10).map(|i| format!("id{i:03}")).collect();
    assert_eq!(cut.refs.keys().cloned().collect::<Vec<_>>(), first);
    assert_eq!(scan(&doc, &values), cut, "the same part every time");
    // Bytes: each value is 21 bytes; the fifth would pass 100.
    let bytes = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let cut = scan(&doc, &bytes);
    assert!(cut.truncated);
    assert_eq!((cut.refs.len(), cut.bytes), (4, 84));
    // A text longer than what is left is not copied at all.
    let long = Doc::with_client_id(8);
    long.get_or_insert_text("t")
        .insert(&mut long.transact_mut(), 0, &uri(A).repeat(10));
    let cut = scan(&replica(&long), &bytes);
    assert!(cut.truncated && cut.refs.is_empty() && cut.bytes == 0);
    // Distinct ids: the first ones are kept and keep counting; the others are dropped.
    let ids = Limits {
        max_assets: 10,
        ..Limits::default()
    };
    let capped = scan(&doc, &ids);
    assert!(!capped.truncated);
    assert_eq!(capped.refs.len(), 10);
    assert_eq!(capped.dropped, 90);
    assert_eq!(Limits::default().max_assets, 1000);
}

#[test]
fn the_default_id_cap_is_a_thousand() {
    let doc = Doc::with_client_id(7);
    let text = doc.get_or_insert_text("t");
    let many: String = (0..1005)
        .map(|i| format!("{} ", uri(&format!("a{i:04}"))))
        .collect();
    text.insert(
        &mut doc.transact_mut(),
        0,
        &format!("{many}{}", uri("a0000")),
    );
    let scan = scan(&replica(&doc), &Limits::default());
    assert_eq!(scan.refs.len(), 1000);
    assert_eq!(scan.refs["a0000"], 2);
    assert_eq!(scan.dropped, 5);
}

#[test]
fn digests_tell_sets_apart() {
    let empty = Scan::default();
    assert_eq!(empty.digest(), digest(&BTreeMap::new()));
    assert_eq!(empty.refs_json(), "{}");
    let one = set(&[(A, 1)]);
    let two = set(&[(A, 2)]);
    let both = set(&[(A, 1), (B, 1)]);
    let digests = [digest(&one), digest(&two), digest(&both), empty.digest()];
    // Safe integers in JavaScript, where the room's storage keeps them.
    assert!(digests.iter().all(|d| (0..1 << 53).contains(d)));
    for (i, a) in digests.iter().enumerate() {
        for b in &digests[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let scan = Scan {
        refs: both.clone(),
        ..Scan::default()
    };
    assert_eq!(scan.digest(), digest(&both));
    assert_eq!(
        scan.refs_json(),
        format!("{{\"{A}\":1,\"{B}\":1}}"),
        "an object of id to count"
    );
}

#[test]
fn subdocuments_and_other_values_are_ignored() {
    let doc = Doc::with_client_id(7);
    let board = doc.get_or_insert_map("board");
    {
        let mut txn = doc.transact_mut();
        let sub = Doc::with_client_id(9);
        sub.get_or_insert_text("t")
            .insert(&mut sub.transact_mut(), 0, &uri(A));
        board.insert(&mut txn, "sub", sub);
        board.insert(&mut txn, "n", 1.5);
        board.insert(&mut txn, "b", Any::Buffer(Arc::from(uri(B).as_bytes())));
    }
    assert_eq!(refs(&doc), set(&[]));
}

/// What a scan costs (not a test: `cargo test --lib scan_cost -- --ignored --nocapture`).
#[test]
#[ignore]
fn scan_cost() {
    for entries in [1_000, 10_000, 100_000] {
        let doc = Doc::with_client_id(7);
        let board = doc.get_or_insert_map("board");
        {
            let mut txn = doc.transact_mut();
            for i in 0..entries {
                let node = board.insert(&mut txn, format!("n{i}"), MapPrelim::default());
                node.insert(&mut txn, "type", "image");
                node.insert(&mut txn, "x", i as i64);
                node.insert(&mut txn, "src", uri(&format!("ast_{:020x}", i % 500)));
            }
        }
        let doc = replica(&doc);
        let started = std::time::Instant::now();
        let runs = 5;
        let mut last = Scan::default();
        for _ in 0..runs {
            last = scan(&doc, &Limits::default());
        }
        let each = started.elapsed() / runs;
        println!(
            "{entries} map entries (Y.Maps of 3 values): {each:?} per scan, {} values, {} bytes, {}",
            last.values,
            last.bytes,
            describe(&last)
        );
    }
    let doc = Doc::with_client_id(7);
    let text = doc.get_or_insert_text("t");
    let chunk = format!("lorem ipsum {} dolor sit amet. ", uri(A));
    for _ in 0..1000 {
        let mut txn = doc.transact_mut();
        let at = text.len(&txn);
        text.insert(&mut txn, at, &chunk.repeat(32));
    }
    let doc = replica(&doc);
    let started = std::time::Instant::now();
    let scan = scan(&doc, &Limits::default());
    println!(
        "a text of {} bytes: {:?}, {}",
        scan.bytes,
        started.elapsed(),
        describe(&scan)
    );
}
