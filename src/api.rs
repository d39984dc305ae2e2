//! HTTP-facing types: request bodies and their validation, room names, and errors as RFC 9457
//! problem details.

use crate::auth::{AuthError, MintError, Role};
use crate::names::{NameError, PathError, RoomName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::names::MAX_ROOM_NAME;

/// An error answered over HTTP. Each variant has a stable `type` and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route matches the path.
    NotFound,
    /// The room name is empty, too long or has characters outside the allowed set.
    InvalidRoomName(String),
    /// A path parameter holds a character or segment no parameter may (`/ ? # %`, `..`).
    InvalidPath(String),
    /// A room route was called without `Upgrade: websocket`.
    UpgradeRequired,
    /// The room holds as many connections as it accepts.
    RoomFull {
        /// The limit in force.
        limit: usize,
    },
    /// The caller sent more requests of this kind than the rate limit allows.
    RateLimited {
        /// Seconds after which it may try again (`Retry-After`).
        retry_after_seconds: u32,
    },
    /// The user already holds as many connections to the room as one user may.
    TooManyConnections {
        /// The limit in force.
        limit: usize,
    },
    /// The room's stored document could not be loaded; it is not served until fixed.
    RoomUnavailable,
    /// The path exists, but not with this method.
    MethodNotAllowed {
        /// The methods the path takes, for the `Allow` header (RFC 9110, 15.5.6).
        allow: Vec<&'static str>,
    },
    /// Something failed inside; the detail is logged, not sent.
    Internal,
    /// A credential was missing, malformed, or refused.
    Auth(AuthError),
    /// A token could not be minted as asked.
    Mint(MintError),
    /// The request body is not valid JSON of the expected shape.
    InvalidBody(String),
    /// The request body is larger than the route accepts.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A named resource does not exist (or is not visible to the credential).
    Missing(&'static str, String),
    /// The resource exists already or the change conflicts with its state.
    Conflict(String),
    /// The credential may not do this to this resource (another user's comment, say).
    NotPermitted(String),
    /// The document was deleted.
    DocumentDeleted,
    /// The server is not configured for this (a missing secret, for example).
    NotConfigured(&'static str),
    /// The history asked for is older than the project's retention kept.
    HistoryPruned(String),
    /// A query parameter is malformed or out of range.
    InvalidQuery(String),
    /// The body is well-formed but cannot be accepted (`error` names why: `content-mismatch`,
    /// `digest-mismatch`, `image-too-large`, ...).
    Unprocessable(&'static str, String),
    /// A `Range` no byte of the content satisfies (416).
    RangeNotSatisfiable {
        /// The content's size, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// One file larger than the project takes (413).
    FileTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The project's storage quota would be exceeded (409).
    QuotaExceeded(String),
    /// The resource exists, but not in a type this route can handle (415).
    UnsupportedMediaType(String),
    /// A service the server depends on failed or answered nonsense (502; `error` names it).
    Upstream(&'static str, String),
    /// A problem a room answered, passed on to the client as the room wrote it.
    Relayed {
        /// Its status.
        status: u16,
        /// Its problem document, as the room sent it.
        body: String,
    },
}

/// RFC 9457 problem details, plus a short machine-readable `error` code.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// A URI naming the kind of problem; stable across releases.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human summary of the kind of problem.
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// The last segment of `type`, for clients that switch on a word.
    pub error: &'static str,
    /// The request's id, as in its `x-request-id` header ([`crate::request_id`]); set where
    /// the worker answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    fn parts(&self) -> (u16, &'static str, &'static str, String) {
        match self {
            ApiError::NotFound => (404, "not-found", "Not found", "no such route".into()),
            ApiError::InvalidRoomName(why) => {
                (400, "invalid-room-name", "Invalid room name", why.clone())
            }
            ApiError::InvalidPath(why) => (400, "invalid-path", "Invalid path", why.clone()),
            ApiError::UpgradeRequired => (
                426,
                "upgrade-required",
                "WebSocket upgrade required",
                "connect to this URL with a WebSocket client (Upgrade: websocket)".into(),
            ),
            ApiError::RoomFull { limit } => (
                503,
                "room-full",
                "Room full",
                format!("the room holds its maximum of {limit} connections; retry later"),
            ),
            ApiError::RateLimited {
                retry_after_seconds,
            } => (
                429,
                "rate-limited",
                "Too many requests",
                format!("over the rate limit; retry after {retry_after_seconds} seconds"),
            ),
            ApiError::TooManyConnections { limit } => (
                429,
                "too-many-connections",
                "Too many connections",
                format!("this user holds the maximum of {limit} connections to the room"),
            ),
            ApiError::RoomUnavailable => (
                503,
                "room-unavailable",
                "Room unavailable",
                "the room's stored document could not be loaded".into(),
            ),
            ApiError::MethodNotAllowed { allow } => (
                405,
                "method-not-allowed",
                "Method not allowed",
                format!("this path takes {}", allow.join(", ")),
            ),
            ApiError::Internal => (
                500,
                "internal",
                "Internal error",
                "the server failed; the error was logged".into(),
            ),
            ApiError::Auth(e) => {
                let (status, error, title) = match e {
                    AuthError::Missing => (401, "missing-credential", "Credential required"),
                    AuthError::Malformed(_) => {
                        (401, "malformed-credential", "Malformed credential")
                    }
                    AuthError::BadSignature => (401, "bad-signature", "Bad token signature"),
                    AuthError::Expired => (401, "token-expired", "Token expired"),
                    AuthError::NotYetValid => (401, "token-not-yet-valid", "Token not valid yet"),
                    AuthError::WrongAlgorithm => (401, "wrong-algorithm", "Wrong token algorithm"),
                    AuthError::UnknownKey => (401, "unknown-signing-key", "Unknown signing key"),
                    AuthError::WrongProject => (403, "wrong-project", "Token for another project"),
                    AuthError::WrongRoom => (403, "wrong-room", "Token for another room"),
                    AuthError::Revoked => (403, "revoked", "Credential revoked"),
                    AuthError::ProjectDeleted => (403, "project-deleted", "Project deleted"),
                    AuthError::MemberRemoved => (403, "member-removed", "Member removed"),
                    AuthError::Forbidden { .. } => (403, "forbidden", "Role too low"),
                };
                (status, error, title, e.to_string())
            }
            ApiError::Mint(e) => match e {
                MintError::AboveCeiling { .. } => (
                    403,
                    "role-above-ceiling",
                    "Role above ceiling",
                    e.to_string(),
                ),
                MintError::Removed(_) => (403, "member-removed", "Member removed", e.to_string()),
                MintError::Invalid(_) => {
                    (400, "invalid-body", "Invalid request body", e.to_string())
                }
                MintError::Signing(_) => (500, "internal", "Internal error", e.to_string()),
            },
            ApiError::InvalidBody(why) => {
                (400, "invalid-body", "Invalid request body", why.clone())
            }
            ApiError::BodyTooLarge { limit } => (
                413,
                "body-too-large",
                "Request body too large",
                format!("the body may be at most {limit} bytes"),
            ),
            ApiError::Missing(what, id) if id.is_empty() => {
                (404, "not-found", "Not found", format!("no such {what}"))
            }
            ApiError::Missing(what, id) => {
                (404, "not-found", "Not found", format!("no {what} {id:?}"))
            }
            ApiError::Conflict(why) => (409, "conflict", "Conflict", why.clone()),
            ApiError::NotPermitted(why) => (403, "forbidden", "Not permitted", why.clone()),
            ApiError::DocumentDeleted => (
                410,
                "document-deleted",
                "Document deleted",
                "the document was deleted; create it again to reuse the name".into(),
            ),
            ApiError::NotConfigured(what) => (
                500,
                "not-configured",
                "Server not configured",
                format!("{what} is not configured on the server"),
            ),
            ApiError::HistoryPruned(why) => {
                (410, "history-pruned", "History no longer kept", why.clone())
            }
            ApiError::InvalidQuery(why) => {
                (400, "invalid-query", "Invalid query parameter", why.clone())
            }
            ApiError::Unprocessable(error, why) => {
                (422, error, "Unprocessable content", why.clone())
            }
            ApiError::RangeNotSatisfiable { size } => (
                416,
                "range-not-satisfiable",
                "Range not satisfiable",
                format!("the range starts past the content's {size} bytes"),
            ),
            ApiError::FileTooLarge { limit } => (
                413,
                "file-too-large",
                "File too large",
                format!("a file may be at most {limit} bytes in this project"),
            ),
            ApiError::QuotaExceeded(why) => {
                (409, "quota-exceeded", "Storage quota exceeded", why.clone())
            }
            ApiError::UnsupportedMediaType(why) => (
                415,
                "unsupported-media-type",
                "Unsupported media type",
                why.clone(),
            ),
            // Sent as the room wrote it (see `edge::http::problem`); this is only its summary.
            ApiError::Upstream(word, why) => (502, word, "Upstream service failed", why.clone()),
            ApiError::Relayed { status, body } => (*status, "relayed", "Error", body.clone()),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.parts().0
    }

    /// The problem document sent as the response body.
    pub fn problem(&self) -> Problem {
        let (status, error, title, detail) = self.parts();
        Problem {
            kind: format!("tag:tandemx,2026:{error}"),
            title,
            status,
            detail,
            error,
            request_id: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::InvalidRoomName(e.to_string())
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        ApiError::InvalidPath(e.to_string())
    }
}

impl From<crate::conversations::ConvError> for ApiError {
    fn from(e: crate::conversations::ConvError) -> Self {
        use crate::conversations::ConvError;
        match e {
            ConvError::Invalid(why) => ApiError::InvalidBody(why),
            ConvError::Forbidden(why) => ApiError::NotPermitted(why),
            ConvError::Missing(what) => ApiError::Missing(what, String::new()),
            ConvError::Conflict(why) => ApiError::Conflict(why),
            ConvError::Store(e) => {
                // Logged where the platform is (the edge logs every 500 it answers).
                let _ = e;
                ApiError::Internal
            }
        }
    }
}

impl From<MintError> for ApiError {
    fn from(e: MintError) -> Self {
        ApiError::Mint(e)
    }
}

/// Largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Checks a request's `Content-Length` (when it has one) against `limit` before any of the
/// body is read: 413 when it claims more, 400 when it is not a number.
pub fn check_content_length(header: Option<&str>, limit: usize) -> Result<(), ApiError> {
    match header.map(|h| h.trim().parse::<u64>()) {
        None => Ok(()),
        Some(Ok(n)) if n > limit as u64 => Err(ApiError::BodyTooLarge { limit }),
        Some(Ok(_)) => Ok(()),
        Some(Err(_)) => Err(ApiError::InvalidBody(
            "Content-Length is not a number".into(),
        )),
    }
}

/// Parses a JSON body of type `T`, refusing unknown fields where `T` does.
///
/// Every body is a JSON object: serde would otherwise read a struct from an array of its
/// fields in order (`["x"]` as `{"name": "x"}`), which no route documents. Numbers are read by
/// value, as JSON and JSON Schema read them: `7.0` is the integer 7 wherever an integer is
/// asked for (JSON has one number type; Python's `json`, for one, writes floats so).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let invalid = |e: serde_json::Error| ApiError::InvalidBody(e.to_string());
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".into(),
        ));
    }
    integral_numbers(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

/// The largest integer an `f64` holds exactly, with every integer below it (2^53).
const EXACT_F64_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Rewrites numbers written with a fraction or an exponent that are whole (`7.0`, `1e3`) as
/// integers, where an `f64` holds them exactly. `-0.0` stays: as an integer it would lose its
/// sign. The parser stopped at 128 levels, so this recursion is bounded too.
fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                let whole = f.fract() == 0.0 && f.abs() <= EXACT_F64_INTEGER;
                if whole && !(f == 0.0 && f.is_sign_negative()) {
                    // In range and whole: the cast is exact.
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// `POST /v1/projects`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Display name.
    pub name: String,
}

/// `PATCH /v1/projects/{p}`: absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Days of history kept: a number sets it (0 keeps everything), `null` restores the
    /// default; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    pub history_retention_days: Option<Option<u64>>,
    /// Whether a branch merges only with an approved review (owners excepted).
    #[serde(default)]
    pub require_review_for_merge: Option<bool>,
    /// Seconds an unread notification waits before its webhook (0 to a day).
    #[serde(default)]
    pub notification_delay_seconds: Option<u64>,
    /// Total bytes the project's assets may take; `null` restores the server's default.
    #[serde(default, deserialize_with = "present")]
    pub asset_quota_bytes: Option<Option<u64>>,
    /// Largest asset file in bytes; `null` restores the server's default.
    #[serde(default, deserialize_with = "present")]
    pub asset_max_file_bytes: Option<Option<u64>>,
    /// Days a deleted asset stays in the trash (0 to [`MAX_TRASH_DAYS`]); `null`: the default.
    #[serde(default, deserialize_with = "present")]
    pub asset_trash_days: Option<Option<u64>>,
    /// Participants one call may have (2 to 8).
    #[serde(default)]
    pub call_max_participants: Option<u64>,
    /// Whether viewers and commenters may send media in calls.
    #[serde(default)]
    pub call_viewers_publish: Option<bool>,
}

/// Longest an asset may stay in the trash, in days.
pub const MAX_TRASH_DAYS: u64 = 3_650;
/// Largest asset quota or file size a project may set (1 PiB: within JavaScript's exact integers).
pub const MAX_ASSET_BYTES: u64 = 1 << 50;

/// Longest notification delay a project may set: a day.
pub const MAX_NOTIFICATION_DELAY_SECONDS: u64 = 86_400;

/// Longest retention a project may ask for, in days (a hundred years: "forever" is 0).
pub const MAX_RETENTION_DAYS: u64 = 36_500;

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PUT /v1/projects/{p}/members/{sub}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutMember {
    /// The member's role.
    pub role: Role,
}

/// `POST /v1/projects/{p}/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for.
    pub name: String,
    /// Ceiling: the highest role of any token the key mints, and its power over the API.
    pub role: Role,
}

/// `POST /v1/projects/{p}/signing-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSigningKey {
    /// The `kid` tokens will carry; generated when absent.
    #[serde(default)]
    pub kid: Option<String>,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// The public key, PEM.
    pub public_key: String,
}

/// `POST /v1/projects/{p}/documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    /// The room name of the document.
    pub name: String,
}

/// `POST /v1/projects/{p}/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Receiver URL.
    pub url: String,
    /// Event filters.
    pub events: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /v1/projects/{p}/webhooks/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New receiver URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event filters.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Enable (resetting the failure count) or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `POST /v1/dev/token` (local development only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevToken {
    /// Room name or pattern.
    pub room: String,
    /// Role (default editor).
    #[serde(default)]
    pub role: Option<Role>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Display colour.
    #[serde(default)]
    pub color: Option<String>,
    /// User id (default: a new random one).
    #[serde(default)]
    pub sub: Option<String>,
}

/// Checks a display name: 1 to 128 printable characters (characters, as the API documents and
/// JSON Schema counts them, not UTF-8 bytes), not only whitespace.
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidBody(format!(
            "{what} must be 1 to 128 printable characters"
        )));
    }
    Ok(())
}

/// Longest webhook description, in characters.
pub const MAX_WEBHOOK_DESCRIPTION: usize = 256;

/// Checks a webhook subscription's description: at most [`MAX_WEBHOOK_DESCRIPTION`]
/// characters (as JSON Schema's `maxLength` counts them, not UTF-8 bytes).
pub fn validate_webhook_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_WEBHOOK_DESCRIPTION {
        return Err(ApiError::InvalidBody(format!(
            "description is longer than {MAX_WEBHOOK_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

/// Checks a signing key id (the rules are [`crate::names::Id::parse`]'s: 1 to 64 characters
/// from `A-Z a-z 0-9 . _ -`, not only dots).
pub fn validate_kid(kid: &str) -> Result<(), ApiError> {
    crate::names::Id::parse("kid", kid)
        .map(|_| ())
        .map_err(|e| ApiError::InvalidBody(e.to_string()))
}

/// The query of a serialized URL: what follows the first `?` before any `#`, up to the `#`.
pub fn url_query(url: &str) -> Option<&str> {
    let before_fragment = url.split_once('#').map_or(url, |(head, _)| head);
    Some(before_fragment.split_once('?')?.1)
}

/// The first value of `name` in the query of `url`, decoded as `application/x-www-form-urlencoded`
/// (as URL query parameters are), without parsing the rest of the URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_value(url_query(url)?, name)
}

/// The first value of `name` in a query string (without its `?`).
pub fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Checks a room name (the rules are [`RoomName::parse`]'s).
pub fn validate_room_name(name: &str) -> Result<(), ApiError> {
    RoomName::parse(name).map(|_| ())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_read_without_parsing_the_url() {
        let url = "https://h.example/rooms/r?v2=1&token=a.b%2Bc+d&token=second#frag?x=y";
        assert_eq!(url_query(url), Some("v2=1&token=a.b%2Bc+d&token=second"));
        assert_eq!(query_param(url, "token").as_deref(), Some("a.b+c d"));
        assert_eq!(query_param(url, "v2").as_deref(), Some("1"));
        assert_eq!(query_param(url, "x"), None);
        assert_eq!(query_param("https://h.example/rooms/r", "token"), None);
        assert_eq!(
            query_param("https://h.example/?flag", "flag").as_deref(),
            Some("")
        );
        assert_eq!(url_query("https://h.example/#a?b"), None);
    }

    #[test]
    fn room_names() {
        assert!(validate_room_name("design-review_2026.v1:main~x").is_ok());
        assert!(validate_room_name(&"a".repeat(128)).is_ok());
        for bad in ["", "..", ".", "a b", "a%20b", "a/b", "ü", &"a".repeat(129)] {
            let err = validate_room_name(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
        }
    }

    #[test]
    fn auth_errors_map_to_401_or_403_with_a_reason() {
        let cases = [
            (AuthError::Expired, 401, "token-expired"),
            (AuthError::BadSignature, 401, "bad-signature"),
            (
                AuthError::Malformed("x".into()),
                401,
                "malformed-credential",
            ),
            (AuthError::WrongRoom, 403, "wrong-room"),
            (AuthError::Revoked, 403, "revoked"),
        ];
        for (e, status, error) in cases {
            let p = ApiError::Auth(e).problem();
            assert_eq!((p.status, p.error), (status, error));
        }
    }

    #[test]
    fn a_content_length_over_the_limit_is_refused_before_reading() {
        assert!(check_content_length(None, 10).is_ok());
        assert!(check_content_length(Some("10"), 10).is_ok());
        assert_eq!(
            check_content_length(Some("11"), 10).unwrap_err().status(),
            413
        );
        assert_eq!(
            check_content_length(Some("104857600"), 10)
                .unwrap_err()
                .status(),
            413
        );
        for bad in ["-1", "ten", "1e3", ""] {
            assert_eq!(
                check_content_length(Some(bad), 10).unwrap_err().status(),
                400
            );
        }
    }

    #[test]
    fn bodies_are_parsed_strictly() {
        assert!(parse_body::<CreateProject>(br#"{"name":"x"}"#).is_ok());
        for bad in [
            &b"{"[..],
            br#"{"name":1}"#,
            br#"{"name":"x","extra":1}"#,
            b"[]",
        ] {
            let e = parse_body::<CreateProject>(bad).unwrap_err();
            assert_eq!(e.status(), 400);
        }
        // A struct is not read from an array of its fields, nor from anything but an object.
        for not_an_object in [&br#"["x"]"#[..], b"null", br#""x""#, b"1"] {
            let e = parse_body::<CreateProject>(not_an_object).unwrap_err();
            assert_eq!(e.status(), 400);
        }
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_body::<CreateProject>(&big).unwrap_err().status(), 413);
        assert!(parse_body::<PutMember>(br#"{"role":"admin"}"#).is_err());
    }

    #[test]
    fn problems_have_stable_types_and_matching_status() {
        let p = ApiError::RoomFull { limit: 3 }.problem();
        assert_eq!(p.status, 503);
        assert_eq!(p.kind, "tag:tandemx,2026:room-full");
        assert_eq!(p.error, "room-full");
        assert!(p.detail.contains('3'));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "tag:tandemx,2026:room-full");
    }

    #[test]
    fn whole_numbers_are_integers_however_they_are_written() {
        for (body, days) in [
            (&br#"{"history_retention_days":7.0}"#[..], 7),
            (br#"{"history_retention_days":7}"#, 7),
            (br#"{"history_retention_days":1e3}"#, 1000),
            (br#"{"history_retention_days":0.0}"#, 0),
        ] {
            let p: UpdateProject = parse_body(body).unwrap();
            assert_eq!(p.history_retention_days, Some(Some(days)));
        }
        for bad in [
            &br#"{"history_retention_days":7.5}"#[..],
            br#"{"history_retention_days":-0.0}"#,
            br#"{"history_retention_days":-1.0}"#,
            br#"{"history_retention_days":1e300}"#,
        ] {
            assert!(parse_body::<UpdateProject>(bad).is_err());
        }
        // Nested values too (edit operations carry numbers inside arrays and objects).
        let mut v = serde_json::json!({"a": [1.0, 2.5, {"b": -3.0}], "c": 1e17});
        integral_numbers(&mut v);
        assert_eq!(v["a"][0], serde_json::json!(1));
        assert_eq!(v["a"][1], serde_json::json!(2.5));
        assert_eq!(v["a"][2]["b"], serde_json::json!(-3));
        assert!(v["c"].is_f64(), "beyond 2^53 a float is not one integer");
    }

    #[test]
    fn webhook_descriptions_are_counted_in_characters() {
        assert!(validate_webhook_description("").is_ok());
        assert!(validate_webhook_description(&"é".repeat(256)).is_ok());
        assert!(validate_webhook_description(&"a".repeat(257)).is_err());
    }

    #[test]
    fn names_are_counted_in_characters() {
        assert!(validate_name("name", &"é".repeat(128)).is_ok());
        assert!(validate_name("name", &"é".repeat(129)).is_err());
        for bad in ["", "   ", "a\u{7}b"] {
            assert_eq!(
                validate_name("name", bad).unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
    }
}

#[cfg(test)]
mod update_project_tests {
    use super::*;

    #[test]
    fn retention_tells_null_from_absent() {
        let absent: UpdateProject = parse_body(br#"{"name":"x"}"#).unwrap();
        assert_eq!(absent.history_retention_days, None);
        let null: UpdateProject = parse_body(br#"{"history_retention_days":null}"#).unwrap();
        assert_eq!(null.history_retention_days, Some(None));
        let set: UpdateProject = parse_body(br#"{"history_retention_days":7}"#).unwrap();
        assert_eq!(set.history_retention_days, Some(Some(7)));
        assert!(parse_body::<UpdateProject>(br#"{"history_retention_days":-1}"#).is_err());
        assert!(parse_body::<UpdateProject>(br#"{"retention":1}"#).is_err());
    }
}
