//! Tables of URLs: how each host is read, and which are refused and why. The hosts were
//! checked against a WHATWG URL parser (Node's `new URL`) where the standard accepts them.

use super::*;

/// `ok <host as read>`, or the kind of refusal.
fn verdict(url: &str, allow_private: bool) -> String {
    match check(url, allow_private) {
        Ok(dest) => format!("ok {}", dest.host),
        Err(e) => match e {
            DestinationError::TooLong => "too-long",
            DestinationError::Whitespace => "whitespace",
            DestinationError::Scheme => "scheme",
            DestinationError::Userinfo => "userinfo",
            DestinationError::EmptyHost => "empty-host",
            DestinationError::InvalidHost { .. } => "invalid-host",
            DestinationError::NonAsciiHost(_) => "non-ascii",
            DestinationError::InvalidPort => "port",
            DestinationError::NotPublic { .. } => "not-public",
        }
        .to_owned(),
    }
}

/// Spellings of addresses that are not public: each reads as the address given (the same host
/// `fetch` would reach), and is refused unless private destinations are allowed.
const NOT_PUBLIC: &[(&str, &str)] = &[
    // IPv4 loopback, in the spellings the standard's IPv4 parser accepts.
    ("http://127.0.0.1/", "127.0.0.1"),
    ("http://127.0.0.1:8787/hooks", "127.0.0.1"),
    ("http://2130706433/", "127.0.0.1"),
    ("http://0x7f000001/", "127.0.0.1"),
    ("http://0x7f.1/", "127.0.0.1"),
    ("http://0X7F.0.0.1/", "127.0.0.1"),
    ("http://0x7f.0x0.0x0.0x1/", "127.0.0.1"),
    ("http://0177.0.0.1/", "127.0.0.1"),
    ("http://0177.1/", "127.0.0.1"),
    ("http://017700000001/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"),
    ("http://127.0.1/", "127.0.0.1"),
    ("http://127.000.000.001/", "127.0.0.1"),
    ("http://127.0x0.01/", "127.0.0.1"),
    ("http://127.0.0.1./", "127.0.0.1"),
    ("http://127.255.255.254/", "127.255.255.254"),
    ("http://%31%32%37.0.0.1/", "127.0.0.1"),
    ("http:/\\127.0.0.1/", "127.0.0.1"),
    ("http:127.0.0.1/", "127.0.0.1"),
    ("http://127.0.0.1\\@example.com/", "127.0.0.1"),
    ("HTTPS://127.0.0.1/", "127.0.0.1"),
    // Unspecified, "this network".
    ("http://0/", "0.0.0.0"),
    ("http://0x/", "0.0.0.0"),
    ("http://0.0.0.0/", "0.0.0.0"),
    ("http://0.1.2.3/", "0.1.2.3"),
    // Private, shared (CGNAT), link-local (cloud metadata).
    ("http://10.0.0.1/", "10.0.0.1"),
    ("http://10.1/", "10.0.0.1"),
    ("http://10.255.255.255/", "10.255.255.255"),
    ("http://172.16.0.1/", "172.16.0.1"),
    ("http://172.31.255.255/", "172.31.255.255"),
    ("http://192.168.0.1/", "192.168.0.1"),
    ("http://3232235777/", "192.168.1.1"),
    ("http://100.64.0.1/", "100.64.0.1"),
    ("http://100.127.255.255/", "100.127.255.255"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254",
    ),
    ("http://0xa9fea9fe/", "169.254.169.254"),
    // Protocol assignments, documentation, benchmarking, 6to4 relay.
    ("http://192.0.0.8/", "192.0.0.8"),
    ("http://192.0.2.1/", "192.0.2.1"),
    ("http://198.51.100.7/", "198.51.100.7"),
    ("http://203.0.113.9/", "203.0.113.9"),
    ("http://198.18.0.1/", "198.18.0.1"),
    ("http://198.19.255.255/", "198.19.255.255"),
    ("http://192.88.99.1/", "192.88.99.1"),
    // Multicast, reserved, broadcast.
    ("http://224.0.0.1/", "224.0.0.1"),
    ("http://239.255.255.255/", "239.255.255.255"),
    ("http://240.0.0.1/", "240.0.0.1"),
    ("http://255.255.255.255/", "255.255.255.255"),
    ("http://4294967295/", "255.255.255.255"),
    // IPv6.
    ("http://[::1]/", "[::1]"),
    ("http://[::1]:8080/", "[::1]"),
    ("http://[0:0:0:0:0:0:0:1]/", "[::1]"),
    ("http://[::]/", "[::]"),
    ("http://[::ffff:127.0.0.1]/", "[::ffff:127.0.0.1]"),
    ("http://[::ffff:7f00:1]/", "[::ffff:127.0.0.1]"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "[::ffff:127.0.0.1]"),
    ("http://[::ffff:10.0.0.1]/", "[::ffff:10.0.0.1]"),
    ("http://[::ffff:a9fe:a9fe]/", "[::ffff:169.254.169.254]"),
    ("http://[::127.0.0.1]/", "[::7f00:1]"),
    ("http://[::8.8.8.8]/", "[::808:808]"),
    ("http://[64:ff9b::127.0.0.1]/", "[64:ff9b::7f00:1]"),
    ("http://[64:ff9b::a00:1]/", "[64:ff9b::a00:1]"),
    ("http://[64:ff9b:1::1]/", "[64:ff9b:1::1]"),
    ("http://[2002:7f00:1::]/", "[2002:7f00:1::]"),
    ("http://[2002:c0a8:101::1]/", "[2002:c0a8:101::1]"),
    ("http://[fe80::1]/", "[fe80::1]"),
    ("http://[FEBF::1]/", "[febf::1]"),
    ("http://[fc00::1]/", "[fc00::1]"),
    ("http://[fd12:3456::1]/", "[fd12:3456::1]"),
    ("http://[fec0::1]/", "[fec0::1]"),
    ("http://[ff02::1]/", "[ff02::1]"),
    ("http://[100::1]/", "[100::1]"),
    ("http://[2001::1]/", "[2001::1]"),
    ("http://[2001:db8::1]/", "[2001:db8::1]"),
    ("http://[3fff::1]/", "[3fff::1]"),
    ("http://[5f00::1]/", "[5f00::1]"),
    ("http://[4000::1]/", "[4000::1]"),
    // localhost and names under it, with trailing dots, in any case or percent-encoded.
    ("http://localhost/", "localhost"),
    ("http://LOCALHOST:8787/", "localhost"),
    ("http://localhost./", "localhost."),
    ("http://localhost../", "localhost.."),
    ("http://app.localhost/", "app.localhost"),
    ("http://a.b.localhost./", "a.b.localhost."),
    ("http://%6c%6f%63%61%6c%68%6f%73%74/", "localhost"),
];

/// Public destinations, accepted whether or not private ones are allowed.
const PUBLIC: &[(&str, &str)] = &[
    ("https://example.com/hooks/tandemx", "example.com"),
    ("https://EXAMPLE.com:8443/x?y#z", "example.com"),
    ("https://hooks.example.com./", "hooks.example.com."),
    ("http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
    ("http://localhost.example.com/", "localhost.example.com"),
    ("http://notlocalhost/", "notlocalhost"),
    ("http://1.2.3.4.5.example/", "1.2.3.4.5.example"),
    // A name, whatever it may resolve to (see docs/api.md on DNS).
    ("http://127.0.0.1.nip.io/", "127.0.0.1.nip.io"),
    // Backslash ends the authority, as in the standard: the host is example.com.
    ("http://example.com\\@127.0.0.1/", "example.com"),
    ("http://example.com#@127.0.0.1/", "example.com"),
    ("http://example.com?@127.0.0.1", "example.com"),
    ("http://example.com/@127.0.0.1", "example.com"),
    ("http:example.com/", "example.com"),
    ("http:\\\\example.com\\x", "example.com"),
    ("http:///example.com/", "example.com"),
    ("hTtP://example.com:0080/", "example.com"),
    ("http://example.com:/", "example.com"),
    ("https://example.com/caf\u{e9}", "example.com"),
    ("http://8.8.8.8/", "8.8.8.8"),
    ("http://134744072/", "8.8.8.8"),
    ("http://1.2.3.0x/", "1.2.3.0"),
    ("http://93.184.216.34/", "93.184.216.34"),
    // Edges of the non-public ranges.
    ("http://9.255.255.255/", "9.255.255.255"),
    ("http://11.0.0.0/", "11.0.0.0"),
    ("http://100.63.255.255/", "100.63.255.255"),
    ("http://100.128.0.0/", "100.128.0.0"),
    ("http://126.255.255.255/", "126.255.255.255"),
    ("http://128.0.0.0/", "128.0.0.0"),
    ("http://169.253.255.255/", "169.253.255.255"),
    ("http://169.255.0.0/", "169.255.0.0"),
    ("http://172.15.255.255/", "172.15.255.255"),
    ("http://172.32.0.0/", "172.32.0.0"),
    ("http://192.0.1.0/", "192.0.1.0"),
    ("http://192.167.255.255/", "192.167.255.255"),
    ("http://192.169.0.0/", "192.169.0.0"),
    ("http://198.17.255.255/", "198.17.255.255"),
    ("http://198.20.0.0/", "198.20.0.0"),
    ("http://223.255.255.255/", "223.255.255.255"),
    ("http://[2606:4700::1111]/", "[2606:4700::1111]"),
    (
        "https://[2001:4860:4860::8888]:443/",
        "[2001:4860:4860::8888]",
    ),
    ("http://[2001:200::1]/", "[2001:200::1]"),
    ("http://[3ffe::1]/", "[3ffe::1]"),
    ("http://[::ffff:8.8.8.8]/", "[::ffff:8.8.8.8]"),
    ("http://[64:ff9b::808:808]/", "[64:ff9b::808:808]"),
    ("http://[2002:808:808::1]/", "[2002:808:808::1]"),
];

/// URLs refused whatever the development switch says, and why.
const MALFORMED: &[(&str, &str)] = &[
    ("ftp://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com/", "scheme"),
    ("ws://example.com/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("data:text/plain,hi", "scheme"),
    ("//example.com/", "scheme"),
    ("example.com/hooks", "scheme"),
    ("https//example.com/", "scheme"),
    ("http://user:pass@example.com/", "userinfo"),
    ("http://user@example.com/", "userinfo"),
    ("http://@example.com/", "userinfo"),
    ("http://:@example.com/", "userinfo"),
    ("http://a@b@example.com/", "userinfo"),
    ("http://example.com@127.0.0.1/", "userinfo"),
    ("http://127.0.0.1@example.com/", "userinfo"),
    ("http://user@/", "userinfo"),
    ("http://", "empty-host"),
    ("http:", "empty-host"),
    ("https:/", "empty-host"),
    ("http:///", "empty-host"),
    ("http://:80/", "empty-host"),
    ("https://?x", "empty-host"),
    ("http://#", "empty-host"),
    ("http://256.0.0.1/", "invalid-host"),
    ("http://1.256.1/", "invalid-host"),
    ("http://1.2.3.4.5/", "invalid-host"),
    ("http://4294967296/", "invalid-host"),
    ("http://0x100000000/", "invalid-host"),
    ("http://09.0.0.1/", "invalid-host"),
    ("http://012345678/", "invalid-host"),
    ("http://1..1/", "invalid-host"),
    ("http://foo.0x/", "invalid-host"),
    ("http://example.09/", "invalid-host"),
    ("http://./", "invalid-host"),
    ("http://%2e/", "invalid-host"),
    ("http://[::1/", "invalid-host"),
    ("http://[::1]x/", "invalid-host"),
    ("http://[fe80::1%25eth0]/", "invalid-host"),
    ("http://[1:2:3:4:5:6:7:8:9]/", "invalid-host"),
    ("http://[::1::2]/", "invalid-host"),
    ("http://[:1]/", "invalid-host"),
    ("http://[1:2:3:4:5:6:7::8.8.8.8]/", "invalid-host"),
    ("http://[::ffff:127.0.0.01]/", "invalid-host"),
    ("http://[::ffff:127.0.0]/", "invalid-host"),
    ("http://[::ffff:256.0.0.1]/", "invalid-host"),
    ("http://[example.com]/", "invalid-host"),
    ("http://exa%20mple.com/", "invalid-host"),
    ("http://exa%mple.com/", "invalid-host"),
    ("http://exa%00mple.com/", "invalid-host"),
    ("http://a<b/", "invalid-host"),
    ("http://a^b/", "invalid-host"),
    ("http://example.com:port/", "port"),
    ("http://example.com:65536/", "port"),
    ("http://example.com:-1/", "port"),
    ("http://example.com:99999999999999999999/", "port"),
    // IDNA would map these to ASCII (full-width digits, ideographic full stops): 127.0.0.1.
    (
        "http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
        "non-ascii",
    ),
    ("http://127\u{3002}0\u{3002}0\u{3002}1/", "non-ascii"),
    ("http://%ef%bc%91%ef%bc%92%ef%bc%97.0.0.1/", "non-ascii"),
    ("http://b\u{fc}cher.example/", "non-ascii"),
    // The standard removes tabs and newlines anywhere and trims spaces: refused instead.
    ("http://ex\tample.com/", "whitespace"),
    ("http://127.0.0.1\n/", "whitespace"),
    (" http://example.com/", "whitespace"),
    ("http://example.com/ ", "whitespace"),
    ("http://exa\u{a0}mple.com/", "whitespace"),
    ("http://example.com/\u{7f}", "whitespace"),
];

#[test]
fn every_spelling_of_a_non_public_address_is_read_as_that_address_and_refused() {
    for (url, host) in NOT_PUBLIC {
        assert_eq!(verdict(url, true), format!("ok {host}"), "{url}");
        assert_eq!(verdict(url, false), "not-public", "{url}");
    }
}

#[test]
fn public_destinations_are_accepted() {
    for (url, host) in PUBLIC {
        assert_eq!(verdict(url, false), format!("ok {host}"), "{url}");
        assert_eq!(verdict(url, true), format!("ok {host}"), "{url}");
    }
}

#[test]
fn malformed_urls_are_refused_even_when_private_destinations_are_allowed() {
    for (url, kind) in MALFORMED {
        assert_eq!(verdict(url, false), *kind, "{url}");
        assert_eq!(verdict(url, true), *kind, "{url}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
    assert_eq!(verdict(&long, true), "too-long");
}

#[test]
fn refusals_say_what_the_host_reads_as_and_why() {
    let e = check("http://0x7f.1/", false).unwrap_err().to_string();
    assert_eq!(
        e,
        "url's host 0x7f.1 (127.0.0.1) is loopback (127.0.0.0/8): webhooks are sent to public addresses only"
    );
    let e = check("http://[::ffff:a00:1]/", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("an IPv4-mapped address (::ffff:0:0/96) of 10.0.0.1, private (10.0.0.0/8)"),
        "{e}"
    );
    let e = check("http://10.0.0.1:80/", false).unwrap_err().to_string();
    assert!(e.starts_with("url's host 10.0.0.1 is private"), "{e}");
    let e = check("http://app.localhost./", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("localhost (RFC 6761)"), "{e}");
}

#[test]
fn schemes_and_ports_are_read() {
    let d = parse("HTTPS://example.com:0443/").unwrap();
    assert!(d.https);
    assert_eq!(d.port, Some(443));
    let d = parse("http://[::1]:65535/").unwrap();
    assert!(!d.https);
    assert_eq!(d.port, Some(65535));
    assert_eq!(parse("http://example.com/").unwrap().port, None);
}

#[test]
fn ipv6_addresses_are_read_as_the_standard_reads_them() {
    let v6 = |s: &str| parse_ipv6(s.as_bytes());
    assert_eq!(v6("::"), Some(Ipv6Addr::UNSPECIFIED));
    assert_eq!(v6("1::"), Some(Ipv6Addr::new(1, 0, 0, 0, 0, 0, 0, 0)));
    assert_eq!(v6("1:2::7:8"), Some(Ipv6Addr::new(1, 2, 0, 0, 0, 0, 7, 8)));
    assert_eq!(
        v6("1:2:3:4:5:6:7:8"),
        Some(Ipv6Addr::new(1, 2, 3, 4, 5, 6, 7, 8))
    );
    assert_eq!(
        v6("1:2:3:4:5:6:1.2.3.4"),
        Some(Ipv6Addr::new(1, 2, 3, 4, 5, 6, 0x102, 0x304))
    );
    for bad in [
        "",
        ":",
        ":::",
        "1:",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:",
        "12345::",
        "::1.2.3",
        "::1.2.3.4.5",
        "1.2.3.4",
        "::g",
        "::1.2..3",
    ] {
        assert_eq!(v6(bad), None, "{bad:?}");
    }
}
