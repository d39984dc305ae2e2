//! Network destinations: an http(s) URL's host read the way the WHATWG URL Standard reads it,
//! and the rule that refuses hosts that are not public addresses, whatever their spelling.
//!
//! A webhook is sent with the runtime's `fetch`, which parses the URL by the URL Standard
//! (<https://url.spec.whatwg.org/#host-parsing>). A check that read the host any other way
//! could pass `http://0x7f.1/` while `fetch` goes to 127.0.0.1, so this module follows the
//! standard's host parser, IPv4 spellings included (`2130706433`, `0177.0.0.1`, `127.1`).
//! Where following it fully would need more than this module does (IDNA mapping of non-ASCII
//! names, removal of tabs and newlines inside the URL), the URL is refused instead, so that
//! whatever passes here has one reading.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL is not an acceptable destination.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DestinationError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// Whitespace or a control character anywhere (the standard strips or removes some of them,
    /// which would make the URL read differently from how it is written).
    #[error("url contains whitespace or a control character")]
    Whitespace,
    /// Not `http:` or `https:`.
    #[error("url must be an http:// or https:// URL")]
    Scheme,
    /// A user name or password before the host (`user:pass@host`).
    #[error("url must not carry a user name or password (user:pass@host)")]
    Userinfo,
    /// No host at all.
    #[error("url has no host")]
    EmptyHost,
    /// A host the standard's parser refuses.
    #[error("url's host {host:?} is not a valid host: {why}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A host with characters outside ASCII once percent-decoded.
    #[error("url's host {0:?} is not ASCII: write international names in punycode (xn--...)")]
    NonAsciiHost(String),
    /// A port that is not a number up to 65535.
    #[error("url's port is not a number from 0 to 65535")]
    InvalidPort,
    /// A loopback, private, link-local or other address that is not public, or `localhost`.
    #[error("url's host {host} is {range}: webhooks are sent to public addresses only")]
    NotPublic {
        /// The host as written, and the address it reads as when that differs.
        host: String,
        /// The range it falls in.
        range: String,
    },
}

/// A parsed host, in the standard's three kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 address (from any of its spellings).
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
    /// A domain name, lowercase ASCII.
    Domain(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(ip) => write!(f, "{ip}"),
            Host::Ipv6(ip) => write!(f, "[{ip}]"),
            Host::Domain(d) => f.write_str(d),
        }
    }
}

/// Where an http(s) URL sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `https:` rather than `http:`.
    pub https: bool,
    /// The host, as the standard's parser reads it.
    pub host: Host,
    /// The port, when the URL names one.
    pub port: Option<u16>,
}

impl Destination {
    /// Why this destination is not public (a range's name), or `None` when it is. A domain name
    /// is public unless it is `localhost` or under it: what a name resolves to is not known
    /// here.
    pub fn non_public(&self) -> Option<String> {
        match &self.host {
            Host::Ipv4(ip) => ipv4_range(*ip).map(str::to_owned),
            Host::Ipv6(ip) => ipv6_range(*ip),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                (name == "localhost" || name.ends_with(".localhost"))
                    .then(|| "localhost (RFC 6761)".to_owned())
            }
        }
    }
}

/// Parses an http(s) URL's scheme, host and port as the URL Standard does, refusing user
/// names and passwords and everything listed in [`DestinationError`].
pub fn parse(url: &str) -> Result<Destination, DestinationError> {
    if url.len() > MAX_URL_LEN {
        return Err(DestinationError::TooLong);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DestinationError::Whitespace);
    }
    let (scheme, rest) = url.split_once(':').ok_or(DestinationError::Scheme)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(DestinationError::Scheme),
    };
    // For http(s) the standard skips any run of `/` and `\` after the scheme ("special
    // authority ignore slashes state"): `http:\\host` and `http:host` name `host` too.
    let rest = rest.trim_start_matches(['/', '\\']);
    // The authority ends at the first of these ("authority state", special schemes).
    let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(DestinationError::Userinfo);
    }
    let (host, port) = split_port(authority)?;
    if host.is_empty() {
        return Err(DestinationError::EmptyHost);
    }
    Ok(Destination {
        https,
        host: parse_host(host)?,
        port,
    })
}

/// Parses `url` and, unless `allow_private`, refuses a destination that is not public.
pub fn check(url: &str, allow_private: bool) -> Result<Destination, DestinationError> {
    let dest = parse(url)?;
    if !allow_private {
        if let Some(range) = dest.non_public() {
            let host = host_part(url);
            let read = dest.host.to_string();
            let host = if host.eq_ignore_ascii_case(&read) {
                read
            } else {
                format!("{host} ({read})")
            };
            return Err(DestinationError::NotPublic { host, range });
        }
    }
    Ok(dest)
}

/// The host as written in `url` (for messages; `url` has parsed).
fn host_part(url: &str) -> &str {
    let rest = url.split_once(':').map_or("", |(_, r)| r);
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
    split_port(authority).map_or(authority, |(host, _)| host)
}

/// Splits an authority (without user info) into host and port ("host state", "port state").
fn split_port(authority: &str) -> Result<(&str, Option<u16>), DestinationError> {
    let (host, port) = if authority.starts_with('[') {
        // A `:` inside brackets belongs to the IPv6 address.
        match authority.find(']') {
            Some(end) => {
                let (host, after) = authority.split_at(end + 1);
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => {
                        return Err(DestinationError::InvalidHost {
                            host: authority.to_owned(),
                            why: "text after the closing bracket",
                        })
                    }
                }
            }
            None => (authority, None),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(digits) => {
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DestinationError::InvalidPort);
            }
            // Leading zeros are allowed: `:0080` is port 80.
            let value = digits
                .bytes()
                .try_fold(0u32, |n, d| {
                    let n = n * 10 + u32::from(d - b'0');
                    (n <= u32::from(u16::MAX)).then_some(n)
                })
                .ok_or(DestinationError::InvalidPort)?;
            Some(value as u16)
        }
    };
    Ok((host, port))
}

/// The standard's host parser for special schemes
/// (<https://url.spec.whatwg.org/#concept-host-parser>).
fn parse_host(input: &str) -> Result<Host, DestinationError> {
    let invalid = |why| DestinationError::InvalidHost {
        host: input.to_owned(),
        why,
    };
    if let Some(inner) = input.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| invalid("unclosed bracket"))?;
        return parse_ipv6(inner.as_bytes())
            .map(Host::Ipv6)
            .ok_or_else(|| invalid("not an IPv6 address"));
    }
    let decoded = percent_decode(input.as_bytes());
    // The standard maps non-ASCII names through IDNA (UTS #46), which turns full-width digits
    // and ideographic full stops into ASCII ones: `１２７。０。０。１` is 127.0.0.1. Without
    // that mapping here, such names are refused rather than read differently.
    if !decoded.is_ascii() {
        return Err(DestinationError::NonAsciiHost(input.to_owned()));
    }
    // ASCII, so a byte is a character; IDNA lowercases ASCII names.
    let domain: String = decoded
        .iter()
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    if domain.chars().any(forbidden_in_domain) {
        return Err(invalid("a character no host may hold"));
    }
    if ends_in_a_number(&domain) {
        return parse_ipv4(&domain)
            .map(Host::Ipv4)
            .ok_or_else(|| invalid("ends in a number but is not an IPv4 address"));
    }
    if domain.trim_end_matches('.').is_empty() {
        return Err(invalid("no name before the dot"));
    }
    Ok(Host::Domain(domain))
}

/// A "forbidden domain code point" of the standard.
fn forbidden_in_domain(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            ' ' | '#' | '%' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|'
        )
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            if let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// The standard's "ends in a number checker"
/// (<https://url.spec.whatwg.org/#ends-in-a-number-checker>).
fn ends_in_a_number(domain: &str) -> bool {
    let mut parts: Vec<&str> = domain.split('.').collect();
    if parts.last() == Some(&"") {
        if parts.len() == 1 {
            return false;
        }
        parts.pop();
    }
    let last = parts.last().copied().unwrap_or("");
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())) || ipv4_number(last).is_some()
}

/// The standard's "IPv4 number parser": `0x` for hex, a leading `0` for octal, else decimal;
/// `0x` alone is 0. Values too large for a u64 saturate (every caller refuses them).
fn ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if part.len() >= 2 && (part.starts_with("0x") || part.starts_with("0X")) {
        (&part[2..], 16)
    } else if part.len() >= 2 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    digits.chars().try_fold(0u64, |n, c| {
        let d = c.to_digit(radix)?;
        Some(
            n.saturating_mul(u64::from(radix))
                .saturating_add(u64::from(d)),
        )
    })
}

/// The standard's IPv4 parser (<https://url.spec.whatwg.org/#concept-ipv4-parser>): up to four
/// parts, each a number as [`ipv4_number`] reads it; every part but the last is one byte, the
/// last fills the bytes that remain (`127.1` is 127.0.0.1, `2130706433` is 127.0.0.1).
fn parse_ipv4(domain: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<&str> = domain.split('.').collect();
    if parts.last() == Some(&"") && parts.len() > 1 {
        parts.pop();
    }
    if parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| ipv4_number(p))
        .collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    if *last >= 256u64.pow(5 - numbers.len() as u32) {
        return None;
    }
    let mut address = *last;
    for (i, n) in init.iter().enumerate() {
        address += n * 256u64.pow(3 - i as u32);
    }
    Some(Ipv4Addr::from(address as u32))
}

/// The standard's IPv6 parser (<https://url.spec.whatwg.org/#concept-ipv6-parser>): hex
/// pieces, one `::`, and a dotted-decimal IPv4 address at the end; no zone identifiers.
fn parse_ipv6(input: &[u8]) -> Option<Ipv6Addr> {
    let mut address = [0u16; 8];
    let mut piece = 0usize;
    let mut compress: Option<usize> = None;
    let mut p = 0usize;
    let at = |i: usize| input.get(i).copied();
    if at(p) == Some(b':') {
        if at(p + 1) != Some(b':') {
            return None;
        }
        p += 2;
        piece += 1;
        compress = Some(piece);
    }
    while at(p).is_some() {
        if piece == 8 {
            return None;
        }
        if at(p) == Some(b':') {
            if compress.is_some() {
                return None;
            }
            p += 1;
            piece += 1;
            compress = Some(piece);
            continue;
        }
        let (mut value, mut length) = (0u16, 0usize);
        while length < 4 {
            match at(p).and_then(|c| char::from(c).to_digit(16)) {
                Some(d) => {
                    value = value * 16 + d as u16;
                    p += 1;
                    length += 1;
                }
                None => break,
            }
        }
        if at(p) == Some(b'.') {
            if length == 0 {
                return None;
            }
            p -= length;
            if piece > 6 {
                return None;
            }
            let mut numbers_seen = 0;
            while at(p).is_some() {
                if numbers_seen > 0 {
                    if at(p) == Some(b'.') && numbers_seen < 4 {
                        p += 1;
                    } else {
                        return None;
                    }
                }
                if !at(p).is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
                let mut v4_piece: Option<u16> = None;
                while let Some(c) = at(p).filter(u8::is_ascii_digit) {
                    let n = u16::from(c - b'0');
                    v4_piece = match v4_piece {
                        None => Some(n),
                        // A leading zero is not allowed in the dotted part.
                        Some(0) => return None,
                        Some(v) => Some(v * 10 + n),
                    };
                    if v4_piece > Some(255) {
                        return None;
                    }
                    p += 1;
                }
                address[piece] = address[piece] * 0x100 + v4_piece.unwrap_or(0);
                numbers_seen += 1;
                if numbers_seen == 2 || numbers_seen == 4 {
                    piece += 1;
                }
            }
            if numbers_seen != 4 {
                return None;
            }
            break;
        } else if at(p) == Some(b':') {
            p += 1;
            at(p)?;
        } else if at(p).is_some() {
            return None;
        }
        address[piece] = value;
        piece += 1;
    }
    if let Some(compress) = compress {
        let mut swaps = piece - compress;
        piece = 7;
        while piece != 0 && swaps > 0 {
            address.swap(piece, compress + swaps - 1);
            piece -= 1;
            swaps -= 1;
        }
    } else if piece != 8 {
        return None;
    }
    Some(Ipv6Addr::from(address))
}

/// IPv4 ranges that are not public: the IANA special-purpose registry's ranges that are not
/// globally reachable, multicast and the reserved 240/4
/// (<https://www.iana.org/assignments/iana-ipv4-special-registry>). More specific first.
const IPV4_RANGES: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 32, "the unspecified address (0.0.0.0)"),
    ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address space, carrier-grade NAT (100.64.0.0/10)",
    ),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    (
        [192, 88, 99, 0],
        24,
        "deprecated 6to4 relay anycast (192.88.99.0/24)",
    ),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    (
        [255, 255, 255, 255],
        32,
        "the broadcast address (255.255.255.255)",
    ),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

/// The non-public range `ip` is in, or `None` for a public address.
pub fn ipv4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let ip = u32::from(ip);
    IPV4_RANGES.iter().find_map(|(net, len, name)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        (ip & mask == u32::from_be_bytes(*net)).then_some(*name)
    })
}

/// The non-public range `ip` is in, or `None` for a public address. Only global unicast
/// (2000::/3) is public, less its special ranges; addresses that embed an IPv4 address
/// (IPv4-mapped, NAT64, 6to4) are public when that address is.
pub fn ipv6_range(ip: Ipv6Addr) -> Option<String> {
    let s = ip.segments();
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| bits >> (128 - len) == net >> (128 - len);
    let embedded =
        |v4: Ipv4Addr, what: &str| ipv4_range(v4).map(|range| format!("{what} of {v4}, {range}"));
    if ip.is_unspecified() {
        return Some("the unspecified address (::)".into());
    }
    if ip.is_loopback() {
        return Some("loopback (::1)".into());
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded(v4, "an IPv4-mapped address (::ffff:0:0/96)");
    }
    if s[..6] == [0; 6] {
        return Some("a deprecated IPv4-compatible address (::/96)".into());
    }
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if within(0x0064_ff9b << 96, 96) {
        return embedded(low_v4, "a NAT64 address (64:ff9b::/96)");
    }
    let ranges: &[(u128, u32, &str)] = &[
        (
            0x0064_ff9b_0001 << 80,
            48,
            "local-use NAT64 (64:ff9b:1::/48)",
        ),
        (0x0100 << 112, 64, "discard-only (100::/64)"),
        (0x2001_0db8 << 96, 32, "documentation (2001:db8::/32)"),
        (
            0x2001 << 112,
            23,
            "IETF protocol assignments, Teredo included (2001::/23)",
        ),
        (0x3fff << 112, 20, "documentation (3fff::/20)"),
        (0xfc00 << 112, 7, "unique local (fc00::/7)"),
        (0xfe80 << 112, 10, "link-local (fe80::/10)"),
        (0xfec0 << 112, 10, "deprecated site-local (fec0::/10)"),
        (0xff00 << 112, 8, "multicast (ff00::/8)"),
    ];
    if let Some((_, _, name)) = ranges.iter().find(|(net, len, _)| within(*net, *len)) {
        return Some((*name).into());
    }
    if within(0x2002 << 112, 16) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return embedded(v4, "a 6to4 address (2002::/16)");
    }
    if !within(0x2000 << 112, 3) {
        return Some("reserved (outside global unicast, 2000::/3)".into());
    }
    None
}

#[cfg(test)]
mod tests;
