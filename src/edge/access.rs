//! Who is calling: the admin secret, an API key, or a room token. Checked in the worker, before
//! any request reaches a room's Durable Object.

use super::d1::{self, text, KeyRow, SigningKeyRow};
use super::env;
use super::log::{self, Emit};
use super::platform::now_ms;
use crate::api::ApiError;
use crate::auth::{
    self, admin_matches, ApiKeySecret, AuthError, ProjectKey, Role, TokenKind, VerifiedToken,
    Verifier,
};
use crate::names::{Id, RoomName};
use crate::room_call::{Credential, Verdict};
use crate::ttl_cache::TtlCache;
use jwt_simple::prelude::HS256Key;
use std::cell::RefCell;
use worker::{D1Database, Env, Request};

/// Room connections whose D1 facts (project, minting key, document) an isolate keeps at once;
/// past this the expired ones go, then all.
const ACCESS_CACHE_CAPACITY: usize = 10_000;

/// A room connection as D1 is asked about it: project, minting API key, room, user, token id.
type AccessKey = (String, Option<String>, RoomName, String, Option<String>);

thread_local! {
    /// What D1 said about a room connection that was let in.
    static ROOM_ACCESS: RefCell<TtlCache<AccessKey, d1::RoomAccess>> =
        RefCell::new(TtlCache::new(0, ACCESS_CACHE_CAPACITY));
    /// Registered signing keys, by `kid`.
    static SIGNING_KEYS: RefCell<TtlCache<String, SigningKeyRow>> =
        RefCell::new(TtlCache::new(0, ACCESS_CACHE_CAPACITY));
}

/// Forgets what this isolate cached about room access. Called after every API request that
/// may have changed it ([`crate::routes::RouteId::may_change_access`]), so the change holds at
/// once here; other isolates (other locations) see it within `ACCESS_CACHE_SECONDS`.
pub fn forget_cached_access() {
    ROOM_ACCESS.with(|c| c.borrow_mut().clear());
    SIGNING_KEYS.with(|c| c.borrow_mut().clear());
}

/// `ACCESS_CACHE_SECONDS` in ms (default 5; 0 reads D1 for every connection).
fn access_cache_ttl_ms(env: &Env) -> u64 {
    env::count_or(env, env::ACCESS_CACHE_SECONDS, 5) as u64 * 1000
}

/// The signing key `kid`, from the cache or D1.
async fn signing_key(
    db: &D1Database,
    kid: &str,
    ttl_ms: u64,
) -> Result<Option<SigningKeyRow>, ApiError> {
    let now = now_ms();
    let (cached, generation) = SIGNING_KEYS.with(|c| c.borrow_mut().lookup(kid, now, ttl_ms));
    if cached.is_some() {
        return Ok(cached);
    }
    let row: Option<SigningKeyRow> = d1::row(
        db,
        "SELECT kid, project_id, alg, public_key, created_at, revoked_at
         FROM signing_keys WHERE kid = ?",
        &[text(kid)],
    )
    .await?;
    // A kid not (yet) registered is not remembered: it may be registered elsewhere any moment.
    if let Some(row) = &row {
        SIGNING_KEYS.with(|c| {
            c.borrow_mut()
                .put(kid.to_owned(), row.clone(), now, generation)
        });
    }
    Ok(row)
}

/// The caller of an API route.
#[derive(Debug, Clone)]
pub enum Actor {
    /// Holder of the admin secret: may do anything.
    Admin,
    /// A user holding a room token, on the document API of that room.
    User {
        /// The token's subject.
        sub: String,
        /// The token's project.
        project: String,
        /// The token's role.
        role: Role,
        /// The token's room pattern (a name, a prefix ending in `*`, or `*`).
        room: String,
    },
    /// A signed link to one asset version (viewer rights on that, nothing else).
    Link {
        /// The link's project.
        project: String,
    },
    /// An API key of one project, with its role ceiling.
    Key {
        /// Key id.
        id: String,
        /// Its project.
        project: String,
        /// Its role ceiling.
        role: Role,
    },
}

impl Actor {
    /// Checks that the actor may act on `project` with at least `required`. A key of another
    /// project learns nothing about this one: it gets 404, as for a missing project.
    pub fn require(&self, project: &str, required: Role) -> Result<(), ApiError> {
        match self {
            Actor::Admin => Ok(()),
            Actor::Key { project: p, .. }
            | Actor::User { project: p, .. }
            | Actor::Link { project: p }
                if p != project =>
            {
                Err(ApiError::Missing("project", project.into()))
            }
            Actor::Link { .. } if required > Role::Viewer => {
                Err(ApiError::Auth(AuthError::Forbidden {
                    required,
                    held: Role::Viewer,
                }))
            }
            Actor::Link { .. } => Ok(()),
            Actor::Key { role, .. } | Actor::User { role, .. } if *role < required => {
                Err(ApiError::Auth(AuthError::Forbidden {
                    required,
                    held: *role,
                }))
            }
            Actor::Key { .. } | Actor::User { .. } => Ok(()),
        }
    }

    /// The role ceiling for minting tokens.
    pub fn ceiling(&self) -> Role {
        match self {
            Actor::Admin => Role::Owner,
            Actor::Link { .. } => Role::Viewer,
            Actor::Key { role, .. } | Actor::User { role, .. } => *role,
        }
    }

    /// Whether the actor may reach `room` of its project: keys and the admin reach every
    /// room; a room token only those its pattern admits.
    pub fn covers(&self, room: &str) -> bool {
        match self {
            Actor::Admin | Actor::Key { .. } => true,
            Actor::User { room: pattern, .. } => auth::room_matches(pattern, room),
            Actor::Link { .. } => false,
        }
    }

    /// The key id, if the actor is a key.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Actor::Key { id, .. } => Some(id),
            Actor::Admin | Actor::User { .. } | Actor::Link { .. } => None,
        }
    }

    /// How the actor appears in the audit log: `admin`, a key id, or `user:<sub>`.
    pub fn name(&self) -> String {
        match self {
            Actor::Admin => "admin".into(),
            Actor::Key { id, .. } => id.clone(),
            Actor::User { sub, .. } => format!("user:{sub}"),
            Actor::Link { .. } => "link".into(),
        }
    }
}

pub fn secret(env: &Env, name: &'static str) -> Result<String, ApiError> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::NotConfigured(name))
}

/// The server's HS256 token key. jwt-simple refuses HMAC keys under 12 bytes; we ask for 32.
pub fn token_key(env: &Env) -> Result<HS256Key, ApiError> {
    let s = secret(env, env::TOKEN_SECRET)?;
    if s.len() < 32 {
        log::error("config.token_secret_short")
            .message("TOKEN_SECRET is shorter than 32 characters")
            .emit();
        return Err(ApiError::NotConfigured(env::TOKEN_SECRET));
    }
    Ok(HS256Key::from_bytes(s.as_bytes()))
}

/// The secret signed asset links are made with (the token secret; `assets::signed` derives
/// its own key from it).
pub fn link_secret(env: &Env) -> Result<Vec<u8>, ApiError> {
    let s = secret(env, env::TOKEN_SECRET)?;
    if s.len() < 32 {
        return Err(ApiError::NotConfigured(env::TOKEN_SECRET));
    }
    Ok(s.into_bytes())
}

/// Whether the development routes are on.
pub fn dev_mode(env: &Env) -> bool {
    env.var(env::DEV_MODE)
        .map(|v| v.to_string() == "true")
        .unwrap_or(false)
}

/// The metadata database.
pub fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1(env::DB).map_err(super::http::internal("d1 binding"))
}

fn bearer(req: &Request) -> Result<String, AuthError> {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .ok_or(AuthError::Missing)?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| AuthError::Malformed("use Authorization: Bearer <credential>".into()))
}

/// Whether the request carries the admin secret (checked without touching D1).
pub fn is_admin(req: &Request, env: &Env) -> bool {
    match (bearer(req), secret(env, env::ADMIN_SECRET)) {
        (Ok(presented), Ok(admin)) => admin_matches(&presented, &admin),
        _ => false,
    }
}

/// Authenticates an API request: the admin secret or an API key.
pub async fn authenticate(req: &Request, env: &Env) -> Result<Actor, ApiError> {
    let presented = bearer(req)?;
    if let Ok(admin) = secret(env, env::ADMIN_SECRET) {
        if admin_matches(&presented, &admin) {
            return Ok(Actor::Admin);
        }
    }
    if !presented.starts_with(auth::API_KEY_PREFIX) {
        return Err(AuthError::Malformed("not an API key or the admin secret".into()).into());
    }
    let key = ApiKeySecret::parse(&presented)?;
    let db = db(env)?;
    let row: Option<KeyRow> = d1::row(
        &db,
        "SELECT k.id, k.project_id, k.name, k.role, k.secret_hash, k.created_at,
                k.last_used_at, k.revoked_at
         FROM api_keys k JOIN projects p ON p.id = k.project_id
         WHERE k.id = ? AND p.deleted_at IS NULL",
        &[text(&key.id)],
    )
    .await?;
    let row = match row {
        Some(row) if key.matches(&row.secret_hash) => row,
        // Unknown id and wrong secret look the same to the caller.
        _ => return Err(AuthError::BadSignature.into()),
    };
    if row.revoked_at.is_some() {
        return Err(AuthError::Revoked.into());
    }
    // Last use is advisory: record it at most once a minute per key.
    let now = now_ms();
    if row
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) > 60_000)
    {
        let touch = d1::stmt(
            &db,
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            &[d1::num(now), text(&row.id)],
        )?;
        if let Err(e) = touch.run().await {
            log::warn("key.last_used_failed")
                .message("recording key use failed")
                .field("key", row.id.as_str())
                .cause(e)
                .emit();
        }
    }
    Ok(Actor::Key {
        id: row.id,
        project: row.project_id,
        role: row.role,
    })
}

/// Authenticates a document API request: the admin secret, an API key, or a room token for
/// this document (its role applies).
pub async fn authenticate_document(
    req: &Request,
    env: &Env,
    project: &Id,
    room: &RoomName,
) -> Result<Actor, ApiError> {
    let presented = bearer(req)?;
    if !looks_like_jwt(&presented) {
        return authenticate(req, env).await;
    }
    let admitted = authorize_room(env, &presented, room).await?;
    if admitted.project != *project {
        return Err(ApiError::Missing("project", project.to_string()));
    }
    Ok(Actor::User {
        sub: admitted.verified.sub,
        project: admitted.verified.claims.prj,
        role: admitted.role,
        room: admitted.verified.claims.room,
    })
}

/// Where a WebSocket request carried its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `?token=`.
    Query,
    /// A `Sec-WebSocket-Protocol` entry; the response must name `echo`.
    Protocol {
        /// The protocol to select in the response.
        echo: String,
    },
}

fn looks_like_jwt(s: &str) -> bool {
    s.split('.').count() == 3
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Finds the room token of a WebSocket request: `?token=`, else an entry of
/// `Sec-WebSocket-Protocol` that is a JWT, offered beside a protocol name the response selects
/// (a token is never echoed back: response headers end up in logs).
pub fn room_token(req: &Request) -> Result<(String, TokenSource), AuthError> {
    if let Some(token) = super::http::query(req, "token").filter(|t| !t.is_empty()) {
        return Ok((token, TokenSource::Query));
    }
    let offered = req
        .headers()
        .get("sec-websocket-protocol")
        .ok()
        .flatten()
        .unwrap_or_default();
    let protocols: Vec<&str> = offered.split(',').map(str::trim).collect();
    if let Some(token) = protocols.iter().find(|p| looks_like_jwt(p)) {
        let echo = protocols
            .iter()
            .find(|p| !looks_like_jwt(p) && !p.is_empty())
            .ok_or_else(|| {
                AuthError::Malformed(
                    "offer a protocol name (\"tandemx\") beside the token in Sec-WebSocket-Protocol"
                        .into(),
                )
            })?;
        return Ok((
            token.to_string(),
            TokenSource::Protocol {
                echo: echo.to_string(),
            },
        ));
    }
    Err(AuthError::Missing)
}

/// A room connection the worker lets in: the verified token, its project as a typed id, the
/// role it gets, and what D1 said about it.
pub struct Admitted {
    /// The token.
    pub verified: VerifiedToken,
    /// The token's project.
    pub project: Id,
    /// The role the connection gets: the token's, capped by the user's membership.
    pub role: Role,
    /// What admitted it.
    pub credential: Credential,
    /// Project, key and document state, as read (or cached) from D1.
    pub access: d1::RoomAccess,
    /// Where to cache the admission once its document is registered (not cached before).
    pending: Option<(AccessKey, u64, u64)>,
}

impl Admitted {
    /// After the caller registered the admission's document: the admission is cached as any
    /// other (with the document known to exist).
    pub fn registered(mut self) {
        if let Some((key, read_at, generation)) = self.pending.take() {
            self.access.doc_exists = 1;
            ROOM_ACCESS.with(|c| c.borrow_mut().put(key, self.access, read_at, generation));
        }
    }
}

/// Verifies a room token for `room` and checks, in D1, that its project is live, its minting
/// key or signing key is not revoked, and the document is not deleted. Changes nothing:
/// registering a new document is for the caller, once the connection is accepted.
pub async fn authorize_room(env: &Env, token: &str, room: &RoomName) -> Result<Admitted, ApiError> {
    let db = db(env)?;
    let ttl_ms = access_cache_ttl_ms(env);
    let verified = verify_token(env, &db, token, Some(room), ttl_ms).await?;
    let project = Id::parse("project id", &verified.claims.prj)
        .map_err(|e| AuthError::Malformed(format!("the token's project: {e}")))?;
    let credential = Credential {
        key: verified.claims.key.clone(),
        kid: verified.signing_key.clone(),
        jti: verified.jti.clone(),
    };
    let claims = &verified.claims;
    let cache_key = (
        claims.prj.clone(),
        claims.key.clone(),
        room.clone(),
        verified.sub.clone(),
        verified.jti.clone(),
    );
    let read_at = now_ms();
    let (cached, generation) =
        ROOM_ACCESS.with(|c| c.borrow_mut().lookup(&cache_key, read_at, ttl_ms));
    // Only connections that were let in are cached, so a hit needs no further check.
    if let Some(access) = cached {
        let role = auth::connection_role(claims.role, access.membership())?;
        return Ok(Admitted {
            verified,
            project,
            role,
            credential,
            access,
            pending: None,
        });
    }
    let (access, role) = read_access(&db, &verified, room.as_str()).await?;
    // A document not registered yet is registered by the caller once the connection is
    // accepted, and cached then ([`Admitted::registered`]).
    let pending = if access.doc_exists != 0 {
        ROOM_ACCESS.with(|c| {
            c.borrow_mut()
                .put(cache_key, access.clone(), read_at, generation)
        });
        None
    } else {
        Some((cache_key, read_at, generation))
    };
    Ok(Admitted {
        verified,
        project,
        role,
        credential,
        access,
        pending,
    })
}

/// Verifies a token's signature, algorithm, time and (with `Some`) room, with the server's key
/// or the project signing key it names.
async fn verify_token(
    env: &Env,
    db: &D1Database,
    token: &str,
    room: Option<&RoomName>,
    ttl_ms: u64,
) -> Result<auth::VerifiedToken, ApiError> {
    let now_secs = now_ms() / 1000;
    let room = room.map(RoomName::as_str);
    Ok(match auth::token_kind(token)? {
        TokenKind::Server => {
            auth::verify_for(token, Verifier::Server(&token_key(env)?), room, now_secs)?
        }
        TokenKind::Project { kid, alg } => {
            let row = signing_key(db, &kid, ttl_ms)
                .await?
                .ok_or(AuthError::UnknownKey)?;
            if row.revoked_at.is_some() {
                return Err(AuthError::Revoked.into());
            }
            if row.alg != alg {
                return Err(AuthError::WrongAlgorithm.into());
            }
            let key = ProjectKey::from_pem(&row.alg, &row.public_key).map_err(|e| {
                log::error("signing_key.unparsable")
                    .message("a stored signing key does not parse")
                    .field("kid", kid.as_str())
                    .cause(e)
                    .emit();
                ApiError::Internal
            })?;
            auth::verify_for(
                token,
                Verifier::Project {
                    key: &key,
                    kid: &kid,
                    project: &row.project_id,
                },
                room,
                now_secs,
            )?
        }
    })
}

/// Reads (no cache) and checks what a verified token's admission to `room` depends on in D1,
/// and the role it gets there.
async fn read_access(
    db: &D1Database,
    verified: &auth::VerifiedToken,
    room: &str,
) -> Result<(d1::RoomAccess, Role), ApiError> {
    let claims = &verified.claims;
    let who = d1::Connecting {
        project: &claims.prj,
        key: claims.key.as_deref(),
        room,
        sub: &verified.sub,
        jti: verified.jti.as_deref(),
    };
    let access = d1::room_access(db, &who)
        .await?
        .ok_or(AuthError::ProjectDeleted)?;
    check_access(&access, &claims.prj, claims.key.as_deref())?;
    let role = auth::connection_role(claims.role, access.membership())?;
    Ok((access, role))
}

/// Authenticates a request to a route of one user across a project (the inbox, the activity
/// feed): the admin secret or an API key, or a room token of `project` for any room, checked
/// in D1 as a connection is (project live, key and token not revoked, member not removed).
pub async fn authenticate_user(req: &Request, env: &Env, project: &Id) -> Result<Actor, ApiError> {
    let presented = bearer(req)?;
    if !looks_like_jwt(&presented) {
        return authenticate(req, env).await;
    }
    let db = db(env)?;
    let verified = verify_token(env, &db, &presented, None, access_cache_ttl_ms(env)).await?;
    let claims = &verified.claims;
    if claims.prj != project.as_str() {
        return Err(ApiError::Missing("project", project.to_string()));
    }
    // No document has an empty name: only the project's facts are read.
    let (_, role) = read_access(&db, &verified, "").await?;
    Ok(Actor::User {
        sub: verified.sub.clone(),
        project: claims.prj.clone(),
        role,
        room: claims.room.clone(),
    })
}

/// A signalling connection the worker lets in ([`super::signal_hub`]): the verified token, its
/// project, the role it gets and what admitted it.
pub struct ProjectAdmitted {
    /// The token.
    pub verified: VerifiedToken,
    /// The token's project.
    pub project: Id,
    /// The token's role, capped by the user's membership.
    pub role: Role,
    /// What admitted it.
    pub credential: Credential,
    /// Whether it may send media in calls: editors and owners, others when the project allows.
    pub publish: bool,
    /// The project's participant limit per call, as stored ([`crate::signal::Peer::call_limit`]
    /// keeps it within a mesh's range).
    pub call_limit: u8,
}

/// Verifies a room token for a connection to the project's signalling hub (no room yet: the
/// topics it subscribes to are checked against its room pattern as they come) and checks in
/// D1, uncached, that the project is live, the minting key and the token are not revoked and
/// the member is not removed.
pub async fn authorize_project(env: &Env, token: &str) -> Result<ProjectAdmitted, ApiError> {
    let db = db(env)?;
    let verified = verify_token(env, &db, token, None, access_cache_ttl_ms(env)).await?;
    let project = Id::parse("project id", &verified.claims.prj)
        .map_err(|e| AuthError::Malformed(format!("the token's project: {e}")))?;
    // No document has an empty name: only the project's facts are read.
    let (access, role) = read_access(&db, &verified, "").await?;
    let credential = Credential {
        key: verified.claims.key.clone(),
        kid: verified.signing_key.clone(),
        jti: verified.jti.clone(),
    };
    // Kept within what a mesh allows by `Peer::call_limit`, where the hub reads it.
    let call_limit =
        u8::try_from(access.call_max_participants).unwrap_or(crate::signal::MAX_PARTICIPANTS);
    Ok(ProjectAdmitted {
        verified,
        project,
        role,
        credential,
        publish: role.can_write() || access.call_viewers_publish != 0,
        call_limit,
    })
}

/// The checks of a connection's D1 facts that do not depend on its role: the project is live,
/// the minting key belongs to it and is not revoked, the token is not revoked, the document
/// is not deleted.
fn check_access(access: &d1::RoomAccess, project: &str, key: Option<&str>) -> Result<(), ApiError> {
    if access.deleted_at.is_some() {
        return Err(AuthError::ProjectDeleted.into());
    }
    if let Some(key) = key {
        match (&access.key_project, access.key_revoked_at) {
            (Some(p), None) if p == project => {}
            (Some(_), None) => return Err(AuthError::WrongProject.into()),
            (None, _) => {
                log::warn("token.unknown_key")
                    .message("a token names an unknown API key")
                    .project(project)
                    .field("key", key)
                    .emit();
                return Err(AuthError::Revoked.into());
            }
            _ => return Err(AuthError::Revoked.into()),
        }
    }
    if access.token_revoked != 0 {
        return Err(AuthError::Revoked.into());
    }
    if access.doc_deleted_at.is_some() {
        return Err(ApiError::DocumentDeleted);
    }
    Ok(())
}

/// A connection a room holds or is about to hold.
pub struct Holder<'a> {
    /// The room's project.
    pub project: &'a str,
    /// The room.
    pub room: &'a str,
    /// The user.
    pub sub: &'a str,
    /// The role it has.
    pub role: Role,
    /// What admitted it.
    pub cred: &'a Credential,
}

/// Records that the room has open connections since `since` (unix ms) and, in the same D1
/// transaction, reads again (no cache) what the connection's admission depends on: what the
/// room must do with it. A room does this when it goes live: a revocation writes D1 first and
/// then tells the live rooms, so a room that marks itself live after that listing reads the
/// revocation here, and one that marked itself before it is told.
pub async fn mark_live_and_check(
    env: &Env,
    holder: &Holder<'_>,
    since: u64,
) -> Result<Verdict, ApiError> {
    let db = db(env)?;
    let cred = holder.cred;
    let who = d1::Connecting {
        project: holder.project,
        key: cred.key.as_deref(),
        room: holder.room,
        sub: holder.sub,
        jti: cred.jti.as_deref(),
    };
    let mut stmts = vec![
        d1::stmt(
            &db,
            "UPDATE documents SET live_since = ? WHERE project_id = ? AND name = ?",
            &[d1::num(since), text(holder.project), text(holder.room)],
        )?,
        d1::room_access_stmt(&db, &who)?,
    ];
    if let Some(kid) = &cred.kid {
        stmts.push(d1::stmt(
            &db,
            "SELECT revoked_at FROM signing_keys WHERE kid = ?",
            &[text(kid)],
        )?);
    }
    let results = db
        .batch(stmts)
        .await
        .map_err(super::http::internal("d1 live check"))?;
    if let Some(e) = results.iter().find_map(|r| r.error()) {
        log::error("d1.failed")
            .field("what", "d1 live check")
            .cause(e)
            .emit();
        return Err(ApiError::Internal);
    }
    let read = |i: usize| -> Result<Vec<serde_json::Value>, ApiError> {
        results
            .get(i)
            .map_or(Ok(Vec::new()), |r| r.results())
            .map_err(super::http::internal("d1 live check rows"))
    };
    if cred.kid.is_some() {
        let key = read(2)?;
        if key.first().is_none_or(|k| !k["revoked_at"].is_null()) {
            return Ok(Verdict::Close);
        }
    }
    let Some(access) = read(1)?.into_iter().next() else {
        return Ok(Verdict::Close);
    };
    let access: d1::RoomAccess = serde_json::from_value(access).map_err(|e| {
        log::error("d1.unreadable_row")
            .field("what", "room access row")
            .cause(e)
            .emit();
        ApiError::Internal
    })?;
    if check_access(&access, holder.project, cred.key.as_deref()).is_err() {
        return Ok(Verdict::Close);
    }
    Ok(
        match auth::connection_role(holder.role, access.membership()) {
            Err(_) => Verdict::Close,
            Ok(allowed) if allowed < holder.role => Verdict::Downgrade(allowed),
            Ok(_) => Verdict::Keep,
        },
    )
}
