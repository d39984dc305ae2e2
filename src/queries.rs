//! The query parameters of the document and history routes, parsed into [`RoomCall`]s at the
//! edge: the room receives typed values and never reads a query string.

use crate::api::{query_value, ApiError};
use crate::room_call::{DiffSide, RoomCall};
use jwt_simple::prelude::{Base64, Base64UrlSafeNoPadding};
use jwt_simple::reexports::ct_codecs::Decoder;

/// Most versions one list page returns (and the default page size).
pub const MAX_VERSION_PAGE: u32 = 200;
/// Versions per page when the request names no limit.
pub const DEFAULT_VERSION_PAGE: u32 = 50;
/// Most log entries one replay page returns (and the default page size).
pub const MAX_REPLAY_PAGE: u32 = 1000;
/// Largest state vector a read accepts, in bytes: a state vector holds up to 14 bytes per client
/// that ever wrote, so this is some 600 to 1,000 writers. It travels in the URL, whose length
/// the platform bounds (16 KB at Cloudflare's edge); base64 makes it 10,924 characters, which
/// leaves room for the rest of the request line and the headers. A peer further from the
/// document than this reads the whole update (no state vector) instead.
pub const MAX_STATE_VECTOR_BYTES: usize = 8 * 1024;
/// The open end of a time or log range: 2^53 - 1, the largest integer JavaScript (and so
/// SQLite through the runtime) keeps exactly.
pub const NO_LIMIT: u64 = (1 << 53) - 1;

fn bad(why: String) -> ApiError {
    ApiError::InvalidBody(why)
}

/// A non-negative integer parameter, at most [`NO_LIMIT`].
pub fn number(query: Option<&str>, key: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = query.and_then(|q| query_value(q, key)) else {
        return Ok(None);
    };
    match v.parse::<u64>() {
        Ok(n) if n <= NO_LIMIT && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => Err(bad(format!(
            "{key} must be an integer from 0 to {NO_LIMIT}"
        ))),
    }
}

/// A page size: `default` when absent, else 1 to `max`.
fn page(query: Option<&str>, key: &str, default: u32, max: u32) -> Result<u32, ApiError> {
    match number(query, key)? {
        None => Ok(default),
        Some(n) if (1..=max as u64).contains(&n) => Ok(n as u32),
        Some(_) => Err(bad(format!("{key} must be from 1 to {max}"))),
    }
}

/// `GET .../versions?limit=&before=`.
pub fn list_versions(query: Option<&str>) -> Result<RoomCall, ApiError> {
    Ok(RoomCall::ListVersions {
        limit: page(query, "limit", DEFAULT_VERSION_PAGE, MAX_VERSION_PAGE)?,
        before: number(query, "before")?,
    })
}

fn side(query: Option<&str>, key: &str) -> Result<Option<DiffSide>, ApiError> {
    match query.and_then(|q| query_value(q, key)).as_deref() {
        None => Ok(None),
        Some("current") => Ok(Some(DiffSide::Current)),
        Some(v) => crate::names::version_id(v)
            .map(|id| Some(DiffSide::Version(id)))
            .ok_or_else(|| bad(format!("{key} must be a version id or \"current\""))),
    }
}

/// `GET .../diff?from=&to=`.
pub fn diff(query: Option<&str>) -> Result<RoomCall, ApiError> {
    Ok(RoomCall::Diff {
        from: side(query, "from")?.ok_or_else(|| bad("from is required (a version id)".into()))?,
        to: side(query, "to")?.unwrap_or(DiffSide::Current),
    })
}

/// `GET .../history?after=&from=&to=&limit=`.
pub fn replay(query: Option<&str>) -> Result<RoomCall, ApiError> {
    Ok(RoomCall::Replay {
        after: number(query, "after")?.unwrap_or(0),
        from: number(query, "from")?.unwrap_or(0),
        to: number(query, "to")?.unwrap_or(NO_LIMIT),
        limit: page(query, "limit", MAX_REPLAY_PAGE, MAX_REPLAY_PAGE)?,
    })
}

/// `GET .../history/at?t=&format=`.
pub fn at(query: Option<&str>) -> Result<RoomCall, ApiError> {
    let t = number(query, "t")?.ok_or_else(|| bad("t (unix ms) is required".into()))?;
    let as_update = match query.and_then(|q| query_value(q, "format")).as_deref() {
        None | Some("json") => false,
        Some("update") => true,
        Some(other) => return Err(bad(format!("format must be json or update, not {other:?}"))),
    };
    Ok(RoomCall::At { t, as_update })
}

/// `GET .../update?state_vector=&format=`: the state vector is base64 (URL-safe or standard)
/// and must be a well-formed v1 state vector.
pub fn read_update(query: Option<&str>) -> Result<RoomCall, ApiError> {
    let state_vector = match query.and_then(|q| query_value(q, "state_vector")) {
        // An empty parameter is no state vector: the whole document.
        None => None,
        Some(sv) if sv.is_empty() => None,
        Some(sv) => {
            if sv.len() > MAX_STATE_VECTOR_BYTES * 4 / 3 + 4 {
                return Err(bad(format!(
                    "state_vector is longer than {MAX_STATE_VECTOR_BYTES} bytes"
                )));
            }
            let bytes = Base64UrlSafeNoPadding::decode_to_vec(sv.trim_end_matches('='), None)
                .or_else(|_| Base64::decode_to_vec(&sv, None))
                .map_err(|e| bad(format!("state_vector is not base64: {e}")))?;
            check_state_vector(&bytes)?;
            Some(bytes)
        }
    };
    let v2 = match query.and_then(|q| query_value(q, "format")).as_deref() {
        None | Some("v1") => false,
        Some("v2") => true,
        Some(other) => {
            return Err(bad(format!("format must be v1 or v2, not {other:?}")));
        }
    };
    Ok(RoomCall::ReadUpdate { state_vector, v2 })
}

/// Checks that `bytes` are a v1 state vector the decoder can read safely
/// ([`crate::prescan::check_state_vector_v1`]).
pub fn check_state_vector(bytes: &[u8]) -> Result<(), ApiError> {
    crate::prescan::check_state_vector_v1(bytes)
        .map_err(|e| bad(format!("state_vector is not a v1 state vector: {e}")))
}

/// A boolean parameter: `true`/`1` or `false`/`0`.
pub fn flag(query: Option<&str>, key: &str) -> Result<Option<bool>, ApiError> {
    match query.and_then(|q| query_value(q, key)).as_deref() {
        None => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(_) => Err(bad(format!("{key} must be true or false"))),
    }
}

/// The `next_before` of a page read by [`feed_page`]: the last id when the page is full.
pub fn next_before(ids: &[u64], limit: u64) -> Option<u64> {
    (ids.len() as u64 == limit)
        .then(|| ids.last().copied())
        .flatten()
}

/// `GET .../threads?since=&after=&limit=&resolved=`.
pub fn list_threads(query: Option<&str>) -> Result<crate::conversations::ConvOp, ApiError> {
    let max = crate::conversations::MAX_PAGE as u32;
    Ok(crate::conversations::ConvOp::ListThreads {
        since: number(query, "since")?.unwrap_or(0),
        after: number(query, "after")?.unwrap_or(0),
        limit: page(query, "limit", 50, max)?,
        resolved: flag(query, "resolved")?,
    })
}

/// `GET .../chat?before=&since=&limit=`: newest first below `before`; with `since`, oldest
/// first above it (and below `before` when both are given: the messages between the two).
/// Each parameter is checked on its own, as a schema can state it.
pub fn list_chat(query: Option<&str>) -> Result<crate::conversations::ConvOp, ApiError> {
    let max = crate::conversations::MAX_PAGE as u32;
    Ok(crate::conversations::ConvOp::ListChat {
        before: number(query, "before")?,
        since: number(query, "since")?,
        limit: page(query, "limit", 50, max)?,
    })
}

/// Most rows one page of the inbox, the activity feed or the review list returns.
pub const MAX_FEED_PAGE: u32 = 100;
/// Rows per page of those lists when the request names no limit.
pub const DEFAULT_FEED_PAGE: u32 = 50;
/// Longest `kind` filter of the activity feed.
pub const MAX_ACTIVITY_KIND: usize = 40;

/// `?limit=&before=` of a list read newest first (the inbox, the activity feed, reviews).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPage {
    /// Rows per page, 1 to [`MAX_FEED_PAGE`].
    pub limit: u32,
    /// Only rows with a smaller id (the `next_before` of the page before).
    pub before: Option<u64>,
}

/// Parses `?limit=&before=` of a list read newest first.
pub fn feed_page(query: Option<&str>) -> Result<FeedPage, ApiError> {
    Ok(FeedPage {
        limit: page(query, "limit", DEFAULT_FEED_PAGE, MAX_FEED_PAGE)?,
        before: number(query, "before")?,
    })
}

/// `GET .../inbox?limit=&before=&unread=`: the page, and whether only unread rows are listed.
pub fn list_inbox(query: Option<&str>) -> Result<(FeedPage, bool), ApiError> {
    Ok((feed_page(query)?, flag(query, "unread")?.unwrap_or(false)))
}

/// The filters of `GET .../activity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// `?document=` (the project's feed only): one document's entries.
    pub document: Option<crate::names::RoomName>,
    /// `?actor=`: one user's (or key's) entries.
    pub actor: Option<String>,
    /// `?kind=`: one kind of entry, such as `comment.created`.
    pub kind: Option<String>,
    /// `?limit=&before=`.
    pub page: FeedPage,
}

/// Parses `GET .../activity?document=&actor=&kind=&limit=&before=`; `document` is read only
/// where `with_document` (the project's feed: a document's own feed names it in the path).
pub fn activity(query: Option<&str>, with_document: bool) -> Result<ActivityQuery, ApiError> {
    let value = |key: &str| query.and_then(|q| query_value(q, key));
    let document = match value("document").filter(|_| with_document) {
        Some(d) => Some(crate::names::RoomName::parse(&d)?),
        None => None,
    };
    let actor = value("actor");
    if let Some(a) = &actor {
        crate::auth::validate_sub(a).map_err(|e| bad(format!("actor: {e}")))?;
    }
    let kind = value("kind");
    if let Some(k) = &kind {
        if k.is_empty()
            || k.len() > MAX_ACTIVITY_KIND
            || !k
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        {
            return Err(bad(format!(
                "kind is an event name such as comment.created: 1 to {MAX_ACTIVITY_KIND} of a-z . _"
            )));
        }
    }
    Ok(ActivityQuery {
        document,
        actor,
        kind,
        page: feed_page(query)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;

    #[test]
    fn numbers_and_pages_are_bounded() {
        assert_eq!(number(Some("a=5"), "a").unwrap(), Some(5));
        assert_eq!(number(None, "a").unwrap(), None);
        assert_eq!(number(Some("b=5"), "a").unwrap(), None);
        for bad in ["a=-1", "a=x", "a=1.5", "a=+1", "a=9007199254740992", "a="] {
            assert!(number(Some(bad), "a").is_err(), "{bad}");
        }
        assert_eq!(
            list_versions(None).unwrap(),
            RoomCall::ListVersions {
                limit: DEFAULT_VERSION_PAGE,
                before: None
            }
        );
        assert!(list_versions(Some("limit=0")).is_err());
        assert!(list_versions(Some("limit=201")).is_err());
        assert!(replay(Some("limit=1001")).is_err());
        assert_eq!(
            replay(Some("after=3&limit=10")).unwrap(),
            RoomCall::Replay {
                after: 3,
                from: 0,
                to: NO_LIMIT,
                limit: 10
            }
        );
    }

    #[test]
    fn chat_bounds_combine() {
        use crate::conversations::ConvOp;
        assert_eq!(
            list_chat(Some("before=9&since=3&limit=5")).unwrap(),
            ConvOp::ListChat {
                before: Some(9),
                since: Some(3),
                limit: 5
            }
        );
        assert!(list_chat(Some("limit=101")).is_err());
        assert!(list_threads(Some("resolved=maybe")).is_err());
        assert!(list_threads(Some("resolved=1")).is_ok());
    }

    #[test]
    fn feeds_are_paged_and_filtered() {
        assert_eq!(
            feed_page(None).unwrap(),
            FeedPage {
                limit: DEFAULT_FEED_PAGE,
                before: None
            }
        );
        for bad in ["limit=0", "limit=101", "before=-1", "before=x"] {
            assert!(feed_page(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            list_inbox(Some("unread=true&limit=2")).unwrap(),
            (
                FeedPage {
                    limit: 2,
                    before: None
                },
                true
            )
        );
        assert!(list_inbox(Some("unread=yes")).is_err());
        let q = activity(Some("document=doc&actor=ada&kind=comment.created"), true).unwrap();
        assert_eq!(q.document.unwrap().as_str(), "doc");
        assert_eq!(q.actor.as_deref(), Some("ada"));
        // A document's own feed takes its document from the path.
        assert!(activity(Some("document=..."), false)
            .unwrap()
            .document
            .is_none());
        for bad in [
            "document=a%2Fb",
            "actor=",
            "kind=Comment",
            "kind=a-b",
            "kind=",
        ] {
            assert!(activity(Some(bad), true).is_err(), "{bad}");
        }
    }

    #[test]
    fn diff_sides_are_versions_or_current() {
        assert_eq!(
            diff(Some("from=1")).unwrap(),
            RoomCall::Diff {
                from: DiffSide::Version(1),
                to: DiffSide::Current
            }
        );
        assert!(diff(None).is_err());
        assert!(diff(Some("from=..%2F")).is_err());
        assert!(diff(Some("from=1&to=x")).is_err());
    }

    #[test]
    fn at_needs_an_instant_and_a_known_format() {
        assert_eq!(
            at(Some("t=5&format=update")).unwrap(),
            RoomCall::At {
                t: 5,
                as_update: true
            }
        );
        assert!(at(None).is_err());
        assert!(at(Some("t=5&format=xml")).is_err());
    }

    #[test]
    fn state_vectors_are_checked_before_decoding() {
        let mut sv = yrs::StateVector::default();
        sv.set_max(yrs::ClientID::new(7), 3);
        sv.set_max(yrs::ClientID::new(1 << 40), 9);
        let bytes = sv.encode_v1();
        assert!(check_state_vector(&bytes).is_ok());
        assert!(check_state_vector(&[0]).is_ok());
        for bad in [
            vec![],
            vec![1],
            vec![1, 7],
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![2, 1, 1],
            vec![0, 0],
            vec![
                1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1,
            ],
        ] {
            assert!(check_state_vector(&bad).is_err(), "{bad:?}");
        }
        let b64 = Base64UrlSafeNoPadding::encode_to_string(&bytes).unwrap();
        let RoomCall::ReadUpdate { state_vector, v2 } =
            read_update(Some(&format!("state_vector={b64}&format=v2"))).unwrap()
        else {
            panic!("not a read");
        };
        assert_eq!((state_vector, v2), (Some(bytes), true));
        assert!(read_update(Some("state_vector=AQ")).is_err());
        assert!(read_update(Some("format=v3")).is_err());
    }

    use jwt_simple::reexports::ct_codecs::Encoder;
}
