//! Names and ids that come from clients, parsed into typed values before anything uses them.
//!
//! Every value a client sends in a path, a token or a body is hostile until it passes one of
//! these parsers; code past the edge takes the typed value, never the raw string. The rules are
//! deliberately narrow: no character that means something in a URL, a storage key or a log
//! line, and no name made only of dots (`.` and `..` are path segments to a URL parser).

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Longest room (document) name accepted.
pub const MAX_ROOM_NAME: usize = 128;
/// Longest project, key, signing key or webhook id accepted.
pub const MAX_ID: usize = 64;

/// Why a name or id was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("the {0} is empty")]
    Empty(&'static str),
    /// Longer than allowed.
    #[error("the {what} is {len} characters; at most {max} are allowed")]
    TooLong {
        /// What was named.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside the allowed set.
    #[error("the {what} contains {found:?}; allowed are {allowed}")]
    Character {
        /// What was named.
        what: &'static str,
        /// The first character refused.
        found: char,
        /// The allowed set, for the message.
        allowed: &'static str,
    },
    /// Only dots: a path segment to every URL parser.
    #[error("the {0} may not consist of dots only")]
    Dots(&'static str),
}

fn check(
    what: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty(what));
    }
    if s.len() > max {
        return Err(NameError::TooLong {
            what,
            len: s.len(),
            max,
        });
    }
    if let Some(found) = s.chars().find(|c| !ok(*c)) {
        return Err(NameError::Character {
            what,
            found,
            allowed,
        });
    }
    if s.bytes().all(|b| b == b'.') {
        return Err(NameError::Dots(what));
    }
    Ok(())
}

/// A room's name, which is also its document's name: 1 to [`MAX_ROOM_NAME`] characters from
/// `A-Z a-z 0-9 . _ ~ - :`, not only dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Parses a room name.
    pub fn parse(s: &str) -> Result<RoomName, NameError> {
        check(
            "room name",
            s,
            MAX_ROOM_NAME,
            "A-Z a-z 0-9 . _ ~ - :",
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | ':'),
        )?;
        Ok(RoomName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoomName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An id the server made (`prj_…`, `key_…`, `wh_…`) or a signing key id a project chose: 1 to
/// [`MAX_ID`] characters from `A-Z a-z 0-9 . _ -`, not only dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Parses an id; `what` names it in the error ("project id", "key id", ...).
    pub fn parse(what: &'static str, s: &str) -> Result<Id, NameError> {
        check(what, s, MAX_ID, "A-Z a-z 0-9 . _ -", |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
        })?;
        Ok(Id(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse("id", &s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Characters no path parameter may hold once percent-decoded: they would change what a URL,
/// a query or a key built from the value means.
const PATH_RESERVED: [char; 4] = ['/', '?', '#', '%'];

/// Why a path parameter was refused before any route-specific rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// A `%` escape is broken or the decoded bytes are not UTF-8.
    #[error("bad percent-escape in the path")]
    Escape,
    /// The decoded value holds `/ ? # %`, a control character, or is a dot segment.
    #[error("path parameter {name} may not contain {found:?}")]
    Reserved {
        /// The parameter's name in the route template.
        name: &'static str,
        /// What was found.
        found: String,
    },
}

/// Decodes one path segment (percent-escapes once, as the router always does) and refuses
/// values that would mean something else in a URL: `/ ? # %`, control characters, and the dot
/// segments `.` and `..`.
pub fn path_param(name: &'static str, raw: &str) -> Result<String, PathError> {
    let decoded = percent_decode(raw).ok_or(PathError::Escape)?;
    if let Some(c) = decoded
        .chars()
        .find(|c| PATH_RESERVED.contains(c) || c.is_control())
    {
        return Err(PathError::Reserved {
            name,
            found: c.to_string(),
        });
    }
    if decoded == "." || decoded == ".." {
        return Err(PathError::Reserved {
            name,
            found: decoded,
        });
    }
    Ok(decoded)
}

/// Decodes `%XX` escapes of a URL path segment; `None` if an escape is broken or the result
/// is not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a version id from a path: decimal digits only, at most 15 (ids are row numbers, far
/// below 2^53). Anything else names no version.
pub fn version_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_one_rule() {
        for good in [
            "design-review_2026.v1:main~x",
            "a",
            ".a",
            "a..b",
            &"a".repeat(128),
        ] {
            assert_eq!(RoomName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            "a b",
            "a%20b",
            "a/b",
            "a?b",
            "a#b",
            "ü",
            &"a".repeat(129),
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RoomName::parse("..").unwrap_err().to_string(),
            "the room name may not consist of dots only"
        );
    }

    #[test]
    fn room_names_deserialize_through_the_same_rule() {
        assert!(serde_json::from_str::<RoomName>(r#""doc""#).is_ok());
        assert!(serde_json::from_str::<RoomName>(r#"".." "#).is_err());
        assert!(serde_json::from_str::<RoomName>(r#""a/b""#).is_err());
    }

    #[test]
    fn ids() {
        assert!(Id::parse("project id", "prj_0123abcd").is_ok());
        assert!(Id::parse("kid", "sk.my-key_1").is_ok());
        for bad in ["", "..", "a/b", "a:b", &"a".repeat(65)] {
            assert!(Id::parse("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn path_parameters_refuse_what_would_change_a_url() {
        assert_eq!(
            path_param("p", "ada%40example.com").unwrap(),
            "ada@example.com"
        );
        assert_eq!(path_param("p", "plain").unwrap(), "plain");
        for bad in [
            "..%2F..%2F__delete",
            "1%2Fupdate",
            "1%3Fx=",
            "a%23b",
            "%2525",
            "%2e%2e",
            "%2E",
            "..",
            ".",
            "a%00b",
            "a%0Ab",
        ] {
            assert!(path_param("p", bad).is_err(), "{bad:?}");
        }
        assert_eq!(path_param("p", "bad%4"), Err(PathError::Escape));
        assert_eq!(path_param("p", "bad%zz"), Err(PathError::Escape));
        assert_eq!(path_param("p", "%+1"), Err(PathError::Escape));
        assert_eq!(path_param("p", "%ff"), Err(PathError::Escape));
    }

    #[test]
    fn version_ids_are_integers_only() {
        assert_eq!(version_id("0"), Some(0));
        assert_eq!(version_id("42"), Some(42));
        for bad in [
            "",
            "abc",
            "1/update",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1e3",
            "0x10",
            "9999999999999999",
        ] {
            assert_eq!(version_id(bad), None, "{bad:?}");
        }
    }
}
