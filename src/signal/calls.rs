//! Voice and video calls on the signalling hub: `call-join`, `call-signal`, `call-state` and
//! `call-leave` frames (docs/calls.md). A call belongs to a room the connection's token covers;
//! the hub keeps each call's participants, enforces the participant limit and who may send
//! media, and routes SDP and ICE candidates from one participant to another (never to
//! everyone, as y-webrtc's publish does).

use super::{ErrorCode, Hub, Out, Peer};
use crate::auth::Role;
use crate::names::RoomName;
use crate::ratelimit::Meter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Calls one connection may be in at once.
pub const MAX_CALLS_PER_CONNECTION: usize = 4;
/// The most participants a call may have (a mesh: each sends its media to every other one).
pub const MAX_PARTICIPANTS: u8 = 8;
/// The fewest a project may set as its limit.
pub const MIN_PARTICIPANTS: u8 = 2;
/// Longest SDP a `call-signal` may carry (inside the frame limit; an offer is a few KB).
pub const MAX_SDP_BYTES: usize = 32 * 1024;

/// What a participant sends: microphone and camera on or off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Microphone on.
    pub audio: bool,
    /// Camera on.
    pub video: bool,
}

/// A participant of a call, as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The user.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// Whether it may send media.
    pub publish: bool,
    /// Its media state.
    pub media: Media,
}

impl Participant {
    fn of(peer: &Peer, media: Media) -> Participant {
        Participant {
            user: peer.sub.clone(),
            role: peer.role,
            publish: peer.publish,
            media,
        }
    }

    fn to_json(&self, id: u64) -> Value {
        json!({
            "peer": id, "user": self.user, "role": self.role, "publish": self.publish,
            "audio": self.media.audio, "video": self.media.video,
        })
    }
}

/// A call frame, parsed whole before it acts.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Frame {
    #[serde(rename = "call-join")]
    Join {
        room: String,
        #[serde(default)]
        audio: bool,
        #[serde(default)]
        video: bool,
    },
    #[serde(rename = "call-signal")]
    Signal {
        room: String,
        to: u64,
        data: Map<String, Value>,
    },
    #[serde(rename = "call-state")]
    State {
        room: String,
        audio: bool,
        video: bool,
    },
    #[serde(rename = "call-leave")]
    Leave { room: String },
}

/// Whether `kind` is a call frame's type.
pub fn is_call_frame(kind: &str) -> bool {
    matches!(
        kind,
        "call-join" | "call-signal" | "call-state" | "call-leave"
    )
}

/// An error frame about the call of `room`.
fn error(out: &mut Out, code: ErrorCode, message: &str, room: &str, limit: Option<u8>) {
    let mut frame =
        json!({ "type": "error", "error": code.as_str(), "message": message, "room": room });
    if let Some(limit) = limit {
        frame["limit"] = limit.into();
    }
    out.replies.push(frame.to_string());
}

/// The direction an SDP media section (or the session) declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

fn direction(line: &str) -> Option<Direction> {
    match line {
        "a=sendrecv" => Some(Direction::SendRecv),
        "a=sendonly" => Some(Direction::SendOnly),
        "a=recvonly" => Some(Direction::RecvOnly),
        "a=inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// Whether an SDP offers or answers to send audio or video: an `m=audio` or `m=video` section
/// whose direction (its own attribute, else the session's, else `sendrecv` as RFC 4566 has it)
/// is `sendrecv` or `sendonly`.
pub fn sdp_sends_media(sdp: &str) -> bool {
    let mut session: Option<Direction> = None;
    // The current media section: whether it is audio/video, and its own direction.
    let mut section: Option<(bool, Option<Direction>)> = None;
    let sends = |section: Option<(bool, Option<Direction>)>, session: Option<Direction>| {
        matches!(section, Some((true, dir)) if matches!(
            dir.or(session).unwrap_or(Direction::SendRecv),
            Direction::SendRecv | Direction::SendOnly
        ))
    };
    for line in sdp.split('\n') {
        let line = line.trim_end_matches('\r').trim();
        if let Some(media) = line.strip_prefix("m=") {
            if sends(section, session) {
                return true;
            }
            let kind = media.split(' ').next().unwrap_or("");
            section = Some((kind == "audio" || kind == "video", None));
        } else if let Some(dir) = direction(line) {
            match &mut section {
                Some((_, own)) => *own = Some(dir),
                None => session = Some(dir),
            }
        }
    }
    sends(section, session)
}

/// Checks a `call-signal`'s `data`: exactly one of `sdp` (`{type: offer|answer, sdp}`) or
/// `candidate` (null, or an object of scalars). Returns the SDP text if it is one.
fn check_signal(data: &Map<String, Value>) -> Result<Option<&str>, &'static str> {
    if data.len() != 1 {
        return Err("data has exactly one of sdp or candidate");
    }
    if let Some(sdp) = data.get("sdp") {
        let Some(sdp) = sdp.as_object() else {
            return Err("sdp is an object");
        };
        if sdp.len() != 2
            || !matches!(
                sdp.get("type").and_then(Value::as_str),
                Some("offer" | "answer")
            )
        {
            return Err("sdp is {type: offer or answer, sdp}");
        }
        return match sdp.get("sdp").and_then(Value::as_str) {
            Some(text) if text.len() <= MAX_SDP_BYTES => Ok(Some(text)),
            Some(_) => Err("sdp is at most 32 KiB"),
            None => Err("sdp.sdp is a string"),
        };
    }
    match data.get("candidate") {
        Some(Value::Null) => Ok(None),
        Some(Value::Object(fields))
            if fields
                .values()
                .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Null)) =>
        {
            Ok(None)
        }
        Some(_) => Err("candidate is null or an object of strings and numbers"),
        None => Err("data has exactly one of sdp or candidate"),
    }
}

impl Hub {
    /// Who is in the call of `room`.
    pub fn participants(&self, room: &str) -> Option<&BTreeMap<u64, Participant>> {
        self.calls.get(room)
    }

    /// Re-registers a surviving connection's calls (on wake).
    pub(super) fn restore_calls(&mut self, peer: &Peer) {
        for (room, media) in &peer.calls {
            self.calls
                .entry(room.clone())
                .or_default()
                .insert(peer.id, Participant::of(peer, *media));
        }
    }

    /// Lowers `peer`'s role to `role` (a member's role changed). Returns `false` when the
    /// connection is to be closed instead: it may send media by its old role and not by the
    /// new one (it reconnects with what the project now allows it).
    pub fn downgrade(&mut self, peer: &mut Peer, role: Role) -> bool {
        if peer.publish && peer.role.can_write() && !role.can_write() {
            return false;
        }
        peer.role = role;
        for room in peer.calls.keys() {
            if let Some(me) = self.calls.get_mut(room).and_then(|c| c.get_mut(&peer.id)) {
                me.role = role;
            }
        }
        true
    }

    /// Takes a closed connection out of its calls: the `call-peer-left` notices for the others.
    pub(super) fn leave_calls(&mut self, peer: &Peer) -> Vec<(Vec<u64>, String)> {
        peer.calls
            .keys()
            .filter_map(|room| self.drop_participant(room, peer.id))
            .collect()
    }

    /// Removes `id` from the call of `room`: the notice for those left, if any are.
    fn drop_participant(&mut self, room: &str, id: u64) -> Option<(Vec<u64>, String)> {
        let call = self.calls.get_mut(room)?;
        call.remove(&id)?;
        if call.is_empty() {
            self.calls.remove(room);
            return None;
        }
        let others = call.keys().copied().collect();
        let notice = json!({ "type": "call-peer-left", "room": room, "peer": id });
        Some((others, notice.to_string()))
    }

    /// Handles a call frame of `peer` (its type is a call type). Charges the notices to the
    /// sender's `meter`: `Err(())` when that spends its budget.
    pub(super) fn receive_call(
        &mut self,
        peer: &mut Peer,
        meter: &mut Meter,
        text: &str,
        now_ms: u64,
        out: &mut Out,
    ) -> Result<(), ()> {
        let frame: Frame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                out.error(ErrorCode::BadFrame, &e.to_string(), None);
                return Ok(());
            }
        };
        let room = match &frame {
            Frame::Join { room, .. }
            | Frame::Signal { room, .. }
            | Frame::State { room, .. }
            | Frame::Leave { room } => room.clone(),
        };
        if RoomName::parse(&room).is_err() {
            error(out, ErrorCode::BadRoom, "not a room name", &room, None);
            return Ok(());
        }
        if !peer.covers(&room) {
            error(
                out,
                ErrorCode::ForbiddenRoom,
                "the token does not cover this room",
                &room,
                None,
            );
            return Ok(());
        }
        if matches!(frame, Frame::Signal { .. } | Frame::State { .. })
            && !peer.calls.contains_key(&room)
        {
            error(
                out,
                ErrorCode::NotInCall,
                "join the call first",
                &room,
                None,
            );
            return Ok(());
        }
        match frame {
            Frame::Join { audio, video, .. } => self.join(peer, &room, Media { audio, video }, out),
            Frame::Signal { to, data, .. } => {
                let sdp = match check_signal(&data) {
                    Ok(sdp) => sdp,
                    Err(message) => {
                        error(out, ErrorCode::BadFrame, message, &room, None);
                        return Ok(());
                    }
                };
                if !peer.publish && sdp.is_some_and(sdp_sends_media) {
                    let message = "this participant may receive media but not send it: audio and video sections must be recvonly or inactive";
                    error(out, ErrorCode::ForbiddenMedia, message, &room, None);
                    return Ok(());
                }
                if to == peer.id || !self.calls.get(&room).is_some_and(|c| c.contains_key(&to)) {
                    error(
                        out,
                        ErrorCode::NoSuchPeer,
                        "no such participant in this call",
                        &room,
                        None,
                    );
                    return Ok(());
                }
                let frame =
                    json!({ "type": "call-signal", "room": room, "from": peer.id, "data": data });
                out.sends.push((vec![to], frame.to_string()));
            }
            Frame::State { audio, video, .. } => {
                if !peer.publish && (audio || video) {
                    error(
                        out,
                        ErrorCode::ForbiddenMedia,
                        "this participant may not send media",
                        &room,
                        None,
                    );
                    return Ok(());
                }
                let media = Media { audio, video };
                if peer.calls.insert(room.clone(), media) != Some(media) {
                    out.changed = true;
                }
                let call = self.calls.entry(room.clone()).or_default();
                if let Some(me) = call.get_mut(&peer.id) {
                    me.media = media;
                }
                let others: Vec<u64> = call.keys().copied().filter(|id| *id != peer.id).collect();
                if !others.is_empty() {
                    let notice = json!({ "type": "call-peer-state", "room": room, "peer": peer.id, "audio": audio, "video": video });
                    out.sends.push((others, notice.to_string()));
                }
            }
            Frame::Leave { .. } => {
                if peer.calls.remove(&room).is_none() {
                    error(out, ErrorCode::NotInCall, "not in this call", &room, None);
                    return Ok(());
                }
                out.changed = true;
                out.replies
                    .push(json!({ "type": "call-left", "room": room }).to_string());
                if let Some(notice) = self.drop_participant(&room, peer.id) {
                    out.sends.push(notice);
                }
            }
        }
        // The notices to others are charged to the sender, as a publish's fan-out is.
        let extra: usize = out.sends.iter().map(|(to, f)| f.len() * to.len()).sum();
        if meter.charge(0, extra, now_ms) {
            Ok(())
        } else {
            Err(())
        }
    }

    fn join(&mut self, peer: &mut Peer, room: &str, asked: Media, out: &mut Out) {
        // Someone who may not publish joins with microphone and camera off, and is told so.
        let media = if peer.publish {
            asked
        } else {
            Media::default()
        };
        let rejoin = peer.calls.contains_key(room);
        if !rejoin {
            let names: usize = peer.topic_bytes() + peer.call_bytes();
            if peer.calls.len() >= MAX_CALLS_PER_CONNECTION
                || names + room.len() > self.limits.max_topic_bytes
            {
                let message = format!(
                    "a connection is in at most {MAX_CALLS_PER_CONNECTION} calls (and {} bytes of topic and room names)",
                    self.limits.max_topic_bytes
                );
                error(out, ErrorCode::TooManyCalls, &message, room, None);
                return;
            }
            let limit = peer.call_limit();
            if self.calls.get(room).map_or(0, BTreeMap::len) >= usize::from(limit) {
                let message = format!("the call has its limit of {limit} participants");
                error(out, ErrorCode::CallFull, &message, room, Some(limit));
                return;
            }
        }
        if peer.calls.insert(room.to_owned(), media) != Some(media) {
            out.changed = true;
        }
        let me = Participant::of(peer, media);
        let call = self.calls.entry(room.to_owned()).or_default();
        call.insert(peer.id, me.clone());
        let others: Vec<u64> = call.keys().copied().filter(|id| *id != peer.id).collect();
        let list: Vec<Value> = call
            .iter()
            .filter(|(id, _)| **id != peer.id)
            .map(|(id, p)| p.to_json(*id))
            .collect();
        out.replies.push(
            json!({
                "type": "call-joined", "room": room, "self": peer.id, "publish": peer.publish,
                "audio": media.audio, "video": media.video,
                "limit": peer.call_limit(), "participants": list,
            })
            .to_string(),
        );
        if !others.is_empty() {
            let kind = if rejoin {
                "call-peer-state"
            } else {
                "call-peer-joined"
            };
            let notice = if rejoin {
                json!({ "type": kind, "room": room, "peer": peer.id, "audio": media.audio, "video": media.video })
            } else {
                json!({ "type": kind, "room": room, "participant": me.to_json(peer.id) })
            };
            out.sends.push((others, notice.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Admission, Close, Limits, RATE_LIMITED};
    use super::*;
    use crate::names::Id;
    use crate::room_call::Credential;

    struct Conn {
        peer: Peer,
        meter: Meter,
    }

    fn conn(hub: &Hub, id: u64, room: &str, role: Role, publish: bool, limit: u8) -> Conn {
        let peer = Peer::new(
            id,
            Admission {
                project: Id::parse("project", "prj_1").unwrap(),
                sub: format!("user{id}"),
                role,
                publish,
                call_limit: limit,
                room: room.into(),
                exp: 1_000,
                cred: Credential::default(),
                protocol: None,
            },
        );
        Conn {
            peer,
            meter: hub.meter(0),
        }
    }

    fn editor(hub: &Hub, id: u64) -> Conn {
        conn(hub, id, "*", Role::Editor, true, 8)
    }

    fn send(hub: &mut Hub, c: &mut Conn, frame: &str) -> Result<Out, Close> {
        hub.receive(&mut c.peer, &mut c.meter, frame.as_bytes(), 10)
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    fn only_reply(out: &Out) -> Value {
        assert_eq!(out.replies.len(), 1, "{:?}", out.replies);
        json(&out.replies[0])
    }

    fn error_code(out: &Out) -> String {
        let v = only_reply(out);
        assert_eq!(v["type"], "error", "{v}");
        v["error"].as_str().unwrap().to_owned()
    }

    const JOIN: &str = r#"{"type":"call-join","room":"board","audio":true,"video":true}"#;

    const OFFER_SENDRECV: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n";
    const OFFER_RECVONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    fn signal(to: u64, sdp: &str) -> String {
        json!({ "type": "call-signal", "room": "board", "to": to,
                "data": { "sdp": { "type": "offer", "sdp": sdp } } })
        .to_string()
    }

    #[test]
    fn joining_lists_the_others_and_tells_them() {
        let mut hub = Hub::new(Limits::default());
        let mut a = editor(&hub, 1);
        let mut b = conn(&hub, 2, "board", Role::Viewer, false, 8);
        let out = send(&mut hub, &mut a, JOIN).unwrap();
        let joined = only_reply(&out);
        assert_eq!(joined["type"], "call-joined");
        assert_eq!(joined["self"], 1);
        assert_eq!(joined["participants"], json!([]));
        assert!(out.changed && out.sends.is_empty());
        // A viewer that may not publish joins muted, whatever it asked for.
        let out = send(&mut hub, &mut b, JOIN).unwrap();
        let joined = only_reply(&out);
        assert_eq!(joined["publish"], false);
        assert_eq!(joined["audio"], false);
        assert_eq!(
            joined["participants"],
            json!([{ "peer": 1, "user": "user1", "role": "editor", "publish": true, "audio": true, "video": true }])
        );
        let (to, notice) = &out.sends[0];
        assert_eq!(to, &vec![1]);
        let notice = json(notice);
        assert_eq!(notice["type"], "call-peer-joined");
        assert_eq!(notice["participant"]["peer"], 2);
        assert_eq!(notice["participant"]["publish"], false);
        assert_eq!(hub.participants("board").unwrap().len(), 2);
        // Calls and y-webrtc topics are separate: the call did not subscribe to the topic.
        assert_eq!(hub.subscribers("board"), 0);
    }

    #[test]
    fn signals_go_to_one_participant_only() {
        let mut hub = Hub::new(Limits::default());
        let mut conns: Vec<Conn> = (1..=3).map(|i| editor(&hub, i)).collect();
        for c in &mut conns {
            send(&mut hub, c, JOIN).unwrap();
        }
        let mut outsider = editor(&hub, 9);
        let frame = signal(2, OFFER_SENDRECV);
        let out = send(&mut hub, &mut conns[0], &frame).unwrap();
        assert!(out.replies.is_empty());
        let (to, sent) = &out.sends[0];
        assert_eq!(to, &vec![2]);
        let sent = json(sent);
        assert_eq!(sent["from"], 1);
        assert_eq!(sent["data"]["sdp"]["sdp"], OFFER_SENDRECV);
        // Candidates, and the end of candidates.
        for data in [
            json!({ "candidate": { "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0", "sdpMLineIndex": 0 } }),
            json!({ "candidate": null }),
        ] {
            let frame = json!({ "type": "call-signal", "room": "board", "to": 3, "data": data });
            let out = send(&mut hub, &mut conns[0], &frame.to_string()).unwrap();
            assert_eq!(out.sends[0].0, vec![3]);
        }
        // Not in the call; to someone not in it; to itself.
        assert_eq!(
            error_code(&send(&mut hub, &mut outsider, &frame).unwrap()),
            "not-in-call"
        );
        for to in [9, 1] {
            let out = send(&mut hub, &mut conns[0], &signal(to, OFFER_SENDRECV)).unwrap();
            assert_eq!(error_code(&out), "no-such-peer");
            assert!(out.sends.is_empty());
        }
        // Malformed data never travels.
        for data in [
            json!({}),
            json!({ "sdp": { "type": "offer", "sdp": "v=0" }, "candidate": null }),
            json!({ "sdp": { "type": "rollback", "sdp": "" } }),
            json!({ "sdp": { "type": "offer" } }),
            json!({ "sdp": "v=0" }),
            json!({ "candidate": { "candidate": { "nested": [1] } } }),
            json!({ "candidate": 5 }),
            json!({ "other": 1 }),
        ] {
            let frame = json!({ "type": "call-signal", "room": "board", "to": 2, "data": data });
            let out = send(&mut hub, &mut conns[0], &frame.to_string()).unwrap();
            assert_eq!(error_code(&out), "bad-frame", "{data}");
            assert!(out.sends.is_empty());
        }
        let frame = json!({ "type": "call-signal", "room": "board", "to": "2", "data": { "candidate": null } });
        assert_eq!(
            error_code(&send(&mut hub, &mut conns[0], &frame.to_string()).unwrap()),
            "bad-frame"
        );
    }

    #[test]
    fn a_participant_that_may_not_publish_cannot_offer_media() {
        let mut hub = Hub::new(Limits::default());
        let mut a = editor(&hub, 1);
        let mut v = conn(&hub, 2, "*", Role::Viewer, false, 8);
        send(&mut hub, &mut a, JOIN).unwrap();
        send(&mut hub, &mut v, JOIN).unwrap();
        let out = send(&mut hub, &mut v, &signal(1, OFFER_SENDRECV)).unwrap();
        assert_eq!(error_code(&out), "forbidden-media");
        assert!(out.sends.is_empty(), "not delivered");
        let out = send(&mut hub, &mut v, &signal(1, OFFER_RECVONLY)).unwrap();
        assert_eq!(out.sends[0].0, vec![1]);
        let state = r#"{"type":"call-state","room":"board","audio":true,"video":false}"#;
        assert_eq!(
            error_code(&send(&mut hub, &mut v, state).unwrap()),
            "forbidden-media"
        );
        let off = r#"{"type":"call-state","room":"board","audio":false,"video":false}"#;
        assert!(send(&mut hub, &mut v, off).unwrap().replies.is_empty());
        // A viewer the project lets publish may.
        let mut w = conn(&hub, 3, "*", Role::Viewer, true, 8);
        send(&mut hub, &mut w, JOIN).unwrap();
        assert_eq!(
            send(&mut hub, &mut w, &signal(1, OFFER_SENDRECV))
                .unwrap()
                .sends
                .len(),
            1
        );
    }

    #[test]
    fn sdp_directions_follow_the_rules_of_sdp() {
        assert!(sdp_sends_media(OFFER_SENDRECV));
        assert!(!sdp_sends_media(OFFER_RECVONLY));
        // No direction at all is sendrecv.
        assert!(sdp_sends_media("v=0\nm=audio 9 RTP/AVP 0\na=mid:0\n"));
        // The session's direction applies to sections without their own.
        assert!(!sdp_sends_media(
            "v=0\na=recvonly\nm=audio 9 RTP/AVP 0\nm=video 9 RTP/AVP 96\n"
        ));
        assert!(sdp_sends_media(
            "v=0\na=recvonly\nm=audio 9 RTP/AVP 0\nm=video 9 RTP/AVP 96\na=sendonly\n"
        ));
        // The last section counts too, and data channels are not media.
        assert!(sdp_sends_media(
            "v=0\nm=audio 9 RTP/AVP 0\na=inactive\nm=video 9 RTP/AVP 96\n"
        ));
        assert!(!sdp_sends_media(
            "v=0\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
        ));
        assert!(!sdp_sends_media(""));
    }

    #[test]
    fn a_call_holds_its_limit_and_a_connection_a_few_calls() {
        let mut hub = Hub::new(Limits::default());
        let mut conns: Vec<Conn> = (1..=3)
            .map(|i| conn(&hub, i, "*", Role::Editor, true, 2))
            .collect();
        send(&mut hub, &mut conns[0], JOIN).unwrap();
        send(&mut hub, &mut conns[1], JOIN).unwrap();
        let out = send(&mut hub, &mut conns[2], JOIN).unwrap();
        let refused = only_reply(&out);
        assert_eq!(refused["error"], "call-full");
        assert_eq!(refused["limit"], 2);
        assert!(out.sends.is_empty() && !out.changed);
        assert!(conns[2].peer.calls.is_empty());
        // Joining again is not a new participant.
        let again = send(&mut hub, &mut conns[1], JOIN).unwrap();
        assert_eq!(only_reply(&again)["type"], "call-joined");
        // A leave makes room.
        let out = send(
            &mut hub,
            &mut conns[0],
            r#"{"type":"call-leave","room":"board"}"#,
        )
        .unwrap();
        assert_eq!(only_reply(&out)["type"], "call-left");
        assert_eq!(out.sends[0].0, vec![2]);
        assert_eq!(json(&out.sends[0].1)["type"], "call-peer-left");
        assert_eq!(
            only_reply(&send(&mut hub, &mut conns[2], JOIN).unwrap())["type"],
            "call-joined"
        );
        // Limits out of range are clamped to what a mesh allows.
        assert_eq!(
            conn(&hub, 7, "*", Role::Editor, true, 0).peer.call_limit(),
            8
        );
        assert_eq!(
            conn(&hub, 7, "*", Role::Editor, true, 200)
                .peer
                .call_limit(),
            8
        );
        assert_eq!(
            conn(&hub, 7, "*", Role::Editor, true, 1).peer.call_limit(),
            2
        );
        let mut many = editor(&hub, 8);
        for i in 0..MAX_CALLS_PER_CONNECTION {
            let frame = json!({ "type": "call-join", "room": format!("r{i}") }).to_string();
            assert_eq!(
                only_reply(&send(&mut hub, &mut many, &frame).unwrap())["type"],
                "call-joined"
            );
        }
        let out = send(
            &mut hub,
            &mut many,
            r#"{"type":"call-join","room":"one-more"}"#,
        )
        .unwrap();
        assert_eq!(error_code(&out), "too-many-calls");
    }

    #[test]
    fn rooms_are_checked_like_topics() {
        let mut hub = Hub::new(Limits::default());
        let mut a = conn(&hub, 1, "team-a:*", Role::Editor, true, 8);
        let cases = [
            (
                r#"{"type":"call-join","room":"team-b:x"}"#,
                "forbidden-room",
            ),
            (r#"{"type":"call-join","room":"bad name"}"#, "bad-room"),
            (r#"{"type":"call-join","room":""}"#, "bad-room"),
            (r#"{"type":"call-join"}"#, "bad-frame"),
            (r#"{"type":"call-join","room":5}"#, "bad-frame"),
            (
                r#"{"type":"call-join","room":"team-a:x","audio":"yes"}"#,
                "bad-frame",
            ),
            (r#"{"type":"call-state","room":"team-a:x"}"#, "bad-frame"),
            (
                r#"{"type":"call-state","room":"team-a:x","audio":false,"video":false}"#,
                "not-in-call",
            ),
            (r#"{"type":"call-leave","room":"team-a:x"}"#, "not-in-call"),
        ];
        for (frame, code) in cases {
            let out = send(&mut hub, &mut a, frame).unwrap();
            assert_eq!(error_code(&out), code, "{frame}");
            assert!(!out.changed && out.sends.is_empty());
        }
        assert!(hub.participants("team-b:x").is_none());
    }

    #[test]
    fn state_changes_reach_the_others_and_leaving_tells_them() {
        let mut hub = Hub::new(Limits::default());
        let mut a = editor(&hub, 1);
        let mut b = editor(&hub, 2);
        send(&mut hub, &mut a, JOIN).unwrap();
        send(&mut hub, &mut b, JOIN).unwrap();
        let out = send(
            &mut hub,
            &mut a,
            r#"{"type":"call-state","room":"board","audio":false,"video":true}"#,
        )
        .unwrap();
        assert!(out.changed);
        let (to, notice) = &out.sends[0];
        assert_eq!(to, &vec![2]);
        assert_eq!(
            json(notice),
            json!({ "type": "call-peer-state", "room": "board", "peer": 1, "audio": false, "video": true })
        );
        assert!(!hub.participants("board").unwrap()[&1].media.audio);
        // A closed connection leaves its calls; the last one out ends the call.
        let notices = hub.leave(&a.peer);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].0, vec![2]);
        assert_eq!(json(&notices[0].1)["type"], "call-peer-left");
        assert!(hub.leave(&b.peer).is_empty());
        assert!(hub.participants("board").is_none());
    }

    #[test]
    fn calls_survive_a_wake_through_the_attachment() {
        let mut hub = Hub::new(Limits::default());
        let mut a = editor(&hub, 1);
        let mut b = editor(&hub, 2);
        send(&mut hub, &mut a, JOIN).unwrap();
        send(
            &mut hub,
            &mut b,
            r#"{"type":"call-join","room":"board","audio":true}"#,
        )
        .unwrap();
        let attachments: Vec<String> = [&a.peer, &b.peer]
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        assert!(attachments.iter().all(|a| a.len() < 2048 - 512));
        let mut woken = Hub::new(Limits::default());
        let mut peers: Vec<Peer> = attachments
            .iter()
            .map(|a| serde_json::from_str(a).unwrap())
            .collect();
        for p in &peers {
            woken.restore(p);
        }
        assert_eq!(
            woken.participants("board").unwrap()[&2].media,
            Media {
                audio: true,
                video: false
            }
        );
        let mut meter = woken.meter(0);
        let frame = signal(2, OFFER_SENDRECV);
        let out = woken
            .receive(&mut peers[0], &mut meter, frame.as_bytes(), 10)
            .unwrap();
        assert_eq!(out.sends[0].0, vec![2]);
    }

    #[test]
    fn a_demoted_publisher_is_closed_and_others_keep_going_with_their_new_role() {
        let mut hub = Hub::new(Limits::default());
        let mut a = editor(&hub, 1);
        let mut b = conn(&hub, 2, "*", Role::Owner, true, 8);
        let mut v = conn(&hub, 3, "*", Role::Commenter, false, 8);
        for c in [&mut a, &mut b, &mut v] {
            send(&mut hub, c, JOIN).unwrap();
        }
        assert!(
            !hub.downgrade(&mut a.peer, Role::Viewer),
            "an editor demoted to viewer loses media"
        );
        assert!(
            hub.downgrade(&mut b.peer, Role::Editor),
            "an owner demoted to editor still publishes"
        );
        assert_eq!(hub.participants("board").unwrap()[&2].role, Role::Editor);
        assert!(hub.downgrade(&mut v.peer, Role::Viewer));
        assert_eq!(v.peer.role, Role::Viewer);
        assert_eq!(hub.participants("board").unwrap()[&3].role, Role::Viewer);
    }

    #[test]
    fn notices_are_charged_to_the_sender() {
        let limits = Limits {
            rates: crate::ratelimit::Rates {
                byte_burst: 3_000.0,
                ..Limits::default().rates
            },
            ..Limits::default()
        };
        let mut hub = Hub::new(limits);
        let mut conns: Vec<Conn> = (1..=8).map(|i| editor(&hub, i)).collect();
        for c in &mut conns[1..] {
            send(&mut hub, c, JOIN).unwrap();
        }
        // Each state change sends a notice of ~80 bytes to 6 others, plus the frame itself.
        let a = &mut conns[1];
        let state = r#"{"type":"call-state","room":"board","audio":false,"video":false}"#;
        let sent = (0..20)
            .take_while(|_| send(&mut hub, a, state).is_ok())
            .count();
        assert!(sent < 10, "{sent}");
        assert_eq!(send(&mut hub, a, state), Err(RATE_LIMITED));
    }
}
