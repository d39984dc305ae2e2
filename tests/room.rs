//! The room against simulated clients: fixed client ids, a fixed clock, no I/O.

use std::collections::HashMap;
use std::sync::Arc;
use tandemx::auth::Role;
use tandemx::protocol::{self, Incoming};
use tandemx::ratelimit::Rates;
use tandemx::room::{close, Connection, Frame, Limits, Outbox, Room, Send, To};
use tandemx::storage::{MemoryStore, RoomStore, Stored};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

const NOW: u64 = 1_700_000_000_000;

fn unlimited() -> Rates {
    Rates {
        messages_per_second: 1e12,
        message_burst: 1e12,
        bytes_per_second: 1e15,
        byte_burst: 1e15,
    }
}

/// A client replica: a doc with a fixed id and the frames it has received.
struct Client {
    conn: Connection,
    doc: Doc,
    inbox: Vec<Vec<u8>>,
}

struct Net {
    room: Room<MemoryStore>,
    clients: Vec<Client>,
}

impl Net {
    fn new(limits: Limits) -> Self {
        Net {
            room: Room::load(MemoryStore::default(), limits).unwrap(),
            clients: Vec::new(),
        }
    }

    /// Connects a client and runs the handshake as y-websocket does: the server greets, the
    /// client sends SyncStep1 and answers the server's SyncStep1 with SyncStep2.
    fn join(&mut self, client_id: u64) -> usize {
        let idx = self.clients.len();
        self.clients.push(Client {
            conn: Connection::new(1000 + idx as u64, format!("user{idx}"), Role::Editor, None),
            doc: Doc::with_client_id(client_id),
            inbox: self.room.greeting(),
        });
        let sv = self.clients[idx].doc.transact().state_vector();
        self.send(idx, protocol::sync_step1(&sv));
        self.pump();
        idx
    }

    fn send(&mut self, from: usize, frame: Vec<u8>) -> Outbox {
        let out = self
            .room
            .receive(&mut self.clients[from].conn, Frame::Binary(&frame), NOW)
            .expect("accepted");
        self.deliver(from, &out);
        out
    }

    /// Does what the edge does with an outbox: sends what may leave now, commits the pending
    /// rows (the edge does at the next turn), and sends what the commit releases.
    fn deliver(&mut self, from: usize, out: &Outbox) {
        let from_id = self.clients.get(from).map_or(u64::MAX, |c| c.conn.id);
        let now = self.room.dispatch(from_id, out);
        self.route(&now);
        let released = self.room.commit(NOW).expect("the commit is stored");
        self.route(&released);
    }

    /// Puts frames in the inboxes of their recipients.
    fn route(&mut self, sends: &[Send]) {
        for send in sends {
            for c in self.clients.iter_mut() {
                let mine = send.to.includes(&c.conn);
                if mine {
                    c.inbox.push(send.frame.clone());
                }
            }
        }
    }

    /// Lets every client read its inbox, replying as the y-websocket provider does.
    fn pump(&mut self) {
        loop {
            let mut replies = Vec::new();
            for (i, c) in self.clients.iter_mut().enumerate() {
                for frame in std::mem::take(&mut c.inbox) {
                    for msg in protocol::decode(&frame).unwrap() {
                        match msg {
                            Incoming::SyncStep1(sv) => {
                                let diff = c.doc.transact().encode_state_as_update_v1(&sv);
                                replies.push((i, protocol::sync_step2(diff)));
                            }
                            Incoming::SyncStep2(u) | Incoming::Update(u) => {
                                c.doc
                                    .transact_mut()
                                    .apply_update(Update::decode_v1(&u).unwrap())
                                    .unwrap();
                            }
                            _ => {}
                        }
                    }
                }
            }
            if replies.is_empty() {
                return;
            }
            for (i, frame) in replies {
                self.send(i, frame);
            }
        }
    }

    /// Makes a local change on a client and sends it as the provider does.
    fn edit(&mut self, idx: usize, f: impl FnOnce(&Doc, &mut yrs::TransactionMut)) {
        let update = {
            let doc = self.clients[idx].doc.clone();
            let mut txn = doc.transact_mut();
            f(&doc, &mut txn);
            txn.encode_update_v1()
        };
        self.send(idx, protocol::update(update));
    }

    fn text(&self, idx: usize) -> String {
        let doc = &self.clients[idx].doc;
        let text = doc.get_or_insert_text("t");
        text.get_string(&doc.transact())
    }

    fn room_text(&self) -> String {
        let text = self.room.doc().unwrap().get_or_insert_text("t");
        text.get_string(&self.room.doc().unwrap().transact())
    }
}

fn insert(pos: u32, s: &'static str) -> impl FnOnce(&Doc, &mut yrs::TransactionMut) {
    move |_, txn| txn.get_or_insert_text("t").insert(txn, pos, s)
}

fn aw(entries: &[(u64, u32, &str)]) -> Vec<u8> {
    protocol::awareness(AwarenessUpdate {
        clients: entries
            .iter()
            .map(|(id, clock, json)| {
                (
                    ClientID::new(*id),
                    AwarenessUpdateEntry {
                        clock: *clock,
                        json: Arc::from(*json),
                    },
                )
            })
            .collect(),
    })
}

fn awareness_in(frames: &[Vec<u8>]) -> HashMap<u64, (u32, String)> {
    let mut seen = HashMap::new();
    for f in frames {
        for msg in protocol::decode(f).unwrap() {
            if let Incoming::Awareness(u) = msg {
                for (id, e) in u.clients {
                    seen.insert(id.get(), (e.clock, e.json.to_string()));
                }
            }
        }
    }
    seen
}

#[test]
fn many_replicas_converge_through_the_room() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    let c = net.join(3);
    net.edit(a, insert(0, "hello"));
    net.edit(b, insert(0, ">> "));
    // Concurrent: c edits before it has seen the others.
    net.edit(c, insert(0, "[c]"));
    net.pump();
    let expected = net.room_text();
    assert_eq!(expected.len(), "hello>> [c]".len());
    for i in [a, b, c] {
        assert_eq!(net.text(i), expected, "client {i}");
    }
    // A late joiner gets everything in the handshake.
    let d = net.join(4);
    assert_eq!(net.text(d), expected);
}

#[test]
fn maps_and_nested_types_converge() {
    let mut net = Net::new(Limits::default());
    let a = net.join(10);
    let b = net.join(20);
    net.edit(a, |_, txn| {
        let m = txn.get_or_insert_map("m");
        m.insert(txn, "title", "Design");
        m.insert(txn, "count", 3);
    });
    net.edit(b, |_, txn| {
        let m = txn.get_or_insert_map("m");
        m.insert(txn, "owner", "bea");
    });
    net.pump();
    let json = |doc: &Doc| {
        let txn = doc.transact();
        txn.get_map("m").unwrap().to_json(&txn)
    };
    assert_eq!(json(&net.clients[a].doc), json(&net.clients[b].doc));
    assert_eq!(json(&net.clients[a].doc), json(net.room.doc().unwrap()));
    assert!(format!("{:?}", json(net.room.doc().unwrap())).contains("bea"));
}

#[test]
fn an_update_is_stored_before_it_is_returned_for_broadcast() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let _b = net.join(2);
    let before = net.room.store().appends;
    net.edit(a, insert(0, "x"));
    assert_eq!(net.room.store().appends, before + 1);
    // What is stored rebuilds the same document.
    let stored = net.room.store().load().unwrap();
    let reloaded = Room::load(
        MemoryStore {
            stored,
            ..Default::default()
        },
        Limits::default(),
    )
    .unwrap();
    let t = reloaded.doc().unwrap().get_or_insert_text("t");
    assert_eq!(t.get_string(&reloaded.doc().unwrap().transact()), "x");
}

#[test]
fn a_repeated_update_is_neither_stored_nor_broadcast() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let update = {
        let doc = &net.clients[a].doc;
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "once");
        txn.encode_update_v1()
    };
    let first = net.send(a, protocol::update(update.clone()));
    assert_eq!(first.others.len(), 1);
    let appends = net.room.store().appends;
    let again = net.send(a, protocol::update(update));
    assert!(again.others.is_empty());
    assert_eq!(net.room.store().appends, appends);
}

#[test]
fn a_failed_commit_sends_nothing_and_keeps_memory_equal_to_storage() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "kept"));
    let mut room = Room::load(
        MemoryStore {
            stored: net.room.store().load().unwrap(),
            fail_writes: true,
            ..Default::default()
        },
        Limits::default(),
    )
    .unwrap();
    let doc = Doc::with_client_id(9);
    let update = {
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "lost ");
        txn.encode_update_v1()
    };
    let mut conn = Connection::new(1, "u", Role::Editor, None);
    let out = room
        .receive(&mut conn, Frame::Binary(&protocol::update(update)), NOW)
        .unwrap();
    // The change is pending: its broadcast waits for the commit.
    assert_eq!(out.others.len(), 1);
    assert!(room.dispatch(conn.id, &out).is_empty());
    assert_eq!(room.commit_after(NOW), Some(0));
    let failed = room.commit(NOW).unwrap_err();
    assert_eq!(failed.close, vec![To::AllBut(1)], "those it was for resync");
    assert!(!room.has_pending());
    let t = room.doc().unwrap().get_or_insert_text("t");
    assert_eq!(t.get_string(&room.doc().unwrap().transact()), "kept");
    // Nothing was held back for later either.
    assert_eq!(room.commit(NOW).unwrap(), vec![]);
}

#[test]
fn awareness_is_relayed_to_everyone_and_removed_when_the_owner_leaves() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    let out = net.send(a, aw(&[(111, 1, r#"{"user":"ada"}"#)]));
    // Re-broadcast to everyone, the sender included, as the reference server does.
    assert_eq!(awareness_in(&out.everyone)[&111].1, r#"{"user":"ada"}"#);
    assert!(out.connection_changed);
    assert!(net.clients[a].conn.owned.contains(&111));
    // An outdated update changes nothing and is not re-broadcast.
    let stale = net.send(b, aw(&[(111, 0, r#"{"user":"old"}"#)]));
    assert!(stale.everyone.is_empty());
    // A newcomer is greeted with the known states.
    let greeting = net.room.greeting();
    assert_eq!(awareness_in(&greeting)[&111].0, 1);
    // The owner leaves: everyone else is told, with a clock they accept.
    let conn = net.clients[a].conn.clone();
    let out = net.room.leave(&conn);
    assert_eq!(awareness_in(&out.others)[&111], (2, "null".to_string()));
    assert_eq!(net.room.presence_len(), 0);
    assert!(
        net.room.greeting().len() == 1,
        "no awareness left to greet with"
    );
}

#[test]
fn a_client_cannot_take_over_another_connections_awareness_id() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    net.send(a, aw(&[(111, 1, r#"{"user":"ada"}"#)]));
    // After a wake, b answers the awareness query with every state it knows, a's included, and
    // may hold a newer state of a's than the room (here: one b made up).
    let out = net.send(b, aw(&[(111, 2, r#"{"user":"bea"}"#), (222, 1, "{}")]));
    assert!(!net.clients[b].conn.owned.contains(&111));
    assert!(net.clients[b].conn.owned.contains(&222));
    // Neither applied nor re-broadcast: a's state is a's.
    let relayed = awareness_in(&out.everyone);
    assert!(relayed.contains_key(&222) && !relayed.contains_key(&111));
    assert_eq!(out.awareness_ignored, 1);
    assert_eq!(
        awareness_in(&net.room.greeting())[&111],
        (1, r#"{"user":"ada"}"#.to_string())
    );
    // Nor can b remove it.
    let out = net.send(b, aw(&[(111, 1, "null")]));
    assert!(out.everyone.is_empty());
    assert_eq!(net.room.presence_len(), 2);
    let conn_b = net.clients[b].conn.clone();
    let out = net.room.leave(&conn_b);
    let removed = awareness_in(&out.others);
    assert!(removed.contains_key(&222) && !removed.contains_key(&111));
}

#[test]
fn query_awareness_is_answered_with_every_state() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    net.send(a, aw(&[(111, 1, "{}")]));
    let out = net.send(b, protocol::query_awareness());
    assert!(awareness_in(&out.reply).contains_key(&111));
}

#[test]
fn bad_frames_are_rejected_and_change_nothing() {
    let limits = Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    };
    let mut net = Net::new(limits);
    let a = net.join(1);
    net.edit(a, insert(0, "safe"));
    let appends = net.room.store().appends;
    let mut garbage_update = vec![0u8, 2, 40];
    garbage_update.extend((0..40u8).map(|i| i.wrapping_mul(97).wrapping_add(13)));
    let valid = {
        let doc = Doc::with_client_id(5);
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "never");
        txn.encode_update_v1()
    };
    // A valid update followed by a truncated one in the same frame: neither applies.
    let mut half_valid = protocol::update(valid);
    half_valid.extend([0, 2, 10, 1]);
    let cases: Vec<(Frame, u16)> = vec![
        (Frame::Text("hello"), close::UNSUPPORTED),
        (Frame::Binary(&[9, 0]), close::UNSUPPORTED),
        (Frame::Binary(&[0, 5, 0]), close::UNSUPPORTED),
        (Frame::Binary(&[0, 2, 10, 1, 2]), close::INVALID),
        (Frame::Binary(&garbage_update), close::INVALID),
        (Frame::Binary(&half_valid), close::INVALID),
        (Frame::Binary(&[]), close::INVALID),
    ];
    let big = vec![0u8; 2048];
    let mut conn = Connection::new(77, "u", Role::Editor, None);
    for (frame, code) in cases
        .into_iter()
        .chain([(Frame::Binary(&big), close::TOO_BIG)])
    {
        let err = net.room.receive(&mut conn, frame, NOW).unwrap_err();
        assert_eq!(err.code, code, "{frame:?}: {}", err.detail);
        assert!(err.reason.len() <= 123);
    }
    assert_eq!(net.room_text(), "safe");
    assert_eq!(net.room.store().appends, appends);
}

#[test]
fn read_only_connections_are_answered_with_permission_denied() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.clients[a].conn.role = Role::Viewer;
    let doc = Doc::with_client_id(3);
    let update = {
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "nope");
        txn.encode_update_v1()
    };
    let out = net.send(a, protocol::update(update));
    assert!(out.others.is_empty());
    assert_eq!(out.reply.len(), 1);
    assert!(matches!(
        protocol::decode(&out.reply[0]).unwrap()[..],
        [Incoming::Auth]
    ));
    assert_eq!(net.room_text(), "");
}

#[test]
fn the_log_is_compacted_and_the_snapshot_loads() {
    let limits = Limits {
        compact_after_updates: 10,
        ..Limits::default()
    };
    let mut net = Net::new(limits);
    let a = net.join(1);
    for _ in 0..25 {
        net.edit(a, insert(0, "ab"));
        if net.room.compaction_due() {
            net.room.compact().unwrap();
        }
    }
    assert_eq!(net.room.store().checkpoints, 2);
    let stored = net.room.store().load().unwrap();
    assert!(stored.snapshot.is_some());
    assert_eq!(stored.updates.len(), 5);
    // A checkpoint shortens loading; the history keeps every change, in order.
    let log = &net.room.store().log;
    assert_eq!(log.len(), 25);
    assert!(log.iter().all(|e| e.author == "user:user0"));
    assert!(log.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    assert_eq!(net.room.store().head(), 25);
    let reloaded = Room::load(
        MemoryStore {
            stored,
            ..Default::default()
        },
        limits,
    )
    .unwrap();
    let t = reloaded.doc().unwrap().get_or_insert_text("t");
    assert_eq!(
        t.get_string(&reloaded.doc().unwrap().transact()),
        "ab".repeat(25)
    );
}

#[test]
fn a_corrupt_store_is_found_when_decoded_and_is_not_touched() {
    let good = {
        let doc = Doc::with_client_id(1);
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "x");
        txn.encode_update_v1()
    };
    let stored = Stored {
        snapshot: Some(good),
        updates: vec![vec![0xff, 0xff, 0xff]],
    };
    let store = MemoryStore {
        stored: stored.clone(),
        ..Default::default()
    };
    // The rows are decoded when the document is first needed, not on load.
    let room = Room::load(store.clone(), Limits::default()).unwrap();
    assert!(!room.is_decoded());
    assert!(room.doc().is_err());
    assert!(room.full_state().is_err());
    assert_eq!(room.store().load().unwrap(), stored);
}

/// A room with text and a logged update after its checkpoint, two connected clients with
/// awareness states, then the same store loaded again with the connections restored, as after
/// hibernation.
fn woken_room() -> (Net, Vec<Connection>) {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    net.edit(a, insert(0, "before sleep"));
    net.pump();
    net.room.compact().unwrap();
    net.edit(b, insert(0, ">"));
    net.pump();
    net.send(a, aw(&[(1, 3, r#"{"user":"ada"}"#)]));
    net.send(b, aw(&[(2, 5, r#"{"user":"bo"}"#)]));
    let conns: Vec<Connection> = net.clients.iter().map(|c| c.conn.clone()).collect();
    let stored = net.room.store().load().unwrap();
    assert!(!stored.updates.is_empty(), "a log after the checkpoint");
    let mut room = Room::load(
        MemoryStore {
            stored,
            ..Default::default()
        },
        Limits::default(),
    )
    .unwrap();
    for c in &conns {
        room.restore(c);
    }
    room.woke();
    net.room = room;
    (net, conns)
}

#[test]
fn a_woken_room_relays_awareness_without_decoding_its_document() {
    let (mut net, _) = woken_room();
    // The renewal that woke it: relayed to everyone, nothing decoded, nothing written.
    let out = net.send(0, aw(&[(1, 4, r#"{"user":"ada"}"#)]));
    assert_eq!(
        awareness_in(&out.everyone)[&1],
        (4, r#"{"user":"ada"}"#.to_string())
    );
    assert!(!net.room.is_decoded());
    assert!(!net.room.take_decoded());
    assert_eq!(net.room.store().appends, 0);
    assert_eq!(net.room.store().checkpoints, 0);
    // An edit needs the document: decoded then, once, with what was logged before the sleep.
    net.edit(1, insert(0, "after: "));
    assert!(net.room.take_decoded());
    assert!(!net.room.take_decoded());
    let text = net.room.doc().unwrap().get_or_insert_text("t");
    assert_eq!(
        text.get_string(&net.room.doc().unwrap().transact()),
        "after: >before sleep"
    );
}

#[test]
fn a_woken_room_asks_for_awareness_once_a_newcomer_joins_or_an_unseen_owner_leaves() {
    let (mut net, conns) = woken_room();
    // A newcomer: the room asks everyone to re-announce their states, once.
    net.room.join();
    let query = net.room.presence_query().expect("a query after the wake");
    assert_eq!(
        protocol::decode(&query).unwrap(),
        vec![Incoming::QueryAwareness]
    );
    assert!(net.room.presence_query().is_none(), "asked once");

    // A connection that closes before its states were seen again: the others are asked, and
    // the echo of its state is answered with its removal.
    let (mut net, conns2) = woken_room();
    let _ = conns;
    let out = net.room.leave(&conns2[1]);
    assert!(out
        .others
        .iter()
        .flat_map(|f| protocol::decode(f).unwrap())
        .any(|m| m == Incoming::QueryAwareness));
    net.clients.remove(1);
    let echo = net.send(
        0,
        aw(&[(1, 3, r#"{"user":"ada"}"#), (2, 5, r#"{"user":"bo"}"#)]),
    );
    let seen = awareness_in(&echo.everyone);
    assert_eq!(
        seen[&2],
        (6, "null".to_string()),
        "bo is removed past the echoed clock"
    );
}

fn text_update(client: u64, s: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    let mut txn = doc.transact_mut();
    txn.get_or_insert_text("t").insert(&mut txn, 0, s);
    txn.encode_update_v1()
}

#[test]
fn commenters_cannot_write_and_empty_replies_are_not_denied() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.clients[a].conn.role = Role::Commenter;
    // The handshake reply of a client with nothing new: no denial, nothing stored.
    let empty = Doc::new()
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let out = net.send(a, protocol::sync_step2(empty));
    assert!(out.reply.is_empty());
    let out = net.send(a, protocol::update(text_update(3, "no")));
    assert_eq!(out.reply.len(), 1);
    assert!(out.others.is_empty());
    assert_eq!(net.room_text(), "");
    // Awareness still flows for read-only roles.
    let out = net.send(a, aw(&[(42, 1, "{}")]));
    assert_eq!(out.everyone.len(), 1);
}

#[test]
fn an_expired_connection_is_closed_with_4401() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.clients[a].conn.exp = Some(NOW / 1000 + 60);
    let frame = protocol::update(text_update(3, "in time"));
    let ok = net.room.receive(
        &mut net.clients[a].conn,
        Frame::Binary(&frame),
        NOW + 59_000,
    );
    assert!(ok.is_ok());
    let frame = protocol::update(text_update(4, "late"));
    let err = net
        .room
        .receive(
            &mut net.clients[a].conn,
            Frame::Binary(&frame),
            NOW + 60_000,
        )
        .unwrap_err();
    assert_eq!(err.code, close::TOKEN_EXPIRED);
    assert_eq!(net.room_text(), "in time");
}

#[test]
fn a_flooding_connection_is_closed_with_4429_and_others_are_not() {
    let rates = Rates {
        messages_per_second: 10.0,
        message_burst: 20.0,
        bytes_per_second: 1e9,
        byte_burst: 1e9,
    };
    let mut room = Room::load(
        MemoryStore::default(),
        Limits {
            rates,
            ..Limits::default()
        },
    )
    .unwrap();
    let mut flooder = Connection::new(1, "mallory", Role::Editor, None);
    let mut calm = Connection::new(2, "bea", Role::Editor, None);
    let query = protocol::query_awareness();
    let mut closed_at = None;
    for i in 0..100 {
        if let Err(e) = room.receive(&mut flooder, Frame::Binary(&query), NOW) {
            assert_eq!(e.code, close::RATE_LIMITED);
            closed_at = Some(i);
            break;
        }
    }
    assert_eq!(
        closed_at,
        Some(20),
        "the burst is allowed, the next message is not"
    );
    assert!(room.receive(&mut calm, Frame::Binary(&query), NOW).is_ok());
    // One second later the flooder has budget again.
    assert!(room
        .receive(&mut flooder, Frame::Binary(&query), NOW + 1000)
        .is_ok());
}

#[test]
fn one_user_cannot_escape_the_limit_by_opening_connections() {
    let rates = Rates {
        messages_per_second: 1.0,
        message_burst: 10.0,
        bytes_per_second: 1e9,
        byte_burst: 1e9,
    };
    let mut room = Room::load(
        MemoryStore::default(),
        Limits {
            rates,
            ..Limits::default()
        },
    )
    .unwrap();
    let query = protocol::query_awareness();
    let mut sent = 0;
    'outer: for id in 0..100 {
        let mut conn = Connection::new(id, "mallory", Role::Editor, None);
        for _ in 0..10 {
            if room.receive(&mut conn, Frame::Binary(&query), NOW).is_err() {
                break 'outer;
            }
            sent += 1;
        }
    }
    assert_eq!(sent, 40, "the user budget is four connections' worth");
}

#[test]
fn an_external_update_reaches_every_connection_and_is_stored() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    let appends = net.room.store().appends;
    let (out, change) = net
        .room
        .apply_external(&text_update(9, "from http"), NOW, "key_1")
        .unwrap();
    assert!(change.is_some());
    assert!(out.reply.is_empty() && out.others.is_empty());
    net.deliver(usize::MAX, &out);
    assert_eq!(net.room.store().appends, appends + 1);
    let logged = net.room.store().log.last().unwrap();
    assert_eq!((logged.author.as_str(), logged.at_ms), ("key_1", NOW));
    net.pump();
    assert_eq!(net.text(a), "from http");
    assert_eq!(net.text(b), "from http");
    // The same update again adds nothing and sends nothing.
    let (again, none) = net
        .room
        .apply_external(&text_update(9, "from http"), NOW, "key_1")
        .unwrap();
    assert!(none.is_none() && again.everyone.is_empty());
    assert!(net.room.apply_external(&[1, 2, 3], NOW, "key_1").is_err());
}

/// The whole document as a fresh client receives it: the SyncStep2 answering an empty SyncStep1.
fn fresh_join_state(room: &mut Room<MemoryStore>) -> String {
    let mut conn = Connection::new(9_999, "late", Role::Viewer, None);
    let out = room
        .receive(
            &mut conn,
            Frame::Binary(&protocol::sync_step1(&StateVector::default())),
            NOW,
        )
        .expect("accepted");
    let doc = Doc::new();
    for frame in &out.reply {
        for msg in protocol::decode(frame).unwrap() {
            if let Incoming::SyncStep2(u) = msg {
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&u).unwrap())
                    .unwrap();
            }
        }
    }
    let text = doc.get_or_insert_text("t");
    let s = text.get_string(&doc.transact());
    s
}

#[test]
fn a_joining_client_gets_the_document_as_it_is_after_every_kind_of_change() {
    // The whole-document encoding is kept between changes; every change must drop it.
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "hello world"));
    assert_eq!(fresh_join_state(&mut net.room), "hello world");
    assert_eq!(fresh_join_state(&mut net.room), "hello world");
    // An insertion.
    net.edit(a, insert(5, ","));
    assert_eq!(fresh_join_state(&mut net.room), "hello, world");
    // A deletion alone: the state vector does not move, the document does.
    net.edit(a, |_, txn| {
        txn.get_or_insert_text("t").remove_range(txn, 0, 7)
    });
    assert_eq!(fresh_join_state(&mut net.room), "world");
    // A change through the HTTP path.
    net.room
        .apply_external(&text_update(77, "new "), NOW, "api")
        .unwrap();
    let joined = fresh_join_state(&mut net.room);
    assert_eq!(joined.len(), "new world".len());
    assert_eq!(joined, net.room_text());
    // And it matches an encoding made from scratch.
    assert_eq!(net.room.full_state().unwrap(), encoded_now(&net.room));
    // An update that must wait for another: the document does not change, but what a joining
    // client receives carries the waiting part.
    let c = Doc::with_client_id(88);
    let first = {
        let mut txn = c.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "ab");
        txn.encode_update_v1()
    };
    let second = {
        let mut txn = c.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 2, "c");
        txn.encode_update_v1()
    };
    let before = net.room_text();
    net.room.apply_external(&second, NOW, "api").unwrap();
    assert_eq!(net.room_text(), before);
    assert_eq!(net.room.full_state().unwrap(), encoded_now(&net.room));
    net.room.apply_external(&first, NOW, "api").unwrap();
    assert!(fresh_join_state(&mut net.room).contains("abc"));
    assert_eq!(net.room.full_state().unwrap(), encoded_now(&net.room));
}

fn encoded_now(room: &Room<MemoryStore>) -> Vec<u8> {
    room.doc()
        .unwrap()
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
}

#[test]
fn a_room_loaded_from_a_checkpoint_alone_serves_it_before_decoding_it() {
    let limits = Limits {
        compact_after_updates: 5,
        ..Limits::default()
    };
    let mut net = Net::new(limits);
    let a = net.join(1);
    for _ in 0..5 {
        net.edit(a, insert(0, "x"));
    }
    net.room.compact().unwrap();
    let stored = net.room.store().load().unwrap();
    assert!(stored.snapshot.is_some() && stored.updates.is_empty());
    let checkpoint = stored.snapshot.clone().unwrap();
    let mut room = Room::load(
        MemoryStore {
            stored,
            ..Default::default()
        },
        limits,
    )
    .unwrap();
    // Not decoded: no SyncStep1 in the greeting, and a new client gets the stored bytes.
    assert!(!room.is_decoded());
    let greeting: Vec<Incoming> = room
        .greeting()
        .iter()
        .flat_map(|f| protocol::decode(f).unwrap())
        .collect();
    assert!(greeting.is_empty(), "{greeting:?}");
    let mut viewer = Connection::new(2, "v", Role::Viewer, None);
    let out = room
        .receive(
            &mut viewer,
            Frame::Binary(&protocol::sync_step1(&StateVector::default())),
            NOW,
        )
        .unwrap();
    assert_eq!(out.reply, vec![protocol::sync_step2(checkpoint.clone())]);
    assert!(!room.is_decoded());
    assert_eq!(fresh_join_state(&mut room), "xxxxx");
    // A client that holds part of the document needs the document: it is decoded then.
    let partial = {
        let doc = Doc::new();
        let update = Update::decode_v1(&checkpoint).unwrap();
        doc.transact_mut().apply_update(update).unwrap();
        let sv = doc.transact().state_vector();
        sv
    };
    let out = room
        .receive(
            &mut viewer,
            Frame::Binary(&protocol::sync_step1(&partial)),
            NOW,
        )
        .unwrap();
    assert!(room.is_decoded());
    assert_eq!(out.reply.len(), 1);
    assert_eq!(
        protocol::decode(&room.sync_step1().unwrap()).unwrap(),
        vec![Incoming::SyncStep1(partial)]
    );
    // Changes after it reach joining clients.
    let mut conn = Connection::new(1, "w", Role::Editor, None);
    room.receive(
        &mut conn,
        Frame::Binary(&protocol::update(text_update(5, "y"))),
        NOW,
    )
    .expect("accepted");
    let joined = fresh_join_state(&mut room);
    assert_eq!(joined.len(), 6);
    assert!(joined.contains('y'));
    assert!(room.has_pending());
    room.commit(NOW).unwrap();
    assert_eq!(room.store().appends, 1);
}

#[test]
fn a_corrupt_checkpoint_alone_is_found_when_decoded_and_nothing_is_written() {
    let checkpoint = vec![0xff, 0xff, 0xff];
    let stored = Stored {
        snapshot: Some(checkpoint.clone()),
        updates: Vec::new(),
    };
    let mut room = Room::load(
        MemoryStore {
            stored: stored.clone(),
            ..Default::default()
        },
        Limits::default(),
    )
    .expect("a checkpoint alone is decoded when first needed");
    assert!(room.sync_step1().is_err());
    assert!(room.doc().is_err());
    assert!(!room.is_decoded());
    let mut conn = Connection::new(1, "w", Role::Editor, None);
    let rejected = room
        .receive(
            &mut conn,
            Frame::Binary(&protocol::update(text_update(5, "y"))),
            NOW,
        )
        .unwrap_err();
    assert_eq!(rejected.code, close::INTERNAL);
    assert!(room
        .apply_external(&text_update(6, "z"), NOW, "api")
        .is_err());
    assert!(
        room.compact().is_ok(),
        "the checkpoint is rewritten as it was"
    );
    assert_eq!(room.store().appends, 0);
    assert_eq!(room.store().load().unwrap(), stored);
}

// ---- Bounded input: the role check, the frame bounds, the pre-scan, presence, whole frames ----

/// An update of one item of `info` in the root type "a" by client 77, with `content` bytes.
fn one_item(info: u8, content: &[u8]) -> Vec<u8> {
    // 1 client, 1 block, client 77, clock 0, info, parent named (1) "a"; no deletions at the end.
    let mut u = vec![1, 1, 77, 0, info, 1, 1, b'a'];
    u.extend_from_slice(content);
    u.push(0);
    u
}

/// An update holding one `Any` value nested `levels` arrays deep: two bytes a level.
fn nested_any(levels: usize) -> Vec<u8> {
    let mut content = vec![1];
    for _ in 0..levels {
        content.extend([117, 1]);
    }
    content.push(126);
    one_item(8, &content)
}

/// A GC block up to clock `u32::MAX`, then a string whose range wraps past it: applying it
/// makes yrs 0.28.1 divide by zero in `BlockStore::find_index` (`block_store.rs:60`).
const WRAPPING_CLOCK: [u8; 17] = [
    1, 2, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 4, 1, 1, b't', 2, b'a', b'b',
];

fn wrapping_clock_update() -> Vec<u8> {
    let mut u = WRAPPING_CLOCK.to_vec();
    u.push(0);
    u
}

/// Runs `f` in a child process (this test binary, running only `test`) and returns whether the
/// child died: for failures of yrs that abort the process, such as a stack overflow, instead of
/// unwinding where `catch_unwind` could see them.
fn dies_in_child(test: &str, f: impl FnOnce()) -> bool {
    const CHILD: &str = "TANDEMX_TEST_CHILD";
    if std::env::var(CHILD).as_deref() == Ok(test) {
        f();
        std::process::exit(0);
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env(CHILD, test)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    !status.success()
}

/// Everything a refused frame must leave as it was: the document (what it holds and, since
/// yrs writes map entries in hash order, the size of its encoding), the log, the presence.
fn room_state(room: &Room<MemoryStore>) -> ((yrs::Snapshot, usize), usize, usize) {
    let txn = room.doc().unwrap().transact();
    let size = txn.encode_state_as_update_v1(&StateVector::default()).len();
    (
        (txn.snapshot(), size),
        room.store().appends,
        room.presence_len(),
    )
}

fn frame_of(messages: &[Vec<u8>]) -> Vec<u8> {
    messages.concat()
}

#[test]
fn read_only_frames_never_reach_a_decoder() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "kept"));
    for role in [Role::Viewer, Role::Commenter] {
        let mut conn = Connection::new(50, "reader", role, None);
        let before = room_state(&net.room);
        // What a stock client with an empty document answers the greeting with: silence.
        assert_eq!(
            Doc::new()
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
            protocol::EMPTY_UPDATE
        );
        let out = net
            .room
            .receive(
                &mut conn,
                Frame::Binary(&protocol::sync_step2(protocol::EMPTY_UPDATE.to_vec())),
                NOW,
            )
            .unwrap();
        assert_eq!(out, Outbox::default());
        // Payloads that no decoder would survive, or accept, in one frame: had any been
        // decoded the frame would close with 1007. One denial answers the whole frame.
        let frame = frame_of(&[
            protocol::update(nested_any(100_000)),
            protocol::sync_step2(wrapping_clock_update()),
            protocol::update(vec![0xff; 7]),
            protocol::update(text_update(3, "nope")),
        ]);
        let out = net
            .room
            .receive(&mut conn, Frame::Binary(&frame), NOW)
            .expect("a read-only write is answered, not closed");
        assert_eq!(out.reply.len(), 1, "one denial per frame");
        assert!(matches!(
            protocol::decode(&out.reply[0]).unwrap()[..],
            [Incoming::Auth]
        ));
        assert!(out.others.is_empty() && out.everyone.is_empty() && !out.document_changed);
        assert_eq!(room_state(&net.room), before);
    }
}

#[test]
fn a_frame_of_more_than_16_messages_closes_with_1008() {
    let mut net = Net::new(Limits {
        rates: unlimited(),
        ..Limits::default()
    });
    let a = net.join(1);
    net.send(a, aw(&[(7, 1, "{}")]));
    let mut conn = Connection::new(60, "u", Role::Editor, None);
    let query = protocol::query_awareness();
    let sixteen = query.repeat(protocol::MAX_MESSAGES_PER_FRAME);
    let out = net
        .room
        .receive(&mut conn, Frame::Binary(&sixteen), NOW)
        .unwrap();
    assert_eq!(out.reply.len(), 1, "repeated queries get one answer");
    let seventeen = query.repeat(protocol::MAX_MESSAGES_PER_FRAME + 1);
    let err = net
        .room
        .receive(&mut conn, Frame::Binary(&seventeen), NOW)
        .unwrap_err();
    assert_eq!(err.code, close::POLICY);
    // A flood of updates is refused before anything applies.
    let before = room_state(&net.room);
    let updates: Vec<Vec<u8>> = (0..17)
        .map(|i| protocol::update(text_update(100 + i, "x")))
        .collect();
    let err = net
        .room
        .receive(&mut conn, Frame::Binary(&frame_of(&updates)), NOW)
        .unwrap_err();
    assert_eq!(err.code, close::POLICY);
    assert_eq!(room_state(&net.room), before);
}

#[test]
fn repeated_sync_step1_in_a_frame_gets_one_answer() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "abc"));
    let mut conn = Connection::new(61, "u", Role::Viewer, None);
    let step1 = protocol::sync_step1(&StateVector::default());
    let frame = frame_of(&[step1.clone(), step1.clone(), step1]);
    let out = net
        .room
        .receive(&mut conn, Frame::Binary(&frame), NOW)
        .unwrap();
    assert_eq!(out.reply.len(), 1);
    assert!(matches!(
        protocol::decode(&out.reply[0]).unwrap()[..],
        [Incoming::SyncStep2(_)]
    ));
}

#[test]
fn the_rate_meter_charges_every_message_of_a_frame() {
    let rates = Rates {
        messages_per_second: 1.0,
        message_burst: 20.0,
        bytes_per_second: 1e9,
        byte_burst: 1e9,
    };
    let mut room = Room::load(
        MemoryStore::default(),
        Limits {
            rates,
            ..Limits::default()
        },
    )
    .unwrap();
    let mut conn = Connection::new(1, "packer", Role::Editor, None);
    let query = protocol::query_awareness();
    let sixteen = query.repeat(16);
    assert!(room
        .receive(&mut conn, Frame::Binary(&sixteen), NOW)
        .is_ok());
    // 16 + 5 messages: over the burst of 20, although it is the second frame.
    let err = room
        .receive(&mut conn, Frame::Binary(&query.repeat(5)), NOW)
        .unwrap_err();
    assert_eq!(err.code, close::RATE_LIMITED);
}

#[test]
fn yrs_divides_by_zero_on_a_wrapping_clock_and_the_room_refuses_it() {
    let update = wrapping_clock_update();
    // yrs decodes it and panics applying it.
    let panicked = std::panic::catch_unwind(|| {
        let doc = Doc::new();
        let decoded = Update::decode_v1(&update).expect("yrs decodes it");
        let _ = doc.transact_mut().apply_update(decoded);
    })
    .is_err();
    assert!(panicked, "yrs 0.28.1 panics on a block range that wraps");
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "safe"));
    let before = room_state(&net.room);
    let mut conn = Connection::new(62, "u", Role::Editor, None);
    for frame in [
        protocol::update(update.clone()),
        protocol::sync_step2(update.clone()),
    ] {
        let err = net
            .room
            .receive(&mut conn, Frame::Binary(&frame), NOW)
            .unwrap_err();
        assert_eq!(err.code, close::INVALID, "{}", err.detail);
    }
    let err = net.room.apply_external(&update, NOW, "api").unwrap_err();
    assert_eq!(err.code, close::INVALID);
    assert_eq!(room_state(&net.room), before);
}

#[test]
fn yrs_overflows_its_stack_on_nested_any_and_the_room_refuses_it() {
    let update = nested_any(200_000);
    let died = dies_in_child(
        "yrs_overflows_its_stack_on_nested_any_and_the_room_refuses_it",
        || {
            let _ = Update::decode_v1(&nested_any(200_000));
        },
    );
    assert!(died, "yrs 0.28.1 recurses once per nesting level");
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "safe"));
    let before = room_state(&net.room);
    let mut conn = Connection::new(63, "u", Role::Editor, None);
    let err = net
        .room
        .receive(
            &mut conn,
            Frame::Binary(&protocol::update(update.clone())),
            NOW,
        )
        .unwrap_err();
    assert_eq!(err.code, close::INVALID, "{}", err.detail);
    let err = net.room.apply_external(&update, NOW, "api").unwrap_err();
    assert_eq!(err.code, close::INVALID);
    // 64 levels are fine.
    assert!(net.room.apply_external(&nested_any(64), NOW, "api").is_ok());
    net.room.commit(NOW).unwrap();
    assert_eq!(room_state(&net.room).1, before.1 + 1);
}

#[test]
fn lengths_that_wrap_on_wasm32_are_refused() {
    // yrs's `Cursor::read_exact` checks `next + len > buf.len()` in `usize`. On wasm32 (the
    // worker) a length near `u32::MAX` wraps, passes, and the slice index panics at
    // `encoding/read.rs:86`, which traps the instance: built for wasm32 and run under Node,
    // reading the payload of the first frame below ends in `RuntimeError: unreachable`.
    // Natively `usize` is 64 bits and the check holds, so here the proof is that these never
    // reach yrs. The framing itself used yrs's `read_buf` before, so the first one needed no
    // update at all.
    let max = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut framing = vec![0, 2];
    framing.extend(max);
    let mut awareness = vec![1];
    awareness.extend(max);
    // A string in an update, an awareness state, both with that length.
    let mut string = vec![1, 1, 1, 0, 4, 1];
    string.extend(max);
    let mut state = vec![1, 1, 1];
    state.extend(max);
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    net.edit(a, insert(0, "safe"));
    let before = room_state(&net.room);
    let mut conn = Connection::new(64, "u", Role::Editor, None);
    for frame in [
        framing,
        awareness,
        protocol::update(string.clone()),
        protocol::sync_step2(string),
        {
            let mut f = vec![1];
            f.extend(u8::try_from(state.len()).ok());
            f.extend(state);
            f
        },
    ] {
        let err = net
            .room
            .receive(&mut conn, Frame::Binary(&frame), NOW)
            .unwrap_err();
        assert_eq!(err.code, close::INVALID, "{frame:?}: {}", err.detail);
        // Refused by the bounded reader, before yrs's (whose error would say "end of buffer").
        assert!(err.detail.contains("exceeds"), "{frame:?}: {}", err.detail);
    }
    assert_eq!(room_state(&net.room), before);
}

#[test]
fn the_http_api_can_pre_scan_what_it_decodes() {
    use tandemx::prescan;
    let doc = Doc::with_client_id(3);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, "x");
    let sv = yrs::updates::encoder::Encode::encode_v1(&doc.transact().state_vector());
    assert_eq!(prescan::check_state_vector_v1(&sv), Ok(()));
    assert!(prescan::check_state_vector_v1(&[5, 1]).is_err());
    assert_eq!(prescan::check_update_v1(&text_update(1, "x")), Ok(()));
    assert!(prescan::check_update_v1(&nested_any(65)).is_err());
}

/// An update by client 9 whose item names a text character, not a type, as its parent: it
/// decodes, and yrs refuses it when applied (`UpdateError::InvalidParent`) once `(1, 0)` exists.
const INVALID_PARENT: [u8; 11] = [1, 1, 9, 0, 4, 0, 1, 0, 1, b'x', 0];

#[test]
fn a_frame_applies_whole_or_not_at_all() {
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    net.edit(a, insert(0, "abc"));
    let before = room_state(&net.room);
    let stored = net.room.store().load().unwrap();
    let frame = frame_of(&[
        protocol::update(text_update(5, "good ")),
        protocol::update(INVALID_PARENT.to_vec()),
    ]);
    let mut conn = Connection::new(65, "u", Role::Editor, None);
    let err = net
        .room
        .receive(&mut conn, Frame::Binary(&frame), NOW)
        .unwrap_err();
    assert_eq!(err.code, close::INVALID, "{}", err.detail);
    // Nothing of the frame stays: not in memory, not in storage, and nothing was sent.
    assert_eq!(room_state(&net.room), before);
    assert_eq!(net.room.store().load().unwrap(), stored);
    assert_eq!(net.room_text(), "abc");
    // Two good updates in one frame: applied together, stored as one change, sent once.
    let frame = frame_of(&[
        protocol::update(text_update(5, "x")),
        protocol::update(text_update(6, "y")),
    ]);
    let out = net
        .room
        .receive(&mut conn, Frame::Binary(&frame), NOW)
        .unwrap();
    assert_eq!(out.others.len(), 1);
    net.deliver(usize::MAX, &out);
    assert_eq!(net.room.store().appends, before.1 + 1);
    net.pump();
    assert_eq!(net.text(a), net.room_text());
    assert_eq!(net.text(b), net.room_text());
    assert_eq!(net.room_text().len(), 5);
}

#[test]
fn admission_caps_the_connections_of_one_user() {
    use tandemx::room::Refusal;
    let limits = Limits::default();
    assert_eq!(limits.max_connections_per_user, 32);
    assert_eq!(limits.admit(10, 31), Ok(()));
    let refused = limits.admit(10, 32).unwrap_err();
    assert_eq!(refused, Refusal::UserLimit { limit: 32 });
    assert_eq!(refused.status(), 429);
    let full = limits.admit(1000, 0).unwrap_err();
    assert_eq!(full, Refusal::RoomFull { limit: 1000 });
    assert_eq!(full.status(), 503);
}

// ---- Presence bounds ----

#[test]
fn awareness_ids_per_connection_are_capped_so_none_is_left_behind() {
    use tandemx::presence::MAX_IDS_PER_CONNECTION;
    let mut net = Net::new(Limits::default());
    let a = net.join(1);
    let b = net.join(2);
    let many: Vec<(u64, u32, &str)> = (0..100).map(|id| (1000 + id, 1, "{}")).collect();
    let out = net.send(a, aw(&many));
    assert_eq!(net.clients[a].conn.owned.len(), MAX_IDS_PER_CONNECTION);
    assert_eq!(awareness_in(&out.everyone).len(), MAX_IDS_PER_CONNECTION);
    assert_eq!(out.awareness_ignored, 100 - MAX_IDS_PER_CONNECTION);
    assert_eq!(net.room.presence_len(), MAX_IDS_PER_CONNECTION);
    net.send(b, aw(&[(2000, 1, "{}")]));
    // Every state a introduced goes when it leaves: no ghost cursor stays behind.
    let conn = net.clients[a].conn.clone();
    let out = net.room.leave(&conn);
    assert_eq!(awareness_in(&out.others).len(), MAX_IDS_PER_CONNECTION);
    assert_eq!(net.room.presence_len(), 1);
}

#[test]
fn the_largest_connection_fits_its_attachment() {
    use tandemx::presence::MAX_IDS_PER_CONNECTION;
    let mut room = Room::load(MemoryStore::default(), Limits::default()).unwrap();
    // A `sub` at its limit of 256 characters, each escaped in JSON; the longest role name.
    let mut conn = Connection::new(u64::MAX, "\"".repeat(256), Role::Commenter, Some(u64::MAX));
    let ids: Vec<(u64, u32, &str)> = (0..200)
        .map(|i| ((1 << 53) - 1 - i, u32::MAX, "{}"))
        .collect();
    room.receive(&mut conn, Frame::Binary(&aw(&ids)), NOW)
        .unwrap();
    assert_eq!(conn.owned.len(), MAX_IDS_PER_CONNECTION);
    // Larger ids than a client can claim, for the bound.
    conn.owned = (0..MAX_IDS_PER_CONNECTION as u64)
        .map(|i| u64::MAX - i)
        .collect();
    let json = serde_json::to_string(&conn).unwrap();
    assert!(json.len() < 1024, "{} bytes: {json}", json.len());
}

#[test]
fn oversized_and_excess_awareness_states_are_ignored_not_closed() {
    let limits = Limits {
        max_awareness_states: 3,
        max_awareness_state_bytes: 64,
        ..Limits::default()
    };
    let mut room = Room::load(MemoryStore::default(), limits).unwrap();
    let mut big = Connection::new(1, "big", Role::Editor, None);
    let state = format!("{{\"n\":\"{}\"}}", "x".repeat(60));
    let out = room
        .receive(&mut big, Frame::Binary(&aw(&[(1, 1, &state)])), NOW)
        .expect("ignored, not closed");
    assert!(out.everyone.is_empty() && big.owned.is_empty());
    assert_eq!(out.awareness_ignored, 1);
    for id in 10..15 {
        let mut conn = Connection::new(id, "u", Role::Viewer, None);
        room.receive(&mut conn, Frame::Binary(&aw(&[(id, 1, "{}")])), NOW)
            .unwrap();
    }
    assert_eq!(room.presence_len(), 3);
}

// ---- Mutation fuzzing ----

/// A small xorshift generator: the fuzz runs the same frames every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid frames as yrs writes them: both sync steps, updates with every kind of content (text
/// with formatting and embeds, maps and arrays of nested `Any`, XML, sub-documents, deletions),
/// awareness with several states, and a frame of several messages.
fn corpus() -> Vec<Vec<u8>> {
    use yrs::{types::Attrs, XmlTextPrelim};
    use yrs::{Any, Array, ArrayPrelim, MapPrelim, Xml, XmlElementPrelim, XmlFragment};
    let doc = Doc::with_client_id(500);
    let mut frames = vec![protocol::sync_step1(&StateVector::default())];
    let edit = |f: &dyn Fn(&mut yrs::TransactionMut)| {
        let mut txn = doc.transact_mut();
        f(&mut txn);
        protocol::update(txn.encode_update_v1())
    };
    frames.push(edit(&|txn| {
        let t = txn.get_or_insert_text("t");
        t.insert(txn, 0, "fuzz wörld 😀");
        t.format(txn, 0, 4, Attrs::from([("bold".into(), Any::Bool(true))]));
        t.insert_embed(
            txn,
            2,
            Any::from(HashMap::from([("img".to_string(), Any::from("a.png"))])),
        );
    }));
    frames.push(edit(&|txn| {
        let m = txn.get_or_insert_map("m");
        let nested = Any::from(vec![
            Any::from(1.5),
            Any::from(-7),
            Any::from(1i64 << 40),
            Any::from(vec![Any::Null, Any::Undefined, Any::from(false)]),
            Any::from(HashMap::from([(
                "k".to_string(),
                Any::from(vec![Any::from("deep")]),
            )])),
            Any::from(vec![1u8, 2, 3]),
        ]);
        m.insert(txn, "any", nested);
        m.insert(txn, "map", MapPrelim::default());
        m.insert(txn, "sub", Doc::new());
        let a = txn.get_or_insert_array("a");
        a.insert_range(txn, 0, [1, 2, 3]);
        a.insert(txn, 1, ArrayPrelim::default());
    }));
    frames.push(edit(&|txn| {
        let x = txn.get_or_insert_xml_fragment("x");
        let p = x.insert(txn, 0, XmlElementPrelim::empty("p"));
        p.insert_attribute(txn, "class", "lead");
        p.insert(txn, 0, XmlTextPrelim::new("para"));
    }));
    frames.push(edit(&|txn| {
        let t = txn.get_or_insert_text("t");
        t.remove_range(txn, 1, 3);
        txn.get_or_insert_array("a").remove_range(txn, 0, 1);
        txn.get_or_insert_map("m").remove(txn, "sub");
    }));
    let full = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    frames.push(protocol::sync_step2(full));
    frames.push(protocol::sync_step1(&doc.transact().state_vector()));
    let states = aw(&[
        (
            900,
            1,
            r##"{"user":{"name":"ada","color":"#f00"},"cursor":null}"##,
        ),
        (901, 3, r#"{"user":{"name":"bea"}}"#),
        (902, 2, "null"),
    ]);
    frames.push(states.clone());
    frames.push(protocol::query_awareness());
    frames.push(frame_of(&[
        protocol::update(text_update(501, "batched")),
        states,
        protocol::sync_step1(&StateVector::default()),
    ]));
    frames
}

/// Rewrites a byte as a varint of a huge value: a length, count or clock that lies, or one
/// just short of `u32::MAX`, so that the next clock wraps.
fn inflate(frame: &mut Vec<u8>, rng: &mut Rng) {
    let value: u64 = match rng.below(4) {
        0 => u64::from(u32::MAX) - rng.below(16) as u64,
        1 => u64::MAX,
        2 => 1 << 53,
        _ => 1 << (20 + rng.below(12)),
    };
    let mut varint = Vec::new();
    yrs::encoding::write::Write::write_var(&mut varint, value);
    let i = rng.below(frame.len());
    frame.splice(i..i + 1, varint);
}

/// An update of a new client built block by block, with lengths and clocks near `u32::MAX`:
/// what the clock rules of the pre-scan are about, and too precise for byte mutations to hit.
fn clock_edges(rng: &mut Rng) -> Vec<u8> {
    use yrs::encoding::write::Write;
    let near_max = |rng: &mut Rng| u32::MAX - rng.below(4) as u32;
    let mut u = Vec::new();
    let blocks = 1 + rng.below(3);
    u.write_var(1u32);
    u.write_var(blocks as u32);
    u.write_var(3000 + rng.below(1000) as u64);
    let mut clock = if rng.below(2) == 0 { 0 } else { near_max(rng) };
    u.write_var(clock);
    for _ in 0..blocks {
        let len = if rng.below(2) == 0 { 2 } else { near_max(rng) };
        match rng.below(4) {
            // GC.
            0 => {
                u.write_u8(0);
                u.write_var(len);
            }
            // Deleted content in root "t".
            1 => {
                u.extend([1, 1, 1, b't']);
                u.write_var(len);
            }
            // "ab" in root "t".
            2 => u.extend([4, 1, 1, b't', 2, b'a', b'b']),
            // "ab" after an origin near the end of the clock range.
            _ => {
                u.write_u8(0x84);
                u.write_var(3000u64);
                u.write_var(near_max(rng));
                u.extend([2, b'a', b'b']);
            }
        }
        clock = clock.wrapping_add(len);
    }
    // A deletion ending near or past u32::MAX, or none.
    if rng.below(2) == 0 {
        u.extend([1, 1, 1]);
        u.write_var(clock.wrapping_sub(1));
        u.write_var(near_max(rng));
    } else {
        u.write_u8(0);
    }
    u
}

fn mutate(corpus: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut frame = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(3) {
        if frame.is_empty() {
            frame.push(0);
        }
        let i = rng.below(frame.len());
        match rng.below(10) {
            0 => frame.truncate(i.max(1)),
            1 => frame[i] ^= 1 << rng.below(8),
            2 => frame[i] = rng.next() as u8,
            3 | 4 => inflate(&mut frame, rng),
            5 => {
                let j = rng.below(frame.len());
                let (lo, hi) = (i.min(j), i.max(j));
                let copy = frame[lo..hi].to_vec();
                frame.splice(i..i, copy);
            }
            6 => {
                const LEVELS: [usize; 5] = [63, 64, 65, 1_000, 100_000];
                frame = protocol::update(nested_any(LEVELS[rng.below(LEVELS.len())]));
            }
            // A flood of messages: up to twice the most a frame may carry.
            7 => frame = frame.repeat(1 + rng.below(2 * protocol::MAX_MESSAGES_PER_FRAME)),
            8 => frame = protocol::update(clock_edges(rng)),
            // A flood of awareness ids, some removals, some larger than the room accepts.
            _ => {
                let big = format!("\"{}\"", "x".repeat(9000));
                let entries: Vec<(u64, u32, String)> = (0..1 + rng.below(300))
                    .map(|i| {
                        let json = match rng.below(3) {
                            0 => "null".to_string(),
                            _ if i == 0 => big.clone(),
                            _ => "{}".to_string(),
                        };
                        (rng.below(2000) as u64, rng.below(5) as u32, json)
                    })
                    .collect();
                let borrowed: Vec<(u64, u32, &str)> = entries
                    .iter()
                    .map(|(i, c, j)| (*i, *c, j.as_str()))
                    .collect();
                frame = aw(&borrowed);
            }
        }
    }
    frame
}

#[test]
fn mutated_frames_never_panic_and_refused_frames_change_nothing() {
    let mut net = Net::new(Limits {
        rates: unlimited(),
        ..Limits::default()
    });
    // Client ids no mutation writes: an editor that forges another client's id can make the
    // two diverge with any Yjs server, which is not what this test is about.
    let a = net.join(0x5a5a_1234);
    let b = net.join(0x3c3c_5678);
    net.edit(a, insert(0, "steady"));
    net.send(a, aw(&[(0x5a5a_1234, 1, r#"{"user":"a"}"#)]));
    net.send(b, aw(&[(0x3c3c_5678, 1, r#"{"user":"b"}"#)]));
    net.pump();
    let corpus = corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut conn_id = 10_000;
    let mut attacker = Connection::new(conn_id, "mallory", Role::Editor, None);
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..4000 {
        let frame = mutate(&corpus, &mut rng);
        attacker.role = if rng.below(3) == 0 {
            Role::Viewer
        } else {
            Role::Editor
        };
        let before = room_state(&net.room);
        match net.room.receive(&mut attacker, Frame::Binary(&frame), NOW) {
            // A refusal carries no frames to send: what must hold is that nothing changed.
            Err(rejection) => {
                refused += 1;
                assert_eq!(
                    room_state(&net.room),
                    before,
                    "round {round}: {rejection:?}"
                );
                // The edge closes the connection; its presence goes, and another comes.
                let gone = net.room.leave(&attacker);
                net.deliver(usize::MAX, &gone);
                conn_id += 1;
                attacker = Connection::new(conn_id, "mallory", Role::Editor, None);
            }
            Ok(out) => {
                accepted += 1;
                if attacker.role == Role::Viewer {
                    assert!(!out.document_changed, "round {round}");
                    assert_eq!(room_state(&net.room).0, before.0, "round {round}");
                }
                net.deliver(usize::MAX, &out);
            }
        }
        net.pump();
        if round % 250 == 0 {
            net.edit(a, insert(0, "a"));
            net.edit(b, insert(1, "b"));
            net.pump();
            assert_eq!(net.text(a), net.room_text(), "round {round}");
            assert_eq!(net.text(b), net.room_text(), "round {round}");
        }
    }
    eprintln!("{refused} frames refused, {accepted} accepted");
    assert!(
        refused > 500 && accepted > 500,
        "{refused} refused, {accepted} accepted"
    );
    // The others still edit and converge, and storage holds what memory holds.
    net.edit(a, insert(0, "end"));
    net.edit(b, insert(0, "END"));
    net.pump();
    let text = net.room_text();
    // (What an editor's accepted frames deleted is gone: "steady" may be.)
    assert!(text.contains("end") && text.contains("END"), "{text}");
    assert_eq!(net.text(a), text);
    assert_eq!(net.text(b), text);
    // (A client listed at clock 0, as a deletion of nothing leaves it, is the same as none.)
    let sv = |doc: &Doc| {
        let sv = doc.transact().state_vector();
        sv.iter()
            .filter(|(_, clock)| **clock > 0)
            .map(|(client, clock)| (client.get(), *clock))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(sv(&net.clients[a].doc), sv(net.room.doc().unwrap()));
    let reloaded = Room::load(
        MemoryStore {
            stored: net.room.store().load().unwrap(),
            ..Default::default()
        },
        Limits::default(),
    )
    .unwrap();
    assert_eq!(sv(reloaded.doc().unwrap()), sv(net.room.doc().unwrap()));
}

/// Group commit (`room/commit.rs`): what a room sends while rows are pending, and when.
mod group_commit {
    use super::*;
    use tandemx::room::{Durability, BURST_ROWS};

    fn room(durability: Durability) -> Room<MemoryStore> {
        let limits = Limits {
            durability,
            rates: unlimited(),
            ..Limits::default()
        };
        Room::load(MemoryStore::default(), limits).unwrap()
    }

    fn editor(id: u64) -> Connection {
        Connection::new(id, format!("u{id}"), Role::Editor, None)
    }

    fn update_frame(client: u64, s: &str) -> Vec<u8> {
        protocol::update(text_update(client, s))
    }

    #[test]
    fn a_frame_never_leaves_before_its_row_is_stored() {
        let mut room = room(Durability::default());
        let mut a = editor(1);
        let out = room
            .receive(&mut a, Frame::Binary(&update_frame(10, "x")), NOW)
            .unwrap();
        assert_eq!(out.others.len(), 1);
        // Pending: nothing leaves, nothing is stored yet.
        assert!(room.dispatch(a.id, &out).is_empty());
        assert_eq!(room.store().appends, 0);
        assert_eq!(room.head(), 1, "the change has its log position already");
        // Every frame after it waits too, whoever sent it, in order.
        let mut b = editor(2);
        let query = protocol::sync_step1(&StateVector::default());
        let answer = room.receive(&mut b, Frame::Binary(&query), NOW).unwrap();
        assert!(room.dispatch(b.id, &answer).is_empty());
        let presence = room
            .receive(&mut b, Frame::Binary(&aw(&[(7, 1, "{}")])), NOW)
            .unwrap();
        assert!(room.dispatch(b.id, &presence).is_empty());
        assert_eq!(
            room.commit_after(NOW),
            Some(0),
            "a lone change: at the next turn"
        );
        let released = room.commit(NOW).unwrap();
        assert_eq!(room.store().appends, 1);
        let order: Vec<To> = released.iter().map(|s| s.to).collect();
        assert_eq!(order, vec![To::AllBut(1), To::One(2), To::All]);
        // Nothing waits any more: the next frame leaves at once.
        let again = room.receive(&mut b, Frame::Binary(&query), NOW).unwrap();
        assert_eq!(room.dispatch(b.id, &again).len(), 1);
        assert_eq!(room.commit_after(NOW), None);
    }

    #[test]
    fn a_commit_is_asked_for_once_per_batch() {
        let mut room = room(Durability::default());
        let mut a = editor(1);
        for (client, s) in [(10, "a"), (11, "b"), (12, "c")] {
            let out = room
                .receive(&mut a, Frame::Binary(&update_frame(client, s)), NOW)
                .unwrap();
            room.dispatch(a.id, &out);
        }
        assert_eq!(room.commit_after(NOW), Some(0));
        assert_eq!(room.commit_after(NOW), None, "already scheduled");
        assert_eq!(room.commit(NOW).unwrap().len(), 3);
        assert_eq!(room.store().appends, 3);
        assert_eq!(
            room.store().log.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn during_a_burst_the_next_commit_waits_for_the_gap() {
        let strict = Durability {
            commit_gap_ms: 2,
            ..Durability::default()
        };
        assert_eq!(strict.delay((NOW, 1), NOW), 0, "a lone change: at once");
        assert_eq!(strict.delay((NOW, BURST_ROWS), NOW), 2);
        assert_eq!(strict.delay((NOW, BURST_ROWS), NOW + 1), 1);
        assert_eq!(strict.delay((NOW, BURST_ROWS), NOW + 5), 0);
        let off = Durability {
            commit_gap_ms: 0,
            ..Durability::default()
        };
        assert_eq!(off.delay((NOW, 100), NOW), 0);
        let relaxed = Durability {
            relaxed: true,
            flush_ms: 10,
            commit_gap_ms: 2,
        };
        assert_eq!(relaxed.delay((NOW, 100), NOW), 10);
        // The room asks with the last commit's figures.
        let mut room = room(strict);
        let mut a = editor(1);
        for i in 0..BURST_ROWS {
            let out = room
                .receive(
                    &mut a,
                    Frame::Binary(&update_frame(20 + i as u64, "b")),
                    NOW,
                )
                .unwrap();
            room.dispatch(a.id, &out);
        }
        assert_eq!(room.commit_after(NOW), Some(0));
        room.commit(NOW).unwrap();
        let out = room
            .receive(&mut a, Frame::Binary(&update_frame(30, "more")), NOW)
            .unwrap();
        room.dispatch(a.id, &out);
        assert_eq!(room.commit_after(NOW), Some(2), "a burst: wait for the gap");
    }

    #[test]
    fn relaxed_durability_sends_at_once_and_keeps_rows_when_a_write_fails() {
        let relaxed = Durability {
            relaxed: true,
            ..Durability::default()
        };
        let mut room = room(relaxed);
        let mut a = editor(1);
        let out = room
            .receive(&mut a, Frame::Binary(&update_frame(10, "x")), NOW)
            .unwrap();
        assert_eq!(
            room.dispatch(a.id, &out).len(),
            1,
            "sent before it is stored"
        );
        assert!(room.has_pending());
        assert_eq!(room.commit_after(NOW), Some(10));
        room.store_mut().fail_writes = true;
        let failed = room.commit(NOW).unwrap_err();
        assert!(failed.close.is_empty(), "nothing waited: nobody is closed");
        assert!(room.has_pending(), "the row waits for the next commit");
        room.store_mut().fail_writes = false;
        assert_eq!(room.commit_after(NOW), Some(10));
        room.commit(NOW).unwrap();
        assert_eq!(room.store().appends, 1);
        assert_eq!(room.store().log[0].update, text_update(10, "x"));
    }

    #[test]
    fn a_connection_that_leaves_does_not_stall_the_frames_held_for_others() {
        let mut room = room(Durability::default());
        let (mut a, mut b) = (editor(1), editor(2));
        let joined = room
            .receive(&mut b, Frame::Binary(&aw(&[(7, 1, "{}")])), NOW)
            .unwrap();
        room.dispatch(b.id, &joined);
        let out = room
            .receive(&mut a, Frame::Binary(&update_frame(10, "x")), NOW)
            .unwrap();
        assert!(room.dispatch(a.id, &out).is_empty());
        // b leaves while a's change is pending: its removal waits behind the change.
        let gone = room.leave(&b);
        assert!(room.dispatch(b.id, &gone).is_empty());
        assert_eq!(room.commit_after(NOW), Some(0));
        let released = room.commit(NOW).unwrap();
        assert_eq!(
            released.iter().map(|s| s.to).collect::<Vec<_>>(),
            vec![To::AllBut(1), To::AllBut(2)]
        );
    }

    #[test]
    fn a_checkpoint_waits_for_the_pending_rows() {
        let mut room = room(Durability::default());
        let mut a = editor(1);
        let out = room
            .receive(&mut a, Frame::Binary(&update_frame(10, "x")), NOW)
            .unwrap();
        room.dispatch(a.id, &out);
        assert!(
            room.compact().is_err(),
            "the checkpoint would hold an unlogged change"
        );
        room.commit(NOW).unwrap();
        room.compact().unwrap();
        assert_eq!(room.store().checkpoints, 1);
    }
}

/// A room greeted from a checkpoint alone owes its connections its SyncStep1 (`Room::settle`).
mod settle {
    use super::*;

    fn checkpoint_only_room() -> Room<MemoryStore> {
        let mut net = Net::new(Limits::default());
        let a = net.join(1);
        net.edit(a, insert(0, "stored"));
        net.room.compact().unwrap();
        Room::load(
            MemoryStore {
                stored: net.room.store().load().unwrap(),
                ..Default::default()
            },
            Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_join_without_the_document_decoded_owes_a_settle_and_the_settle_pays_it_once() {
        let mut room = checkpoint_only_room();
        assert!(!room.owes_settle());
        let greeting = room.join();
        assert!(
            !greeting
                .iter()
                .flat_map(|f| protocol::decode(f).unwrap())
                .any(|m| matches!(m, Incoming::SyncStep1(_))),
            "no SyncStep1 before the document is decoded"
        );
        assert!(room.owes_settle());
        assert_eq!(room.settle_after_message(), Some(0));
        let sends = room.settle().unwrap();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].to, To::All);
        assert!(matches!(
            protocol::decode(&sends[0].frame).unwrap()[..],
            [Incoming::SyncStep1(_)]
        ));
        assert!(room.is_decoded());
        assert!(!room.owes_settle());
        assert_eq!(room.settle().unwrap(), vec![], "paid once");
        assert_eq!(room.settle_after_message(), None);
        // Once decoded, a join greets with SyncStep1 and owes nothing.
        assert!(!room.join().is_empty());
        assert!(!room.owes_settle());
    }

    #[test]
    fn a_settle_waits_behind_pending_rows_like_any_frame() {
        let mut room = checkpoint_only_room();
        room.join();
        let mut w = Connection::new(5, "w", Role::Editor, None);
        let out = room
            .receive(
                &mut w,
                Frame::Binary(&protocol::update(text_update(9, "new"))),
                NOW,
            )
            .unwrap();
        assert!(room.dispatch(w.id, &out).is_empty());
        assert!(room.settle().unwrap().is_empty(), "held for the commit");
        let released = room.commit(NOW).unwrap();
        assert_eq!(released.last().map(|s| s.to), Some(To::All));
    }

    #[test]
    fn a_corrupt_checkpoint_fails_the_settle() {
        let mut room = Room::load(
            MemoryStore {
                stored: Stored {
                    snapshot: Some(vec![0xff, 0xff, 0xff]),
                    updates: Vec::new(),
                },
                ..Default::default()
            },
            Limits::default(),
        )
        .unwrap();
        room.join();
        assert!(room.settle().is_err());
    }
}
