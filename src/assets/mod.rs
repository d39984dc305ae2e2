//! The asset library's rules, free of the platform: ids, digests, names, tags, licences,
//! content types and their sniffing, byte ranges, HTTP dates, signed links and upload plans.
//! The edge (`edge::v1::assets`) stores what these accept in D1 and R2 (docs/assets.md).

pub mod archive;
pub mod http_date;
pub mod range;
pub mod refs;
pub mod signed;
pub mod sniff;
pub mod tar;
#[cfg(test)]
mod tests;

use crate::api::ApiError;
use serde::{Deserialize, Serialize};

/// Longest display name, in characters (as JSON Schema's `maxLength` counts them).
pub const MAX_NAME: usize = 255;
/// Longest tag, in bytes.
pub const MAX_TAG: usize = 64;
/// Most tags on one asset.
pub const MAX_TAGS: usize = 32;
/// Longest custom licence text, in characters.
pub const MAX_LICENCE_TEXT: usize = 8_192;
/// Longest attribution, in characters.
pub const MAX_ATTRIBUTION: usize = 1_024;
/// Longest source URL, in characters.
pub const MAX_SOURCE_URL: usize = 2_048;
/// Longest SPDX expression, in bytes.
pub const MAX_SPDX: usize = 128;
/// Longest `?uploader=` filter of the asset list, in characters.
pub const MAX_UPLOADER: usize = 300;
/// The header that carries the SHA-256 of a direct upload, as the API documents it.
pub const SHA256_HEADER_NAME: &str = "TandemX-SHA256";
/// R2's smallest part (all but the last), in bytes.
pub const MIN_PART: u64 = 5 * 1024 * 1024;
/// R2's largest part, in bytes.
pub const MAX_PART: u64 = 5 * 1024 * 1024 * 1024 - 1;
/// R2's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// The part size a client gets when it names none.
pub const DEFAULT_PART: u64 = 8 * 1024 * 1024;
/// How long an unfinished multipart upload is kept (R2 aborts them after 7 days).
pub const UPLOAD_TTL_MS: u64 = 6 * 24 * 3600 * 1000;
/// Longest a signed link may live, in seconds.
pub const MAX_LINK_SECONDS: u64 = 7 * 24 * 3600;
/// Preview widths served.
pub const PREVIEW_WIDTHS: [u32; 6] = [64, 128, 256, 512, 1024, 2048];
/// Largest source image a preview is made of, in bytes (the previews worker's limit).
pub const MAX_PREVIEW_SOURCE: u64 = 32 * 1024 * 1024;

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::InvalidBody(why.into())
}

/// A SHA-256 digest as 64 lowercase hex digits (upper case is accepted and lowered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sha256(String);

impl Sha256 {
    /// Parses 64 hex digits.
    pub fn parse(s: &str) -> Result<Sha256, ApiError> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("sha256 must be 64 hex digits"));
        }
        Ok(Sha256(s.to_ascii_lowercase()))
    }

    /// The digest's 32 bytes.
    pub fn bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, pair) in self.0.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).unwrap_or(0) as u8;
            let lo = (pair[1] as char).to_digit(16).unwrap_or(0) as u8;
            out[i] = hi << 4 | lo;
        }
        out
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256::parse(&s).map_err(|_| serde::de::Error::custom("sha256 must be 64 hex digits"))
    }
}

/// Whether `id` has the shape of an id the server made with `prefix` and 20 hex digits.
pub fn is_server_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|h| h.len() == 20 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A display name: 1 to [`MAX_NAME`] characters, no control characters, not only spaces.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(invalid("name must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(format!(
            "name is longer than {MAX_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name must not contain control characters"));
    }
    Ok(())
}

/// A file name safe in any header or storage key: the display name's ASCII letters, digits
/// and `. _ -`, others as `_`, no leading dot, at most 100 bytes (`file` if nothing is left).
pub fn storage_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    if out.chars().all(|c| c == '_') {
        "file".into()
    } else {
        out
    }
}

/// `Content-Disposition` for a download of `name`: an ASCII fallback and the UTF-8 name
/// percent-encoded (RFC 6266, RFC 8187).
pub fn content_disposition(name: &str, attachment: bool) -> String {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if attachment { "attachment" } else { "inline" };
    format!(
        "{kind}; filename=\"{}\"; filename*=UTF-8''{encoded}",
        storage_name(name)
    )
}

/// A tag: 1 to [`MAX_TAG`] bytes of lowercase letters, digits, `-`, `_`, `.`, `:` (upper case
/// is lowered), so that tags compare as people expect.
pub fn parse_tag(tag: &str) -> Result<String, ApiError> {
    let tag = tag.to_ascii_lowercase();
    if tag.is_empty() || tag.len() > MAX_TAG {
        return Err(ApiError::InvalidPath(format!(
            "a tag is 1 to {MAX_TAG} characters"
        )));
    }
    if !tag.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b':')
    }) {
        return Err(ApiError::InvalidPath(
            "a tag holds only a-z 0-9 - _ . :".into(),
        ));
    }
    Ok(tag)
}

/// A content type as stored: `type/subtype` of RFC 6838 token characters, lowered, its
/// parameters dropped.
pub fn parse_content_type(value: &str) -> Result<String, ApiError> {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(essence),
        _ => Err(invalid(format!(
            "content type {value:?} is not of the form type/subtype"
        ))),
    }
}

/// What `?content_type=` of the asset list matches: a whole type (`image/*`) or one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    /// Types starting with this, the `/` included (`image/`).
    Major(String),
    /// Exactly this type, as [`parse_content_type`] stores it.
    Exact(String),
}

/// Parses a list's content type filter: `type/*`, or a type as [`parse_content_type`] reads it.
pub fn parse_type_filter(value: &str) -> Result<TypeFilter, ApiError> {
    let query = |e: ApiError| ApiError::InvalidQuery(e.problem().detail);
    match value.strip_suffix("/*") {
        Some(major) => {
            let t = parse_content_type(&format!("{major}/x")).map_err(query)?;
            Ok(TypeFilter::Major(t.trim_end_matches('x').to_owned()))
        }
        None => parse_content_type(value)
            .map(TypeFilter::Exact)
            .map_err(query),
    }
}

/// The image types previews are made of, and whose bytes must be what they say.
pub const RASTER_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Decides the stored content type from the declared one (if any) and the first bytes.
/// A raster image type must agree with the bytes; bytes that are markup (HTML, SVG, XML) are
/// never stored as a raster image; without a declared type the sniffed one (or
/// `application/octet-stream`) is used.
pub fn settle_content_type(declared: Option<&str>, head: &[u8]) -> Result<String, ApiError> {
    settle(declared, sniff::sniff(head))
}

/// [`settle_content_type`] with the bytes already sniffed (`sniffed`).
pub fn settle(declared: Option<&str>, sniffed: Option<&str>) -> Result<String, ApiError> {
    let declared = match declared {
        None | Some("") => {
            return Ok(sniffed.unwrap_or("application/octet-stream").to_owned());
        }
        Some(d) => parse_content_type(d)?,
    };
    if RASTER_TYPES.contains(&declared.as_str()) && sniffed != Some(declared.as_str()) {
        return Err(ApiError::Unprocessable(
            "content-mismatch",
            format!(
                "the bytes are not {declared} (they look like {})",
                sniffed.unwrap_or("something else")
            ),
        ));
    }
    if declared == "image/svg+xml" && sniffed != Some("image/svg+xml") {
        return Err(ApiError::Unprocessable(
            "content-mismatch",
            format!(
                "the bytes are not an SVG image (they look like {})",
                sniffed.unwrap_or("something else")
            ),
        ));
    }
    Ok(declared)
}

/// A licence as given: an SPDX identifier or expression, or a custom text; attribution and a
/// source URL either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    /// An SPDX licence identifier or expression (`CC-BY-4.0`, `MIT OR Apache-2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spdx: Option<String>,
    /// A custom licence's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Who to credit, as it should be shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Where the work came from (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

impl Licence {
    /// Checks every field's length and shape.
    pub fn check(&self) -> Result<(), ApiError> {
        if let Some(spdx) = &self.spdx {
            let ok = !spdx.is_empty()
                && spdx.len() <= MAX_SPDX
                && spdx
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.+:() ".contains(&b));
            if !ok {
                return Err(invalid(
                    "licence.spdx must be an SPDX identifier or expression (A-Z a-z 0-9 - . + : ( ) and spaces)",
                ));
            }
        }
        if self.spdx.is_some() && self.text.is_some() {
            return Err(invalid("give licence.spdx or licence.text, not both"));
        }
        if let Some(text) = &self.text {
            if text.trim().is_empty() || text.chars().count() > MAX_LICENCE_TEXT {
                return Err(invalid(format!(
                    "licence.text is 1 to {MAX_LICENCE_TEXT} characters"
                )));
            }
        }
        if let Some(a) = &self.attribution {
            if a.chars().count() > MAX_ATTRIBUTION || a.chars().any(|c| c.is_control() && c != '\n')
            {
                return Err(invalid(format!(
                    "licence.attribution is at most {MAX_ATTRIBUTION} characters of text"
                )));
            }
        }
        if let Some(u) = &self.source_url {
            let scheme_ok = u.starts_with("https://") || u.starts_with("http://");
            if !scheme_ok
                || u.chars().count() > MAX_SOURCE_URL
                || u.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(format!(
                    "licence.source_url must be an http(s) URL of at most {MAX_SOURCE_URL} characters"
                )));
            }
        }
        Ok(())
    }
}

/// How a multipart upload is cut: every part `part_size` bytes but the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    /// The whole size.
    pub size: u64,
    /// Every part's size but the last.
    pub part_size: u64,
    /// How many parts.
    pub parts: u64,
}

impl PartPlan {
    /// Plans an upload of `size` bytes in parts of `part_size` (default [`DEFAULT_PART`], grown
    /// when the parts would be more than [`MAX_PARTS`]).
    pub fn new(size: u64, part_size: Option<u64>) -> Result<PartPlan, ApiError> {
        if size == 0 {
            return Err(invalid("size must be at least 1 byte"));
        }
        let part_size = match part_size {
            Some(p) if !(MIN_PART..=MAX_PART).contains(&p) => {
                return Err(invalid(format!(
                    "part_size must be between {MIN_PART} and {MAX_PART} bytes"
                )))
            }
            Some(p) => p,
            None => DEFAULT_PART.max(size.div_ceil(MAX_PARTS)),
        };
        let parts = size.div_ceil(part_size);
        if parts > MAX_PARTS {
            return Err(invalid(format!(
                "{parts} parts of {part_size} bytes: at most {MAX_PARTS} parts; use larger parts"
            )));
        }
        Ok(PartPlan {
            size,
            part_size,
            parts,
        })
    }

    /// The exact size part `n` (1-based) must have, or `None` when there is no such part.
    pub fn part_len(&self, n: u64) -> Option<u64> {
        if n == 0 || n > self.parts {
            return None;
        }
        if n < self.parts {
            Some(self.part_size)
        } else {
            Some(self.size - self.part_size * (self.parts - 1))
        }
    }
}

/// A preview's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl PreviewFormat {
    /// Parses `png`, `jpeg` (or `jpg`) or `webp`.
    pub fn parse(s: &str) -> Result<PreviewFormat, ApiError> {
        match s {
            "png" => Ok(PreviewFormat::Png),
            "jpeg" | "jpg" => Ok(PreviewFormat::Jpeg),
            "webp" => Ok(PreviewFormat::Webp),
            _ => Err(ApiError::InvalidQuery(
                "format must be png, jpeg or webp".into(),
            )),
        }
    }

    /// Its name in URLs and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewFormat::Png => "png",
            PreviewFormat::Jpeg => "jpeg",
            PreviewFormat::Webp => "webp",
        }
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            PreviewFormat::Png => "image/png",
            PreviewFormat::Jpeg => "image/jpeg",
            PreviewFormat::Webp => "image/webp",
        }
    }
}

/// Parses a preview width: one of [`PREVIEW_WIDTHS`].
pub fn parse_preview_width(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .ok()
        .filter(|w| PREVIEW_WIDTHS.contains(w))
        .ok_or_else(|| {
            ApiError::InvalidQuery(format!(
                "w must be one of {}",
                PREVIEW_WIDTHS.map(|w| w.to_string()).join(", ")
            ))
        })
}

/// The headers that keep stored content from running in the app's origin, whatever it is.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

/// Types served as attachments even when asked inline: markup a browser would render.
pub fn is_active_content(content_type: &str) -> bool {
    matches!(
        content_type,
        "text/html"
            | "application/xhtml+xml"
            | "text/xml"
            | "application/xml"
            | "text/javascript"
            | "application/javascript"
    )
}
