//! End-to-end: a Rust client (yrs + tokio-tungstenite) against the worker under `wrangler dev`.
//!
//! Needs the built worker (`scripts/build`) and the npm packages; `scripts/test` runs these with
//! `--ignored`. Each test starts its own server through `tests/e2e/serve.mjs`.

use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandemx::protocol::{self, Incoming};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, GetString, Map, ReadTxn, Text, Transact, Update, WriteTxn};

/// A TandemX server under `wrangler dev`, stopped when dropped.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    /// An owner token for every room of the development project.
    token: String,
}

impl Server {
    async fn start(vars: &[&str]) -> Server {
        let mut child = Command::new("node")
            .arg("tests/e2e/serve.mjs")
            .args(vars)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/e2e/serve.mjs");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut server = Server {
            child,
            stdin,
            stdout,
            url: String::new(),
            token: String::new(),
        };
        server.wait_ready().await;
        server
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line())
            .await
            .expect("server ready within 120 s")
            .unwrap()
            .expect("serve.mjs printed a line")
    }

    /// Reads `READY <url>` and `TOKEN <jwt>` from serve.mjs.
    async fn wait_ready(&mut self) {
        let line = self.line().await;
        let url = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("{line}"));
        self.url = url.replace("http://", "ws://");
        let line = self.line().await;
        let token = line
            .strip_prefix("TOKEN ")
            .unwrap_or_else(|| panic!("{line}"));
        self.token = token.to_owned();
    }

    async fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        self.wait_ready().await;
    }

    async fn stop(mut self) {
        drop(self.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// A y-websocket speaking client holding a yrs document.
struct Client {
    doc: Doc,
    out: mpsc::UnboundedSender<Message>,
    /// Awareness states heard from the server: client id -> JSON (`null` when removed).
    awareness: Arc<Mutex<HashMap<u64, String>>>,
    /// The close code the server sent, if it closed the connection.
    closed: Arc<Mutex<Option<u16>>>,
    synced: Arc<Mutex<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Client {
    async fn connect(server: &Server, room: &str, client_id: u64) -> Client {
        let url = format!("{}/rooms/{room}?token={}", server.url, server.token);
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("websocket connects");
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let doc = Doc::with_client_id(client_id);
        let mut client = Client {
            doc: doc.clone(),
            out: out.clone(),
            awareness: Arc::default(),
            closed: Arc::default(),
            synced: Arc::default(),
            tasks: vec![writer],
        };
        let (awareness, closed, synced) = (
            client.awareness.clone(),
            client.closed.clone(),
            client.synced.clone(),
        );
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let bytes = match msg {
                    Message::Binary(b) => b,
                    Message::Close(frame) => {
                        *closed.lock().unwrap() = Some(frame.map_or(1005, |f| u16::from(f.code)));
                        break;
                    }
                    _ => continue,
                };
                for m in protocol::decode(&bytes).expect("server frames decode") {
                    match m {
                        Incoming::SyncStep1(sv) => {
                            let diff = doc.transact().encode_state_as_update_v1(&sv);
                            let _ = out.send(Message::binary(protocol::sync_step2(diff)));
                        }
                        Incoming::SyncStep2(u) | Incoming::Update(u) => {
                            let update = Update::decode_v1(&u).unwrap();
                            doc.transact_mut().apply_update(update).unwrap();
                            *synced.lock().unwrap() = true;
                        }
                        Incoming::Awareness(a) => {
                            let mut known = awareness.lock().unwrap();
                            for (id, e) in a.clients {
                                known.insert(id.get(), e.json.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        });
        client.tasks.push(reader);
        let sv = client.doc.transact().state_vector();
        client.send(protocol::sync_step1(&sv));
        wait("initial sync", || *client.synced.lock().unwrap()).await;
        client
    }

    fn send(&self, frame: Vec<u8>) {
        self.out.send(Message::binary(frame)).unwrap();
    }

    fn edit(&self, f: impl FnOnce(&mut yrs::TransactionMut)) {
        let update = {
            let mut txn = self.doc.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        self.send(protocol::update(update));
    }

    fn text(&self) -> String {
        let txn = self.doc.transact();
        txn.get_text("t")
            .map(|t| t.get_string(&txn))
            .unwrap_or_default()
    }

    fn set_awareness(&self, id: u64, clock: u32, json: &str) {
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: Arc::from(json),
            },
        );
        self.send(protocol::awareness(AwarenessUpdate { clients }));
    }

    fn awareness_of(&self, id: u64) -> Option<String> {
        self.awareness.lock().unwrap().get(&id).cloned()
    }

    fn close_code(&self) -> Option<u16> {
        *self.closed.lock().unwrap()
    }

    /// Drops the connection without a closing handshake or an awareness goodbye.
    fn vanish(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn insert(pos: u32, s: &str) -> impl FnOnce(&mut yrs::TransactionMut) + '_ {
    move |txn| {
        let t = txn.get_or_insert_text("t");
        t.insert(txn, pos, s)
    }
}

#[tokio::test]
#[ignore = "needs the built worker and wrangler: run scripts/test"]
async fn two_clients_sync_text_and_maps() {
    let server = Server::start(&[]).await;
    let a = Client::connect(&server, "rust-sync", 1).await;
    let b = Client::connect(&server, "rust-sync", 2).await;
    a.edit(insert(0, "hello"));
    wait("b sees a's text", || b.text() == "hello").await;
    b.edit(insert(5, " world"));
    a.edit(|txn| {
        let m = txn.get_or_insert_map("m");
        m.insert(txn, "shape", "circle");
        m.insert(txn, "x", 10);
    });
    wait("both converge", || {
        a.text() == "hello world" && b.text() == "hello world" && {
            let txn = b.doc.transact();
            txn.get_map("m").is_some_and(|m| m.len(&txn) == 2)
        }
    })
    .await;
    let json = |c: &Client| {
        let txn = c.doc.transact();
        txn.get_map("m").unwrap().to_json(&txn)
    };
    assert_eq!(json(&a), json(&b));
    // A third client joining late gets everything.
    let c = Client::connect(&server, "rust-sync", 3).await;
    wait("late joiner", || c.text() == "hello world").await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs the built worker and wrangler: run scripts/test"]
async fn awareness_arrives_and_is_removed_when_a_client_vanishes() {
    let server = Server::start(&[]).await;
    let a = Client::connect(&server, "rust-aw", 1).await;
    let b = Client::connect(&server, "rust-aw", 2).await;
    a.set_awareness(501, 1, r#"{"user":{"name":"ada"}}"#);
    wait("b sees a's presence", || {
        b.awareness_of(501).as_deref() == Some(r#"{"user":{"name":"ada"}}"#)
    })
    .await;
    // The sender hears its own state back, as from the reference server.
    wait("a hears its echo", || a.awareness_of(501).is_some()).await;
    a.vanish();
    wait("b sees a removed", || {
        b.awareness_of(501).as_deref() == Some("null")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs the built worker and wrangler: run scripts/test"]
async fn bad_frames_close_only_the_sender() {
    let server = Server::start(&["MAX_FRAME_BYTES=4096"]).await;
    let good = Client::connect(&server, "rust-bad", 1).await;
    good.edit(insert(0, "intact"));
    let cases: Vec<(Message, u16)> = vec![
        (Message::text("hello"), 1003),
        (Message::binary(vec![9u8, 0]), 1003),
        (Message::binary(vec![0u8, 2, 10, 1, 2]), 1007),
        (Message::binary(vec![0u8; 5000]), 1009),
    ];
    for (i, (frame, code)) in cases.into_iter().enumerate() {
        let bad = Client::connect(&server, "rust-bad", 100 + i as u64).await;
        bad.out.send(frame).unwrap();
        wait("bad client closed", || bad.close_code().is_some()).await;
        assert_eq!(bad.close_code(), Some(code), "case {i}");
        assert_eq!(
            CloseCode::from(code),
            CloseCode::from(bad.close_code().unwrap())
        );
    }
    // The room still works for everyone else.
    let late = Client::connect(&server, "rust-bad", 2).await;
    assert_eq!(late.text(), "intact");
    late.edit(insert(6, "!"));
    wait("good client still live", || good.text() == "intact!").await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs the built worker and wrangler: run scripts/test"]
async fn a_document_larger_than_a_storage_row_survives_restart_and_compaction() {
    // Compact often so the document is stored as a chunked snapshot plus a log.
    let mut server = Server::start(&["COMPACT_AFTER_UPDATES=5"]).await;
    let a = Client::connect(&server, "rust-big", 1).await;
    // 12 updates of 256 KiB: 3 MiB of text, over the 2 MB row limit, in frames under the limit.
    let piece: String = (0..256 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    for i in 0..12u32 {
        let at = i * piece.len() as u32;
        a.edit(insert(at, &piece));
    }
    let expected_len = 12 * piece.len();
    let b = Client::connect(&server, "rust-big", 2).await;
    wait("b has the whole document", || {
        b.text().len() == expected_len
    })
    .await;
    drop((a, b));
    server.command("restart").await;
    let c = Client::connect(&server, "rust-big", 3).await;
    wait("reloaded document", || c.text().len() == expected_len).await;
    assert_eq!(c.text(), piece.repeat(12));
    server.stop().await;
}
