//! Pagination of the API's lists: `?limit=` and an opaque `?cursor=` that the previous page
//! returned as `next_cursor`. A cursor is the sort key of the last row of a page, so a page is
//! one indexed range read however long the list is, and rows added or removed meanwhile never
//! make a page repeat or skip a row that stayed.
//!
//! A cursor is a position in the list's order, not a secret: its parts are joined by `.`, an
//! integer in decimal (at most 15 digits) and a string as `~` and the lowercase hex of its UTF-8.
//! Any string of that shape with the list's number of parts is a position, and the page after it
//! is served ([`cursor_pattern`] states the shape exactly, for the OpenAPI document); anything
//! else is refused (400). A position grants nothing: the rows it reaches are the caller's anyway.

use crate::api::{query_value, ApiError};
use crate::routes::RouteId;
use serde_json::Value;

/// Rows per page when the request names no limit.
pub const DEFAULT_PAGE: u32 = 100;
/// Most rows one page returns.
pub const MAX_PAGE: u32 = 500;
/// Longest cursor accepted (a sort key is a few short values).
pub const MAX_CURSOR: usize = 1024;
/// Most decimal digits of an integer part (every such integer is exact as a JavaScript number).
const MAX_DIGITS: usize = 15;

/// The number of parts of the sort key of a list route's rows.
pub fn key_len(id: RouteId) -> usize {
    match id {
        RouteId::ListKeys
        | RouteId::ListSigningKeys
        | RouteId::ListWebhooks
        | RouteId::ListBranches
        // (name, id)
        | RouteId::ListAssets => 2,
        _ => 1,
    }
}

/// The exact shape of a cursor of `key_len` parts, as a JSON Schema (ECMA 262) pattern. Its
/// length is bounded by [`MAX_CURSOR`], which the schema states as `maxLength`.
pub fn cursor_pattern(key_len: usize) -> String {
    let part = format!("([0-9]{{1,{MAX_DIGITS}}}|~([0-9a-f]{{2}})*)");
    let rest = format!(r"(\.{part})").repeat(key_len.saturating_sub(1));
    format!("^{part}{rest}$")
}

/// What a list request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Rows wanted (1 to [`MAX_PAGE`]).
    pub limit: u32,
    /// The sort key of the last row of the previous page, when this is not the first.
    pub after: Option<Vec<Value>>,
}

impl Page {
    /// Reads `limit` and `cursor` from a query string. The cursor must hold exactly `key_len`
    /// values, each a string or an integer.
    pub fn parse(query: Option<&str>, key_len: usize) -> Result<Page, ApiError> {
        let limit = match query.and_then(|q| query_value(q, "limit")) {
            None => DEFAULT_PAGE,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(ApiError::InvalidBody(format!(
                        "limit must be from 1 to {MAX_PAGE}"
                    )))
                }
            },
        };
        let after = match query.and_then(|q| query_value(q, "cursor")) {
            None => None,
            Some(c) => Some(decode_cursor(&c, key_len)?),
        };
        Ok(Page { limit, after })
    }

    /// The rows to ask the database for: one more than the page, to learn whether another
    /// page follows.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// Trims `rows` (as fetched, `fetch()` at most) to the page and returns the cursor of the
    /// next page, if there is one; `key` gives a row's sort key.
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> Vec<Value>) -> Option<String> {
        if rows.len() <= self.limit as usize {
            return None;
        }
        rows.truncate(self.limit as usize);
        rows.last().map(|last| encode_cursor(&key(last)))
    }
}

/// The cursor that resumes after the row whose sort key is `key` (strings and non-negative
/// integers; anything else is written as its JSON text, a string).
pub fn encode_cursor(key: &[Value]) -> String {
    let part = |v: &Value| match v {
        Value::Number(n) if n.as_u64().is_some_and(|n| n < 10u64.pow(MAX_DIGITS as u32)) => {
            n.to_string()
        }
        Value::String(s) => format!("~{}", crate::codec::hex(s.as_bytes())),
        other => format!("~{}", crate::codec::hex(other.to_string().as_bytes())),
    };
    key.iter().map(part).collect::<Vec<_>>().join(".")
}

fn decode_cursor(cursor: &str, key_len: usize) -> Result<Vec<Value>, ApiError> {
    let bad =
        |why: &str| ApiError::InvalidBody(format!("cursor is not a position in this list ({why})"));
    if cursor.len() > MAX_CURSOR {
        return Err(bad("too long"));
    }
    let key = cursor
        .split('.')
        .map(decode_part)
        .collect::<Option<Vec<Value>>>()
        .ok_or_else(|| bad("each part is decimal digits or ~ and hex"))?;
    if key.len() != key_len {
        return Err(bad(&format!("this list's cursors have {key_len} part(s)")));
    }
    Ok(key)
}

fn decode_part(part: &str) -> Option<Value> {
    if let Some(hex) = part.strip_prefix('~') {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let bytes = hex.as_bytes();
        if bytes.len() % 2 != 0 {
            return None;
        }
        let raw = bytes
            .chunks(2)
            .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
            .collect::<Option<Vec<u8>>>()?;
        // A position between two rows need not be a row's key: bytes that are not UTF-8 stand
        // for the string they are closest to.
        return Some(Value::String(String::from_utf8_lossy(&raw).into_owned()));
    }
    let digits = (1..=MAX_DIGITS).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| part.parse::<u64>().ok().map(Value::from))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(Page::parse(None, 1).unwrap().limit, DEFAULT_PAGE);
        assert_eq!(Page::parse(Some("limit=7"), 1).unwrap().limit, 7);
        for bad in ["limit=0", "limit=501", "limit=-1", "limit=x", "limit=+5"] {
            assert!(Page::parse(Some(bad), 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_resume_after_the_last_row_and_refuse_forgeries() {
        let page = Page::parse(Some("limit=2"), 2).unwrap();
        let mut rows = vec![(1, "a"), (2, "b"), (3, "c")];
        let next = page
            .finish(&mut rows, |r| vec![json!(r.0), json!(r.1)])
            .unwrap();
        assert_eq!(rows.len(), 2);
        let again = Page::parse(Some(&format!("limit=2&cursor={next}")), 2).unwrap();
        assert_eq!(again.after, Some(vec![json!(2), json!("b")]));
        let mut last = vec![(3, "c")];
        assert_eq!(
            again.finish(&mut last, |r| vec![json!(r.0), json!(r.1)]),
            None
        );
        for bad in [
            "cursor=%%%".to_owned(),
            "cursor=AAAA".to_owned(),
            "cursor=".to_owned(),
            "cursor=1.".to_owned(),
            "cursor=1.~a".to_owned(),
            "cursor=1.~AB".to_owned(),
            "cursor=-1.~61".to_owned(),
            "cursor=1234567890123456.~61".to_owned(),
            format!("cursor={}", encode_cursor(&[json!(1)])),
            format!("cursor={}", encode_cursor(&[json!(1), json!(2), json!(3)])),
            format!("cursor=1.~{}", "61".repeat(600)),
        ] {
            assert!(Page::parse(Some(&bad), 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_cursor_of_the_documented_shape_is_a_position() {
        // Strings of any content round-trip, and so do integers.
        for key in [
            vec![json!(0), json!("")],
            vec![json!(1796129057913u64), json!("key_1f.é/?#%~.")],
            vec![json!("a.b"), json!(999_999_999_999_999u64)],
        ] {
            let c = encode_cursor(&key);
            assert!(matches_pattern(&c, 2), "{c}");
            let page = Page::parse(Some(&format!("cursor={c}")), 2).unwrap();
            assert_eq!(page.after, Some(key));
        }
        // Hex that is not UTF-8 is still a position.
        let page = Page::parse(Some("cursor=7.~ff61"), 2).unwrap();
        assert_eq!(page.after, Some(vec![json!(7), json!("\u{fffd}a")]));
        assert_eq!(key_len(RouteId::ListBranches), 2);
        assert_eq!(key_len(RouteId::ListMembers), 1);
        assert_eq!(key_len(RouteId::ListAssets), 2);
        assert_eq!(key_len(RouteId::AssetUsage), 1);
        assert_eq!(cursor_pattern(1), "^([0-9]{1,15}|~([0-9a-f]{2})*)$");
    }

    /// The pattern's rule, written out: the parts split on `.`, each digits or `~` and hex.
    fn matches_pattern(c: &str, n: usize) -> bool {
        let parts: Vec<&str> = c.split('.').collect();
        parts.len() == n
            && parts.iter().all(|p| match p.strip_prefix('~') {
                Some(h) => {
                    h.len() % 2 == 0 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                }
                None => (1..=15).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()),
            })
    }
}
