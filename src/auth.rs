//! Roles, API keys and room tokens. Pure: time and randomness come in as arguments.
//!
//! Room tokens are JWTs. Tokens TandemX mints are HS256 with the server's `TOKEN_SECRET`; a
//! project may also register public keys (EdDSA or ES256) so its own backend signs tokens. The
//! algorithm is fixed by the key that verifies a token; `none` is never accepted (jwt-simple has
//! no such algorithm).

use crate::codec::hex;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Issuer of tokens minted by this server.
pub const ISSUER: &str = "tandemx";
/// Lifetime of a token when the request names none.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
/// Longest lifetime a token may be minted with.
pub const MAX_TTL_SECONDS: u64 = 24 * 3600;
/// Clock skew tolerated when checking `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_SECONDS: u64 = 30;
/// Longest token accepted (bytes), far above any real token; bounds parsing work.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Prefix of every API key secret, so leaked keys are easy to recognise.
pub const API_KEY_PREFIX: &str = "tx_";

/// A member's or a credential's power in a project, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the document and sees presence.
    Viewer,
    /// As viewer for the document; may comment (comments arrive later).
    Commenter,
    /// Reads and writes the document.
    Editor,
    /// Editor, and manages members and keys.
    Owner,
}

impl Role {
    /// Whether this role may change a document.
    pub fn can_write(self) -> bool {
        self >= Role::Editor
    }

    /// Parses a lowercase role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "commenter" => Some(Role::Commenter),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Commenter => "commenter",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TandemX claims of a room token, beside the registered ones (`sub`, `exp`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// Project id.
    pub prj: String,
    /// Room name, or a prefix ending in `*` (`*` alone: every room of the project).
    pub room: String,
    /// Role in the room.
    pub role: Role,
    /// Display name for presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Display colour for presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Id of the API key that minted the token; revoking the key revokes its tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A token that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user (`sub`).
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// The token's id (`jti`), by which it can be revoked. Every token this server mints has
    /// one; a project's own signer may give one.
    pub jti: Option<String>,
    /// The TandemX claims.
    pub claims: RoomClaims,
    /// Id of the project signing key that verified it, for tokens a project signed itself.
    pub signing_key: Option<String>,
}

/// Why a credential was refused. Each maps to a status and a stable problem type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credential was presented.
    #[error("a credential is required")]
    Missing,
    /// The credential is not well formed.
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("the token signature does not verify")]
    BadSignature,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf` or `iat` in the future).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token's algorithm is not the one of the key that must verify it.
    #[error("the token's algorithm does not match its key")]
    WrongAlgorithm,
    /// The token names a signing key the project does not have.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token is for another project.
    #[error("the token is for another project")]
    WrongProject,
    /// The token is for another room.
    #[error("the token is for another room")]
    WrongRoom,
    /// The key that minted the token (or the signing key) was revoked.
    #[error("the credential was revoked")]
    Revoked,
    /// The project was deleted.
    #[error("the project was deleted")]
    ProjectDeleted,
    /// The user was removed from the project: tokens made for them no longer admit them.
    #[error("the user was removed from the project")]
    MemberRemoved,
    /// The credential is valid but its role is too low for the action.
    #[error("requires the {required} role; the credential has {held}")]
    Forbidden {
        /// Role the action needs.
        required: Role,
        /// Role the credential holds.
        held: Role,
    },
}

/// A request to mint a room token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The user the token is for.
    pub sub: String,
    /// Room name or prefix ending in `*`.
    pub room: String,
    /// Role; defaults to the member's role, or the key's ceiling for non-members.
    #[serde(default)]
    pub role: Option<Role>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Display colour.
    #[serde(default)]
    pub color: Option<String>,
    /// Lifetime in seconds (default [`DEFAULT_TTL_SECONDS`], at most [`MAX_TTL_SECONDS`]).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// Why a token could not be minted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MintError {
    /// A field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The requested role exceeds what the key (or the user's membership) allows.
    #[error("cannot mint a {requested} token: the limit is {limit}")]
    AboveCeiling {
        /// Role asked for.
        requested: Role,
        /// Highest role allowed.
        limit: Role,
    },
    /// The user was removed from the project; add them again to mint tokens for them.
    #[error(
        "{0:?} was removed from the project; add them as a member again to mint tokens for them"
    )]
    Removed(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A user's standing in a project, as its members record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Never a member: tokens give what the key that minted them allowed.
    None,
    /// A member with this role: no token gives them more.
    Member(Role),
    /// Removed: no token admits them until they are added again.
    Removed,
}

/// The role a connection (or an API call with a room token) gets: the token's, capped by the
/// user's membership; a removed member is refused. Checked at every admission, so removing or
/// downgrading a member holds for tokens minted before.
pub fn connection_role(token_role: Role, membership: Membership) -> Result<Role, AuthError> {
    match membership {
        Membership::None => Ok(token_role),
        Membership::Member(role) => Ok(token_role.min(role)),
        Membership::Removed => Err(AuthError::MemberRemoved),
    }
}

/// Checks a user id: 1 to 256 printable characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts them; not bytes).
pub fn validate_sub(sub: &str) -> Result<(), String> {
    if sub.is_empty() || sub.chars().count() > 256 || sub.chars().any(char::is_control) {
        return Err("sub must be 1 to 256 printable characters".into());
    }
    Ok(())
}

/// Checks a room pattern: a room name, a prefix ending in `*`, or `*`.
pub fn validate_room_pattern(room: &str) -> Result<(), String> {
    let name = room.strip_suffix('*').unwrap_or(room);
    if name.is_empty() && room == "*" {
        return Ok(());
    }
    crate::names::RoomName::parse(name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether a token's room pattern admits `room`.
pub fn room_matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

/// The role a token gets: the requested one, capped by the key's ceiling and, for members, by
/// their membership. Without a request: the member's role, or the ceiling for non-members.
pub fn granted_role(
    requested: Option<Role>,
    ceiling: Role,
    member: Membership,
    sub: &str,
) -> Result<Role, MintError> {
    let limit = match member {
        Membership::None => ceiling,
        Membership::Member(m) => m.min(ceiling),
        Membership::Removed => return Err(MintError::Removed(sub.to_owned())),
    };
    let role = requested.unwrap_or(limit);
    if role > limit {
        return Err(MintError::AboveCeiling {
            requested: role,
            limit,
        });
    }
    Ok(role)
}

/// Mints an HS256 room token for `project`, on behalf of API key `key_id` (`None`: the admin
/// or the development sign-in), with the id `jti` by which it can be revoked.
pub fn mint(
    secret: &HS256Key,
    project: &str,
    key_id: Option<&str>,
    role: Role,
    req: &TokenRequest,
    jti: &str,
    now: u64,
) -> Result<(String, u64), MintError> {
    validate_sub(&req.sub).map_err(MintError::Invalid)?;
    validate_room_pattern(&req.room).map_err(MintError::Invalid)?;
    for (field, value) in [("name", &req.name), ("color", &req.color)] {
        if value.as_ref().is_some_and(|v| v.len() > 128) {
            return Err(MintError::Invalid(format!(
                "{field} is longer than 128 bytes"
            )));
        }
    }
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(MintError::Invalid(format!(
            "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}"
        )));
    }
    let exp = now.saturating_add(ttl);
    let claims = JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(now)),
        expires_at: Some(UnixTimeStamp::from_secs(exp)),
        invalid_before: Some(UnixTimeStamp::from_secs(now)),
        issuer: Some(ISSUER.to_owned()),
        subject: Some(req.sub.clone()),
        audiences: None,
        jwt_id: Some(jti.to_owned()),
        nonce: None,
        custom: RoomClaims {
            prj: project.to_owned(),
            room: req.room.clone(),
            role,
            name: req.name.clone(),
            color: req.color.clone(),
            key: key_id.map(str::to_owned),
        },
    };
    let token = secret
        .authenticate(claims)
        .map_err(|e| MintError::Signing(e.to_string()))?;
    Ok((token, exp))
}

/// The key a token must be verified with, chosen from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// HS256: minted by this server.
    Server,
    /// EdDSA or ES256 with a key id: signed by a project's own backend.
    Project {
        /// The `kid` header.
        kid: String,
        /// The `alg` header.
        alg: String,
    },
}

/// Reads a token's header (unverified) to learn which key must verify it.
pub fn token_kind(token: &str) -> Result<TokenKind, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Malformed("token too long".into()));
    }
    let meta = Token::decode_metadata(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
    match meta.algorithm() {
        "HS256" => Ok(TokenKind::Server),
        alg @ ("EdDSA" | "ES256") => Ok(TokenKind::Project {
            kid: meta
                .key_id()
                .ok_or_else(|| AuthError::Malformed("a project-signed token needs a kid".into()))?
                .to_owned(),
            alg: alg.to_owned(),
        }),
        other => Err(AuthError::Malformed(format!(
            "unsupported algorithm {other:?}"
        ))),
    }
}

/// A project's registered public key.
#[derive(Debug, Clone)]
pub enum ProjectKey {
    /// Ed25519.
    EdDSA(Ed25519PublicKey),
    /// P-256.
    ES256(ES256PublicKey),
}

impl ProjectKey {
    /// Parses a PEM public key for `alg` (`EdDSA` or `ES256`).
    pub fn from_pem(alg: &str, pem: &str) -> Result<ProjectKey, String> {
        match alg {
            "EdDSA" => Ed25519PublicKey::from_pem(pem)
                .map(ProjectKey::EdDSA)
                .map_err(|e| format!("not an Ed25519 public key in PEM: {e}")),
            "ES256" => ES256PublicKey::from_pem(pem)
                .map(ProjectKey::ES256)
                .map_err(|e| format!("not a P-256 public key in PEM: {e}")),
            other => Err(format!("alg must be EdDSA or ES256, not {other:?}")),
        }
    }

    /// The algorithm name.
    pub fn alg(&self) -> &'static str {
        match self {
            ProjectKey::EdDSA(_) => "EdDSA",
            ProjectKey::ES256(_) => "ES256",
        }
    }
}

/// The key that verifies a token.
pub enum Verifier<'a> {
    /// The server's HS256 secret.
    Server(&'a HS256Key),
    /// A project's public key, with its id and the project it belongs to.
    Project {
        /// The key.
        key: &'a ProjectKey,
        /// Its id (`kid`).
        kid: &'a str,
        /// The project that registered it.
        project: &'a str,
    },
}

fn options(now: u64) -> VerificationOptions {
    VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECONDS)),
        max_token_length: Some(MAX_TOKEN_BYTES),
        ..Default::default()
    }
}

fn map_jwt_error(e: jwt_simple::Error) -> AuthError {
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => AuthError::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => AuthError::NotYetValid,
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
            AuthError::BadSignature
        }
        Some(JWTError::AlgorithmMismatch) => AuthError::WrongAlgorithm,
        _ => match e.to_string() {
            s if s.contains("signature") => AuthError::BadSignature,
            s => AuthError::Malformed(s),
        },
    }
}

/// Verifies a room token for `room` at `now`: signature, algorithm, time and room. Whether the
/// project exists and the minting key is unrevoked is checked by the caller against D1.
pub fn verify(
    token: &str,
    verifier: Verifier<'_>,
    room: &str,
    now: u64,
) -> Result<VerifiedToken, AuthError> {
    verify_for(token, verifier, Some(room), now)
}

/// Verifies a room token as [`verify`] does, for `room`, or with `None` for its project as a
/// whole (the routes of one user across a project: the inbox, the activity feed), whatever
/// rooms it names.
pub fn verify_for(
    token: &str,
    verifier: Verifier<'_>,
    room: Option<&str>,
    now: u64,
) -> Result<VerifiedToken, AuthError> {
    let opts = Some(options(now));
    let (claims, signing_key) = match verifier {
        Verifier::Server(key) => (
            key.verify_token::<RoomClaims>(token, opts)
                .map_err(map_jwt_error)?,
            None,
        ),
        Verifier::Project { key, kid, project } => {
            let claims = match key {
                ProjectKey::EdDSA(k) => k.verify_token::<RoomClaims>(token, opts),
                ProjectKey::ES256(k) => k.verify_token::<RoomClaims>(token, opts),
            }
            .map_err(map_jwt_error)?;
            if claims.custom.prj != project {
                return Err(AuthError::WrongProject);
            }
            (claims, Some(kid.to_owned()))
        }
    };
    let exp = claims
        .expires_at
        .ok_or_else(|| AuthError::Malformed("the token has no exp".into()))?
        .as_secs();
    // Skew is tolerated for `nbf` and `iat` (another machine's clock may run ahead), not for
    // `exp`: rooms close connections at `exp`, so reconnecting must fail from then on too.
    if now >= exp {
        return Err(AuthError::Expired);
    }
    // Every token lives at most as long as a minted one may: a project's own signer cannot
    // issue a credential that outlives revocation checks by months.
    if exp > now.saturating_add(MAX_TTL_SECONDS + CLOCK_SKEW_SECONDS) {
        return Err(AuthError::Malformed(format!(
            "the token expires more than {MAX_TTL_SECONDS} seconds from now"
        )));
    }
    // A token's id must be one the revocation route can name.
    let jti = match claims.jwt_id {
        Some(jti) => Some(
            crate::names::Id::parse("jti", &jti)
                .map_err(|e| AuthError::Malformed(format!("the token's {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let sub = claims
        .subject
        .filter(|s| validate_sub(s).is_ok())
        .ok_or_else(|| AuthError::Malformed("the token has no valid sub".into()))?;
    if room.is_some_and(|room| !room_matches(&claims.custom.room, room)) {
        return Err(AuthError::WrongRoom);
    }
    Ok(VerifiedToken {
        sub,
        exp,
        jti,
        claims: claims.custom,
        signing_key,
    })
}

/// A parsed API key: `tx_<id>_<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySecret {
    /// Public id, stored in clear.
    pub id: String,
    /// Secret part, stored only as a hash.
    pub secret: String,
}

impl ApiKeySecret {
    /// Makes a new key from 40 random bytes (8 for the id, 32 for the secret).
    pub fn generate(random: &[u8; 40]) -> ApiKeySecret {
        ApiKeySecret {
            id: format!("key_{}", hex(&random[..8])),
            secret: hex(&random[8..]),
        }
    }

    /// Parses the string form.
    pub fn parse(s: &str) -> Result<ApiKeySecret, AuthError> {
        let rest = s
            .strip_prefix(API_KEY_PREFIX)
            .ok_or_else(|| AuthError::Malformed("not a TandemX API key".into()))?;
        let (id, secret) = rest
            .rsplit_once('_')
            .ok_or_else(|| AuthError::Malformed("not a TandemX API key".into()))?;
        let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        match id.strip_prefix("key_") {
            Some(h) if hexish(h, 16) && hexish(secret, 64) => Ok(ApiKeySecret {
                id: id.to_owned(),
                secret: secret.to_owned(),
            }),
            _ => Err(AuthError::Malformed("not a TandemX API key".into())),
        }
    }

    /// The string handed to the user, once.
    pub fn to_token(&self) -> String {
        format!("{API_KEY_PREFIX}{}_{}", self.id, self.secret)
    }

    /// The hash stored at rest (SHA-256, hex). Keys carry 256 random bits, so a fast hash is
    /// enough: there is nothing to brute-force.
    pub fn hash(&self) -> String {
        hex(&hmac_sha256::Hash::hash(self.secret.as_bytes()))
    }

    /// Whether `stored_hash` is this key's hash, compared in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        let ours = self.hash();
        ours.len() == stored_hash.len()
            && ours
                .bytes()
                .zip(stored_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Compares a presented admin secret with the configured one in constant time.
pub fn admin_matches(presented: &str, configured: &str) -> bool {
    let (a, b) = (
        hmac_sha256::Hash::hash(presented.as_bytes()),
        hmac_sha256::Hash::hash(configured.as_bytes()),
    );
    !configured.is_empty()
        && a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn secret() -> HS256Key {
        HS256Key::from_bytes(b"a test secret of enough length")
    }

    fn req(room: &str) -> TokenRequest {
        TokenRequest {
            sub: "ada".into(),
            room: room.into(),
            role: None,
            name: Some("Ada".into()),
            color: None,
            ttl_seconds: None,
        }
    }

    #[test]
    fn roles_are_ordered_and_only_editors_write() {
        assert!(Role::Viewer < Role::Commenter && Role::Editor < Role::Owner);
        assert!(!Role::Commenter.can_write() && Role::Editor.can_write());
        assert_eq!(Role::parse("owner"), Some(Role::Owner));
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn membership_caps_and_removal_refuses_at_every_admission() {
        assert_eq!(
            connection_role(Role::Owner, Membership::None),
            Ok(Role::Owner)
        );
        assert_eq!(
            connection_role(Role::Owner, Membership::Member(Role::Viewer)),
            Ok(Role::Viewer)
        );
        assert_eq!(
            connection_role(Role::Viewer, Membership::Member(Role::Owner)),
            Ok(Role::Viewer)
        );
        assert_eq!(
            connection_role(Role::Editor, Membership::Removed),
            Err(AuthError::MemberRemoved)
        );
        // A removed member gets no token at all, not the key's ceiling.
        assert_eq!(
            granted_role(None, Role::Owner, Membership::Removed, "ada"),
            Err(MintError::Removed("ada".into()))
        );
    }

    #[test]
    fn tokens_that_outlive_a_day_are_refused_whoever_signed_them() {
        let claims = |exp: u64| JWTClaims {
            issued_at: Some(UnixTimeStamp::from_secs(NOW)),
            expires_at: Some(UnixTimeStamp::from_secs(exp)),
            invalid_before: None,
            issuer: None,
            subject: Some("ada".into()),
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom: RoomClaims {
                prj: "p".into(),
                room: "*".into(),
                role: Role::Editor,
                name: None,
                color: None,
                key: None,
            },
        };
        let ok = secret()
            .authenticate(claims(NOW + MAX_TTL_SECONDS))
            .unwrap();
        assert!(verify(&ok, Verifier::Server(&secret()), "d", NOW).is_ok());
        for exp in [NOW + MAX_TTL_SECONDS + CLOCK_SKEW_SECONDS + 1, u64::MAX / 2] {
            let long = secret().authenticate(claims(exp)).unwrap();
            assert!(
                matches!(
                    verify(&long, Verifier::Server(&secret()), "d", NOW),
                    Err(AuthError::Malformed(_))
                ),
                "exp {exp}"
            );
        }
    }

    #[test]
    fn granted_role_respects_ceiling_and_membership() {
        assert_eq!(
            granted_role(None, Role::Editor, Membership::None, "u"),
            Ok(Role::Editor)
        );
        assert_eq!(
            granted_role(None, Role::Owner, Membership::Member(Role::Viewer), "u"),
            Ok(Role::Viewer)
        );
        assert_eq!(
            granted_role(Some(Role::Owner), Role::Editor, Membership::None, "u"),
            Err(MintError::AboveCeiling {
                requested: Role::Owner,
                limit: Role::Editor
            })
        );
        assert!(granted_role(
            Some(Role::Editor),
            Role::Owner,
            Membership::Member(Role::Commenter),
            "u"
        )
        .is_err());
    }

    #[test]
    fn a_minted_token_verifies_for_its_room_only() {
        let (token, exp) = mint(
            &secret(),
            "prj_1",
            Some("key_1"),
            Role::Editor,
            &req("doc"),
            "jti-1",
            NOW,
        )
        .unwrap();
        assert_eq!(exp, NOW + DEFAULT_TTL_SECONDS);
        assert_eq!(token_kind(&token), Ok(TokenKind::Server));
        let v = verify(&token, Verifier::Server(&secret()), "doc", NOW + 10).unwrap();
        assert_eq!(v.sub, "ada");
        assert_eq!(v.claims.role, Role::Editor);
        assert_eq!(v.claims.key.as_deref(), Some("key_1"));
        assert_eq!(v.jti.as_deref(), Some("jti-1"));
        assert_eq!(
            verify(&token, Verifier::Server(&secret()), "other", NOW),
            Err(AuthError::WrongRoom)
        );
    }

    #[test]
    fn prefix_patterns() {
        assert!(room_matches("*", "anything"));
        assert!(room_matches("team-a:*", "team-a:doc"));
        assert!(!room_matches("team-a:*", "team-b:doc"));
        assert!(!room_matches("doc", "doc2"));
        assert!(validate_room_pattern("*").is_ok());
        assert!(validate_room_pattern("a b*").is_err());
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let (token, exp) =
            mint(&secret(), "p", None, Role::Viewer, &req("d"), "jti-1", NOW).unwrap();
        for late in [exp, exp + CLOCK_SKEW_SECONDS + 1] {
            assert_eq!(
                verify(&token, Verifier::Server(&secret()), "d", late),
                Err(AuthError::Expired)
            );
        }
        assert!(verify(&token, Verifier::Server(&secret()), "d", exp - 1).is_ok());
        let early = NOW - CLOCK_SKEW_SECONDS - 5;
        assert_eq!(
            verify(&token, Verifier::Server(&secret()), "d", early),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let other = HS256Key::from_bytes(b"another secret, also long");
        let (token, _) = mint(&other, "p", None, Role::Owner, &req("d"), "jti-1", NOW).unwrap();
        assert_eq!(
            verify(&token, Verifier::Server(&secret()), "d", NOW),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            token_kind("nonsense"),
            Err(AuthError::Malformed(_))
        ));
        // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZGEifQ.";
        assert!(matches!(token_kind(none), Err(AuthError::Malformed(_))));
        assert!(verify(none, Verifier::Server(&secret()), "d", NOW).is_err());
    }

    #[test]
    fn project_signed_tokens_verify_with_the_registered_key() {
        let pair = Ed25519KeyPair::generate().with_key_id("team-key");
        let pem = pair.public_key().to_pem();
        let key = ProjectKey::from_pem("EdDSA", &pem).unwrap();
        let claims = JWTClaims {
            issued_at: Some(UnixTimeStamp::from_secs(NOW)),
            expires_at: Some(UnixTimeStamp::from_secs(NOW + 60)),
            invalid_before: None,
            issuer: Some("team-backend".into()),
            subject: Some("bea".into()),
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom: RoomClaims {
                prj: "prj_team".into(),
                room: "board".into(),
                role: Role::Editor,
                name: None,
                color: None,
                key: None,
            },
        };
        let token = pair.sign(claims).unwrap();
        assert_eq!(
            token_kind(&token),
            Ok(TokenKind::Project {
                kid: "team-key".into(),
                alg: "EdDSA".into()
            })
        );
        let v = verify(
            &token,
            Verifier::Project {
                key: &key,
                kid: "team-key",
                project: "prj_team",
            },
            "board",
            NOW,
        )
        .unwrap();
        assert_eq!(v.signing_key.as_deref(), Some("team-key"));
        // Registered by another project: refused.
        let wrong = verify(
            &token,
            Verifier::Project {
                key: &key,
                kid: "team-key",
                project: "prj_other",
            },
            "board",
            NOW,
        );
        assert_eq!(wrong, Err(AuthError::WrongProject));
        // A server-secret HS256 check of an EdDSA token fails on the algorithm.
        assert!(verify(&token, Verifier::Server(&secret()), "board", NOW).is_err());
    }

    #[test]
    fn api_keys_round_trip_and_hash() {
        let key = ApiKeySecret::generate(&[9u8; 40]);
        let s = key.to_token();
        assert!(s.starts_with("tx_key_"));
        let parsed = ApiKeySecret::parse(&s).unwrap();
        assert_eq!(parsed, key);
        assert!(parsed.matches(&key.hash()));
        assert!(!parsed.matches(&ApiKeySecret::generate(&[8u8; 40]).hash()));
        for bad in [
            "",
            "tx_",
            "tx_key_zz_00",
            "sk_key_0909090909090909_00",
            &s[..s.len() - 1],
        ] {
            assert!(ApiKeySecret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mint_validates_its_input() {
        let mut r = req("doc");
        r.ttl_seconds = Some(MAX_TTL_SECONDS + 1);
        assert!(matches!(
            mint(&secret(), "p", None, Role::Editor, &r, "j", NOW),
            Err(MintError::Invalid(_))
        ));
        let mut r = req("bad room");
        r.sub = "x".into();
        assert!(mint(&secret(), "p", None, Role::Editor, &r, "j", NOW).is_err());
        let mut r = req("doc");
        r.sub = String::new();
        assert!(mint(&secret(), "p", None, Role::Editor, &r, "j", NOW).is_err());
    }

    #[test]
    fn admin_secret_comparison() {
        assert!(admin_matches("s3cret", "s3cret"));
        assert!(!admin_matches("s3cret", "s3cre7"));
        assert!(!admin_matches("", ""));
    }
}
