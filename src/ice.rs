//! ICE servers for calls (docs/calls.md): STUN URLs from configuration, and short-lived TURN
//! credentials, either by the TURN REST API's shared secret (coturn's `use-auth-secret`:
//! username `<expiry>:<user>`, credential base64(HMAC-SHA1(secret, username))) or from
//! Cloudflare's TURN service, whose answer is checked here before it is passed on.

use crate::codec::base64;
use serde::{Deserialize, Serialize};

/// Default STUN server (Cloudflare's, free and anycast).
pub const DEFAULT_STUN: &str = "stun:stun.cloudflare.com:3478";
/// Default lifetime of TURN credentials, in seconds.
pub const DEFAULT_TTL_SECONDS: u64 = 3_600;
/// Shortest and longest lifetime a configuration may set.
pub const TTL_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;
/// At most this many URLs in one list, each at most [`MAX_URL_CHARS`].
pub const MAX_URLS: usize = 16;
/// Longest ICE server URL.
pub const MAX_URL_CHARS: usize = 256;
/// At most this many servers taken from Cloudflare's answer.
pub const MAX_SERVERS: usize = 8;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Whether `url` is a STUN or TURN URL (RFC 7064, 7065) a browser takes: the scheme, then
/// printable ASCII without spaces.
fn is_ice_url(url: &str, schemes: &[&str]) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    schemes.contains(&scheme)
        && !rest.is_empty()
        && url.len() <= MAX_URL_CHARS
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// A comma-separated list of URLs with one of `schemes` (configuration; empty: none).
pub fn parse_urls(list: &str, schemes: &[&str]) -> Result<Vec<String>, String> {
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.len() > MAX_URLS {
        return Err(format!("at most {MAX_URLS} URLs"));
    }
    match urls.iter().find(|u| !is_ice_url(u, schemes)) {
        Some(bad) => Err(format!("{bad:?} is not a {} URL", schemes.join("/"))),
        None => Ok(urls),
    }
}

/// STUN URLs.
pub fn parse_stun(list: &str) -> Result<Vec<String>, String> {
    parse_urls(list, &["stun", "stuns"])
}

/// TURN URLs.
pub fn parse_turn(list: &str) -> Result<Vec<String>, String> {
    parse_urls(list, &["turn", "turns"])
}

/// TURN REST API credentials for `user` until `expires_s` (unix seconds), for a server that
/// shares `secret` (coturn `static-auth-secret`).
pub fn turn_rest(secret: &[u8], urls: Vec<String>, user: &str, expires_s: u64) -> IceServer {
    // The username is the expiry and a label; a label keeps to characters every TURN server
    // takes (the user id is hashed when it has others).
    let label: String = if user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        && user.len() <= 64
    {
        user.to_owned()
    } else {
        crate::codec::hex(&hmac_sha256::Hash::hash(user.as_bytes())[..12])
    };
    let username = format!("{expires_s}:{label}");
    let credential = base64(&hmac_sha1_compact::HMAC::mac(username.as_bytes(), secret));
    IceServer {
        urls,
        username: Some(username),
        credential: Some(credential),
    }
}

/// The `iceServers` of Cloudflare's `generate-ice-servers` answer, checked: a list of at most
/// [`MAX_SERVERS`] servers with STUN/TURN URLs and string credentials.
pub fn parse_cloudflare(body: &str) -> Result<Vec<IceServer>, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
    }
    let answer: Answer = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if answer.ice_servers.is_empty() || answer.ice_servers.len() > MAX_SERVERS {
        return Err(format!("1 to {MAX_SERVERS} servers"));
    }
    for server in &answer.ice_servers {
        let schemes = ["stun", "stuns", "turn", "turns"];
        if server.urls.is_empty()
            || server.urls.len() > MAX_URLS
            || !server.urls.iter().all(|u| is_ice_url(u, &schemes))
        {
            return Err("a server's urls are STUN or TURN URLs".into());
        }
        let short = |s: &Option<String>| s.as_ref().is_none_or(|s| s.len() <= 512);
        if !short(&server.username) || !short(&server.credential) {
            return Err("credentials are at most 512 bytes".into());
        }
    }
    Ok(answer.ice_servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_are_checked() {
        assert_eq!(
            parse_stun(" stun:a.example:3478, stuns:b.example ,").unwrap(),
            vec!["stun:a.example:3478", "stuns:b.example"]
        );
        assert!(parse_stun("").unwrap().is_empty());
        for bad in ["http://x", "turn:x", "stun:", "stun:a b", "stun:\u{e9}"] {
            assert!(parse_stun(bad).is_err(), "{bad}");
        }
        assert!(parse_turn("turn:t.example:3478?transport=udp,turns:t.example:5349").is_ok());
        let many = vec!["stun:x"; MAX_URLS + 1].join(",");
        assert!(parse_stun(&many).is_err());
    }

    #[test]
    fn turn_rest_credentials_are_those_coturn_checks() {
        // coturn: credential = base64(hmac-sha1(static-auth-secret, "<expiry>:<user>")).
        let server = turn_rest(b"north", vec!["turn:t:3478".into()], "ada", 1_700_000_000);
        assert_eq!(server.username.as_deref(), Some("1700000000:ada"));
        // HMAC-SHA1 of the username under the key, computed independently:
        // printf '1700000000:ada' | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(
            server.credential.as_deref(),
            Some("ndZ88ryT1whVxdkcRLepT9D1MpM=")
        );
        // A user id with other characters becomes a hash.
        let odd = turn_rest(b"k", vec![], "a:b c", 5);
        let name = odd.username.unwrap();
        assert!(name.starts_with("5:") && name.len() == 2 + 24, "{name}");
    }

    #[test]
    fn cloudflare_answers_are_checked() {
        let good = r#"{"iceServers":[{"urls":["stun:stun.cloudflare.com:3478"]},
            {"urls":["turn:turn.cloudflare.com:3478?transport=udp"],"username":"u","credential":"c"}]}"#;
        let servers = parse_cloudflare(good).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        for bad in [
            r#"{"iceServers":[]}"#,
            r#"{"iceServers":[{"urls":["http://evil"]}]}"#,
            r#"{"iceServers":[{"urls":[]}]}"#,
            r#"{"iceServers":[{"urls":["stun:x"],"extra":1}]}"#,
            r#"{"iceServers":{"urls":["stun:x"]}}"#,
            "not json",
        ] {
            assert!(parse_cloudflare(bad).is_err(), "{bad}");
        }
    }
}
