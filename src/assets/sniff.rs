//! What the first bytes of a file say it is. Only what the library needs: the raster image
//! types (whose declared type must agree), markup that a browser would run (HTML, SVG, XML),
//! and a few common kinds for files uploaded without a type.

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 512;

fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains_ci(bytes: &[u8], needle: &[u8]) -> bool {
    bytes
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The content type `head` (a file's first bytes, at most [`SNIFF_BYTES`] used) shows, if any.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some("image/gif");
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if head.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    if head.starts_with(b"PK\x03\x04") {
        return Some("application/zip");
    }
    if head.starts_with(b"wOFF") {
        return Some("font/woff");
    }
    if head.starts_with(b"wOF2") {
        return Some("font/woff2");
    }
    if head.starts_with(b"OTTO") {
        return Some("font/otf");
    }
    if head.starts_with(&[0, 1, 0, 0, 0]) {
        return Some("font/ttf");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some("video/mp4");
    }
    // Markup: after a byte order mark and white space.
    let mut text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    while let [b' ' | b'\t' | b'\r' | b'\n' | b'\x0c', rest @ ..] = text {
        text = rest;
    }
    const HTML: [&[u8]; 13] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a ",
        b"<style",
        b"<title",
    ];
    if HTML.iter().any(|p| starts_with_ci(text, p))
        || starts_with_ci(text, b"<!--") && contains_ci(text, b"<html")
    {
        return Some("text/html");
    }
    if starts_with_ci(text, b"<svg") {
        return Some("image/svg+xml");
    }
    if starts_with_ci(text, b"<?xml")
        || starts_with_ci(text, b"<!doctype svg")
        || starts_with_ci(text, b"<!--")
    {
        return Some(if contains_ci(text, b"<svg") {
            "image/svg+xml"
        } else {
            "application/xml"
        });
    }
    None
}
