//! Signed links: a URL that reads one version of an asset (its content, or a preview of it)
//! until it expires, without an `Authorization` header — for `<img src>` and downloads. The
//! signature is HMAC-SHA-256, under a key derived from the server's token secret, over
//! everything the link can do: project, asset, version, what it serves, and its expiry.

use crate::codec::base64url;

/// What a link serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serves {
    /// The content (inline, or as an attachment).
    Content {
        /// `Content-Disposition: attachment`.
        download: bool,
    },
    /// A preview of this width and format.
    Preview {
        /// Width.
        width: u32,
        /// Format name.
        format: &'static str,
    },
}

/// One signed link's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<'a> {
    /// The project.
    pub project: &'a str,
    /// The asset.
    pub asset: &'a str,
    /// The version.
    pub version: u64,
    /// What it serves.
    pub serves: Serves,
    /// Unix seconds after which it is refused.
    pub expires: u64,
}

impl Link<'_> {
    fn message(&self) -> String {
        let serves = match &self.serves {
            Serves::Content { download: false } => "content".to_owned(),
            Serves::Content { download: true } => "download".to_owned(),
            Serves::Preview { width, format } => format!("preview:{width}:{format}"),
        };
        format!(
            "tandemx-asset-link\n{}\n{}\n{}\n{serves}\n{}",
            self.project, self.asset, self.version, self.expires
        )
    }

    /// The signature, URL-safe base64.
    pub fn sign(&self, secret: &[u8]) -> String {
        let key = hmac_sha256::HMAC::mac(b"tandemx asset link key", secret);
        base64url(&hmac_sha256::HMAC::mac(self.message().as_bytes(), key))
    }

    /// Whether `sig` is this link's signature and the link has not expired at `now` (secs).
    pub fn verify(&self, secret: &[u8], sig: &str, now: u64) -> bool {
        let want = self.sign(secret);
        // Constant time in the signature's bytes.
        let same = want.len() == sig.len()
            && want
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same && now <= self.expires
    }
}
