//! Request ids. Every HTTP answer carries one in `x-request-id`, every problem document in its
//! `request_id` member, and the request's log line names it, so a client's report, a
//! dashboard entry and a log line can be matched (docs/operations.md).

use crate::names::Id;

/// The response header (and the request header a caller may send its own id in).
pub const HEADER: &str = "x-request-id";

/// The header Cloudflare gives each request its id in (the Ray ID its dashboard shows).
pub const CF_RAY: &str = "cf-ray";

/// Whether `id` may be a request id: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not only
/// dots (the rules of ids, [`Id::parse`]). Anything else a client sends (spaces, quotes,
/// control characters, a kilobyte of text) is not echoed into headers and logs.
pub fn is_valid(id: &str) -> bool {
    Id::parse("request id", id).is_ok()
}

/// The request's id: Cloudflare's `cf-ray` when the request has a valid one (so the id matches
/// the dashboard), else the caller's `x-request-id` when it is valid ([`is_valid`]), else
/// `fresh()`.
pub fn choose(
    cf_ray: Option<&str>,
    incoming: Option<&str>,
    fresh: impl FnOnce() -> String,
) -> String {
    [cf_ray, incoming]
        .into_iter()
        .flatten()
        .find(|id| is_valid(id))
        .map_or_else(fresh, str::to_owned)
}

/// A fresh id from random bytes: their lowercase hex.
pub fn fresh(random: [u8; 8]) -> String {
    crate::codec::hex(&random)
}

/// A problem document with the request's id added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The document with `request_id` set.
    pub body: String,
    /// What it says, for a log line.
    pub summary: Summary,
}

/// The `error` word and the `detail` of a problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The machine-readable word (`room-full`).
    pub error: String,
    /// What went wrong.
    pub detail: String,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

/// Adds `request_id: id` to `body`, a problem document another part of the service wrote (a
/// room, the previews worker); `None` when `body` is not a JSON object (it is then passed on
/// as it is).
pub fn tag_problem(body: &str, id: &str) -> Option<Tagged> {
    let mut doc: serde_json::Value = serde_json::from_str(body).ok()?;
    let map = doc.as_object_mut()?;
    map.insert("request_id".into(), id.into());
    let summary = summary(map);
    Some(Tagged {
        body: doc.to_string(),
        summary,
    })
}

/// What a problem document says; `None` when `body` is not a JSON object.
pub fn problem_summary(body: &str) -> Option<Summary> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(summary(doc.as_object()?))
}

fn summary(problem: &serde_json::Map<String, serde_json::Value>) -> Summary {
    let text = |key: &str| {
        let value = problem.get(key).and_then(|v| v.as_str());
        value.unwrap_or_default().to_owned()
    };
    Summary {
        error: text("error"),
        detail: text("detail"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> String {
        panic!("no fresh id wanted")
    }

    #[test]
    fn cloudflare_s_ray_id_comes_first() {
        assert_eq!(
            choose(Some("8f1c2a3b4c5d6e7f-IAD"), Some("mine"), never),
            "8f1c2a3b4c5d6e7f-IAD"
        );
        assert_eq!(
            choose(None, Some("client.req_42-a"), never),
            "client.req_42-a"
        );
        assert_eq!(choose(None, None, || "fresh".into()), "fresh");
        // A malformed ray id gives way to the caller's.
        assert_eq!(choose(Some("a b"), Some("mine"), never), "mine");
    }

    #[test]
    fn hostile_ids_are_refused() {
        let (long, longer) = ("a".repeat(65), "x".repeat(200));
        for bad in [
            "",
            " ",
            "has space",
            "tab\there",
            "crlf\r\nset-cookie: x=1",
            "quote\"",
            "semi;colon",
            "slash/",
            "percent%20",
            "é",
            "..",
            "a,b",
            long.as_str(),
            longer.as_str(),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
            assert_eq!(
                choose(None, Some(bad), || "fresh".into()),
                "fresh",
                "{bad:?}"
            );
        }
        assert!(is_valid(&"a".repeat(64)));
        assert!(is_valid("A-Z.a_z.0-9"));
    }

    #[test]
    fn fresh_ids_are_valid() {
        let id = fresh([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
        assert_eq!(id, "deadbeef00010203");
        assert!(is_valid(&id));
    }

    #[test]
    fn a_relayed_problem_gets_the_id() {
        let room = r#"{"type":"tag:tandemx,2026:room-full","title":"Room full","status":503,"detail":"the room is full","error":"room-full"}"#;
        let tagged = tag_problem(room, "req-1").unwrap();
        let v: serde_json::Value = serde_json::from_str(&tagged.body).unwrap();
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["status"], 503);
        assert_eq!(v["error"], "room-full");
        assert_eq!(tagged.summary.to_string(), "room-full: the room is full");
        assert_eq!(tagged.summary.error, "room-full");
        assert_eq!(problem_summary(room).unwrap(), tagged.summary);
        // One it already had is replaced.
        let again = tag_problem(&tagged.body, "req-2").unwrap();
        assert!(again.body.contains("\"request_id\":\"req-2\""));
        assert!(!again.body.contains("req-1"));
        for not_an_object in ["", "not json", "[1]", "\"text\"", "null"] {
            assert_eq!(tag_problem(not_an_object, "r"), None, "{not_an_object:?}");
            assert_eq!(problem_summary(not_an_object), None, "{not_an_object:?}");
        }
    }
}
