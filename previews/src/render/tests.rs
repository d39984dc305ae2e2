//! Native tests of `render`, on images made here.

use super::*;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, ImageEncoder, Rgba, RgbaImage};

/// A `width` × `height` gradient with half-transparent pixels on the right half.
fn picture(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        let a = if x >= width / 2 { 128 } else { 255 };
        Rgba([(x * 255 / width) as u8, (y * 255 / height) as u8, 90, a])
    })
}

fn encoded(image: &RgbaImage, source: SourceType) -> Vec<u8> {
    let mut out = Vec::new();
    let (w, h) = image.dimensions();
    match source {
        SourceType::Png => PngEncoder::new(&mut out)
            .write_image(image, w, h, image::ExtendedColorType::Rgba8)
            .unwrap(),
        SourceType::Jpeg => DynamicImage::ImageRgba8(image.clone())
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap(),
        SourceType::Webp => WebPEncoder::new_lossless(&mut out)
            .write_image(image, w, h, image::ExtendedColorType::Rgba8)
            .unwrap(),
        SourceType::Gif => {
            // Two frames: the first red, the second blue; previews show the first.
            let red = RgbaImage::from_pixel(w, h, Rgba([255, 0, 0, 255]));
            let blue = RgbaImage::from_pixel(w, h, Rgba([0, 0, 255, 255]));
            let mut encoder = GifEncoder::new(&mut out);
            encoder.set_repeat(Repeat::Infinite).unwrap();
            for frame in [red, blue] {
                let delay = Delay::from_numer_denom_ms(100, 1);
                encoder
                    .encode_frame(Frame::from_parts(frame, 0, 0, delay))
                    .unwrap();
            }
        }
    }
    out
}

const SOURCES: [SourceType; 4] = [
    SourceType::Png,
    SourceType::Jpeg,
    SourceType::Gif,
    SourceType::Webp,
];
const FORMATS: [Format; 3] = [Format::Png, Format::Jpeg, Format::Webp];

fn decode(rendered: &Rendered) -> DynamicImage {
    let format = match rendered.format {
        Format::Png => ImageFormat::Png,
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Webp => ImageFormat::WebP,
    };
    image::load_from_memory_with_format(&rendered.bytes, format).unwrap()
}

#[test]
fn every_source_to_every_format() {
    for source in SOURCES {
        let bytes = encoded(&picture(300, 200), source);
        for format in FORMATS {
            let out = render(&bytes, source.media_type(), 128, format)
                .unwrap_or_else(|e| panic!("{source:?} -> {format:?}: {e}"));
            assert_eq!((out.source_width, out.source_height), (300, 200));
            assert_eq!(
                (out.width, out.height),
                (128, 85),
                "{source:?} -> {format:?}"
            );
            assert!(
                out.format.content_type().ends_with(match format {
                    Format::Png => "png",
                    Format::Jpeg => "jpeg",
                    Format::Webp => "webp",
                }),
                "{format:?}"
            );
            let back = decode(&out);
            assert_eq!((back.width(), back.height()), (128, 85));
        }
    }
}

#[test]
fn never_upscales() {
    let bytes = encoded(&picture(100, 50), SourceType::Png);
    let out = render(&bytes, "image/png", 1024, Format::Png).unwrap();
    assert_eq!((out.width, out.height), (100, 50));
    assert_eq!(
        decode(&out).to_rgba8(),
        picture(100, 50),
        "lossless, unscaled"
    );
}

#[test]
fn keeps_the_aspect_ratio() {
    assert_eq!(target_size(4000, 3000, 256), (256, 192));
    assert_eq!(target_size(3000, 4000, 256), (256, 341));
    assert_eq!(target_size(16384, 1, 64), (64, 1), "never zero high");
    assert_eq!(target_size(64, 64, 64), (64, 64));
}

#[test]
fn gif_renders_its_first_frame() {
    let bytes = encoded(&picture(40, 40), SourceType::Gif);
    let out = render(&bytes, "image/gif", 64, Format::Png).unwrap();
    let px = decode(&out).to_rgba8().get_pixel(20, 20).0;
    assert_eq!(px, [255, 0, 0, 255], "red, the first frame");
}

#[test]
fn jpeg_flattens_alpha_onto_white() {
    let clear = RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 0]));
    let bytes = encoded(&clear, SourceType::Png);
    let out = render(&bytes, "image/png", 64, Format::Jpeg).unwrap();
    let px = decode(&out).to_rgb8().get_pixel(8, 8).0;
    assert!(px.iter().all(|&c| c >= 250), "white, not black: {px:?}");
}

#[test]
fn webp_keeps_alpha() {
    let bytes = encoded(&picture(64, 64), SourceType::Png);
    let out = render(&bytes, "image/png", 64, Format::Webp).unwrap();
    assert_eq!(decode(&out).to_rgba8(), picture(64, 64));
}

/// A PNG claiming `width` × `height` 8-bit RGBA pixels with 1000 zero bytes of image data (in
/// a stored zlib block): a well-formed file of about a kilobyte that starts as a decompression
/// bomb does.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    let mut zlib = vec![0x78, 0x01, 0x01, 0xe8, 0x03, 0x17, 0xfc];
    zlib.extend_from_slice(&[0; 1000]);
    zlib.extend_from_slice(&((1000u32 << 16) | 1).to_be_bytes()); // Adler-32 of the zeros
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_bomb_is_refused_from_its_header() {
    let bomb = png_header(30_000, 30_000);
    assert!(bomb.len() < 1100);
    match render(&bomb, "image/png", 256, Format::Webp) {
        Err(e @ RenderError::TooLarge { .. }) => {
            assert!(e.to_string().contains("30000 × 30000"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // Within each side but past the pixel count.
    assert!(matches!(
        dimensions(&png_header(16_384, 1_100), SourceType::Png),
        Err(RenderError::TooLarge {
            width: 16_384,
            height: 1_100
        })
    ));
    assert!(matches!(
        dimensions(&png_header(16_385, 1), SourceType::Png),
        Err(RenderError::TooLarge { .. })
    ));
    // At the limit the header passes; the missing pixel data then fails to decode.
    assert_eq!(
        dimensions(&png_header(4096, 4096), SourceType::Png).unwrap(),
        (4096, 4096)
    );
    assert!(matches!(
        render(&png_header(4096, 4096), "image/png", 256, Format::Png),
        Err(RenderError::Undecodable(_))
    ));
}

#[test]
fn a_16_bit_image_past_the_allocation_limit_is_refused_before_decoding() {
    // 4096 × 4096 RGBA at 16 bits a channel: 128 MiB decoded, past MAX_DECODE_BYTES.
    let mut png = png_header(4096, 4096);
    png[24] = 16; // bit depth
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        render(&png, "image/png", 256, Format::Png),
        Err(RenderError::DecodeLimit(_))
    ));
}

#[test]
fn html_declared_as_png_is_refused() {
    let html = b"<!doctype html><html><body>not an image</body></html>";
    assert!(matches!(
        render(html, "image/png", 256, Format::Png),
        Err(RenderError::NotDeclaredFormat {
            declared: "image/png"
        })
    ));
    // A real JPEG declared as PNG, too.
    let jpeg = encoded(&picture(8, 8), SourceType::Jpeg);
    assert!(matches!(
        render(&jpeg, "image/png", 256, Format::Png),
        Err(RenderError::NotDeclaredFormat { .. })
    ));
}

#[test]
fn unsupported_types() {
    for t in ["image/svg+xml", "text/html", "", "image/tiff"] {
        assert!(matches!(
            render(b"x", t, 64, Format::Png),
            Err(RenderError::UnsupportedMediaType(_))
        ));
    }
    assert_eq!(
        SourceType::from_content_type("IMAGE/PNG; charset=binary").unwrap(),
        SourceType::Png
    );
}

#[test]
fn truncated_images_are_refused_without_panic() {
    for source in SOURCES {
        let bytes = encoded(&picture(300, 200), source);
        for cut in [
            1,
            4,
            12,
            40,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let result = render(&bytes[..cut], source.media_type(), 64, Format::Png);
            // Decoders that stop at the end of the data may fill in the rest (JPEG), and a PNG
            // missing only its end chunk has every pixel; none may panic, and a PNG cut in its
            // pixel data is refused.
            if source == SourceType::Png && cut < bytes.len() - 12 {
                assert!(result.is_err(), "{source:?} cut at {cut}");
            }
            if let Err(e) = result {
                assert!(
                    matches!(
                        e,
                        RenderError::Undecodable(_) | RenderError::NotDeclaredFormat { .. }
                    ),
                    "{source:?} cut at {cut}: {e:?}"
                );
            }
        }
    }
}

#[test]
fn width_is_honoured_for_each_allowed_value() {
    let bytes = encoded(&picture(3000, 1000), SourceType::Jpeg);
    for w in WIDTHS {
        let out = render(&bytes, "image/jpeg", w, Format::Jpeg).unwrap();
        assert_eq!(out.width, w);
        assert_eq!(out.height, (w + 1) / 3);
        assert_eq!(decode(&out).width(), w);
    }
}
