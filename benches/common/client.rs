//! A y-websocket client for load generation: one WebSocket, the y-protocols framing of
//! `tandemx::protocol`, and the arrival time of every frame taken as it is read off the socket.
//!
//! Hocuspocus frames carry the document's name first (a lib0 varString) and a connection must
//! authenticate before the rest is handled: for a URL with `hocuspocus-document=<name>` in its
//! query (`servers.rs` adds it), the peer sends an authentication message with an empty token
//! first, prefixes every frame it sends with the name and strips it from every frame it gets.
//!
//! Every peer answers the server's SyncStep1 with what it has, as the `y-websocket` provider
//! does. Received updates are counted, handed to an optional hook with their arrival time, and
//! applied to the peer's document only when asked (applying costs client CPU that a latency
//! measurement does not need).

use futures::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandemx::protocol::{self, Incoming};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, Transact, Update};

/// The query parameter that names a Hocuspocus document (see the module documentation).
pub const HOCUSPOCUS_DOCUMENT: &str = "hocuspocus-document";

/// The frame prefix of a Hocuspocus URL: its document's name as a lib0 varString.
fn hocuspocus_prefix(url: &str) -> Option<Vec<u8>> {
    use yrs::encoding::write::Write;
    let name = tandemx::api::query_param(url, HOCUSPOCUS_DOCUMENT)?;
    let mut prefix = Vec::with_capacity(name.len() + 2);
    prefix.write_string(&name);
    Some(prefix)
}

/// Called with the payload of every sync Update message and the instant its frame arrived.
pub type UpdateHook = Box<dyn FnMut(&[u8], Instant) + Send>;

/// How a peer behaves.
pub struct PeerConfig {
    /// The document the peer syncs (shared with its writer, if any).
    pub doc: Doc,
    /// Whether received updates are applied to `doc`.
    pub apply: bool,
    /// Sees every received update first.
    pub on_update: Option<UpdateHook>,
}

impl PeerConfig {
    /// A peer holding `doc` that neither applies nor inspects live updates.
    pub fn new(doc: Doc) -> PeerConfig {
        PeerConfig {
            doc,
            apply: false,
            on_update: None,
        }
    }

    /// Applies received updates to the document.
    pub fn applying(mut self) -> PeerConfig {
        self.apply = true;
        self
    }

    /// Calls `hook` for every received update.
    pub fn with_hook(mut self, hook: UpdateHook) -> PeerConfig {
        self.on_update = Some(hook);
        self
    }
}

/// One connected client.
pub struct Peer {
    /// The peer's document.
    pub doc: Doc,
    out: mpsc::UnboundedSender<Message>,
    received: watch::Receiver<u64>,
    synced: watch::Receiver<bool>,
    failure: Arc<Mutex<Option<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Peer {
    /// Opens the WebSocket at `url` and starts the handshake (SyncStep1 of the peer's document).
    /// Returns once the socket is open; [`Peer::wait_synced`] waits for the server's SyncStep2.
    pub async fn connect(url: &str, config: PeerConfig) -> Result<Peer, String> {
        // Nagle's algorithm would hold small frames back for up to an ACK delay.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        // Hocuspocus: every frame starts with the document's name.
        let prefix = hocuspocus_prefix(url);
        let hocuspocus = prefix.is_some();
        let framed = |msg: Message, prefix: &Option<Vec<u8>>| match (msg, prefix) {
            (Message::Binary(b), Some(p)) => Message::binary([p.as_slice(), &b].concat()),
            (msg, _) => msg,
        };
        let writer_prefix = prefix.clone();
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let writer_failure = failure.clone();
        let writer = tokio::spawn(async move {
            // Queue everything that is ready, then flush once: fewer syscalls under load.
            while let Some(msg) = rx.recv().await {
                let mut result = sink.feed(framed(msg, &writer_prefix)).await;
                while result.is_ok() {
                    match rx.try_recv() {
                        Ok(more) => result = sink.feed(framed(more, &writer_prefix)).await,
                        Err(_) => break,
                    }
                }
                if let Err(e) = result.and(sink.flush().await) {
                    writer_failure
                        .lock()
                        .unwrap()
                        .get_or_insert(format!("send: {e}"));
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (received_tx, received) = watch::channel(0u64);
        let (synced_tx, synced) = watch::channel(false);
        let PeerConfig {
            doc,
            apply,
            mut on_update,
        } = config;
        let reader_doc = doc.clone();
        let reply = out.clone();
        let reader_failure = failure.clone();
        let reader = tokio::spawn(async move {
            let fail = |why: String| {
                reader_failure.lock().unwrap().get_or_insert(why);
            };
            while let Some(msg) = stream.next().await {
                let at = Instant::now();
                let bytes = match msg {
                    Ok(Message::Binary(b)) => b,
                    Ok(Message::Close(frame)) => {
                        fail(format!("closed by the server: {frame:?}"));
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        fail(format!("receive: {e}"));
                        break;
                    }
                };
                let bytes = match &prefix {
                    Some(p) if bytes.starts_with(p) => bytes.slice(p.len()..),
                    Some(_) => continue,
                    None => bytes,
                };
                // Frames of other protocols (y-sweet's sync-status echo, Hocuspocus's
                // authentication answer, say) are skipped.
                let Ok(messages) = protocol::decode(&bytes) else {
                    continue;
                };
                for m in messages {
                    match m {
                        Incoming::SyncStep1(sv) => {
                            let diff = reader_doc.transact().encode_state_as_update_v1(&sv);
                            let _ = reply.send(Message::binary(protocol::sync_step2(diff)));
                        }
                        Incoming::SyncStep2(u) => match Update::decode_v1(&u) {
                            Ok(update) => {
                                if let Err(e) = reader_doc.transact_mut().apply_update(update) {
                                    fail(format!("sync step 2 does not apply: {e}"));
                                }
                                synced_tx.send_replace(true);
                            }
                            Err(e) => fail(format!("sync step 2 does not decode: {e}")),
                        },
                        Incoming::Update(u) => {
                            if let Some(hook) = on_update.as_mut() {
                                hook(&u, at);
                            }
                            if apply {
                                match Update::decode_v1(&u) {
                                    Ok(update) => {
                                        if let Err(e) =
                                            reader_doc.transact_mut().apply_update(update)
                                        {
                                            fail(format!("update does not apply: {e}"));
                                        }
                                    }
                                    Err(e) => fail(format!("update does not decode: {e}")),
                                }
                            }
                            received_tx.send_modify(|n| *n += 1);
                        }
                        _ => {}
                    }
                }
            }
            // Wake anyone waiting: the failure is reported by their check.
            received_tx.send_modify(|_| {});
            synced_tx.send_modify(|_| {});
        });
        let peer = Peer {
            doc,
            out,
            received,
            synced,
            failure,
            tasks: vec![writer, reader],
        };
        if hocuspocus {
            // Authentication (2), token (0), an empty token: Hocuspocus holds every other
            // message of the document until this one has been handled.
            peer.send(vec![2, 0, 0]);
        }
        let sv = peer.doc.transact().state_vector();
        peer.send(protocol::sync_step1(&sv));
        Ok(peer)
    }

    /// Connects and waits for the initial sync.
    pub async fn join(url: &str, config: PeerConfig, timeout: Duration) -> Result<Peer, String> {
        let peer = Peer::connect(url, config).await?;
        peer.wait_synced(timeout).await?;
        Ok(peer)
    }

    /// Waits until the server's SyncStep2 has been applied.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), String> {
        let mut synced = self.synced.clone();
        let failure = self.failure.clone();
        let waited = tokio::time::timeout(
            timeout,
            synced.wait_for(|s| *s || failure.lock().unwrap().is_some()),
        )
        .await;
        self.check()?;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("connection task ended".into()),
            Err(_) => Err(format!("not synced within {timeout:?}")),
        }
    }

    /// Waits until at least `n` updates have arrived, failing early if this peer or one of
    /// `senders` (whose updates are awaited) lost its connection.
    pub async fn wait_received(
        &self,
        n: u64,
        senders: &[&Peer],
        timeout: Duration,
    ) -> Result<(), String> {
        let mut received = self.received.clone();
        let started = Instant::now();
        loop {
            let failure = self.failure.clone();
            let slice = tokio::time::timeout(
                Duration::from_millis(250),
                received.wait_for(|r| *r >= n || failure.lock().unwrap().is_some()),
            )
            .await;
            self.check()?;
            for s in senders {
                s.check().map_err(|e| format!("sender: {e}"))?;
            }
            match slice {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => return Err("connection task ended".into()),
                Err(_) if started.elapsed() >= timeout => {
                    return Err(format!(
                        "{} of {n} updates received within {timeout:?}",
                        self.received()
                    ))
                }
                Err(_) => {}
            }
        }
    }

    /// Number of sync Update messages received so far.
    pub fn received(&self) -> u64 {
        *self.received.borrow()
    }

    /// The connection's failure, if it failed.
    pub fn check(&self) -> Result<(), String> {
        match self.failure.lock().unwrap().as_ref() {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Sends one binary frame.
    pub fn send(&self, frame: Vec<u8>) {
        let _ = self.out.send(Message::binary(frame));
    }

    /// Sends a v1 update as a sync Update message.
    pub fn send_update(&self, update: Vec<u8>) {
        self.send(protocol::update(update));
    }

    /// The text `name` of the peer's document.
    pub fn text(&self, name: &str) -> String {
        let txn = self.doc.transact();
        txn.get_text(name)
            .map(|t| t.get_string(&txn))
            .unwrap_or_default()
    }

    /// Closes the socket (closing handshake when the server answers in time).
    pub async fn close(self) {
        let Peer { out, tasks, .. } = self;
        let [writer, reader] = <[JoinHandle<()>; 2]>::try_from(tasks).expect("two tasks");
        // The reader holds a sender too: stop it so that the writer drains, closes and ends.
        reader.abort();
        drop(out);
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }
}
