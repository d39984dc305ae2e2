use super::anchor::{encode_position, parse_position};
use super::*;
use yrs::updates::decoder::Decode;
use yrs::{Assoc, Doc, IndexedSequence, ReadTxn, Text, Transact, Update};

fn user(id: &str, role: Role) -> Participant {
    Participant {
        id: id.into(),
        role,
    }
}

/// Copies what `to` lacks of `from` (a sync step between two replicas).
fn sync(from: &Doc, to: &Doc) {
    let sv = to.transact().state_vector();
    let update = from.transact().encode_state_as_update_v1(&sv);
    to.transact_mut()
        .apply_update(Update::decode_v1(&update).unwrap())
        .unwrap();
}

fn text_anchor(doc: &Doc, name: &str, from: u32, to: u32) -> Anchor {
    let text = doc.get_or_insert_text(name);
    let txn = doc.transact();
    let start = text.sticky_index(&txn, from, Assoc::After).unwrap();
    let end = text.sticky_index(&txn, to, Assoc::Before).unwrap();
    Anchor::Text {
        start: encode_position(&start),
        end: encode_position(&end),
    }
}

fn new_thread(anchor: Anchor, text: &str) -> NewThread {
    NewThread {
        anchor,
        metadata: Metadata::new(),
        body: Body::text(text),
    }
}

#[test]
fn a_text_anchor_follows_its_words_through_concurrent_edits_orphans_and_comes_back_on_undo() {
    let editor = Doc::with_client_id(1);
    let server = Doc::with_client_id(2);
    let text = editor.get_or_insert_text("body");
    text.insert(&mut editor.transact_mut(), 0, "the quick brown fox");
    sync(&editor, &server);
    // A commenter's client anchors "brown" (bytes 10..15 of ASCII text).
    let anchor = text_anchor(&editor, "body", 10, 15);
    let pos = anchor.resolve(&server, None);
    assert_eq!(
        (pos.index, pos.length, pos.quote.as_deref()),
        (Some(10), Some(5), Some("brown"))
    );
    assert_eq!(pos.text.as_deref(), Some("body"));

    // Text inserted before the range, on another replica, concurrently.
    let other = Doc::with_client_id(3);
    sync(&server, &other);
    other
        .get_or_insert_text("body")
        .insert(&mut other.transact_mut(), 0, "ÿ said: ");
    sync(&other, &server);
    let pos = anchor.resolve(&server, Some("brown"));
    assert_eq!(pos.quote.as_deref(), Some("brown"));
    assert_eq!(pos.index, Some(18), "UTF-16 index after the insert");
    assert!(!pos.orphaned);

    // The editor deletes the words, with undo tracking: the thread is orphaned...
    sync(&server, &editor);
    let mut undo: yrs::UndoManager = yrs::UndoManager::with_options(Default::default());
    undo.expand_scope(&editor, &text);
    {
        let mut txn = editor.transact_mut();
        text.remove_range(&mut txn, 18, 6);
    }
    sync(&editor, &server);
    let pos = anchor.resolve(&server, Some("brown"));
    assert!(pos.orphaned, "the anchored text is gone: {pos:?}");
    // ...and the undo brings it back: the positions name the deleted items, the undo inserts
    // new ones where they were.
    undo.undo_blocking();
    sync(&editor, &server);
    let pos = anchor.resolve(&server, Some("brown"));
    assert!(!pos.orphaned, "restored by undo: {pos:?}");
    assert_eq!(pos.quote.as_deref(), Some("brown"));
}

#[test]
fn an_undo_of_a_wider_deletion_restores_the_words_inside_it() {
    let editor = Doc::with_client_id(1);
    let server = Doc::with_client_id(2);
    let text = editor.get_or_insert_text("body");
    text.insert(&mut editor.transact_mut(), 0, "one two three four");
    let anchor = text_anchor(&editor, "body", 8, 13); // "three"
    sync(&editor, &server);
    let mut undo: yrs::UndoManager = yrs::UndoManager::with_options(Default::default());
    undo.expand_scope(&editor, &text);
    // The deletion takes more than the words: "two three four".
    text.remove_range(&mut editor.transact_mut(), 4, 14);
    sync(&editor, &server);
    assert!(anchor.resolve(&server, Some("three")).orphaned);
    undo.undo_blocking();
    sync(&editor, &server);
    let pos = anchor.resolve(&server, Some("three"));
    assert_eq!(
        (pos.orphaned, pos.index, pos.quote.as_deref()),
        (false, Some(8), Some("three"))
    );
}

#[test]
fn relative_positions_parse_only_when_well_formed() {
    let doc = Doc::with_client_id(9);
    let text = doc.get_or_insert_text("t");
    text.insert(&mut doc.transact_mut(), 0, "abc");
    let pos = text
        .sticky_index(&doc.transact(), 1, Assoc::Before)
        .unwrap();
    let b64 = encode_position(&pos);
    assert_eq!(parse_position(&b64).unwrap(), pos);
    // A root type name (an empty text), as Yjs encodes it: tag 1, length, name, assoc 0.
    let root = crate::codec::base64(&[1, 1, b't', 0]);
    assert!(parse_position(&root).is_ok());
    let bad_cases: Vec<String> = vec![
        crate::codec::base64(&[]),
        crate::codec::base64(&[0, 0x80]),
        crate::codec::base64(&[1, 200, b't']),
        crate::codec::base64(&[7, 1, 1]),
        crate::codec::base64(&[0, 1, 1, 5]),
        crate::codec::base64(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1]),
        "***".to_string(),
        "A".repeat(2_000),
    ];
    for bad in bad_cases {
        assert!(parse_position(&bad).is_err(), "{bad:?}");
    }
    // A position naming an item the document does not have resolves to nothing.
    let missing = crate::codec::base64(&[0, 77, 5, 0]);
    let anchor = Anchor::Text {
        start: missing.clone(),
        end: missing,
    };
    assert!(anchor.resolve(&doc, None).orphaned);
}

#[test]
fn a_point_on_a_node_is_orphaned_when_the_node_goes() {
    let doc = Doc::with_client_id(4);
    let nodes = doc.get_or_insert_map("nodes");
    yrs::Map::insert(&nodes, &mut doc.transact_mut(), "n1", "service");
    let anchor = Anchor::Point {
        x: 10.0,
        y: 20.0,
        node: Some(anchor::NodeRef {
            map: "nodes".into(),
            key: "n1".into(),
        }),
    };
    assert!(anchor.check().is_ok());
    assert!(!anchor.resolve(&doc, None).orphaned);
    yrs::Map::remove(&nodes, &mut doc.transact_mut(), "n1");
    assert!(anchor.resolve(&doc, None).orphaned);
    let bad = Anchor::Point {
        x: f64::NAN,
        y: 0.0,
        node: None,
    };
    assert!(bad.check().is_err());
}

#[test]
fn roles_decide_who_comments_edits_resolves_and_deletes() {
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 1_000,
    };
    let whole = Position {
        orphaned: false,
        index: None,
        length: None,
        quote: None,
        text: None,
    };
    let viewer = user("vic", Role::Viewer);
    let ann = user("ann", Role::Commenter);
    let bob = user("bob", Role::Commenter);
    let eve = user("eve", Role::Editor);
    assert!(matches!(
        conv.create_thread(&viewer, new_thread(Anchor::Document {}, "hi"), &whole),
        Err(ConvError::Forbidden(_))
    ));
    let (view, events) = conv
        .create_thread(&ann, new_thread(Anchor::Document {}, "hi"), &whole)
        .unwrap();
    let t = view.thread.id;
    let first = view.comments[0].id;
    assert_eq!(events[0].kind, EventKind::ThreadCreated);
    let (reply, _) = conv.add_comment(&bob, t, Body::text("reply")).unwrap();
    // Only the author edits; the author or a moderator deletes.
    assert!(matches!(
        conv.edit_comment(&bob, t, first, Body::text("x")),
        Err(ConvError::Forbidden(_))
    ));
    assert!(matches!(
        conv.edit_comment(&eve, t, first, Body::text("x")),
        Err(ConvError::Forbidden(_))
    ));
    conv.edit_comment(&ann, t, first, Body::text("hello"))
        .unwrap();
    assert!(matches!(
        conv.delete_comment(&ann, t, reply.id),
        Err(ConvError::Forbidden(_))
    ));
    // The opener resolves; another commenter cannot; an editor can reopen.
    assert!(matches!(
        conv.set_resolved(&bob, t, true),
        Err(ConvError::Forbidden(_))
    ));
    conv.set_resolved(&ann, t, true).unwrap();
    let (_, again) = conv.set_resolved(&ann, t, true).unwrap();
    assert!(again.is_empty(), "resolving twice changes nothing");
    let (thread, events) = conv.set_resolved(&eve, t, false).unwrap();
    assert!(thread.resolved.is_none());
    assert_eq!(events[0].kind, EventKind::ThreadReopened);
    // The opener cannot delete a thread holding others' comments; an editor can.
    assert!(matches!(
        conv.delete_thread(&ann, t),
        Err(ConvError::Forbidden(_))
    ));
    let (deleted, _) = conv.delete_comment(&eve, t, reply.id).unwrap();
    assert!(
        deleted.body.is_none() && deleted.deleted.is_some(),
        "a tombstone"
    );
    conv.delete_thread(&ann, t).unwrap();
    assert!(matches!(
        conv.add_comment(&bob, t, Body::text("late")),
        Err(ConvError::Missing("thread"))
    ));
}

#[test]
fn reactions_are_idempotent_and_bounded() {
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Commenter);
    let whole = Anchor::Document {}.resolve(&Doc::new(), None);
    let (view, _) = conv
        .create_thread(&ann, new_thread(Anchor::Document {}, "hi"), &whole)
        .unwrap();
    let (t, c) = (view.thread.id, view.comments[0].id);
    let (comment, events) = conv.react(&ann, t, c, "👍", true).unwrap();
    assert_eq!(events.len(), 1);
    let (again, none) = conv.react(&ann, t, c, "👍", true).unwrap();
    assert!(none.is_empty());
    assert_eq!(again, comment);
    assert_eq!(comment.reactions["👍"], vec!["ann".to_string()]);
    for i in 1..MAX_EMOJI {
        conv.react(&ann, t, c, &format!(":e{i}:"), true).unwrap();
    }
    assert!(matches!(
        conv.react(&ann, t, c, ":one-too-many:", true),
        Err(ConvError::Conflict(_))
    ));
    assert!(conv.react(&ann, t, c, "two words", true).is_err());
    let (comment, events) = conv.react(&ann, t, c, "👍", false).unwrap();
    assert!(!comment.reactions.contains_key("👍"));
    assert_eq!(events[0].kind, EventKind::ReactionRemoved);
    assert!(conv.react(&ann, t, c, "👍", false).unwrap().1.is_empty());
}

#[test]
fn mentions_notify_and_replies_reach_participants() {
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Commenter);
    let bob = user("bob", Role::Editor);
    let body = Body {
        content: vec![body::Paragraph {
            kind: body::ParagraphKind::Paragraph,
            children: vec![
                body::Inline::text("ping "),
                body::Inline::mention("bob"),
                body::Inline::mention("ann"),
            ],
        }],
    };
    let whole = Anchor::Document {}.resolve(&Doc::new(), None);
    let (view, events) = conv
        .create_thread(
            &ann,
            NewThread {
                anchor: Anchor::Document {},
                metadata: Metadata::new(),
                body,
            },
            &whole,
        )
        .unwrap();
    assert_eq!(
        events[0].mentioned,
        vec!["bob".to_string()],
        "no self-mention"
    );
    let (_, events) = conv
        .add_comment(&bob, view.thread.id, Body::text("on it"))
        .unwrap();
    assert_eq!(events[0].participants, vec!["ann".to_string()]);
    assert!(events[0].mentioned.is_empty());
}

#[test]
fn listing_since_returns_changed_threads_and_tombstones() {
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Editor);
    let whole = Anchor::Document {}.resolve(&Doc::new(), None);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (v, _) = conv
            .create_thread(
                &ann,
                new_thread(Anchor::Document {}, &format!("t{i}")),
                &whole,
            )
            .unwrap();
        ids.push(v.thread.id);
    }
    let mark = conv.store.last_seq().unwrap();
    conv.add_comment(&ann, ids[1], Body::text("new")).unwrap();
    conv.delete_thread(&ann, ids[3]).unwrap();
    let none = |_: &Thread| whole.clone();
    let changed = conv.list(mark, 0, 50, none).unwrap();
    let got: Vec<_> = changed
        .iter()
        .map(|v| (v.thread.id, v.thread.deleted.is_some()))
        .collect();
    assert_eq!(got, vec![(ids[1], false), (ids[3], true)]);
    // A full listing leaves deleted threads out and pages by id.
    let page = conv.list(0, 0, 2, none).unwrap();
    assert_eq!(
        page.iter().map(|v| v.thread.id).collect::<Vec<_>>(),
        vec![ids[0], ids[1]]
    );
    let rest = conv.list(0, ids[1], 10, none).unwrap();
    assert_eq!(
        rest.iter().map(|v| v.thread.id).collect::<Vec<_>>(),
        vec![ids[2], ids[4]]
    );
}

#[test]
fn chat_pages_backwards_and_keeps_a_bounded_history() {
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Commenter);
    let viewer = user("vic", Role::Viewer);
    assert!(conv.post_chat(&viewer, Body::text("hi")).is_err());
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            conv.post_chat(&ann, Body::text(&format!("m{i}")))
                .unwrap()
                .0
                .id
        })
        .collect();
    let newest = conv.store.chat_before(None, 2).unwrap();
    assert_eq!(
        newest.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]]
    );
    let older = conv.store.chat_before(Some(ids[3]), 10).unwrap();
    assert_eq!(older.len(), 3);
    // Since and before together: the messages between the two, oldest first.
    let between = conv.store.chat_since(ids[0], Some(ids[3]), 10).unwrap();
    assert_eq!(
        between.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]]
    );
    assert!(conv
        .store
        .chat_since(ids[3], Some(ids[1]), 10)
        .unwrap()
        .is_empty());
    assert_eq!(conv.store.chat_since(ids[3], None, 10).unwrap().len(), 1);
}

#[test]
fn a_reaction_is_counted_in_characters_without_white_space() {
    for ok in [
        "👍",
        ":+1:",
        "👨‍👩‍👧",
        "\u{feff}",
        &"👍".repeat(MAX_EMOJI_CHARS),
    ] {
        assert!(check_emoji(ok).is_ok(), "{ok:?}");
    }
    for bad in [
        "",
        "two words",
        "\u{a0}",
        "\u{85}",
        "\u{2028}",
        "a\u{7}",
        &"a".repeat(MAX_EMOJI_CHARS + 1),
    ] {
        assert!(check_emoji(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn bounds_count_characters_and_anchors_refuse_unknown_fields() {
    let long = |n: usize| "é".repeat(n);
    let meta = |s: String| {
        [("k".to_string(), MetaValue::String(s))]
            .into_iter()
            .collect()
    };
    assert!(check_metadata(&meta(long(MAX_METADATA_STRING))).is_ok());
    assert!(check_metadata(&meta(long(MAX_METADATA_STRING + 1))).is_err());
    let point = |map: String| Anchor::Point {
        x: 0.0,
        y: 0.0,
        node: Some(anchor::NodeRef {
            map,
            key: "k".into(),
        }),
    };
    assert!(point(long(anchor::MAX_NODE_NAME)).check().is_ok());
    assert!(point(long(anchor::MAX_NODE_NAME + 1)).check().is_err());
    assert!(check_review_comment(&long(MAX_REVIEW_COMMENT)).is_ok());
    assert!(check_review_comment(&long(MAX_REVIEW_COMMENT + 1)).is_err());
    assert!(check_review_comment("a\tb").is_err());
    for (json, ok) in [
        (serde_json::json!({ "type": "document" }), true),
        (serde_json::json!({ "type": "document", "x": 1 }), false),
        (
            serde_json::json!({ "type": "point", "x": 1, "y": 2, "node": null }),
            true,
        ),
        (
            serde_json::json!({ "type": "point", "x": 1, "y": 2, "z": 3 }),
            false,
        ),
        (
            serde_json::json!({ "type": "text", "start": "AQA=", "end": "AQA=", "x": 1 }),
            false,
        ),
    ] {
        let parsed: Result<Anchor, _> = serde_json::from_value(json.clone());
        assert_eq!(parsed.is_ok(), ok, "{json}");
    }
}

#[test]
fn a_failed_write_leaves_no_half_made_thread() {
    let mut store = MemoryConversations::failing();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Commenter);
    let whole = Anchor::Document {}.resolve(&Doc::new(), None);
    assert!(matches!(
        conv.create_thread(&ann, new_thread(Anchor::Document {}, "hi"), &whole),
        Err(ConvError::Store(_))
    ));
    assert_eq!(conv.store.thread_count().unwrap(), 0);
}

#[test]
fn a_text_anchor_must_name_text_when_a_thread_opens() {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    text.insert(&mut doc.transact_mut(), 0, "abc");
    let empty = text_anchor(&doc, "t", 1, 1);
    let pos = empty.resolve(&doc, None);
    let mut store = MemoryConversations::default();
    let mut conv = Conversations {
        store: &mut store,
        now: 5,
    };
    let ann = user("ann", Role::Commenter);
    assert!(matches!(
        conv.create_thread(&ann, new_thread(empty, "hi"), &pos),
        Err(ConvError::Invalid(_))
    ));
    let _ = doc.transact().state_vector();
}

#[test]
fn event_and_notice_frames_are_message_100_and_a_json_string() {
    use yrs::encoding::read::{Cursor, Read};
    let read = |frame: &[u8]| {
        let mut c = Cursor::new(frame);
        let kind: u64 = c.read_var().unwrap();
        let json: serde_json::Value = serde_json::from_str(c.read_string().unwrap()).unwrap();
        (kind, json)
    };
    let mut event = Event::new(EventKind::CommentCreated, 9, &user("ann", Role::Commenter));
    event.thread = Some(3);
    event.text = Some("not pushed: clients fetch bodies".into());
    let (kind, json) = read(&event_frame(&event));
    assert_eq!(kind, EVENT_MESSAGE);
    assert_eq!(json["type"], "comment.created");
    assert_eq!(
        (json["seq"].as_u64(), json["thread"].as_u64()),
        (Some(9), Some(3))
    );
    assert!(json.get("text").is_none(), "ids only");
    let notice = Notice::NotificationsCreated {
        notifications: vec![NoticeEntry {
            user: "bob".into(),
            id: 4,
            kind: "mention".into(),
        }],
    };
    let (kind, json) = read(&notice_frame(&notice));
    assert_eq!(kind, EVENT_MESSAGE);
    assert_eq!(json["type"], "notification.created");
    assert_eq!(json["notifications"][0]["user"], "bob");
}
