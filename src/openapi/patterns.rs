//! The rules of `src/names.rs`, `src/api.rs` and `src/auth.rs` as JSON Schema patterns (ECMA 262
//! regular expressions, as OpenAPI 3.1 reads them). Each is tested against the function it
//! mirrors, on values either side of every rule.

/// Control characters, as `char::is_control` reads them (Unicode `Cc`).
macro_rules! control {
    () => {
        r"\u0000-\u001f\u007f-\u009f"
    };
}

/// White space, as `str::trim` reads it (Unicode `White_Space`), control characters besides.
macro_rules! blank {
    () => {
        r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// White space, as `str::trim` and `char::is_whitespace` read it (Unicode `White_Space`).
macro_rules! space {
    () => {
        r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// An RFC 6838 token of a content type, as [`crate::assets::parse_content_type`] reads it.
macro_rules! token {
    () => {
        r"[A-Za-z0-9!#$&^_.+-]{1,127}"
    };
}

/// An id ([`crate::names::Id`]): 1 to 64 of `A-Z a-z 0-9 . _ -`, not only dots.
pub const ID: &str = r"^(?!\.+$)[A-Za-z0-9._-]{1,64}$";

/// A room or document name ([`crate::names::RoomName`]): 1 to 128 of `A-Z a-z 0-9 . _ ~ - :`,
/// not only dots.
pub const ROOM: &str = r"^(?!\.+$)[A-Za-z0-9._~:-]{1,128}$";

/// What a room token's `room` names ([`crate::auth::validate_room_pattern`]): a room name, a
/// room name followed by `*` (a prefix), or `*`.
pub const ROOM_PATTERN: &str = r"^(\*|(?!\.+\*?$)[A-Za-z0-9._~:-]{1,128}\*?)$";

/// A user id in a body ([`crate::auth::validate_sub`]): 1 to 256 characters, none of them a
/// control character.
pub const SUB: &str = concat!(r"^[^", control!(), r"]{1,256}$");

/// A user id as a path segment: a [`SUB`] that is no dot segment and, once percent-decoded,
/// holds none of `/ ? # %` ([`crate::names::path_param`]).
pub const SUB_SEGMENT: &str = concat!(r"^(?!\.\.?$)[^/?#%", control!(), r"]{1,256}$");

/// A reaction as a path segment ([`crate::conversations::check_emoji`] after
/// [`crate::names::path_param`]): 1 to 32 characters, no white space (as `char::is_whitespace`
/// reads it: not ECMA's `\s`, which takes U+FEFF too) or control character, none of `/ ? # %`,
/// not a dot segment.
pub const EMOJI_SEGMENT: &str = concat!(r"^(?!\.\.?$)[^/?#%", blank!(), r"]{1,32}$");

/// The text of a comment's part ([`crate::conversations::Body::check`]): no control character
/// but the line feed and the tab. The length is the schema's `maxLength`.
pub const COMMENT_TEXT: &str = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$";

/// A link's URL in a comment: `http://` or `https://` (any case), then something without white
/// space or control characters. The length is the schema's `maxLength`.
pub const LINK_URL: &str = concat!(r"^[Hh][Tt][Tt][Pp][Ss]?://[^", blank!(), r"]+$");

/// The comment of a review request or a verdict
/// ([`crate::conversations::check_review_comment`]): no control character but the line feed.
pub const REVIEW_COMMENT: &str = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$";

/// A key of a thread's metadata ([`crate::conversations::check_metadata`]).
pub const METADATA_KEY: &str = r"^[A-Za-z0-9_.-]{1,40}$";

/// The map or key a point anchor's node names ([`crate::conversations::Anchor::check`]).
pub const NODE_NAME: &str = concat!(r"^[^", control!(), r"]{1,200}$");

/// A relative position of a text anchor: standard base64 with its padding, as
/// [`crate::codec::from_base64`] reads it (unused bits zero). Its bytes are parsed as a Yjs
/// relative position after that ([`crate::conversations::anchor::parse_position`]).
pub const POSITION: &str =
    r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// The `kind` filter of the activity feed ([`crate::queries::activity`]).
pub const ACTIVITY_KIND: &str = r"^[a-z._]{1,40}$";

/// A display name ([`crate::api::validate_name`]) or a version's name
/// ([`crate::versions::CreateVersion::validate`]); the length is `maxLength`: no control
/// character, and something besides white space.
pub const DISPLAY_NAME: &str = concat!(
    r"^[^",
    control!(),
    r"]*[^",
    blank!(),
    r"][^",
    control!(),
    r"]*$"
);

/// A version id in a path or a query ([`crate::names::version_id`]): up to 15 decimal digits.
pub const VERSION_ID: &str = r"^[0-9]{1,15}$";

/// A side of a diff ([`crate::queries::diff`]): a version id or `current`.
pub const DIFF_SIDE: &str = r"^([0-9]{1,15}|current)$";

/// A state vector in a query ([`crate::queries::read_update`]): base64, URL-safe or standard,
/// padded or not.
pub const BASE64: &str = r"^[A-Za-z0-9_+/-]*={0,2}$";

/// A webhook receiver ([`crate::net::parse`]), written the common way: `http://` or
/// `https://`, a host name or a dotted IPv4 address, a port up to 65535, then a path, query or
/// fragment without white space or control characters. The server reads every spelling the URL
/// Standard allows (`http:\\host`, other IPv4 forms, IPv6 in brackets, percent-escapes) by the
/// same rules; these are the spellings a schema can state exactly.
pub const WEBHOOK_URL: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?)",
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?#][^",
    blank!(),
    r"]*)?$"
);

/// A tag in a body or a query ([`crate::assets::parse_tag`]): 1 to 64 of `a-z 0-9 . _ : -`;
/// upper case is lowered.
pub const TAG: &str = r"^[A-Za-z0-9._:-]{1,64}$";

/// A tag as a path segment: a [`TAG`] that is no dot segment ([`crate::names::path_param`]).
pub const TAG_SEGMENT: &str = r"^(?!\.\.?$)[A-Za-z0-9._:-]{1,64}$";

/// `?tags=` of a direct upload: empty, or up to [`crate::assets::MAX_TAGS`] tags joined by `,`.
pub const TAG_LIST: &str = r"^([A-Za-z0-9._:-]{1,64}(,[A-Za-z0-9._:-]{1,64}){0,31})?$";

/// A part number in a path ([`crate::names::version_id`], then 1 to
/// [`crate::assets::MAX_PARTS`]): decimal, at most 15 digits with leading zeros.
pub const PART: &str =
    r"^(0{0,14}[1-9]|0{0,13}[1-9][0-9]|0{0,12}[1-9][0-9]{2}|0{0,11}[1-9][0-9]{3}|0{0,10}10000)$";

/// A SHA-256 digest ([`crate::assets::Sha256::parse`]): 64 hex digits, either case.
pub const SHA256: &str = r"^[0-9A-Fa-f]{64}$";

/// A content type ([`crate::assets::parse_content_type`]): `type/subtype` of token characters
/// (any case), white space around it, then parameters after `;` (dropped).
pub const CONTENT_TYPE: &str = concat!(
    r"^[",
    space!(),
    r"]*",
    token!(),
    r"/",
    token!(),
    r"[",
    space!(),
    r"]*(;[\s\S]*)?$"
);

/// `?content_type=` of the asset list ([`crate::assets::parse_type_filter`]): a
/// [`CONTENT_TYPE`], or a whole type as `type/*`.
pub const TYPE_FILTER: &str = concat!(
    r"^[",
    space!(),
    r"]*",
    token!(),
    r"/(\*|",
    token!(),
    r"[",
    space!(),
    r"]*(;[\s\S]*)?)$"
);

/// A licence's SPDX identifier or expression ([`crate::assets::Licence::check`]).
pub const SPDX: &str = r"^[A-Za-z0-9.+:() -]{1,128}$";

/// A custom licence's text: something besides white space (the length is `maxLength`).
pub const LICENCE_TEXT: &str = concat!(r"[^", space!(), r"]");

/// A licence's source: `http://` or `https://` (lower case), then no white space or control
/// character (the length is `maxLength`).
pub const SOURCE_URL: &str = concat!(r"^https?://[^", blank!(), r"]*$");

/// An Ed25519 public key in PEM: SubjectPublicKeyInfo with the key's 32 bytes.
pub const ED25519_PEM: &str = r"^-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n-----END PUBLIC KEY-----\n?$";

/// A P-256 public key in PEM: SubjectPublicKeyInfo with an uncompressed point, in lines of 64.
pub const P256_PEM: &str = r"^-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE[A-Za-z0-9+/]{28}\n[A-Za-z0-9+/]{57}[AQgw]==\n-----END PUBLIC KEY-----\n?$";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What the server's own rule says of `value`, for the rule `pattern` mirrors.
    fn server_accepts(pattern: &str, value: &str) -> bool {
        use crate::names::{path_param, percent_decode, version_id, Id, RoomName};
        match pattern {
            ID => Id::parse("id", value).is_ok(),
            ROOM => RoomName::parse(value).is_ok(),
            ROOM_PATTERN => crate::auth::validate_room_pattern(value).is_ok(),
            SUB => crate::auth::validate_sub(value).is_ok(),
            // As a path segment: encoded as a client encodes it, then decoded by the router.
            SUB_SEGMENT => path_param("sub", &encode(value))
                .is_ok_and(|v| crate::auth::validate_sub(&v).is_ok()),
            // The length is the schema's maxLength; these samples are shorter.
            DISPLAY_NAME => {
                let name = crate::api::validate_name("name", value).is_ok();
                assert_eq!(
                    crate::assets::check_name(value).is_ok(),
                    name,
                    "{value:?}: an asset name and a display name differ"
                );
                let version = crate::versions::CreateVersion {
                    name: value.into(),
                    description: None,
                };
                assert_eq!(
                    version.validate().is_ok(),
                    name,
                    "{value:?}: a version name and a display name differ"
                );
                name
            }
            VERSION_ID => percent_decode(value)
                .as_deref()
                .and_then(version_id)
                .is_some(),
            DIFF_SIDE => crate::queries::diff(Some(&format!("from={}", encode(value)))).is_ok(),
            EMOJI_SEGMENT => path_param("emoji", &encode(value))
                .is_ok_and(|v| crate::conversations::check_emoji(&v).is_ok()),
            COMMENT_TEXT => body(json!([{ "text": value }])),
            LINK_URL => body(json!([{ "type": "link", "url": value }])),
            REVIEW_COMMENT => {
                // A licence's attribution follows the same rule.
                let review = crate::conversations::check_review_comment(value).is_ok();
                assert_eq!(
                    licence(json!({ "attribution": value })),
                    review,
                    "{value:?}: an attribution and a review comment differ"
                );
                review
            }
            METADATA_KEY => {
                let metadata = [(
                    value.to_owned(),
                    crate::conversations::MetaValue::Bool(true),
                )];
                crate::conversations::check_metadata(&metadata.into_iter().collect()).is_ok()
            }
            NODE_NAME => {
                let anchor: Result<crate::conversations::Anchor, _> = serde_json::from_value(
                    json!({ "type": "point", "x": 0, "y": 0, "node": { "map": value, "key": "k" } }),
                );
                anchor.is_ok_and(|a| a.check().is_ok())
            }
            POSITION => crate::codec::from_base64(value).is_ok(),
            ACTIVITY_KIND => {
                crate::queries::activity(Some(&format!("kind={}", encode(value))), true).is_ok()
            }
            TAG => crate::assets::parse_tag(value).is_ok(),
            TAG_SEGMENT => path_param("tag", &encode(value))
                .is_ok_and(|v| crate::assets::parse_tag(&v).is_ok()),
            TAG_LIST => {
                // As the direct upload reads `?tags=`.
                let list: Vec<&str> = match value {
                    "" => Vec::new(),
                    v => v.split(',').collect(),
                };
                list.len() <= crate::assets::MAX_TAGS
                    && list.iter().all(|t| crate::assets::parse_tag(t).is_ok())
            }
            PART => percent_decode(value)
                .as_deref()
                .and_then(version_id)
                .is_some_and(|n| (1..=crate::assets::MAX_PARTS).contains(&n)),
            SHA256 => crate::assets::Sha256::parse(value).is_ok(),
            CONTENT_TYPE => crate::assets::parse_content_type(value).is_ok(),
            TYPE_FILTER => crate::assets::parse_type_filter(value).is_ok(),
            SPDX => licence(json!({ "spdx": value })),
            LICENCE_TEXT => licence(json!({ "text": value })),
            SOURCE_URL => licence(json!({ "source_url": value })),
            WEBHOOK_URL => crate::webhooks::validate_url(value, true).is_ok(),
            _ => unreachable!("no rule for {pattern}"),
        }
    }

    /// Whether a licence of these fields passes the server's checks.
    fn licence(fields: Value) -> bool {
        serde_json::from_value::<crate::assets::Licence>(fields).is_ok_and(|l| l.check().is_ok())
    }

    /// Whether a body of one paragraph with these parts passes the server's checks.
    fn body(children: Value) -> bool {
        let body: Result<crate::conversations::Body, _> = serde_json::from_value(
            json!({ "content": [{ "type": "paragraph", "children": children }] }),
        );
        body.is_ok_and(|b| b.check().is_ok())
    }

    /// Percent-encodes everything but unreserved characters, as HTTP clients encode a path
    /// segment or a query value.
    fn encode(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// Values either side of every rule, by pattern. Lengths count characters, as the rules do
    /// (multi-byte characters at the bounds show it).
    fn samples() -> Vec<(&'static str, &'static str, Vec<String>)> {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let long = |c: &str, n: usize| c.repeat(n);
        vec![
            ("ID", ID, {
                let mut v = s(&[
                    "prj_0123", "a", ".a", "a.b-c_d", "", ".", "..", "a:b", "a b", "a/b", "é", "a*",
                ]);
                v.extend([long("a", 64), long("a", 65), long(".", 64)]);
                v
            }),
            ("ROOM", ROOM, {
                let mut v = s(&[
                    "design-review_2026.v1:main~x",
                    "a",
                    "..a",
                    "",
                    ".",
                    "...",
                    "a b",
                    "a%20b",
                    "a/b",
                    "ü",
                    "a*",
                ]);
                v.extend([long("a", 128), long("a", 129)]);
                v
            }),
            ("ROOM_PATTERN", ROOM_PATTERN, {
                let mut v = s(&[
                    "*", "team:*", "doc", "a*", "", "**", "*a", ".*", "..*", "a b*", "..", ".a*",
                ]);
                v.extend([long("a", 128) + "*", long("a", 129) + "*"]);
                v
            }),
            ("SUB", SUB, {
                let mut v = s(&[
                    "ada",
                    "ada@example.com",
                    "a/b?c#d%e",
                    ".",
                    "..",
                    " ",
                    "",
                    "a\u{0}b",
                    "a\nb",
                    "a\u{7f}",
                    "a\u{85}",
                    "a\u{a0}b",
                    "ü",
                ]);
                v.extend([
                    long("a", 256),
                    long("a", 257),
                    long("é", 256),
                    long("é", 257),
                ]);
                v
            }),
            ("SUB_SEGMENT", SUB_SEGMENT, {
                let mut v = s(&[
                    "ada",
                    "ada@example.com",
                    "a b",
                    ":",
                    "...",
                    ".",
                    "..",
                    "a/b",
                    "a?b",
                    "a#b",
                    "a%b",
                    "",
                    "a\u{1}b",
                    "ü",
                ]);
                v.extend([
                    long("a", 256),
                    long("a", 257),
                    long("ü", 256),
                    long("ü", 257),
                ]);
                v
            }),
            ("EMOJI_SEGMENT", EMOJI_SEGMENT, {
                let mut v = s(&[
                    "👍",
                    ":+1:",
                    "👨‍👩‍👧",
                    "🏳️‍🌈",
                    "a",
                    "\u{feff}",
                    "\u{200b}",
                    "...",
                    "",
                    ".",
                    "..",
                    "two words",
                    "a\tb",
                    "\u{85}",
                    "\u{a0}",
                    "\u{2028}",
                    "\u{3000}",
                    "\u{1680}",
                    "a/b",
                    "a?b",
                    "a#b",
                    "a%b",
                    "\u{7f}",
                    "\u{9f}",
                ]);
                v.extend([long("👍", 32), long("👍", 33), long("a", 32), long("a", 33)]);
                v
            }),
            (
                "COMMENT_TEXT",
                COMMENT_TEXT,
                s(&[
                    "hello",
                    "",
                    "a\nb",
                    "a\tb",
                    "\u{85}",
                    "a\rb",
                    "\u{0}",
                    "\u{1b}[1m",
                    "\u{7f}",
                    "\u{a0}",
                    "\u{feff}",
                    "é",
                ]),
            ),
            ("LINK_URL", LINK_URL, {
                let mut v = s(&[
                    "https://example.com",
                    "HTTP://x",
                    "http://é.example/ü",
                    "https://",
                    "ftp://x",
                    "javascript:alert(1)",
                    "https://a b",
                    "https://a\u{a0}b",
                    "https://a\u{feff}b",
                    "https://a\u{85}",
                    " https://a",
                    "https:/a",
                    "data:text/html,x",
                ]);
                // The length is the schema's maxLength (tested with the body's rules).
                v.push(format!("https://{}", long("é", 100)));
                v
            }),
            (
                "REVIEW_COMMENT",
                REVIEW_COMMENT,
                s(&[
                    "ready?", "", "a\nb", "a\tb", "a\rb", "\u{85}", "\u{0}", "é", "\u{a0}",
                ]),
            ),
            (
                "METADATA_KEY",
                METADATA_KEY,
                s(&[
                    "status",
                    "a.b-c_D9",
                    "",
                    "a b",
                    "a:b",
                    "é",
                    "0123456789012345678901234567890123456789",
                    "01234567890123456789012345678901234567890",
                ]),
            ),
            ("NODE_NAME", NODE_NAME, {
                let mut v = s(&["shapes", "a b", "", "a\nb", "\u{85}", "é"]);
                v.extend([long("é", 200), long("é", 201)]);
                v
            }),
            (
                "POSITION",
                POSITION,
                s(&[
                    "AQA=",
                    "AAAA",
                    "AA==",
                    "AAA=",
                    "",
                    "AB==",
                    "AAB=",
                    "AA",
                    "AAA",
                    "A",
                    "AA=",
                    "AA===",
                    "A===",
                    "AQA",
                    "-_8=",
                    "AQA=AQA=",
                    "AQAA AQ==",
                    "aGk=",
                ]),
            ),
            (
                "ACTIVITY_KIND",
                ACTIVITY_KIND,
                s(&[
                    "comment.created",
                    "branch.merged",
                    "review_requested",
                    "",
                    "Comment",
                    "a-b",
                    "a b",
                    "é",
                    "0123456789.0123456789",
                    "abcdefghijabcdefghijabcdefghijabcdefghij",
                    "abcdefghijabcdefghijabcdefghijabcdefghijk",
                ]),
            ),
            (
                "DISPLAY_NAME",
                DISPLAY_NAME,
                s(&[
                    "My app", "x", " x ", "", " ", "\t", "\u{a0}", "\u{3000}", "a\u{0}", "a\nb",
                    "\u{85}", "é", "\u{19}", "v\u{1b}1", "\u{2003}", "\u{feff}", " v1 ",
                ]),
            ),
            (
                "VERSION_ID",
                VERSION_ID,
                s(&[
                    "0",
                    "42",
                    "007",
                    "999999999999999",
                    "9999999999999999",
                    "",
                    "-1",
                    "+1",
                    "1.0",
                    "1e3",
                    "abc",
                    " 1",
                ]),
            ),
            (
                "DIFF_SIDE",
                DIFF_SIDE,
                s(&[
                    "current",
                    "1",
                    "999999999999999",
                    "9999999999999999",
                    "Current",
                    "",
                    "-1",
                    "1,2",
                ]),
            ),
            ("TAG", TAG, {
                let mut v = s(&[
                    "draft",
                    "Hero:2026",
                    "a.b_c-d",
                    "",
                    ".",
                    "..",
                    "a b",
                    "a/b",
                    "é",
                    "a,b",
                ]);
                v.extend([long("a", 64), long("a", 65)]);
                v
            }),
            ("TAG_SEGMENT", TAG_SEGMENT, {
                let mut v = s(&[
                    "draft",
                    "Hero:2026",
                    "...",
                    "",
                    ".",
                    "..",
                    "a b",
                    "a%b",
                    "é",
                ]);
                v.extend([long("a", 64), long("a", 65)]);
                v
            }),
            ("TAG_LIST", TAG_LIST, {
                let mut v = s(&[
                    "", "a", "Raw,test", "a,a", ",", "a,", ",a", "a,,b", "a b", "é",
                ]);
                v.extend([
                    vec!["t"; 32].join(","),
                    vec!["t"; 33].join(","),
                    long("a", 64),
                    long("a", 65),
                ]);
                v
            }),
            (
                "PART",
                PART,
                s(&[
                    "1",
                    "9",
                    "10",
                    "99",
                    "100",
                    "999",
                    "1000",
                    "9999",
                    "10000",
                    "10001",
                    "20000",
                    "0",
                    "00",
                    "01",
                    "0010000",
                    "00000000000010000",
                    "0000000000010000",
                    "000000000010000",
                    "00000000000009",
                    "000000000000009",
                    "0000000000000009",
                    "",
                    "-1",
                    "+1",
                    "1.0",
                    "a",
                ]),
            ),
            ("SHA256", SHA256, {
                let mut v = s(&["", "abc"]);
                v.extend([
                    long("0f", 32),
                    long("A", 64),
                    long("a", 63),
                    long("a", 65),
                    long("g", 64),
                    long("é", 64),
                ]);
                v
            }),
            ("CONTENT_TYPE", CONTENT_TYPE, {
                let mut v = s(&[
                    "image/png",
                    "IMAGE/PNG",
                    "image/svg+xml",
                    "text/plain; charset=utf-8",
                    "text/plain;",
                    " text/plain\t",
                    "\u{a0}a/b\u{3000};x",
                    "a/b;\n",
                    "application/vnd.a-b_c!#$&^",
                    "",
                    "image",
                    "image/",
                    "/png",
                    "image/*",
                    "*/*",
                    "image /png",
                    "image/ png",
                    "image/png/x",
                    "\u{0}a/b",
                    "\u{feff}a/b",
                    "é/b",
                    "a/b c",
                    "a/b,c",
                    "a/b\u{85}",
                ]);
                v.extend([
                    format!("{}/b", long("a", 127)),
                    format!("{}/b", long("a", 128)),
                    format!("a/{}", long("b", 127)),
                    format!("a/{}", long("b", 128)),
                ]);
                v
            }),
            ("TYPE_FILTER", TYPE_FILTER, {
                let mut v = s(&[
                    "image/*",
                    "IMAGE/*",
                    " image/*",
                    "image/*; x",
                    "image/* ",
                    "a/b;c/*",
                    "a/b;/*",
                    "a/b /*",
                    "a;b/*",
                    "/*",
                    "*/*",
                    "image/png",
                    "text/plain; charset=utf-8",
                    "image",
                    "",
                ]);
                v.extend([
                    format!("{}/*", long("a", 127)),
                    format!("{}/*", long("a", 128)),
                ]);
                v
            }),
            ("SPDX", SPDX, {
                let mut v = s(&[
                    "CC-BY-4.0",
                    "MIT OR Apache-2.0",
                    "(GPL-2.0+ WITH Classpath-exception-2.0)",
                    "LicenseRef-x:y",
                    "",
                    "MIT/X",
                    "é",
                    "a\tb",
                ]);
                v.extend([long("a", 128), long("a", 129)]);
                v
            }),
            (
                "LICENCE_TEXT",
                LICENCE_TEXT,
                s(&[
                    "All rights reserved",
                    " x ",
                    "",
                    " ",
                    "\n\t",
                    "\u{a0}\u{3000}",
                    "\u{85}",
                    "\u{0}",
                    "\u{feff}",
                    "\u{200b}",
                ]),
            ),
            ("SOURCE_URL", SOURCE_URL, {
                let mut v = s(&[
                    "https://example.com/a.png",
                    "http://x",
                    "https://",
                    "http://é",
                    "HTTPS://x",
                    "ftp://x",
                    "https://a b",
                    "https://a\u{a0}",
                    "https://a\u{85}",
                    "https://a\u{7f}",
                    "https://a\u{feff}",
                    " https://a",
                    "",
                ]);
                v.push(format!("https://{}", long("é", 100)));
                v
            }),
            (
                "WEBHOOK_URL",
                WEBHOOK_URL,
                s(&[
                    "https://example.com/hooks/tandemx",
                    "http://127.0.0.1:8080/hook",
                    "HTTPS://A.EXAMPLE./x?y#z",
                    "https://a-b.c0m",
                    "http://localhost",
                    "http://255.255.255.255:65535",
                    "https://x.com:0080",
                    "ftp://example.com",
                    "https://",
                    "https://user:pass@example.com",
                    "https://a.1",
                    "https://example.com:65536",
                    "https://exa mple.com",
                    "https://example.com/a b",
                    "https://256.1.1.1",
                    "https://example.com:99999",
                ]),
            ),
        ]
    }

    /// Receivers the server reads (as the URL Standard does) that [`WEBHOOK_URL`] leaves out:
    /// the pattern describes the common spelling only.
    const OTHER_URL_SPELLINGS: [&str; 4] = [
        "https:/example.com",
        "https:\\\\example.com",
        "https://1.2.3",
        "http://[2001:db8::1]/",
    ];

    /// Every sample, with the pattern's verdict as the server's rule gives it. Written to
    /// `tests/schemathesis/pattern-cases.json`, where `patterns.mjs` checks each pattern with
    /// JavaScript's regular expressions (the dialect of JSON Schema) against these verdicts.
    fn cases() -> Value {
        let mut out = Vec::new();
        for value in OTHER_URL_SPELLINGS {
            assert!(server_accepts(WEBHOOK_URL, value), "{value}");
            out.push(json!({ "name": "WEBHOOK_URL", "pattern": WEBHOOK_URL, "value": value, "accepted": false,
                "note": "the server reads this spelling too; the pattern describes the common one" }));
        }
        for (name, pattern, values) in samples() {
            for value in values {
                let accepted = server_accepts(pattern, &value);
                out.push(json!({ "name": name, "pattern": pattern, "value": value, "accepted": accepted }));
            }
        }
        for parts in [1, 2] {
            let pattern = crate::pages::cursor_pattern(parts);
            for value in [
                "0",
                "17",
                "~",
                "~61",
                "~6162",
                "~c3a9",
                "~ff",
                "1.~61",
                "~.~",
                "17.3",
                "",
                ".",
                "1.",
                "~6",
                "~AB",
                "-1",
                "1e3",
                "1234567890123456",
                "123456789012345",
                "~61.~62.~63",
                "W1siYSJdXQ",
                "1.~g0",
            ] {
                let query = format!("cursor={}", encode(value));
                let accepted = crate::pages::Page::parse(Some(&query), parts).is_ok();
                out.push(json!({ "name": format!("CURSOR({parts})"), "pattern": pattern, "value": value, "accepted": accepted }));
            }
        }
        Value::Array(out)
    }

    #[test]
    fn the_committed_cases_are_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/schemathesis/pattern-cases.json"
        );
        let want = serde_json::to_string_pretty(&cases()).unwrap() + "\n";
        if std::fs::read_to_string(path).ok().as_deref() != Some(want.as_str()) {
            std::fs::write(path, want).unwrap();
            panic!("tests/schemathesis/pattern-cases.json was out of date and has been rewritten: review and commit it");
        }
    }

    #[test]
    fn each_rule_accepts_and_refuses_something() {
        for (name, pattern, values) in samples() {
            let verdicts: Vec<bool> = values.iter().map(|v| server_accepts(pattern, v)).collect();
            assert!(
                verdicts.contains(&true) && verdicts.contains(&false),
                "{name}"
            );
        }
    }
}
