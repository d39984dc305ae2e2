//! HTTP-facing types: room names and errors as RFC 9457 problem details.

use serde::Serialize;

/// Longest room name accepted.
pub const MAX_ROOM_NAME: usize = 128;

/// An error answered over HTTP. Each variant has a stable `type` and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route matches the path.
    NotFound,
    /// The room name is empty, too long or has characters outside the allowed set.
    InvalidRoomName(String),
    /// A room route was called without `Upgrade: websocket`.
    UpgradeRequired,
    /// The room holds as many connections as it accepts.
    RoomFull {
        /// The limit in force.
        limit: usize,
    },
    /// The room's stored document could not be loaded; it is not served until fixed.
    RoomUnavailable,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// Something failed inside; the detail is logged, not sent.
    Internal,
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
}

impl ApiError {
    fn parts(&self) -> (u16, &'static str, &'static str, String) {
        match self {
            ApiError::NotFound => (404, "not-found", "Not found", "no such route".into()),
            ApiError::InvalidRoomName(why) => {
                (400, "invalid-room-name", "Invalid room name", why.clone())
            }
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
            ApiError::RoomUnavailable => (
                503,
                "room-unavailable",
                "Room unavailable",
                "the room's stored document could not be loaded".into(),
            ),
            ApiError::MethodNotAllowed => (
                405,
                "method-not-allowed",
                "Method not allowed",
                "this route does not accept that method".into(),
            ),
            ApiError::Internal => (
                500,
                "internal",
                "Internal error",
                "the server failed; the error was logged".into(),
            ),
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
        }
    }
}

/// Checks a room name: 1 to [`MAX_ROOM_NAME`] characters from `A-Z a-z 0-9 . _ ~ - :`.
/// Names are taken from the URL path as they are, without percent-decoding.
pub fn validate_room_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::InvalidRoomName("the room name is empty".into()));
    }
    if name.len() > MAX_ROOM_NAME {
        return Err(ApiError::InvalidRoomName(format!(
            "the room name is {} characters; at most {MAX_ROOM_NAME} are allowed",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | ':')))
    {
        return Err(ApiError::InvalidRoomName(format!(
            "the room name contains {c:?}; allowed are A-Z a-z 0-9 . _ ~ - :"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(validate_room_name("design-review_2026.v1:main~x").is_ok());
        assert!(validate_room_name(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "a%20b", "a/b", "ü", &"a".repeat(129)] {
            let err = validate_room_name(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
        }
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
}
