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

/// `?limit=&before=` of a list read newest first by id: the limit (1 to `max`, default 50)
/// and the id to read below.
pub fn newest_first(query: Option<&str>, max: u32) -> Result<(u32, Option<u64>), ApiError> {
    Ok((
        page(query, "limit", 50.min(max), max)?,
        number(query, "before")?,
    ))
}

/// The `next_before` of a page read by [`newest_first`]: the last id when the page is full.
pub fn next_before(ids: &[u64], limit: u32) -> Option<u64> {
    (ids.len() == limit as usize)
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

/// `GET .../chat?before=&since=&limit=` (`before` and `since` exclude each other).
pub fn list_chat(query: Option<&str>) -> Result<crate::conversations::ConvOp, ApiError> {
    let max = crate::conversations::MAX_PAGE as u32;
    let before = number(query, "before")?;
    let since = number(query, "since")?;
    if before.is_some() && since.is_some() {
        return Err(bad(
            "send before (older pages) or since (what came after), not both".into(),
        ));
    }
    Ok(crate::conversations::ConvOp::ListChat {
        before,
        since,
        limit: page(query, "limit", 50, max)?,
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
