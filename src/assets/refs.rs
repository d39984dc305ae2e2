//! The asset references in a document's JSON rendering: `tandemx://asset/<id>` (the asset's
//! current version) and `tandemx://asset/<id>@<version>`, anywhere in a string or a key.
//!
//! A stand-in for the document scanner being written for asset usage (`asset_refs`): it reads
//! the JSON rendering the document API answers, which holds every string of the document's
//! maps, arrays and texts. The walk is iterative (no recursion on deep documents) and stops
//! at `limit` distinct references.

use crate::assets::is_server_id;
use serde_json::Value;
use std::collections::BTreeSet;

/// What every asset URI starts with.
pub const URI_PREFIX: &str = "tandemx://asset/";

/// One reference: an asset, and the version named (`None`: whichever is current).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetRef {
    /// The asset id (`ast_` and 20 hex digits).
    pub id: String,
    /// The version after `@`, if any.
    pub version: Option<u64>,
}

/// More distinct references than the scan may collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the document references more than {0} asset versions")]
pub struct TooMany(pub usize);

/// Length of an asset id: `ast_` and 20 hex digits.
const ID_LEN: usize = 24;
/// Most digits read as a version (versions are at most 1,000).
const MAX_VERSION_DIGITS: usize = 9;

/// The references in one string.
pub fn scan_str(s: &str, out: &mut BTreeSet<AssetRef>, limit: usize) -> Result<(), TooMany> {
    let mut rest = s;
    while let Some(at) = rest.find(URI_PREFIX) {
        rest = &rest[at + URI_PREFIX.len()..];
        let Some(id) = rest.get(..ID_LEN) else {
            continue;
        };
        if !is_server_id("ast_", id) {
            continue;
        }
        let after = &rest.as_bytes()[ID_LEN..];
        // `ast_…` followed by more id characters is another (malformed) id.
        if after
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            continue;
        }
        let version = match after.split_first() {
            Some((b'@', tail)) => {
                let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
                if (1..=MAX_VERSION_DIGITS).contains(&digits) {
                    std::str::from_utf8(&tail[..digits])
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .filter(|v| *v >= 1)
                } else {
                    None
                }
            }
            _ => None,
        };
        let found = AssetRef {
            id: id.to_owned(),
            version,
        };
        if !out.contains(&found) {
            if out.len() >= limit {
                return Err(TooMany(limit));
            }
            out.insert(found);
        }
        rest = &rest[ID_LEN..];
    }
    Ok(())
}

/// Every distinct reference in `value` (strings and object keys), at most `limit`.
pub fn scan_json(value: &Value, limit: usize) -> Result<BTreeSet<AssetRef>, TooMany> {
    let mut out = BTreeSet::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => scan_str(s, &mut out, limit)?,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (k, child) in map {
                    scan_str(k, &mut out, limit)?;
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "ast_0123456789abcdef0123";
    const B: &str = "ast_ffffffffffffffffffff";

    fn r(id: &str, version: Option<u64>) -> AssetRef {
        AssetRef {
            id: id.into(),
            version,
        }
    }

    #[test]
    fn finds_references_in_strings_keys_and_nested_values() {
        let doc = json!({
            "nodes": { "n1": { "type": "image", "src": format!("tandemx://asset/{A}") } },
            "text": format!("see tandemx://asset/{B}@2 and tandemx://asset/{A}@10, twice: tandemx://asset/{B}@2."),
            format!("tandemx://asset/{B}"): [1, [[format!("<img src=\"tandemx://asset/{A}\">")]]],
        });
        let got = scan_json(&doc, 100).unwrap();
        let want: BTreeSet<AssetRef> = [r(A, None), r(A, Some(10)), r(B, None), r(B, Some(2))]
            .into_iter()
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn what_is_not_an_asset_uri_is_not_a_reference() {
        let doc = json!([
            "tandemx://asset/",
            "tandemx://asset/ast_short",
            "tandemx://asset/ast_0123456789ABCDEF0123",
            "tandemx://asset/ast_0123456789abcdef01234",
            "tandemx://asset/ast_0123456789abcdef0123x",
            "tandemx://asset/prj_0123456789abcdef0123",
            "tandemx://assets/ast_0123456789abcdef0123",
            "https://asset/ast_0123456789abcdef0123",
        ]);
        assert!(scan_json(&doc, 100).unwrap().is_empty());
        // A version that is not one reads as the current version.
        for s in ["@", "@0", "@x", "@1234567890"] {
            let got = scan_json(&json!(format!("tandemx://asset/{A}{s}")), 10).unwrap();
            assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![r(A, None)], "{s}");
        }
        // Non-ASCII around a URI.
        let got = scan_json(&json!(format!("é tandemx://asset/{A}@3ü")), 10).unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![r(A, Some(3))]);
    }

    #[test]
    fn the_scan_is_bounded_and_deep_documents_do_not_recurse() {
        let many: Vec<Value> = (0..20)
            .map(|i| json!(format!("tandemx://asset/{A}@{}", i + 1)))
            .collect();
        assert_eq!(scan_json(&json!(many), 20).unwrap().len(), 20);
        assert_eq!(scan_json(&json!(many), 19), Err(TooMany(19)));
        // The same reference many times counts once.
        let same = vec![json!(format!("tandemx://asset/{A}")); 1000];
        assert_eq!(scan_json(&json!(same), 1).unwrap().len(), 1);
        let mut deep = json!(format!("tandemx://asset/{A}"));
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(scan_json(&deep, 10).unwrap().len(), 1);
        // Dropping a deep value recurses in serde_json: leak it rather than overflow the stack.
        std::mem::forget(deep);
    }
}
