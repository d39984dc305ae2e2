//! `render` run natively, for scripts/bench: makes photo-like sources of a few sizes, renders
//! each a few times, and prints one JSON line per case (median milliseconds and the peak heap
//! the render took). With `--write DIR` it also writes the sources there, so that the same
//! bytes go through the worker.
//!
//!   cargo run --release -p tandemx-previews --example render_bench -- [--reps N] [--write DIR]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbImage};
use tandemx_previews::{render, Format};

/// Counts the bytes allocated now and the most at any time since the last reset.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Source sizes: about 1, 4 and 12 megapixels, 4:3.
const SIZES: [(u32, u32); 3] = [(1152, 864), (2304, 1728), (4000, 3000)];
/// Outputs: a thumbnail and a large view.
const OUTPUTS: [(u32, Format, &str); 2] =
    [(256, Format::Webp, "webp"), (1024, Format::Jpeg, "jpeg")];

/// A photo-like picture: smooth gradients with a little deterministic noise (which keeps PNG
/// from compressing it to nothing, as photographs do).
fn photo(width: u32, height: u32) -> RgbImage {
    let mut seed = 0x9e37_79b9u32;
    RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 15) as i32 - 8;
        let r = (x * 255 / width) as i32 + noise;
        let g = (y * 255 / height) as i32 - noise;
        let b = (((x + y) / 7) % 256) as i32 + noise / 2;
        image::Rgb([
            r.clamp(0, 255) as u8,
            g.clamp(0, 255) as u8,
            b.clamp(0, 255) as u8,
        ])
    })
}

fn encode(image: &RgbImage, kind: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (w, h) = image.dimensions();
    match kind {
        "png" => PngEncoder::new(&mut out)
            .write_image(image, w, h, image::ExtendedColorType::Rgb8)
            .expect("png"),
        _ => JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(image, w, h, image::ExtendedColorType::Rgb8)
            .expect("jpeg"),
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut reps = 5usize;
    let mut write: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--reps" => {
                i += 1;
                reps = args[i].parse().expect("--reps N");
            }
            "--write" => {
                i += 1;
                write = Some(args[i].clone());
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    for (width, height) in SIZES {
        let picture = photo(width, height);
        for kind in ["jpeg", "png"] {
            let source = encode(&picture, kind);
            let name = format!("{width}x{height}.{kind}");
            if let Some(dir) = &write {
                std::fs::create_dir_all(dir).expect("create --write dir");
                std::fs::write(format!("{dir}/{name}"), &source).expect("write source");
            }
            let content_type = format!("image/{kind}");
            for (w, format, fname) in OUTPUTS {
                let mut times = Vec::with_capacity(reps);
                let mut peak = 0usize;
                let mut out_bytes = 0usize;
                for _ in 0..reps {
                    let before = CURRENT.load(Ordering::Relaxed);
                    PEAK.store(before, Ordering::Relaxed);
                    let started = Instant::now();
                    let rendered = render(&source, &content_type, w, format).expect("render");
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    peak = peak.max(PEAK.load(Ordering::Relaxed) - before);
                    out_bytes = rendered.bytes.len();
                }
                times.sort_by(f64::total_cmp);
                let median = times[times.len() / 2];
                println!(
                    "{{\"source\":\"{name}\",\"source_bytes\":{},\"megapixels\":{:.2},\"w\":{w},\"format\":\"{fname}\",\"native_ms\":{median:.2},\"peak_heap_bytes\":{peak},\"output_bytes\":{out_bytes}}}",
                    source.len(),
                    f64::from(width * height) / 1e6,
                );
            }
        }
    }
}
