use super::range::{parse as range, ByteRange};
use super::signed::{Link, Serves};
use super::*;

#[test]
fn sniffing_tells_images_from_markup() {
    assert_eq!(sniff::sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
    assert_eq!(sniff::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
    assert_eq!(sniff::sniff(b"GIF89a.."), Some("image/gif"));
    assert_eq!(sniff::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
    assert_eq!(
        sniff::sniff(b"\xEF\xBB\xBF  <!DOCTYPE html><p>"),
        Some("text/html")
    );
    assert_eq!(
        sniff::sniff(b"<script>alert(1)</script>"),
        Some("text/html")
    );
    assert_eq!(
        sniff::sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        Some("image/svg+xml")
    );
    assert_eq!(
        sniff::sniff(b"<?xml version='1.0'?><svg/>"),
        Some("image/svg+xml")
    );
    assert_eq!(
        sniff::sniff(b"<?xml version='1.0'?><a/>"),
        Some("application/xml")
    );
    assert_eq!(sniff::sniff(b"hello"), None);
    assert_eq!(sniff::sniff(b""), None);
}

#[test]
fn a_raster_type_must_agree_with_the_bytes() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    assert_eq!(
        settle_content_type(Some("image/png"), png).unwrap(),
        "image/png"
    );
    assert_eq!(
        settle_content_type(Some("IMAGE/PNG; x=1"), png).unwrap(),
        "image/png"
    );
    let html = b"<html><script>alert(1)</script>";
    let err = settle_content_type(Some("image/png"), html).unwrap_err();
    assert_eq!(err.status(), 422);
    assert!(err.problem().detail.contains("text/html"), "{err:?}");
    assert_eq!(
        settle_content_type(Some("image/jpeg"), png)
            .unwrap_err()
            .status(),
        422
    );
    assert_eq!(
        settle_content_type(Some("image/svg+xml"), png)
            .unwrap_err()
            .status(),
        422
    );
    // Undeclared: what the bytes show, or octet-stream.
    assert_eq!(settle_content_type(None, png).unwrap(), "image/png");
    assert_eq!(
        settle_content_type(None, b"plain").unwrap(),
        "application/octet-stream"
    );
    // Other declared types stand (they are served with a sandboxing CSP and nosniff).
    assert_eq!(
        settle_content_type(Some("text/plain"), html).unwrap(),
        "text/plain"
    );
    assert_eq!(
        settle_content_type(Some("nonsense"), png)
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn ranges() {
    let r = |h: &str| range(Some(h), 100);
    assert_eq!(
        r("bytes=0-9").unwrap(),
        Some(ByteRange {
            offset: 0,
            length: 10
        })
    );
    assert_eq!(
        r("bytes=90-").unwrap(),
        Some(ByteRange {
            offset: 90,
            length: 10
        })
    );
    assert_eq!(
        r("bytes=95-200").unwrap(),
        Some(ByteRange {
            offset: 95,
            length: 5
        })
    );
    assert_eq!(
        r("bytes=-10").unwrap(),
        Some(ByteRange {
            offset: 90,
            length: 10
        })
    );
    assert_eq!(
        r("bytes=-1000").unwrap(),
        Some(ByteRange {
            offset: 0,
            length: 100
        })
    );
    assert_eq!(r("bytes=100-").unwrap_err().status(), 416);
    assert_eq!(r("bytes=-0").unwrap_err().status(), 416);
    // Ignored: several ranges, other units, nonsense, a last byte before the first.
    assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
    assert_eq!(r("items=0-1").unwrap(), None);
    assert_eq!(r("bytes=a-b").unwrap(), None);
    assert_eq!(r("bytes=9-2").unwrap(), None);
    assert_eq!(r("bytes=99999999999999999999999-").unwrap(), None);
    assert_eq!(range(None, 100).unwrap(), None);
    assert_eq!(
        ByteRange {
            offset: 90,
            length: 10
        }
        .content_range(100),
        "bytes 90-99/100"
    );
    assert_eq!(range(Some("bytes=0-"), 0).unwrap_err().status(), 416);
}

#[test]
fn http_dates_round_trip() {
    assert_eq!(
        http_date::format(784_111_777),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        http_date::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    for t in [0u64, 951_782_400, 1_700_000_000, 4_102_444_800] {
        assert_eq!(http_date::parse(&http_date::format(t)), Some(t));
    }
    assert_eq!(http_date::parse("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(http_date::parse("garbage"), None);
    assert_eq!(http_date::parse("Sun, 06 Nov 1994 25:49:37 GMT"), None);
}

#[test]
fn signed_links_cover_everything_they_grant() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let link = Link {
        project: "prj_1",
        asset: "ast_1",
        version: 2,
        serves: Serves::Content { download: false },
        expires: 1000,
    };
    let sig = link.sign(secret);
    assert!(link.verify(secret, &sig, 1000));
    assert!(!link.verify(secret, &sig, 1001), "expired");
    assert!(!link.verify(b"another secret, also 32 bytes...", &sig, 10));
    let altered = [
        Link {
            version: 3,
            ..link.clone()
        },
        Link {
            asset: "ast_2",
            ..link.clone()
        },
        Link {
            project: "prj_2",
            ..link.clone()
        },
        Link {
            expires: 2000,
            ..link.clone()
        },
        Link {
            serves: Serves::Content { download: true },
            ..link.clone()
        },
        Link {
            serves: Serves::Preview {
                width: 256,
                format: "webp",
            },
            ..link.clone()
        },
    ];
    for other in altered {
        assert!(!other.verify(secret, &sig, 10), "{other:?}");
    }
    let mut flipped = sig.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert!(!link.verify(secret, std::str::from_utf8(&flipped).unwrap(), 10));
    assert!(!link.verify(secret, "", 10));
}

#[test]
fn part_plans_follow_r2s_rules() {
    let p = PartPlan::new(20 * 1024 * 1024, Some(MIN_PART)).unwrap();
    assert_eq!(p.parts, 4);
    assert_eq!(p.part_len(1), Some(MIN_PART));
    assert_eq!(p.part_len(4), Some(MIN_PART));
    assert_eq!(p.part_len(5), None);
    assert_eq!(p.part_len(0), None);
    let p = PartPlan::new(MIN_PART + 1, Some(MIN_PART)).unwrap();
    assert_eq!((p.parts, p.part_len(2)), (2, Some(1)));
    // Defaults grow to stay within 10,000 parts.
    let huge = PartPlan::new(200 * 1024 * 1024 * 1024, None).unwrap();
    assert!(huge.parts <= MAX_PARTS);
    assert!(huge.part_size * huge.parts >= huge.size);
    assert_eq!(PartPlan::new(10, Some(1024)).unwrap_err().status(), 400);
    assert_eq!(PartPlan::new(0, None).unwrap_err().status(), 400);
    assert_eq!(
        PartPlan::new(MIN_PART * 10_001, Some(MIN_PART))
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn names_tags_and_licences() {
    assert!(check_name("logo (final).png").is_ok());
    assert!(check_name("  ").is_err());
    assert!(check_name("a\u{0}b").is_err());
    assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
    assert_eq!(storage_name("../../etc/passwd"), "_.._etc_passwd");
    assert_eq!(storage_name("Grüße.png"), "Gr__e.png");
    assert_eq!(storage_name("???"), "file");
    assert_eq!(
        content_disposition("a\"b.png", true),
        "attachment; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png"
    );
    assert_eq!(parse_tag("Logo").unwrap(), "logo");
    assert!(parse_tag("no spaces").is_err());
    assert!(parse_tag("").is_err());
    assert!(parse_tag(&"a".repeat(65)).is_err());
    let ok = Licence {
        spdx: Some("CC-BY-4.0".into()),
        attribution: Some("Jane".into()),
        source_url: Some("https://example.org/x".into()),
        ..Licence::default()
    };
    assert!(ok.check().is_ok());
    assert!(Licence {
        spdx: Some("<b>".into()),
        ..Licence::default()
    }
    .check()
    .is_err());
    assert!(Licence {
        source_url: Some("javascript:alert(1)".into()),
        ..Licence::default()
    }
    .check()
    .is_err());
    assert!(Licence {
        spdx: Some("MIT".into()),
        text: Some("mine".into()),
        ..Licence::default()
    }
    .check()
    .is_err());
    assert!(Sha256::parse(&"A".repeat(64)).is_ok());
    assert!(Sha256::parse("abc").is_err());
    assert!(Sha256::parse(&"g".repeat(64)).is_err());
    assert_eq!(Sha256::parse(&"0f".repeat(32)).unwrap().bytes(), [0x0f; 32]);
    assert!(is_server_id("ast_", "ast_0123456789abcdef0123"));
    assert!(!is_server_id("ast_", "ast_0123456789ABCDEF0123"));
    assert!(!is_server_id("ast_", "upl_0123456789abcdef0123"));
}
