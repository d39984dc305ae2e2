//! Pagination of the API's lists: `?limit=` and an opaque `?cursor=` that the previous page
//! returned as `next_cursor`. A cursor is the sort key of the last row of a page (base64url of a
//! small JSON array), so a page is one indexed range read however long the list is, and rows
//! added or removed meanwhile never make a page repeat or skip a row that stayed.

use crate::api::{query_value, ApiError};
use jwt_simple::prelude::Base64UrlSafeNoPadding;
use jwt_simple::reexports::ct_codecs::Decoder;
use serde_json::Value;

/// Rows per page when the request names no limit.
pub const DEFAULT_PAGE: u32 = 100;
/// Most rows one page returns.
pub const MAX_PAGE: u32 = 500;
/// Longest cursor accepted (a sort key is a few short values).
const MAX_CURSOR: usize = 1024;

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

/// The cursor that resumes after the row whose sort key is `key`.
pub fn encode_cursor(key: &[Value]) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    crate::codec::base64url(&json)
}

fn decode_cursor(cursor: &str, key_len: usize) -> Result<Vec<Value>, ApiError> {
    let bad = |why: &dyn std::fmt::Display| {
        ApiError::InvalidBody(format!("cursor is not one this list returned ({why})"))
    };
    if cursor.len() > MAX_CURSOR {
        return Err(bad(&"too long"));
    }
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(cursor, None).map_err(|e| bad(&e))?;
    let key: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| bad(&e))?;
    let simple = |v: &Value| v.is_string() || v.as_u64().is_some();
    if key.len() != key_len || !key.iter().all(simple) {
        return Err(bad(&"not this list's key"));
    }
    Ok(key)
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
            format!("cursor={}", encode_cursor(&[json!(1)])),
            format!("cursor={}", encode_cursor(&[json!({"a": 1}), json!(2)])),
            format!("cursor={}", encode_cursor(&[json!(-1), json!("x")])),
            format!("cursor={}", "A".repeat(2000)),
        ] {
            assert!(Page::parse(Some(&bad), 2).is_err(), "{bad}");
        }
    }
}
