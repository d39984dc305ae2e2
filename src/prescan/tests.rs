//! The rules of the pre-scan on hand-written bytes, each checked against yrs where it accepts.

use super::*;
use yrs::encoding::write::Write;
use yrs::updates::decoder::Decode;
use yrs::Update;

/// An update of one item of `info` in the root type "a", with `content` bytes.
fn one_item(info: u8, content: &[u8]) -> Vec<u8> {
    // 1 client, 1 block, client 1, clock 0, info, parent named (1) "a".
    let mut u = vec![1, 1, 1, 0, info, 1, 1, b'a'];
    u.extend_from_slice(content);
    u.push(0); // no deletions
    u
}

fn string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.write_string(s);
    out
}

/// An `Any` content of `levels` arrays nested in one another around a `null`.
fn nested_any(levels: usize) -> Vec<u8> {
    let mut content = vec![1]; // one value
    for _ in 0..levels {
        content.extend([117, 1]); // array of one
    }
    content.push(126);
    one_item(8, &content)
}

/// Accepted input must decode in yrs too: the scanner mirrors its reads.
fn accepted(update: &[u8]) {
    assert_eq!(check_update_v1(update), Ok(()));
    Update::decode_v1(update).expect("yrs decodes what the scan accepts");
}

#[test]
fn empty_values_pass() {
    accepted(&[0, 0]);
    assert_eq!(check_state_vector_v1(&[0]), Ok(()));
    assert_eq!(check_awareness_v1(&[0]), Ok(()));
}

#[test]
fn counts_must_fit_the_bytes_left() {
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut update = huge.to_vec();
    update.push(0);
    assert!(matches!(
        check_update_v1(&update),
        Err(ScanError::Overrun { .. })
    ));
    let mut any = vec![2, 117];
    any.extend(huge);
    let update = one_item(8, &any);
    assert!(matches!(
        check_update_v1(&update),
        Err(ScanError::Overrun { .. })
    ));
    assert!(matches!(
        check_state_vector_v1(&huge),
        Err(ScanError::Overrun { .. })
    ));
    assert!(matches!(
        check_awareness_v1(&[100, 1, 1]),
        Err(ScanError::Overrun { .. })
    ));
    // A string whose length is near u32::MAX: on wasm32 yrs's bounds check wraps.
    let mut string = vec![1, 4, 1];
    string.extend(huge);
    assert!(matches!(
        check_update_v1(&string),
        Err(ScanError::Overrun { .. })
    ));
}

#[test]
fn nesting_stops_at_64_levels() {
    accepted(&nested_any(MAX_NESTING));
    assert!(matches!(
        check_update_v1(&nested_any(MAX_NESTING + 1)),
        Err(ScanError::TooDeep(_))
    ));
    let json = |levels: usize| {
        one_item(
            5,
            &string(&format!("{}{}", "[".repeat(levels), "]".repeat(levels))),
        )
    };
    accepted(&json(MAX_NESTING));
    assert!(matches!(
        check_update_v1(&json(MAX_NESTING + 1)),
        Err(ScanError::TooDeep(_))
    ));
    // Brackets inside strings, escaped quotes included, are text.
    let text = format!(
        "{}\"\\\"[[\"{}",
        "[".repeat(MAX_NESTING),
        "]".repeat(MAX_NESTING)
    );
    accepted(&one_item(5, &string(&text)));
}

#[test]
fn clocks_may_not_overflow() {
    let max = [0xff, 0xff, 0xff, 0xff, 0x0f];
    // A GC block up to u32::MAX, then a string: yrs divides by zero applying it.
    let mut gc = vec![1, 2, 1, 0, 0];
    gc.extend(max);
    gc.extend([4, 1, 1, b't', 2, b'a', b'b', 0]);
    assert!(matches!(
        check_update_v1(&gc),
        Err(ScanError::ClockOverflow(_))
    ));
    // An origin at u32::MAX.
    let mut origin = vec![1, 1, 1, 0, 0x84, 1];
    origin.extend(max);
    origin.extend([1, b'b', 0]);
    assert!(matches!(
        check_update_v1(&origin),
        Err(ScanError::ClockOverflow(_))
    ));
    // A delete range past u32::MAX.
    let mut ds = vec![0, 1, 1, 1, 2];
    ds.extend(max);
    assert!(matches!(
        check_update_v1(&ds),
        Err(ScanError::ClockOverflow(_))
    ));
}

#[test]
fn numbers_must_fit_their_fields() {
    // Eleven bytes.
    let long = [0x80; 10].iter().chain(&[0]).copied().collect::<Vec<_>>();
    assert!(matches!(
        check_state_vector_v1(&long),
        Err(ScanError::VarIntTooLong(0))
    ));
    // A clock over u32, a client id over 2^53.
    assert!(matches!(
        check_state_vector_v1(&[1, 1, 0x80, 0x80, 0x80, 0x80, 0x10]),
        Err(ScanError::OutOfRange { .. })
    ));
    let mut sv = vec![1];
    sv.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0]);
    assert!(matches!(
        check_state_vector_v1(&sv),
        Err(ScanError::OutOfRange { .. })
    ));
}

#[test]
fn delete_sets_are_sorted_disjoint_and_non_empty() {
    accepted(&[0, 1, 1, 2, 0, 2, 5, 1]);
    for bad in [
        [0, 1, 1, 2, 5, 1, 0, 2],
        [0, 1, 1, 2, 0, 2, 1, 1],
        [0, 1, 1, 2, 0, 0, 5, 1],
    ] {
        assert!(
            matches!(check_update_v1(&bad), Err(ScanError::DeleteRange(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_client_listed_twice_is_refused() {
    let twice = [
        2, 1, 1, 0, 4, 1, 1, b'a', 1, b'x', 1, 1, 5, 4, 1, 1, b'a', 1, b'y', 0,
    ];
    assert_eq!(check_update_v1(&twice), Err(ScanError::DuplicateClient(1)));
}

#[test]
fn json_content_is_read_as_yrs_reads_it() {
    // yrs reads `len + 1` strings (Yjs writes `len`): a count of 1 needs two.
    accepted(&one_item(2, &[1, 2, b'{', b'}', 2, b'[', b']']));
    assert!(check_update_v1(&one_item(2, &[1, 2, b'{', b'}'])).is_err());
    assert!(Update::decode_v1(&one_item(2, &[1, 2, b'{', b'}'])).is_err());
}

#[test]
fn trailing_bytes_unknown_tags_and_bad_json_are_refused() {
    assert_eq!(check_update_v1(&[0, 0, 0]), Err(ScanError::Trailing(1)));
    assert!(matches!(
        check_update_v1(&one_item(11, &[])),
        Err(ScanError::UnknownTag { tag: 11, .. })
    ));
    assert!(matches!(
        check_update_v1(&one_item(7, &[7])),
        Err(ScanError::UnknownTag { kind: "type", .. })
    ));
    assert!(matches!(
        check_awareness_v1(&[1, 1, 1, 1, b'{']),
        Err(ScanError::Json(_))
    ));
}

/// A chain of `levels` maps, each the value of key "k" in the one before, built in one
/// transaction (one update), and, in `extra`, a text and a sibling map at the deepest level.
fn map_chain(levels: usize) -> Vec<u8> {
    use yrs::{Map, MapPrelim, Transact, WriteTxn};
    let doc = yrs::Doc::with_client_id(7);
    let mut txn = doc.transact_mut();
    let mut cur = txn.get_or_insert_map("root");
    for _ in 0..levels {
        cur = cur.insert(&mut txn, "k", MapPrelim::default());
    }
    cur.insert(&mut txn, "leaf", "value");
    txn.encode_update_v1()
}

#[test]
fn shared_types_nested_deeper_than_the_bound_in_one_update_are_refused() {
    accepted(&map_chain(MAX_TYPE_NESTING as usize));
    assert!(matches!(
        check_update_v1(&map_chain(MAX_TYPE_NESTING as usize + 1)),
        Err(ScanError::TypesTooDeep(_))
    ));
    // Deep enough to exhaust yrs's stack when deleted.
    assert!(matches!(
        check_update_v1(&map_chain(20_000)),
        Err(ScanError::TypesTooDeep(_))
    ));
}

#[test]
fn siblings_of_a_nested_type_share_its_depth() {
    use yrs::{Array, ArrayPrelim, Map, MapPrelim, Transact, WriteTxn};
    // Many maps side by side in one array: wide, not deep.
    let doc = yrs::Doc::with_client_id(3);
    let mut txn = doc.transact_mut();
    let list = txn.get_or_insert_array("nodes");
    for i in 0..2000u32 {
        let node = list.push_back(&mut txn, MapPrelim::default());
        node.insert(&mut txn, "x", i);
        node.insert(&mut txn, "ports", ArrayPrelim::default());
    }
    accepted(&txn.encode_update_v1());
}

#[test]
fn one_level_per_update_is_not_seen_by_the_scan() {
    // The limit of the rule, kept visible: each update alone is shallow.
    use yrs::{Map, MapPrelim, Transact};
    let doc = yrs::Doc::with_client_id(9);
    let root = doc.get_or_insert_map("root");
    let mut cur = root;
    for _ in 0..(MAX_TYPE_NESTING as usize + 10) {
        let mut txn = doc.transact_mut();
        cur = cur.insert(&mut txn, "k", MapPrelim::default());
        let update = txn.encode_update_v1();
        drop(txn);
        assert_eq!(check_update_v1(&update), Ok(()));
    }
}
