//! y-webrtc signalling without the platform: the frames of y-webrtc 10.3.0's reference server
//! (`bin/server.js` in the y-webrtc package), checked and authorised, and the subscriptions of a
//! project's hub. The Durable Object (`edge/signal_hub.rs`) only wires sockets to [`Hub`].
//!
//! The protocol, as the reference server speaks it: JSON text frames `{"type":"subscribe",
//! "topics":[…]}`, `{"type":"unsubscribe","topics":[…]}`, `{"type":"publish","topic":…}` (the
//! whole frame goes to every subscriber of the topic, the sender included, with `clients`, the
//! subscriber count, added) and `{"type":"ping"}` → `{"type":"pong"}`. Unlike the reference
//! server, a topic is a room name the connection's token must cover, and every frame is checked
//! before it acts; what is refused gets an error frame ([`ErrorCode`]) or closes the connection
//! ([`Close`]). See docs/signalling.md.

use crate::auth::{room_matches, Role};
use crate::names::{Id, RoomName};
use crate::ratelimit::{Meter, Rates};
use crate::room::close;
use crate::room_call::Credential;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod calls;
pub use calls::{
    is_call_frame, sdp_sends_media, Media, Participant, MAX_CALLS_PER_CONNECTION, MAX_PARTICIPANTS,
    MIN_PARTICIPANTS,
};

/// Where the worker hands an admitted WebSocket upgrade to the project's hub.
pub const CONNECT_URL: &str = "https://signal.internal/connect";
/// Where the worker tells the project's hub about a revocation (a JSON `Revocation` body).
pub const REVOKE_URL: &str = "https://signal.internal/revoke";

/// The exact keep-alive frame of y-webrtc's client (lib0/websocket sends
/// `JSON.stringify({ type: 'ping' })`). The hub registers it as the runtime's WebSocket
/// auto-response, so an idle client's pings never wake the hub.
pub const PING: &str = r#"{"type":"ping"}"#;
/// The answer to [`PING`].
pub const PONG: &str = r#"{"type":"pong"}"#;

/// What one hub and each of its connections may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest frame, in bytes. An SDP offer is a few KB; larger frames close the connection.
    pub max_frame_bytes: usize,
    /// Topics one connection may hold at once.
    pub max_topics: usize,
    /// Bytes of topic names one connection may hold at once: they live in the socket's
    /// attachment, which the runtime caps at 2,048 bytes
    /// (<https://developers.cloudflare.com/durable-objects/api/websockets/#serializeattachment>).
    pub max_topic_bytes: usize,
    /// Subscribers one topic may have: bounds the work of one publish.
    pub max_subscribers: usize,
    /// Connections one hub holds.
    pub max_connections: usize,
    /// Per connection: frames and bytes in; a publish is charged its bytes once per recipient.
    pub rates: Rates,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_topics: 64,
            max_topic_bytes: 1024,
            max_subscribers: 100,
            max_connections: 5000,
            rates: Rates {
                messages_per_second: 20.0,
                message_burst: 200.0,
                bytes_per_second: 256.0 * 1024.0,
                byte_burst: 2.0 * 1024.0 * 1024.0,
            },
        }
    }
}

/// Who a forwarded upgrade to `/signal` is, as the worker established it (sent in
/// [`crate::room_call::ADMISSION_HEADER`]); the hub trusts nothing else of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// The token's project: the hub's.
    pub project: Id,
    /// The user.
    pub sub: String,
    /// The role the connection gets.
    pub role: Role,
    /// Whether it may send media in calls (editors and owners; others when the project allows).
    pub publish: bool,
    /// The project's participant limit per call.
    pub call_limit: u8,
    /// The token's room pattern: the topics the connection may use.
    pub room: String,
    /// Token expiry, unix seconds.
    pub exp: u64,
    /// What admitted it, so a revocation finds it.
    pub cred: Credential,
    /// The `Sec-WebSocket-Protocol` to select in the response, if the client offered one.
    pub protocol: Option<String>,
}

/// A signalling connection, as its socket attachment keeps it (under 2 KiB: see
/// [`Limits::max_topic_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Connection id (within JavaScript's safe integers).
    pub id: u64,
    /// The user.
    pub sub: String,
    /// The role it was admitted with.
    pub role: Role,
    /// Whether it may send media in calls.
    #[serde(default)]
    pub publish: bool,
    /// The project's participant limit per call when it was admitted.
    #[serde(default)]
    pub call_limit: u8,
    /// The token's room pattern.
    pub room: String,
    /// Token expiry, unix seconds.
    pub exp: u64,
    /// What admitted it.
    pub cred: Credential,
    /// The topics it is subscribed to.
    pub topics: BTreeSet<String>,
    /// The calls it is in (room name -> its media state).
    #[serde(default)]
    pub calls: BTreeMap<String, Media>,
}

impl Peer {
    /// A connection for `admission`, subscribed to nothing.
    pub fn new(id: u64, admission: Admission) -> Peer {
        Peer {
            id,
            sub: admission.sub,
            role: admission.role,
            publish: admission.publish,
            call_limit: admission.call_limit,
            room: admission.room,
            exp: admission.exp,
            cred: admission.cred,
            topics: BTreeSet::new(),
            calls: BTreeMap::new(),
        }
    }

    /// Whether its token has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.exp.saturating_mul(1000) <= now_ms
    }

    /// Whether its token covers `topic`.
    pub fn covers(&self, topic: &str) -> bool {
        room_matches(&self.room, topic)
    }

    fn topic_bytes(&self) -> usize {
        self.topics.iter().map(String::len).sum()
    }

    fn call_bytes(&self) -> usize {
        self.calls.keys().map(String::len).sum()
    }

    /// The participant limit for the calls it joins: the project's, within
    /// [`MIN_PARTICIPANTS`]..=[`MAX_PARTICIPANTS`].
    pub fn call_limit(&self) -> u8 {
        match self.call_limit {
            0 => MAX_PARTICIPANTS,
            n => n.clamp(MIN_PARTICIPANTS, MAX_PARTICIPANTS),
        }
    }
}

/// Why a frame, or one topic of it, was refused; the sender gets
/// `{"type":"error","error":<code>,"message":…}` (with `topic` where one topic was refused) and
/// nothing else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON, not UTF-8, or not a JSON object.
    BadJson,
    /// JSON of the wrong shape: no `type`, `topics` not a list of strings, `topic` not a string,
    /// more topics in one frame than a connection may hold.
    BadFrame,
    /// A `type` the protocol does not have.
    UnknownType,
    /// A topic that is not a room name (1 to 128 of `A-Z a-z 0-9 . _ ~ - :`).
    BadTopic,
    /// A topic the token's room pattern does not cover.
    ForbiddenTopic,
    /// The connection holds as many topics (or topic bytes) as it may.
    TooManyTopics,
    /// The topic has as many subscribers as it may.
    TopicFull,
    /// A call's room that is not a room name.
    BadRoom,
    /// A call's room the token's room pattern does not cover.
    ForbiddenRoom,
    /// The call has its limit of participants.
    CallFull,
    /// The connection is in as many calls as it may be.
    TooManyCalls,
    /// A call frame for a call the sender is not in.
    NotInCall,
    /// A `call-signal` to a peer that is not in the call.
    NoSuchPeer,
    /// A participant that may not send media tried to.
    ForbiddenMedia,
}

impl ErrorCode {
    /// The code as the error frame names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad-json",
            ErrorCode::BadFrame => "bad-frame",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::BadTopic => "bad-topic",
            ErrorCode::ForbiddenTopic => "forbidden-topic",
            ErrorCode::TooManyTopics => "too-many-topics",
            ErrorCode::TopicFull => "topic-full",
            ErrorCode::BadRoom => "bad-room",
            ErrorCode::ForbiddenRoom => "forbidden-room",
            ErrorCode::CallFull => "call-full",
            ErrorCode::TooManyCalls => "too-many-calls",
            ErrorCode::NotInCall => "not-in-call",
            ErrorCode::NoSuchPeer => "no-such-peer",
            ErrorCode::ForbiddenMedia => "forbidden-media",
        }
    }
}

/// An error frame for the sender.
pub fn error_frame(code: ErrorCode, message: &str, topic: Option<&str>) -> String {
    let mut frame =
        serde_json::json!({ "type": "error", "error": code.as_str(), "message": message });
    if let Some(topic) = topic {
        frame["topic"] = topic.into();
    }
    frame.to_string()
}

/// Why the connection is closed: the WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: &'static str,
}

/// A frame over [`Limits::max_frame_bytes`].
pub const TOO_BIG: Close = Close {
    code: close::TOO_BIG,
    reason: "frame too large",
};
/// The connection's message or byte budget is spent.
pub const RATE_LIMITED: Close = Close {
    code: close::RATE_LIMITED,
    reason: "rate limited",
};
/// The token expired.
pub const EXPIRED: Close = Close {
    code: close::TOKEN_EXPIRED,
    reason: "token expired",
};

/// What one frame causes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Out {
    /// Frames for the sender alone (pong, error frames).
    pub replies: Vec<String>,
    /// A publish: the connections it goes to, and the frame.
    pub publish: Option<(Vec<u64>, String)>,
    /// Call frames for other connections: who gets each, and the frame.
    pub sends: Vec<(Vec<u64>, String)>,
    /// Whether the sender's topics changed (its attachment is to be written again).
    pub changed: bool,
}

impl Out {
    fn error(&mut self, code: ErrorCode, message: &str, topic: Option<&str>) {
        self.replies.push(error_frame(code, message, topic));
    }
}

/// The fields of a frame the hub reads; the rest (a publish's `data`, encrypted or not) is
/// checked to be JSON and passed on byte for byte.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    topic: Option<String>,
}

/// The subscriptions of one project's hub: topic -> connection ids. Rebuilt from the sockets'
/// attachments when the hub wakes ([`Hub::restore`]).
#[derive(Debug, Default)]
pub struct Hub {
    limits: Limits,
    topics: HashMap<String, BTreeSet<u64>>,
    /// Calls: room name -> participants.
    calls: HashMap<String, BTreeMap<u64, Participant>>,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: Limits) -> Hub {
        Hub {
            limits,
            topics: HashMap::new(),
            calls: HashMap::new(),
        }
    }

    /// The hub's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh rate meter for a connection, at `now_ms`.
    pub fn meter(&self, now_ms: u64) -> Meter {
        Meter::new(&self.limits.rates, 1.0, now_ms)
    }

    /// Re-registers a surviving connection's subscriptions (on wake).
    pub fn restore(&mut self, peer: &Peer) {
        for topic in &peer.topics {
            self.topics
                .entry(topic.clone())
                .or_default()
                .insert(peer.id);
        }
        self.restore_calls(peer);
    }

    /// Forgets a closed connection: the `call-peer-left` notices for the others in its calls.
    pub fn leave(&mut self, peer: &Peer) -> Vec<(Vec<u64>, String)> {
        for topic in &peer.topics {
            self.drop_subscriber(topic, peer.id);
        }
        self.leave_calls(peer)
    }

    /// How many connections subscribe to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, BTreeSet::len)
    }

    fn drop_subscriber(&mut self, topic: &str, id: u64) {
        if let Some(subs) = self.topics.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                self.topics.remove(topic);
            }
        }
    }

    /// Handles one frame of `peer`, charged to its `meter`: what to send, or why to close.
    /// Nothing changes unless the frame passed every check that concerns it.
    pub fn receive(
        &mut self,
        peer: &mut Peer,
        meter: &mut Meter,
        frame: &[u8],
        now_ms: u64,
    ) -> Result<Out, Close> {
        if peer.expired(now_ms) {
            return Err(EXPIRED);
        }
        if frame.len() > self.limits.max_frame_bytes {
            return Err(TOO_BIG);
        }
        if !meter.charge(1, frame.len(), now_ms) {
            return Err(RATE_LIMITED);
        }
        let mut out = Out::default();
        let text = match std::str::from_utf8(frame) {
            Ok(text) if text.trim_start().starts_with('{') => text,
            _ => {
                out.error(ErrorCode::BadJson, "a frame is a JSON object", None);
                return Ok(out);
            }
        };
        let head: Head = match serde_json::from_str(text) {
            Ok(head) => head,
            Err(e) if e.is_data() => {
                out.error(ErrorCode::BadFrame, &e.to_string(), None);
                return Ok(out);
            }
            Err(e) => {
                out.error(ErrorCode::BadJson, &e.to_string(), None);
                return Ok(out);
            }
        };
        let topics = head.topics.unwrap_or_default();
        if topics.len() > self.limits.max_topics {
            let message = format!("at most {} topics per frame", self.limits.max_topics);
            out.error(ErrorCode::BadFrame, &message, None);
            return Ok(out);
        }
        match head.kind.as_str() {
            "subscribe" => self.subscribe(peer, &topics, &mut out),
            "unsubscribe" => {
                for topic in &topics {
                    if peer.topics.remove(topic) {
                        self.drop_subscriber(topic, peer.id);
                        out.changed = true;
                    }
                }
            }
            "publish" => {
                let Some(topic) = head.topic else {
                    out.error(ErrorCode::BadFrame, "a publish names its topic", None);
                    return Ok(out);
                };
                if let Some(code) = self.refuse(peer, &topic) {
                    out.error(code, "cannot publish to this topic", Some(&topic));
                    return Ok(out);
                }
                let Some(subs) = self.topics.get(&topic) else {
                    return Ok(out);
                };
                // The fan-out is charged to the sender: its bytes once per further recipient.
                let extra = text.len().saturating_mul(subs.len().saturating_sub(1));
                if !meter.charge(0, extra, now_ms) {
                    return Err(RATE_LIMITED);
                }
                out.publish = Some((
                    subs.iter().copied().collect(),
                    with_clients(text, subs.len()),
                ));
            }
            "ping" => out.replies.push(PONG.to_owned()),
            kind if is_call_frame(kind) => {
                if self
                    .receive_call(peer, meter, text, now_ms, &mut out)
                    .is_err()
                {
                    return Err(RATE_LIMITED);
                }
            }
            _ => out.error(
                ErrorCode::UnknownType,
                "type is subscribe, unsubscribe, publish, ping or call-join, call-signal, call-state, call-leave",
                None,
            ),
        }
        Ok(out)
    }

    /// Why `peer` may not use `topic`, if it may not.
    fn refuse(&self, peer: &Peer, topic: &str) -> Option<ErrorCode> {
        if RoomName::parse(topic).is_err() {
            Some(ErrorCode::BadTopic)
        } else if !peer.covers(topic) {
            Some(ErrorCode::ForbiddenTopic)
        } else {
            None
        }
    }

    fn subscribe(&mut self, peer: &mut Peer, topics: &[String], out: &mut Out) {
        for topic in topics {
            if let Some(code) = self.refuse(peer, topic) {
                out.error(code, "cannot subscribe to this topic", Some(topic));
                continue;
            }
            if peer.topics.contains(topic) {
                continue;
            }
            if peer.topics.len() >= self.limits.max_topics
                || peer.topic_bytes() + topic.len() > self.limits.max_topic_bytes
            {
                let message = format!(
                    "a connection holds at most {} topics, {} bytes of names",
                    self.limits.max_topics, self.limits.max_topic_bytes
                );
                out.error(ErrorCode::TooManyTopics, &message, Some(topic));
                continue;
            }
            let subs = self.topics.entry(topic.clone()).or_default();
            if subs.len() >= self.limits.max_subscribers {
                let message = format!("at most {} subscribers", self.limits.max_subscribers);
                out.error(ErrorCode::TopicFull, &message, Some(topic));
                continue;
            }
            subs.insert(peer.id);
            peer.topics.insert(topic.clone());
            out.changed = true;
        }
    }
}

/// The publish frame as subscribers get it: the sender's bytes with `"clients":n` added as the
/// last member (a `clients` the sender put in is overridden: JSON.parse keeps the last).
fn with_clients(frame: &str, clients: usize) -> String {
    let body = frame.trim_end();
    // The frame parsed as an object with a `type`: it ends in `}` and has a member before it.
    let body = &body[..body.len() - 1];
    format!("{body},\"clients\":{clients}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn peer(id: u64, room: &str) -> Peer {
        Peer::new(
            id,
            Admission {
                project: Id::parse("project", "prj_1").unwrap(),
                sub: format!("user{id}"),
                role: Role::Editor,
                publish: true,
                call_limit: 8,
                room: room.into(),
                exp: 1_000,
                cred: Credential::default(),
                protocol: None,
            },
        )
    }

    struct Conn {
        peer: Peer,
        meter: Meter,
    }

    fn conn(hub: &Hub, id: u64, room: &str) -> Conn {
        Conn {
            peer: peer(id, room),
            meter: hub.meter(0),
        }
    }

    fn send(hub: &mut Hub, c: &mut Conn, frame: &str) -> Result<Out, Close> {
        hub.receive(&mut c.peer, &mut c.meter, frame.as_bytes(), 10)
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn error_of(out: &Out) -> Vec<(String, Option<String>)> {
        out.replies
            .iter()
            .map(|r| {
                let v = json(r);
                assert_eq!(v["type"], "error");
                (
                    v["error"].as_str().unwrap().to_owned(),
                    v["topic"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn publish_reaches_every_subscriber_with_clients_and_data_untouched() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        let mut b = conn(&hub, 2, "board-*");
        for c in [&mut a, &mut b] {
            let out = send(&mut hub, c, r#"{"type":"subscribe","topics":["board-1"]}"#).unwrap();
            assert!(out.changed && out.replies.is_empty());
        }
        let frame = r#"{ "type":"publish", "topic":"board-1", "data":"q83vEjRWeJA=" , "x":{"b":1,"a":[2]} }"#;
        let out = send(&mut hub, &mut a, frame).unwrap();
        let (to, sent) = out.publish.unwrap();
        assert_eq!(to, vec![1, 2], "the sender is included");
        assert!(sent.starts_with(
            r#"{ "type":"publish", "topic":"board-1", "data":"q83vEjRWeJA=" , "x":{"b":1,"a":[2]} "#
        ));
        let v = json(&sent);
        assert_eq!(v["clients"], 2);
        assert_eq!(v["data"], "q83vEjRWeJA=");
        // A sender's own `clients` is overridden (the last member wins in JSON.parse).
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"publish","topic":"board-1","clients":99}"#,
        )
        .unwrap();
        assert!(out
            .publish
            .unwrap()
            .1
            .ends_with(r#""clients":99,"clients":2}"#));
        // Nobody subscribed: nothing is sent, as the reference server does.
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"publish","topic":"other","data":{}}"#,
        )
        .unwrap();
        assert_eq!(out, Out::default());
    }

    #[test]
    fn ping_pong_and_unsubscribe() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        assert_eq!(send(&mut hub, &mut a, PING).unwrap().replies, vec![PONG]);
        assert_eq!(
            send(&mut hub, &mut a, r#" { "type" : "ping" } "#)
                .unwrap()
                .replies,
            vec![PONG]
        );
        send(
            &mut hub,
            &mut a,
            r#"{"type":"subscribe","topics":["t1","t2","t1"]}"#,
        )
        .unwrap();
        assert_eq!(a.peer.topics.len(), 2);
        assert_eq!(hub.subscribers("t1"), 1);
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"unsubscribe","topics":["t1","never"]}"#,
        )
        .unwrap();
        assert!(out.changed);
        assert_eq!(hub.subscribers("t1"), 0);
        assert!(
            !hub.topics.contains_key("t1"),
            "an empty topic is forgotten"
        );
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"unsubscribe","topics":["t1"]}"#,
        )
        .unwrap();
        assert!(!out.changed);
        hub.leave(&a.peer);
        assert_eq!(hub.subscribers("t2"), 0);
    }

    #[test]
    fn topics_outside_the_token_are_refused_one_by_one() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "team-a:*");
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"subscribe","topics":["team-a:x","team-b:x","bad name",""]}"#,
        )
        .unwrap();
        assert_eq!(
            error_of(&out),
            vec![
                ("forbidden-topic".into(), Some("team-b:x".into())),
                ("bad-topic".into(), Some("bad name".into())),
                ("bad-topic".into(), Some("".into())),
            ]
        );
        assert_eq!(a.peer.topics.iter().collect::<Vec<_>>(), vec!["team-a:x"]);
        assert_eq!(hub.subscribers("team-b:x"), 0);
        // Publishing to a topic it may not use reaches nobody, even subscribers.
        let mut b = conn(&hub, 2, "*");
        send(
            &mut hub,
            &mut b,
            r#"{"type":"subscribe","topics":["team-b:x"]}"#,
        )
        .unwrap();
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"publish","topic":"team-b:x","data":1}"#,
        )
        .unwrap();
        assert_eq!(
            error_of(&out),
            vec![("forbidden-topic".into(), Some("team-b:x".into()))]
        );
        assert!(out.publish.is_none());
    }

    #[test]
    fn malformed_frames_get_error_frames_and_change_nothing() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        let cases = [
            ("{not json", "bad-json"),
            ("[\"subscribe\",[\"t\"]]", "bad-json"),
            ("\"ping\"", "bad-json"),
            ("{\"type\":\"ping\"} trailing", "bad-json"),
            ("{}", "bad-frame"),
            (r#"{"type":5}"#, "bad-frame"),
            (r#"{"type":"subscribe","topics":"t"}"#, "bad-frame"),
            (r#"{"type":"subscribe","topics":["t",5]}"#, "bad-frame"),
            (r#"{"type":"subscribe","type":"ping"}"#, "bad-frame"),
            (r#"{"type":"publish","data":1}"#, "bad-frame"),
            (r#"{"type":"publish","topic":5}"#, "bad-frame"),
            (r#"{"type":"hello"}"#, "unknown-type"),
        ];
        for (frame, code) in cases {
            let out = send(&mut hub, &mut a, frame).unwrap();
            assert_eq!(error_of(&out), vec![(code.to_owned(), None)], "{frame}");
            assert!(!out.changed && out.publish.is_none());
        }
        let out = hub
            .receive(&mut a.peer, &mut a.meter, &[0xff, b'{'], 10)
            .unwrap();
        assert_eq!(error_of(&out)[0].0, "bad-json");
        let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let frame = serde_json::json!({ "type": "subscribe", "topics": many }).to_string();
        let out = send(&mut hub, &mut a, &frame).unwrap();
        assert_eq!(error_of(&out), vec![("bad-frame".into(), None)]);
        assert!(a.peer.topics.is_empty());
    }

    #[test]
    fn a_connection_holds_a_bounded_number_of_topics() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        let topics: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
        let frame = serde_json::json!({ "type": "subscribe", "topics": topics }).to_string();
        assert!(error_of(&send(&mut hub, &mut a, &frame).unwrap()).is_empty());
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"subscribe","topics":["one-more"]}"#,
        )
        .unwrap();
        assert_eq!(
            error_of(&out),
            vec![("too-many-topics".into(), Some("one-more".into()))]
        );
        // Long names run into the byte budget first (the attachment holds them).
        let mut b = conn(&hub, 2, "*");
        let long: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(120))).collect();
        let frame = serde_json::json!({ "type": "subscribe", "topics": long }).to_string();
        let out = send(&mut hub, &mut b, &frame).unwrap();
        assert_eq!(b.peer.topics.len(), 8);
        assert_eq!(error_of(&out).len(), 2);
        assert!(serde_json::to_vec(&b.peer).unwrap().len() < 2048 - 512);
    }

    #[test]
    fn a_topic_holds_a_bounded_number_of_subscribers() {
        let limits = Limits {
            max_subscribers: 2,
            ..Limits::default()
        };
        let mut hub = Hub::new(limits);
        let mut conns: Vec<Conn> = (1..=3).map(|i| conn(&hub, i, "*")).collect();
        let outs: Vec<Out> = conns
            .iter_mut()
            .map(|c| send(&mut hub, c, r#"{"type":"subscribe","topics":["t"]}"#).unwrap())
            .collect();
        assert!(outs[0].replies.is_empty() && outs[1].replies.is_empty());
        assert_eq!(
            error_of(&outs[2]),
            vec![("topic-full".into(), Some("t".into()))]
        );
        assert_eq!(hub.subscribers("t"), 2);
    }

    #[test]
    fn oversize_floods_and_expiry_close() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024));
        assert_eq!(send(&mut hub, &mut a, &big), Err(TOO_BIG));
        let mut b = conn(&hub, 2, "*");
        let sent = (0..1000)
            .take_while(|_| send(&mut hub, &mut b, PING).is_ok())
            .count();
        assert_eq!(sent, 200, "the burst, then the close");
        assert_eq!(send(&mut hub, &mut b, PING), Err(RATE_LIMITED));
        let mut c = conn(&hub, 3, "*");
        assert_eq!(
            hub.receive(&mut c.peer, &mut c.meter, PING.as_bytes(), 1_000_000),
            Err(EXPIRED)
        );
    }

    #[test]
    fn fan_out_is_charged_to_the_sender() {
        let limits = Limits {
            rates: Rates {
                byte_burst: 10_000.0,
                ..Limits::default().rates
            },
            ..Limits::default()
        };
        let mut hub = Hub::new(limits);
        let mut conns: Vec<Conn> = (1..=10).map(|i| conn(&hub, i, "*")).collect();
        for c in &mut conns {
            send(&mut hub, c, r#"{"type":"subscribe","topics":["t"]}"#).unwrap();
        }
        let frame = format!(
            r#"{{"type":"publish","topic":"t","data":"{}"}}"#,
            "x".repeat(400)
        );
        let a = &mut conns[0];
        assert!(send(&mut hub, a, &frame).unwrap().publish.is_some());
        assert!(send(&mut hub, a, &frame).unwrap().publish.is_some());
        assert_eq!(
            send(&mut hub, a, &frame),
            Err(RATE_LIMITED),
            "3 x 10 x 440 bytes"
        );
    }

    #[test]
    fn subscriptions_survive_a_wake_through_the_attachment() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "*");
        send(
            &mut hub,
            &mut a,
            r#"{"type":"subscribe","topics":["t","u"]}"#,
        )
        .unwrap();
        let attachment = serde_json::to_string(&a.peer).unwrap();
        let mut woken = Hub::new(Limits::default());
        let mut restored: Peer = serde_json::from_str(&attachment).unwrap();
        woken.restore(&restored);
        assert_eq!(woken.subscribers("t"), 1);
        let mut meter = woken.meter(0);
        let out = woken
            .receive(
                &mut restored,
                &mut meter,
                br#"{"type":"publish","topic":"u"}"#,
                10,
            )
            .unwrap();
        assert_eq!(out.publish.unwrap().0, vec![1]);
    }
}
