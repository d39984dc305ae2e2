//! The calls the worker makes to a room's Durable Object: one typed request enum, sent in the
//! body of a single internal request, instead of internal URLs built from strings.
//!
//! A call is encoded as a 4-byte big-endian length, that many bytes of JSON ([`RoomRequest`]),
//! and an optional binary payload (an update or a state, which JSON would inflate). The room
//! decodes this and nothing else: any other path, an unknown call, an unknown field or a
//! malformed envelope is refused. Values in a call are typed (room names, version ids, numbers):
//! nothing a client sent reaches the room as a string to be parsed again.

use crate::auth::Role;
use crate::document::Edits;
use crate::names::{Id, RoomName};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The internal URL every call is sent to. The host is never resolved: a Durable Object stub
/// delivers the request to its object whatever the URL says.
pub const CALL_URL: &str = "https://room.internal/call";
/// The internal URL a WebSocket upgrade is forwarded to, with an [`Admission`].
pub const CONNECT_URL: &str = "https://room.internal/connect";
/// Header carrying the JSON [`Admission`] of a forwarded WebSocket upgrade.
pub const ADMISSION_HEADER: &str = "x-tandemx-admission";

/// Longest JSON part of a call. Calls carry small typed values; an edit request is the largest
/// (bounded by the API's JSON body limit).
pub const MAX_CALL_JSON: usize = 256 * 1024;

/// Which room a call is for, and who makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRequest {
    /// The room's project.
    pub project: Id,
    /// The room's name.
    pub room: RoomName,
    /// Who is calling, as the audit log and the history name them (`user:<sub>`, a key id,
    /// `admin`).
    pub author: String,
    /// What to do.
    pub call: RoomCall,
}

/// One side of a diff: a version, or the document as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffSide {
    /// A stored version.
    Version(u64),
    /// The document now.
    Current,
}

/// What the worker asks a room to do. Each variant is one operation of the document API, the
/// history API or the room's upkeep; the worker has already checked the caller for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "op",
    content = "args",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum RoomCall {
    /// Whether the room's storage answers.
    Health,
    /// Close every connection and erase the room's storage.
    Delete,
    /// The document as JSON.
    ReadJson,
    /// The document as a Yjs update: what a peer at `state_vector` (v1 bytes) lacks, or all.
    ReadUpdate {
        /// The peer's state vector, v1 encoded; `None`: the whole document.
        #[serde(default)]
        state_vector: Option<Vec<u8>>,
        /// Encode as v2 instead of v1.
        #[serde(default)]
        v2: bool,
    },
    /// Apply the payload, a v1 update.
    WriteUpdate,
    /// Apply JSON edit operations.
    WriteEdits {
        /// The operations.
        edits: Edits,
    },
    /// List versions, newest first.
    ListVersions {
        /// Most versions returned.
        limit: u32,
        /// Only versions with an id below this.
        #[serde(default)]
        before: Option<u64>,
    },
    /// Take a named version of the current state.
    CreateVersion {
        /// Its name (already validated).
        name: String,
        /// Its description.
        #[serde(default)]
        description: Option<String>,
    },
    /// A version as JSON (`as_update: false`) or as a Yjs update.
    GetVersion {
        /// The version.
        id: u64,
        /// Answer with the state as a v1 update instead of JSON.
        #[serde(default)]
        as_update: bool,
    },
    /// Delete a version.
    DeleteVersion {
        /// The version.
        id: u64,
    },
    /// Restore a version as a new change.
    RestoreVersion {
        /// The version.
        id: u64,
    },
    /// Compare two states.
    Diff {
        /// The older side.
        from: DiffSide,
        /// The newer side.
        to: DiffSide,
    },
    /// Stored updates in log order.
    Replay {
        /// Only entries after this log position.
        after: u64,
        /// Only entries logged at or after this time (unix ms).
        from: u64,
        /// Only entries logged at or before this time (unix ms).
        to: u64,
        /// Most entries returned.
        limit: u32,
    },
    /// The document as it was at `t` (unix ms).
    At {
        /// The instant.
        t: u64,
        /// Answer with a v1 update instead of JSON.
        #[serde(default)]
        as_update: bool,
    },
    /// Where the log stands: head, entries after `after`, their authors, the state vector, and
    /// with `with_state` the whole state.
    Head {
        /// Count entries after this log position.
        after: u64,
        /// Include the whole state.
        #[serde(default)]
        with_state: bool,
    },
    /// Start a branch: this empty room takes the payload (the parent's state) as its first
    /// change.
    Fork {
        /// The parent document.
        parent: RoomName,
    },
    /// Start a document from an archive: this empty room takes the payload (a v1 update) as
    /// its first change, and records it as a named version.
    Import,
    /// Apply (or with `preview`, only diff) the payload: what this room lacks of `branch`.
    Merge {
        /// The branch being merged.
        branch: RoomName,
        /// Report the changes without applying them.
        #[serde(default)]
        preview: bool,
    },
    /// A conversation operation (threads, comments, reactions, chat) for `actor`, whose role
    /// the worker established.
    Converse {
        /// Who acts: their user id.
        actor: String,
        /// The role they act with.
        role: Role,
        /// What to do.
        op: crate::conversations::ConvOp,
    },
    /// Tell the connections that asked for events of a change made outside the room.
    Notify {
        /// The change.
        notice: crate::conversations::Notice,
    },
    /// A credential stopped admitting connections: close (or downgrade) the open ones it
    /// admitted, and refuse it for a while (other isolates may still admit it from their cache).
    Revoke {
        /// What was revoked.
        revocation: Revocation,
        /// How long (ms) to refuse it at admission: as long as any isolate may cache it.
        refuse_for_ms: u64,
    },
}

/// What admitted a connection: kept with the connection, so a revocation finds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The API key that minted the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The project signing key that verified the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A credential, or a user's standing, that changed so that open connections must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Revocation {
    /// The project was deleted: every connection goes.
    Project,
    /// An API key was revoked: the tokens it minted go.
    Key {
        /// The key's id.
        id: String,
    },
    /// A project signing key was revoked: the tokens it verified go.
    SigningKey {
        /// The key's `kid`.
        kid: String,
    },
    /// One token was revoked.
    Token {
        /// Its `jti`.
        jti: String,
    },
    /// A member was removed (`role: None`: their connections go) or their role changed (their
    /// connections keep at most `role`).
    Member {
        /// The user.
        sub: String,
        /// The new role, if they are still a member.
        #[serde(default)]
        role: Option<Role>,
    },
}

/// What a revocation does to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not concerned.
    Keep,
    /// Close it.
    Close,
    /// Keep it with at most this role.
    Downgrade(Role),
}

impl Revocation {
    /// What this revocation does to a connection of `sub` with `role`, admitted by `cred`.
    pub fn verdict(&self, sub: &str, role: Role, cred: &Credential) -> Verdict {
        let hit = |held: &Option<String>, id: &str| held.as_deref() == Some(id);
        match self {
            Revocation::Project => Verdict::Close,
            Revocation::Key { id } if hit(&cred.key, id) => Verdict::Close,
            Revocation::SigningKey { kid } if hit(&cred.kid, kid) => Verdict::Close,
            Revocation::Token { jti } if hit(&cred.jti, jti) => Verdict::Close,
            Revocation::Member { sub: s, role: None } if s == sub => Verdict::Close,
            Revocation::Member {
                sub: s,
                role: Some(r),
            } if s == sub && *r < role => Verdict::Downgrade(*r),
            _ => Verdict::Keep,
        }
    }
}

impl RoomCall {
    /// Whether the call carries a binary payload after its JSON.
    pub fn takes_payload(&self) -> bool {
        matches!(
            self,
            RoomCall::WriteUpdate
                | RoomCall::Fork { .. }
                | RoomCall::Import
                | RoomCall::Merge { .. }
        )
    }
}

/// Who a forwarded WebSocket upgrade is, as the worker established it. Only the worker can
/// reach a room, and it builds this itself: no header of the client's request is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// The room's project.
    pub project: Id,
    /// The room's name.
    pub room: RoomName,
    /// The user (`sub`).
    pub sub: String,
    /// The role the connection gets.
    pub role: Role,
    /// Token expiry, unix seconds.
    pub exp: u64,
    /// The `Sec-WebSocket-Protocol` to select in the response, if the client offered one.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Whether the project has webhook subscriptions (as read while authorizing).
    #[serde(default)]
    pub webhooks: bool,
    /// What admitted the connection.
    #[serde(default)]
    pub credential: Credential,
    /// The client asked for conversation events on the socket (`?events=1`: the SDK does;
    /// stock providers never get them).
    #[serde(default)]
    pub events: bool,
}

/// A room's answer to [`RoomCall::Head`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadReply {
    /// The log position of the newest entry.
    pub head: u64,
    /// The position counted from.
    pub after: u64,
    /// Entries after `after`.
    pub count: u64,
    /// Who wrote them.
    pub authors: Vec<String>,
    /// The document's state vector (v1, base64).
    pub state_vector: String,
    /// The whole state (v1 update, base64), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A room's answer to [`RoomCall::Fork`] and [`RoomCall::Import`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkReply {
    /// The log position of the fork's first change.
    pub seq: u64,
    /// The `fork` version taken.
    pub version: serde_json::Value,
}

/// Why a call's envelope was refused.
#[derive(Debug, Error)]
pub enum CallError {
    /// Shorter than its length prefix says, or no prefix at all.
    #[error("truncated call ({0} bytes)")]
    Truncated(usize),
    /// The JSON part is larger than [`MAX_CALL_JSON`].
    #[error("call of {0} bytes over the limit of {MAX_CALL_JSON}")]
    TooLarge(usize),
    /// The JSON part is not a known call.
    #[error("unknown or malformed call: {0}")]
    Json(#[from] serde_json::Error),
    /// A payload where the call takes none, or none where it takes one.
    #[error("call {0} {1}")]
    Payload(&'static str, &'static str),
}

impl RoomRequest {
    /// Encodes the call with its payload (empty for calls that take none).
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let json = serde_json::to_vec(self)?;
        if json.len() > MAX_CALL_JSON {
            return Err(CallError::TooLarge(json.len()));
        }
        let mut out = Vec::with_capacity(4 + json.len() + payload.len());
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(payload);
        Ok(out)
    }

    /// Decodes a call and returns it with its payload.
    pub fn decode(body: &[u8]) -> Result<(RoomRequest, &[u8]), CallError> {
        let Some((len, rest)) = body.split_first_chunk::<4>() else {
            return Err(CallError::Truncated(body.len()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_CALL_JSON {
            return Err(CallError::TooLarge(len));
        }
        if rest.len() < len {
            return Err(CallError::Truncated(body.len()));
        }
        let (json, payload) = rest.split_at(len);
        let request: RoomRequest = serde_json::from_slice(json)?;
        match (request.call.takes_payload(), payload.is_empty()) {
            (false, false) => return Err(CallError::Payload("op", "takes no payload")),
            (true, true) if !matches!(request.call, RoomCall::WriteUpdate) => {
                return Err(CallError::Payload("op", "needs a payload"))
            }
            _ => {}
        }
        Ok((request, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(call: RoomCall) -> RoomRequest {
        RoomRequest {
            project: Id::parse("project id", "prj_1").unwrap(),
            room: RoomName::parse("doc").unwrap(),
            author: "user:ada".into(),
            call,
        }
    }

    #[test]
    fn every_call_round_trips_with_its_payload() {
        let calls = [
            RoomCall::Health,
            RoomCall::Delete,
            RoomCall::ReadJson,
            RoomCall::ReadUpdate {
                state_vector: Some(vec![1, 2, 3]),
                v2: true,
            },
            RoomCall::ListVersions {
                limit: 50,
                before: Some(9),
            },
            RoomCall::CreateVersion {
                name: "v".into(),
                description: None,
            },
            RoomCall::GetVersion {
                id: 3,
                as_update: true,
            },
            RoomCall::DeleteVersion { id: 3 },
            RoomCall::RestoreVersion { id: 3 },
            RoomCall::Diff {
                from: DiffSide::Version(1),
                to: DiffSide::Current,
            },
            RoomCall::Replay {
                after: 0,
                from: 0,
                to: 10,
                limit: 5,
            },
            RoomCall::At {
                t: 5,
                as_update: false,
            },
            RoomCall::Head {
                after: 2,
                with_state: true,
            },
            RoomCall::Notify {
                notice: crate::conversations::Notice::ReviewChanged {
                    event: "review.requested".into(),
                    review: 3,
                    actor: "ada".into(),
                },
            },
        ];
        for call in calls {
            let req = request(call);
            let bytes = req.encode(&[]).unwrap();
            let (back, payload) = RoomRequest::decode(&bytes).unwrap();
            assert_eq!(back, req);
            assert!(payload.is_empty());
        }
        for call in [
            RoomCall::WriteUpdate,
            RoomCall::Import,
            RoomCall::Fork {
                parent: RoomName::parse("main").unwrap(),
            },
            RoomCall::Merge {
                branch: RoomName::parse("b").unwrap(),
                preview: true,
            },
        ] {
            let req = request(call);
            let bytes = req.encode(&[0, 1, 2, 255]).unwrap();
            let (back, payload) = RoomRequest::decode(&bytes).unwrap();
            assert_eq!(back, req);
            assert_eq!(payload, &[0, 1, 2, 255]);
        }
    }

    #[test]
    fn malformed_and_unknown_calls_are_refused() {
        let good = request(RoomCall::Delete).encode(&[]).unwrap();
        assert!(RoomRequest::decode(&[]).is_err());
        assert!(RoomRequest::decode(&good[..3]).is_err());
        assert!(RoomRequest::decode(&good[..good.len() - 1]).is_err());
        // A payload where the call takes none.
        let mut extra = good.clone();
        extra.push(0);
        assert!(RoomRequest::decode(&extra).is_err());
        // A fork needs the parent's state.
        let fork = request(RoomCall::Fork {
            parent: RoomName::parse("main").unwrap(),
        });
        assert!(RoomRequest::decode(&fork.encode(&[]).unwrap()).is_err());
        let json_call = |json: &str| {
            let mut body = (json.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(json.as_bytes());
            RoomRequest::decode(&body).map(|_| ())
        };
        let base = r#""project":"prj_1","room":"doc","author":"a""#;
        assert!(json_call(&format!(r#"{{{base},"call":{{"op":"delete"}}}}"#)).is_ok());
        assert!(json_call(&format!(
            r#"{{{base},"call":{{"op":"get_version","args":{{"id":1}}}}}}"#
        ))
        .is_ok());
        for bad in [
            format!(r#"{{{base},"call":{{"op":"__delete"}}}}"#),
            format!(r#"{{{base},"call":{{"op":"delete","x":1}}}}"#),
            format!(r#"{{{base},"call":{{"op":"delete","args":{{"x":1}}}}}}"#),
            format!(r#"{{{base},"call":{{"op":"get_version","args":{{"id":"1/update"}}}}}}"#),
            format!(r#"{{{base},"call":{{"op":"get_version","args":{{"id":-1}}}}}}"#),
            format!(r#"{{{base},"call":{{"op":"get_version","args":{{"id":1,"x":2}}}}}}"#),
            format!(r#"{{{base},"call":{{"op":"delete"}},"extra":1}}"#),
            r#"{"project":"prj_1","room":"..","author":"a","call":{"op":"delete"}}"#.into(),
            r#"{"project":"a/b","room":"doc","author":"a","call":{"op":"delete"}}"#.into(),
            "not json".into(),
        ] {
            assert!(json_call(&bad).is_err(), "{bad}");
        }
        // A length prefix far beyond the limit is refused before anything is read.
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(matches!(
            RoomRequest::decode(&huge),
            Err(CallError::TooLarge(_))
        ));
    }

    #[test]
    fn revocations_reach_exactly_the_connections_they_admitted() {
        let cred = Credential {
            key: Some("key_1".into()),
            kid: None,
            jti: Some("t1".into()),
        };
        let v = |r: Revocation, role| r.verdict("ada", role, &cred);
        assert_eq!(v(Revocation::Project, Role::Viewer), Verdict::Close);
        assert_eq!(
            v(Revocation::Key { id: "key_1".into() }, Role::Editor),
            Verdict::Close
        );
        assert_eq!(
            v(Revocation::Key { id: "key_2".into() }, Role::Editor),
            Verdict::Keep
        );
        assert_eq!(
            v(
                Revocation::SigningKey {
                    kid: "key_1".into()
                },
                Role::Editor
            ),
            Verdict::Keep
        );
        assert_eq!(
            v(Revocation::Token { jti: "t1".into() }, Role::Editor),
            Verdict::Close
        );
        assert_eq!(
            v(Revocation::Token { jti: "t2".into() }, Role::Editor),
            Verdict::Keep
        );
        let removed = Revocation::Member {
            sub: "ada".into(),
            role: None,
        };
        assert_eq!(v(removed, Role::Viewer), Verdict::Close);
        let other = Revocation::Member {
            sub: "bob".into(),
            role: None,
        };
        assert_eq!(v(other, Role::Viewer), Verdict::Keep);
        let down = |role| Revocation::Member {
            sub: "ada".into(),
            role: Some(role),
        };
        assert_eq!(
            v(down(Role::Viewer), Role::Editor),
            Verdict::Downgrade(Role::Viewer)
        );
        // A promotion does not raise an open connection above what its token gave.
        assert_eq!(v(down(Role::Owner), Role::Editor), Verdict::Keep);
        assert_eq!(v(down(Role::Editor), Role::Editor), Verdict::Keep);
        // A connection without a jti or key is not matched by an empty id.
        let bare = Credential::default();
        assert_eq!(
            Revocation::Token { jti: String::new() }.verdict("ada", Role::Editor, &bare),
            Verdict::Keep
        );
    }

    #[test]
    fn admissions_refuse_unknown_fields() {
        let a = Admission {
            project: Id::parse("project id", "prj_1").unwrap(),
            room: RoomName::parse("doc").unwrap(),
            sub: "ada".into(),
            role: Role::Viewer,
            exp: 10,
            protocol: None,
            webhooks: false,
            events: false,
            credential: Credential {
                key: Some("key_1".into()),
                kid: None,
                jti: Some("j".into()),
            },
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Admission>(&json).unwrap(), a);
        let tampered = json.replace('}', r#","role2":"owner"}"#);
        assert!(serde_json::from_str::<Admission>(&tampered).is_err());
    }
}
