//! HTTP errors as RFC 9457 problem details, the shape of the main worker's (`src/api.rs`).

use serde::Serialize;

use crate::render::RenderError;
use crate::request::{QueryError, MAX_BODY_BYTES};

/// Everything a request to previews can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// No such route.
    #[error("no such route: previews answer POST /render")]
    NotFound,
    /// A method `/render` does not take.
    #[error("/render takes POST")]
    MethodNotAllowed,
    /// Bad query parameters.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// The body could not be read.
    #[error("the body could not be read: {0}")]
    Body(String),
    /// The image could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize)]
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

impl PreviewError {
    /// Status, error word and title.
    fn parts(&self) -> (u16, &'static str, &'static str) {
        match self {
            PreviewError::NotFound => (404, "not-found", "Not found"),
            PreviewError::MethodNotAllowed => (405, "method-not-allowed", "Method not allowed"),
            PreviewError::Query(_) => (400, "invalid-parameter", "Invalid parameter"),
            PreviewError::BodyTooLarge => (413, "body-too-large", "Body too large"),
            PreviewError::Body(_) => (400, "invalid-body", "Invalid body"),
            PreviewError::Render(e) => match e {
                RenderError::UnsupportedMediaType(_) => {
                    (415, "unsupported-media-type", "Unsupported media type")
                }
                RenderError::TooLarge { .. } | RenderError::DecodeLimit(_) => {
                    (422, "image-too-large", "Image too large")
                }
                RenderError::NotDeclaredFormat { .. } | RenderError::Undecodable(_) => {
                    (422, "undecodable-image", "Undecodable image")
                }
                RenderError::Encode(_) => (500, "render-failed", "Render failed"),
            },
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.parts().0
    }

    /// The problem details body.
    pub fn problem(&self) -> Problem {
        let (status, error, title) = self.parts();
        Problem {
            kind: format!("tag:tandemx,2026:{error}"),
            title,
            status,
            detail: self.to_string(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_shape() {
        let p = PreviewError::Render(RenderError::TooLarge {
            width: 30000,
            height: 30000,
        })
        .problem();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "tag:tandemx,2026:image-too-large");
        assert_eq!(json["status"], 422);
        assert_eq!(json["error"], "image-too-large");
        assert!(json["detail"].as_str().unwrap().contains("30000 × 30000"));
        assert_eq!(PreviewError::BodyTooLarge.status(), 413);
        assert_eq!(
            PreviewError::Query(QueryError::Missing("w"))
                .problem()
                .error,
            "invalid-parameter"
        );
    }
}
