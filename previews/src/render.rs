//! Rendering: source bytes in, a preview of a given width out. No I/O.
//!
//! The order of the checks is the point: the declared type is matched against the bytes' magic
//! numbers, then only the header is read for the dimensions, and an image that would not fit the
//! isolate is refused before one pixel is decoded (a 30000 × 30000 PNG is a few hundred bytes).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::error::ImageError;
use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};

/// Widest or tallest source accepted, in pixels (either side).
pub const MAX_SIDE: u32 = 16_384;

/// Most source pixels accepted: 4096 × 4096. A decoded 8-bit RGBA image of this size takes
/// 64 MiB, which beside a 32 MiB body still leaves room in the 128 MB isolate for the
/// JavaScript heap and the output (docs/previews.md has the measured peaks).
pub const MAX_PIXELS: u64 = 16_777_216;

/// Most bytes the decoder may allocate (`image::Limits::max_alloc`): the decoded image of
/// [`MAX_PIXELS`] in 8-bit RGBA. A 16-bit PNG takes twice as much per pixel, so it is refused
/// past 8 MP by this limit, still before decoding.
pub const MAX_DECODE_BYTES: u64 = 64 * 1024 * 1024;

/// JPEG output quality (1–100).
pub const JPEG_QUALITY: u8 = 80;

/// Output widths the interface allows.
pub const WIDTHS: [u32; 6] = [64, 128, 256, 512, 1024, 2048];

/// The encoding of a preview.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// PNG, lossless, alpha kept.
    Png,
    /// JPEG at [`JPEG_QUALITY`], alpha flattened onto white.
    Jpeg,
    /// WebP, lossless (the `image` crate's encoder), alpha kept.
    Webp,
}

impl Format {
    /// The format named `name` in the `format` parameter (`png`, `jpeg`, `webp`).
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "png" => Some(Format::Png),
            "jpeg" => Some(Format::Jpeg),
            "webp" => Some(Format::Webp),
            _ => None,
        }
    }

    /// The `Content-Type` of a preview in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
        }
    }
}

/// A source image type previews accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceType {
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// `image/gif`; its first frame is rendered.
    Gif,
    /// `image/webp`.
    Webp,
}

impl SourceType {
    /// The source type of a `Content-Type` value: the media type without parameters, any case.
    pub fn from_content_type(value: &str) -> Result<SourceType, RenderError> {
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "image/png" => Ok(SourceType::Png),
            "image/jpeg" => Ok(SourceType::Jpeg),
            "image/gif" => Ok(SourceType::Gif),
            "image/webp" => Ok(SourceType::Webp),
            _ => Err(RenderError::UnsupportedMediaType(value.to_string())),
        }
    }

    /// The media type, as the interface spells it.
    pub fn media_type(self) -> &'static str {
        match self {
            SourceType::Png => "image/png",
            SourceType::Jpeg => "image/jpeg",
            SourceType::Gif => "image/gif",
            SourceType::Webp => "image/webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            SourceType::Png => ImageFormat::Png,
            SourceType::Jpeg => ImageFormat::Jpeg,
            SourceType::Gif => ImageFormat::Gif,
            SourceType::Webp => ImageFormat::WebP,
        }
    }

    /// Whether `bytes` start with this format's magic number.
    pub fn matches(self, bytes: &[u8]) -> bool {
        match self {
            SourceType::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            SourceType::Jpeg => bytes.starts_with(&[0xff, 0xd8, 0xff]),
            SourceType::Gif => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
            SourceType::Webp => {
                bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP"
            }
        }
    }
}

/// A rendered preview.
#[derive(Debug)]
pub struct Rendered {
    /// The encoded preview.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: Format,
    /// The source's width, in pixels.
    pub source_width: u32,
    /// The source's height, in pixels.
    pub source_height: u32,
    /// The preview's width, in pixels.
    pub width: u32,
    /// The preview's height, in pixels.
    pub height: u32,
}

/// Why a preview could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The declared type is not one previews read.
    #[error("content type {0:?} is not one of image/png, image/jpeg, image/gif, image/webp")]
    UnsupportedMediaType(String),
    /// The bytes are not the declared format.
    #[error("the body is not {declared}: its first bytes are not that format's signature")]
    NotDeclaredFormat {
        /// The declared media type.
        declared: &'static str,
    },
    /// The header's dimensions are past the limits.
    #[error("the image is {width} × {height} pixels; at most {MAX_SIDE} on a side and {MAX_PIXELS} pixels in all are rendered")]
    TooLarge {
        /// Width read from the header.
        width: u32,
        /// Height read from the header.
        height: u32,
    },
    /// The decoder would allocate past [`MAX_DECODE_BYTES`] (16-bit images, mostly).
    #[error("decoding the image would take more than {MAX_DECODE_BYTES} bytes: {0}")]
    DecodeLimit(ImageError),
    /// The bytes are the declared format but do not decode (truncated, corrupt).
    #[error("the image could not be decoded: {0}")]
    Undecodable(ImageError),
    /// The preview could not be encoded (not expected to happen).
    #[error("the preview could not be encoded: {0}")]
    Encode(ImageError),
}

impl RenderError {
    fn from_decode(e: ImageError) -> RenderError {
        match e {
            ImageError::Limits(_) => RenderError::DecodeLimit(e),
            other => RenderError::Undecodable(other),
        }
    }
}

/// The decoder limits: dimensions as the header check, allocation within the isolate.
fn limits(check_dimensions: bool) -> Limits {
    let mut limits = Limits::default();
    if check_dimensions {
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
    }
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn reader(bytes: &[u8], source: SourceType, limits: Limits) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), source.image_format());
    reader.limits(limits);
    reader
}

/// Reads `bytes`' dimensions from the header alone, after checking the magic number, and
/// refuses an image past the limits. Nothing is decoded.
pub fn dimensions(bytes: &[u8], source: SourceType) -> Result<(u32, u32), RenderError> {
    if !source.matches(bytes) {
        return Err(RenderError::NotDeclaredFormat {
            declared: source.media_type(),
        });
    }
    let (width, height) = match source {
        // The PNG decoder reads up to the first image data before it tells the size, and starts
        // inflating it: for a bomb, that already hits the allocation limit. IHDR, the first
        // chunk (PNG 5.6), says the size in its first 8 bytes.
        SourceType::Png => png_dimensions(bytes).ok_or_else(|| {
            RenderError::Undecodable(ImageError::Decoding(image::error::DecodingError::new(
                ImageFormat::Png.into(),
                "the first chunk is not a complete IHDR",
            )))
        })?,
        // Dimensions unchecked here, so that the refusal below can say what the header claims.
        _ => reader(bytes, source, limits(false))
            .into_dimensions()
            .map_err(RenderError::from_decode)?,
    };
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(RenderError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(RenderError::Undecodable(ImageError::Decoding(
            image::error::DecodingError::new(
                source.image_format().into(),
                "the image has no pixels",
            ),
        )));
    }
    Ok((width, height))
}

/// Width and height from a PNG's IHDR chunk, which follows the 8-byte signature: length (13),
/// type, then width and height as big-endian u32s.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes.get(8..24)?;
    if ihdr[0..8] != *b"\0\0\0\x0dIHDR" {
        return None;
    }
    let width = u32::from_be_bytes(ihdr[8..12].try_into().ok()?);
    let height = u32::from_be_bytes(ihdr[12..16].try_into().ok()?);
    Some((width, height))
}

/// The preview's size: `width` wide keeping the aspect ratio, never wider than the source.
pub fn target_size(source_width: u32, source_height: u32, width: u32) -> (u32, u32) {
    if source_width <= width {
        return (source_width, source_height);
    }
    let height = (u64::from(source_height) * u64::from(width) + u64::from(source_width) / 2)
        / u64::from(source_width);
    (width, height.max(1) as u32)
}

/// Renders `bytes`, declared as `content_type`, as a preview `width` pixels wide (never
/// upscaled) in `format`. A GIF renders its first frame.
pub fn render(
    bytes: &[u8],
    content_type: &str,
    width: u32,
    format: Format,
) -> Result<Rendered, RenderError> {
    let source = SourceType::from_content_type(content_type)?;
    let (source_width, source_height) = dimensions(bytes, source)?;
    let image = reader(bytes, source, limits(true))
        .decode()
        .map_err(RenderError::from_decode)?;
    let (width, height) = target_size(image.width(), image.height(), width);
    // An area average straight into the output: no intermediate image the size of the source
    // (`resize` keeps a source-wide f32 RGBA image, 16 bytes a pixel).
    let scaled = if (width, height) == (image.width(), image.height()) {
        image
    } else {
        image.thumbnail_exact(width, height)
    };
    let bytes = encode(scaled, format)?;
    Ok(Rendered {
        bytes,
        format,
        source_width,
        source_height,
        width,
        height,
    })
}

fn encode(image: DynamicImage, format: Format) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    let written = match format {
        // 8 bits a channel: what browsers show, and what the WebP encoder takes.
        Format::Png => eight_bit(image).write_with_encoder(PngEncoder::new(&mut out)),
        Format::Webp => eight_bit(image).write_with_encoder(WebPEncoder::new_lossless(&mut out)),
        Format::Jpeg => DynamicImage::ImageRgb8(on_white(image))
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)),
    };
    written.map_err(RenderError::Encode)?;
    Ok(out)
}

fn eight_bit(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// RGB with any alpha composited onto white (JPEG has no alpha).
fn on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(px[3]);
        for c in 0..3 {
            let v = u16::from(px[c]) * a + 255 * (255 - a);
            out[c] = ((v + 127) / 255) as u8;
        }
    }
    rgb
}

#[cfg(test)]
mod tests;
