//! Webhooks, the pure part: Standard Webhooks signatures, event filters, retry schedule, and
//! the summary of what changed in a document. Sending and queueing live in the edge.
//!
//! Signatures follow <https://www.standardwebhooks.com/>: `webhook-id`, `webhook-timestamp`
//! (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed with the base64-decoded part of a `whsec_` secret. While a rotated-out secret is in
//! its grace period the header carries two signatures, space-separated, as the specification
//! allows, so a receiver verifies with either secret.

use crate::net::DestinationError;
use jwt_simple::prelude::Base64;
use jwt_simple::reexports::ct_codecs::Decoder;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use thiserror::Error;

/// Prefix of webhook secrets, as in the Standard Webhooks libraries.
pub const SECRET_PREFIX: &str = "whsec_";

/// Event types a subscription may name (or `*`, or a family like `member.*`).
pub const EVENT_TYPES: &[&str] = &[
    "document.updated",
    "document.created",
    "document.deleted",
    "version.created",
    "branch.created",
    "branch.merged",
    "member.added",
    "member.role_changed",
    "member.removed",
    "key.created",
    "key.revoked",
    "webhook.test",
    "thread.created",
    "thread.updated",
    "thread.resolved",
    "thread.reopened",
    "thread.deleted",
    "comment.created",
    "comment.edited",
    "comment.deleted",
    "reaction.added",
    "reaction.removed",
    "chat.message.created",
    "notification.created",
    "review.requested",
    "review.submitted",
    "review.completed",
    "review.withdrawn",
    "asset.created",
    "asset.version_created",
    "asset.deleted",
    "asset.restored",
];

/// Webhook errors.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not `whsec_` followed by base64.
    #[error("the secret is not whsec_<base64>")]
    BadSecret,
}

/// A fresh secret from 24 random bytes.
pub fn new_secret(random: &[u8; 24]) -> String {
    format!("{SECRET_PREFIX}{}", crate::codec::base64(random))
}

/// The `webhook-signature` header value for a message.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: u64,
    body: &str,
) -> Result<String, WebhookError> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b| Base64::decode_to_vec(b, None).ok())
        .ok_or(WebhookError::BadSecret)?;
    let content = format!("{msg_id}.{timestamp}.{body}");
    let mac = hmac_sha256::HMAC::mac(content.as_bytes(), &key);
    Ok(format!("v1,{}", crate::codec::base64(&mac)))
}

/// How long a rotated-out secret keeps signing beside the new one, unless configured: a day,
/// for receivers to switch to the new secret without losing events.
pub const ROTATION_GRACE_MS: u64 = 24 * 60 * 60 * 1000;

/// A subscription's signing secrets: the current one, and the one it replaced until that
/// one's grace period ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    /// The secret shown when the subscription was created or last rotated.
    pub current: String,
    /// The secret before the last rotation.
    pub previous: Option<String>,
    /// When `previous` stops signing, unix ms.
    pub previous_expires_at: Option<u64>,
}

impl SigningSecrets {
    /// The secrets that sign a message at `now_ms`: the current one, then the previous one
    /// while its grace period lasts.
    pub fn active(&self, now_ms: u64) -> Vec<&str> {
        let mut out = vec![self.current.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous, self.previous_expires_at) {
            if now_ms < until {
                out.push(previous);
            }
        }
        out
    }

    /// After a rotation to `new` at `now_ms`: the current secret signs for `grace_ms` more,
    /// beside `new`; a previous one still in its grace period stops now (only the secret just
    /// replaced is kept, so at most two ever sign).
    pub fn rotated(&self, new: String, now_ms: u64, grace_ms: u64) -> SigningSecrets {
        SigningSecrets {
            current: new,
            previous: Some(self.current.clone()),
            previous_expires_at: Some(now_ms.saturating_add(grace_ms)),
        }
    }
}

/// The `webhook-signature` header value signed with each of `secrets`: `v1,<sig>` entries
/// separated by spaces, in the order given.
pub fn signature_header(
    secrets: &[&str],
    msg_id: &str,
    timestamp: u64,
    body: &str,
) -> Result<String, WebhookError> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// The last four characters of a secret: enough to tell which one a receiver holds, too few
/// to sign with (24 of its 192 random bits).
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// A message id: `msg_` and URL-safe base64 of 16 random bytes.
pub fn message_id(random: &[u8; 16]) -> String {
    format!("msg_{}", crate::codec::base64url(random))
}

/// Whether an event filter admits `event`: an exact type, a family (`member.*`) or `*`.
pub fn matches(filters: &[String], event: &str) -> bool {
    filters.iter().any(|f| {
        f == "*"
            || f == event
            || f.strip_suffix(".*")
                .is_some_and(|family| event.split('.').next() == Some(family))
    })
}

/// Checks a subscription's event filters.
pub fn validate_filters(filters: &[String]) -> Result<(), String> {
    if filters.is_empty() || filters.len() > EVENT_TYPES.len() + 1 {
        return Err("events must list 1 or more event types".into());
    }
    for f in filters {
        let known = f == "*"
            || EVENT_TYPES.contains(&f.as_str())
            || f.strip_suffix(".*")
                .is_some_and(|fam| EVENT_TYPES.iter().any(|t| t.split('.').next() == Some(fam)));
        if !known {
            return Err(format!(
                "unknown event type {f:?}; known: *, {}",
                EVENT_TYPES.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks a receiver URL: http(s) without a user name or password, at most
/// [`crate::net::MAX_URL_LEN`] characters, and a public destination unless `allow_private`
/// (local development). See [`crate::net`] for how the host is read.
pub fn validate_url(url: &str, allow_private: bool) -> Result<(), DestinationError> {
    crate::net::check(url, allow_private).map(drop)
}

/// Delay before attempt `attempt` (1 = the first retry): `base` doubling each time, capped at
/// one hour, with up to 20% random jitter (`jitter` in `[0, 1)`) so retries of many messages
/// do not arrive in lockstep.
pub fn backoff_ms(attempt: u32, base_ms: u64, jitter: f64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(3_600_000);
    capped + (capped as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64
}

/// A text range that changed: `deleted` UTF-16 code units at `index` replaced by `inserted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextRange {
    /// Start, in UTF-16 code units.
    pub index: usize,
    /// Code units removed.
    pub deleted: usize,
    /// Code units inserted.
    pub inserted: usize,
}

/// The smallest single range turning `before` into `after` (common prefix and suffix).
pub fn text_range(before: &str, after: &str) -> Option<TextRange> {
    if before == after {
        return None;
    }
    let a: Vec<u16> = before.encode_utf16().collect();
    let b: Vec<u16> = after.encode_utf16().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    Some(TextRange {
        index: prefix,
        deleted: a.len() - prefix - suffix,
        inserted: b.len() - prefix - suffix,
    })
}

/// What changed in one root type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootChange {
    /// Root type name.
    pub root: String,
    /// `text`, `map`, `array` or `other`.
    pub kind: &'static str,
    /// For maps: keys added, changed or removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// For texts: the range that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<TextRange>,
    /// For arrays: length before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<(usize, usize)>,
}

/// Compares two renderings (see [`crate::document::render_json`]) root by root. The comparisons
/// walk with an explicit stack, so they never recurse however deep the values are; renderings
/// stop at [`crate::document::MAX_DEPTH`] with a marker holding a digest of what is below, so
/// a change deeper than that still names its root and key: a summary of a deeply nested
/// document is truncated, never missing.
pub fn summarize(before: &Value, after: &Value) -> Vec<RootChange> {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let roots: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out = Vec::new();
    for root in roots {
        let (old, new) = (b.get(root), a.get(root));
        if same(old, new) {
            continue;
        }
        let mut change = RootChange {
            root: root.clone(),
            kind: "other",
            keys: Vec::new(),
            range: None,
            length: None,
        };
        match (old, new) {
            (old, Some(Value::String(n))) if old.is_none_or(Value::is_string) => {
                change.kind = "text";
                change.range = text_range(old.and_then(Value::as_str).unwrap_or(""), n);
            }
            (old, Some(Value::Object(n))) if old.is_none_or(Value::is_object) => {
                change.kind = "map";
                let o = old.and_then(Value::as_object).unwrap_or(&empty);
                let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
                change.keys = keys
                    .into_iter()
                    .filter(|k| !same(o.get(*k), n.get(*k)))
                    .cloned()
                    .collect();
            }
            (old, Some(Value::Array(n))) if old.is_none_or(Value::is_array) => {
                change.kind = "array";
                change.length = Some((old.and_then(Value::as_array).map_or(0, Vec::len), n.len()));
            }
            _ => {}
        }
        out.push(change);
    }
    out
}

/// Whether two optional values are equal, compared with an explicit stack (`==` on `Value`
/// recurses once per level).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let mut pairs = match (a, b) {
        (Some(a), Some(b)) => vec![(a, b)],
        (a, b) => return a.is_none() && b.is_none(),
    };
    while let Some(pair) = pairs.pop() {
        match pair {
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                pairs.extend(a.iter().zip(b))
            }
            (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
                for (key, a) in a {
                    match b.get(key) {
                        Some(b) => pairs.push((a, b)),
                        None => return false,
                    }
                }
            }
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                return false
            }
            (a, b) if a != b => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(sign("nope", "m", 1, "b"), Err(WebhookError::BadSecret));
    }

    /// Standard Webhooks verification as the specification describes it: some space-separated
    /// `v1,<base64>` entry equals HMAC-SHA256 of `id.timestamp.body` keyed with the base64
    /// after `whsec_`.
    fn verifies(secret: &str, header: &str, id: &str, timestamp: u64, body: &str) -> bool {
        let key = Base64::decode_to_vec(secret.strip_prefix("whsec_").unwrap(), None).unwrap();
        let expected = hmac_sha256::HMAC::mac(format!("{id}.{timestamp}.{body}").as_bytes(), &key);
        header.split(' ').any(|entry| {
            entry.split_once(',').is_some_and(|(version, sig)| {
                version == "v1" && Base64::decode_to_vec(sig, None).is_ok_and(|sig| sig == expected)
            })
        })
    }

    #[test]
    fn during_a_grace_period_both_secrets_sign_and_each_verifies() {
        let old = new_secret(&[1u8; 24]);
        let new = new_secret(&[2u8; 24]);
        let other = new_secret(&[3u8; 24]);
        let before = SigningSecrets {
            current: old.clone(),
            previous: None,
            previous_expires_at: None,
        };
        assert_eq!(before.active(0), vec![old.as_str()]);
        let after = before.rotated(new.clone(), 1_000, ROTATION_GRACE_MS);
        assert_eq!(after.previous_expires_at, Some(1_000 + ROTATION_GRACE_MS));
        let (id, ts, body) = ("msg_2", 1_700_000_000, r#"{"type":"webhook.test"}"#);

        let during = after.active(1_000 + ROTATION_GRACE_MS - 1);
        assert_eq!(during, vec![new.as_str(), old.as_str()]);
        let header = signature_header(&during, id, ts, body).unwrap();
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|e| e.starts_with("v1,")));
        assert!(verifies(&new, &header, id, ts, body));
        assert!(verifies(&old, &header, id, ts, body));
        assert!(!verifies(&other, &header, id, ts, body));
        assert!(!verifies(&new, &header, id, ts, "{}"));
        assert!(!verifies(&old, &header, "msg_3", ts, body));

        let later = after.active(1_000 + ROTATION_GRACE_MS);
        assert_eq!(later, vec![new.as_str()]);
        let header = signature_header(&later, id, ts, body).unwrap();
        assert!(!header.contains(' '));
        assert!(verifies(&new, &header, id, ts, body));
        assert!(!verifies(&old, &header, id, ts, body));

        // Rotating again drops the oldest secret at once: two sign at most.
        let again = after.rotated(other.clone(), 2_000, ROTATION_GRACE_MS);
        assert_eq!(again.active(2_001), vec![other.as_str(), new.as_str()]);
        // No grace: the replaced secret stops with the rotation.
        assert_eq!(
            after.rotated(other.clone(), 5, 0).active(5),
            vec![other.as_str()]
        );
    }

    #[test]
    fn the_specification_vector_verifies_beside_a_second_secret() {
        let spec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let other = new_secret(&[9u8; 24]);
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        let header = signature_header(&[&other, spec], id, ts, body).unwrap();
        assert!(header.ends_with(" v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert!(verifies(spec, &header, id, ts, body));
        assert!(verifies(&other, &header, id, ts, body));
        assert_eq!(
            signature_header(&[&other, "nope"], id, ts, body),
            Err(WebhookError::BadSecret)
        );
    }

    #[test]
    fn hints_are_the_last_four_characters() {
        let s = new_secret(&[7u8; 24]);
        assert_eq!(secret_hint(&s), &s[s.len() - 4..]);
        assert_eq!(secret_hint("abc"), "abc");
    }

    #[test]
    fn urls_are_checked_as_destinations() {
        assert!(validate_url("https://example.com/hooks", false).is_ok());
        assert!(matches!(
            validate_url("http://0x7f.1/", false),
            Err(DestinationError::NotPublic { .. })
        ));
        assert!(validate_url("http://0x7f.1/", true).is_ok());
        assert_eq!(
            validate_url("http://u:p@127.0.0.1/", true),
            Err(DestinationError::Userinfo)
        );
    }

    #[test]
    fn secrets_and_ids_have_their_prefixes() {
        let s = new_secret(&[1u8; 24]);
        assert!(s.starts_with("whsec_"));
        assert!(sign(&s, "m", 1, "b").is_ok());
        assert!(message_id(&[2u8; 16]).starts_with("msg_"));
    }

    #[test]
    fn filters() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches(&f(&["*"]), "key.created"));
        assert!(matches(&f(&["member.*"]), "member.removed"));
        assert!(!matches(&f(&["member.*"]), "document.updated"));
        assert!(matches(&f(&["document.updated"]), "document.updated"));
        assert!(validate_filters(&f(&["document.*", "key.revoked"])).is_ok());
        assert!(validate_filters(&f(&["nope.*"])).is_err());
        assert!(validate_filters(&[]).is_err());
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(backoff_ms(1, 1000, 0.0), 1000);
        assert_eq!(backoff_ms(2, 1000, 0.0), 2000);
        assert_eq!(backoff_ms(4, 1000, 0.0), 8000);
        assert_eq!(backoff_ms(40, 1000, 0.0), 3_600_000);
        assert_eq!(backoff_ms(1, 1000, 0.999), 1199);
    }

    #[test]
    fn text_ranges_in_utf16() {
        assert_eq!(text_range("abc", "abc"), None);
        assert_eq!(
            text_range("abc", "aXbc"),
            Some(TextRange {
                index: 1,
                deleted: 0,
                inserted: 1
            })
        );
        assert_eq!(
            text_range("hello world", "hello"),
            Some(TextRange {
                index: 5,
                deleted: 6,
                inserted: 0
            })
        );
        assert_eq!(
            text_range("a😀b", "a😀!b"),
            Some(TextRange {
                index: 3,
                deleted: 0,
                inserted: 1
            })
        );
        assert_eq!(
            text_range("aaa", "aa"),
            Some(TextRange {
                index: 2,
                deleted: 1,
                inserted: 0
            })
        );
    }

    #[test]
    fn summaries_name_what_changed() {
        let before = json!({"t": "hello", "m": {"a": 1, "b": 2}, "l": [1], "same": "x"});
        let after = json!({"t": "hello!", "m": {"a": 1, "b": 3, "c": 4}, "l": [1, 2], "same": "x", "new": {"k": 1}});
        let s = summarize(&before, &after);
        let by_root = |r: &str| s.iter().find(|c| c.root == r).cloned();
        assert_eq!(
            by_root("t").unwrap().range,
            Some(TextRange {
                index: 5,
                deleted: 0,
                inserted: 1
            })
        );
        assert_eq!(by_root("m").unwrap().keys, vec!["b", "c"]);
        assert_eq!(by_root("l").unwrap().length, Some((1, 2)));
        assert_eq!(by_root("new").unwrap().keys, vec!["k"]);
        assert!(by_root("same").is_none());
    }
}
