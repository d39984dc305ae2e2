//! The request rules of `POST /render?w=<W>&format=<F>`, apart from the platform.

use crate::render::{Format, WIDTHS};

/// Largest body accepted, in bytes (32 MiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The one path previews answer.
pub const RENDER_PATH: &str = "/render";

/// What a render request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderQuery {
    /// Preview width, one of [`WIDTHS`].
    pub width: u32,
    /// Preview encoding.
    pub format: Format,
}

/// A query string that is not `w=<W>&format=<F>` with allowed values.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is missing.
    #[error("the {0} parameter is required")]
    Missing(&'static str),
    /// A parameter is given twice.
    #[error("the {0} parameter is given more than once")]
    Repeated(&'static str),
    /// `w` is not an allowed width.
    #[error("w must be one of 64, 128, 256, 512, 1024, 2048, not {0:?}")]
    Width(String),
    /// `format` is not an allowed format.
    #[error("format must be one of png, jpeg, webp, not {0:?}")]
    Format(String),
    /// A parameter previews do not know.
    #[error("unknown parameter {0:?} (only w and format are read)")]
    Unknown(String),
}

/// Parses the query string (without `?`; `None` when the URL has none).
pub fn parse_query(query: Option<&str>) -> Result<RenderQuery, QueryError> {
    let (mut width, mut format) = (None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "w" => {
                if width.is_some() {
                    return Err(QueryError::Repeated("w"));
                }
                let w = value
                    .parse::<u32>()
                    .ok()
                    .filter(|w| WIDTHS.contains(w))
                    .ok_or_else(|| QueryError::Width(value.to_string()))?;
                width = Some(w);
            }
            "format" => {
                if format.is_some() {
                    return Err(QueryError::Repeated("format"));
                }
                let f =
                    Format::parse(&value).ok_or_else(|| QueryError::Format(value.to_string()))?;
                format = Some(f);
            }
            other => return Err(QueryError::Unknown(other.to_string())),
        }
    }
    Ok(RenderQuery {
        width: width.ok_or(QueryError::Missing("w"))?,
        format: format.ok_or(QueryError::Missing("format"))?,
    })
}

/// Whether a `Content-Length` value announces more than [`MAX_BODY_BYTES`]. A value that is not
/// a number is left to the bounded read.
pub fn length_too_large(content_length: &str) -> bool {
    content_length
        .trim()
        .parse::<u64>()
        .is_ok_and(|n| n > MAX_BODY_BYTES as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_width_and_format() {
        assert_eq!(
            parse_query(Some("w=256&format=webp")),
            Ok(RenderQuery {
                width: 256,
                format: Format::Webp
            })
        );
        assert_eq!(parse_query(Some("format=jpeg&w=2048")).unwrap().width, 2048);
    }

    #[test]
    fn refuses_anything_else() {
        for (query, err) in [
            (None, QueryError::Missing("w")),
            (Some("w=256"), QueryError::Missing("format")),
            (Some("w=255&format=png"), QueryError::Width("255".into())),
            (Some("w=4096&format=png"), QueryError::Width("4096".into())),
            (Some("w=+256&format=png"), QueryError::Width(" 256".into())),
            (Some("w=256&format=gif"), QueryError::Format("gif".into())),
            (Some("w=256&format=PNG"), QueryError::Format("PNG".into())),
            (Some("w=256&w=512&format=png"), QueryError::Repeated("w")),
            (
                Some("w=256&format=png&q=1"),
                QueryError::Unknown("q".into()),
            ),
        ] {
            assert_eq!(parse_query(query), Err(err), "{query:?}");
        }
    }

    #[test]
    fn content_length_over_the_limit() {
        assert!(!length_too_large("33554432"));
        assert!(length_too_large("33554433"));
        assert!(!length_too_large("abc"));
    }
}
