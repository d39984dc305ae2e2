//! The `/v1` HTTP API, one module per resource. Routes are listed in `docs/api.md`.
//!
//! [`dispatch`] enforces each route's access rule once, from the route table
//! ([`crate::routes::ROUTES`]): who may call it and with which role. A handler receives a
//! [`Call`] whose caller has passed that check and whose path parameters are typed.

mod activity;
mod archive;
mod assets;
mod audit;
mod branches;
mod calls;
mod conversations;
pub mod documents;
mod history_routes;
mod inbox;
mod keys;
mod members;
mod projects;
mod reviews;
mod signing_keys;
mod tokens;
mod uploads;
mod webhooks;

use super::access::{self, Actor};
use super::rate_limits::{self, Limit};
use super::{d1, http};
use crate::api::{parse_body, ApiError, MAX_BODY_BYTES};
use crate::auth::{AuthError, Role};
use crate::names::Id;
use crate::routes::{Access, Matched, Params, RouteId};
use serde::{Deserialize, Serialize};
use worker::{D1Database, Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// One request to a `/v1` route whose caller passed the route's access rule.
pub struct Call<'a> {
    /// The request (its body not read yet).
    pub req: Request,
    /// The worker's environment.
    pub env: &'a Env,
    /// Who is calling.
    pub actor: Actor,
    /// The typed path parameters.
    pub params: Params,
}

impl Call<'_> {
    /// `{project}` of the path.
    pub fn project(&self) -> Result<&Id> {
        self.params.project()
    }

    /// The metadata database.
    pub fn db(&self) -> Result<D1Database> {
        access::db(self.env)
    }

    /// The JSON body, at most [`MAX_BODY_BYTES`] (413 beyond, checked before reading it whole).
    pub async fn body<T: for<'de> Deserialize<'de>>(&mut self) -> Result<T> {
        let bytes = http::read_body(&mut self.req, MAX_BODY_BYTES).await?;
        parse_body(&bytes)
    }

    /// The raw body, at most `limit` bytes.
    pub async fn bytes(&mut self, limit: usize) -> Result<Vec<u8>> {
        http::read_body(&mut self.req, limit).await
    }

    /// How the caller appears in the audit log.
    pub fn actor_name(&self) -> String {
        self.actor.name()
    }
}

/// Who a rate limit counts: the key, the room token's user in its project, or the admin.
fn caller_key(actor: &Actor) -> String {
    match actor {
        Actor::Admin => "admin".into(),
        Actor::Key { id, .. } => format!("key:{id}"),
        Actor::User { project, sub, .. } => format!("user:{project}:{sub}"),
        Actor::Link { project } => format!("link:{project}"),
    }
}

/// A 201 response with a JSON body.
fn created<T: Serialize>(body: &T) -> Result<Response> {
    Ok(http::json(body)?.with_status(201))
}

/// Serves a `/v1` route found by [`crate::routes::match_route`]. After a request that may
/// have changed who can connect ([`RouteId::may_change_access`]), this isolate forgets what it
/// cached about that (after, so that a connection checked meanwhile does not keep the old
/// answer).
pub async fn dispatch(req: Request, env: &Env, matched: Matched) -> Result<Response> {
    let changes_access = matched.id.may_change_access();
    let result = route(req, env, matched).await;
    if changes_access {
        access::forget_cached_access();
    }
    result
}

/// Authenticates the caller as the route's access rule asks and checks its role.
async fn authorize(req: &Request, env: &Env, access: Access, params: &Params) -> Result<Actor> {
    let (actor, role) = match access {
        Access::Admin => {
            let actor = access::authenticate(req, env).await?;
            if !matches!(actor, Actor::Admin) {
                return Err(AuthError::Forbidden {
                    required: Role::Owner,
                    held: actor.ceiling(),
                }
                .into());
            }
            return Ok(actor);
        }
        Access::Key(role) => (access::authenticate(req, env).await?, role),
        Access::KeyOrToken(role) => (
            access::authenticate_document(req, env, params.project()?, params.document()?).await?,
            role,
        ),
        Access::KeyOrUser(role) => (
            access::authenticate_user(req, env, params.project()?).await?,
            role,
        ),
        Access::LinkOrUser(role) => match assets::signed_link(req, env, params)? {
            Some(actor) => (actor, role),
            None => (
                access::authenticate_user(req, env, params.project()?).await?,
                role,
            ),
        },
        // Served before the API (`edge::route`) or by the dev route below.
        Access::Public | Access::DevMode | Access::RoomToken => return Err(ApiError::NotFound),
    };
    let project = params.project()?;
    actor.require(project.as_str(), role)?;
    d1::live_project(&access::db(env)?, project.as_str()).await?;
    Ok(actor)
}

async fn route(req: Request, env: &Env, matched: Matched) -> Result<Response> {
    let Matched { id, access, params } = matched;
    if access == Access::DevMode {
        if !access::dev_mode(env) {
            return Err(ApiError::NotFound);
        }
        return tokens::dev_token(req, env).await;
    }
    let actor = authorize(&req, env, access, &params).await?;
    if !matches!(req.method(), Method::Get | Method::Head) {
        rate_limits::check(env, Limit::Writes, &caller_key(&actor)).await?;
    }
    // Tokens and TURN credentials are handed out under one limit: each ice-servers answer may
    // cost a call to Cloudflare's TURN API, which a caller must not be able to spend for all.
    if matches!(id, RouteId::MintToken | RouteId::IceServers) {
        rate_limits::check(env, Limit::Mints, &caller_key(&actor)).await?;
    }
    let mut cx = Call {
        req,
        env,
        actor,
        params,
    };
    use RouteId::*;
    match id {
        CreateProject | GetProject | UpdateProject | DeleteProject => {
            projects::serve(id, &mut cx).await
        }
        ListMembers | PutMember | RemoveMember => members::serve(id, &mut cx).await,
        ListKeys | CreateKey | RevokeKey => keys::serve(id, &mut cx).await,
        ListSigningKeys | AddSigningKey | RevokeSigningKey => {
            signing_keys::serve(id, &mut cx).await
        }
        ListDocuments | CreateDocument | GetDocument | DeleteDocument | GetDocumentUpdate
        | PostDocumentUpdate | PostDocumentEdits => documents::serve(id, &mut cx).await,
        MintToken => tokens::mint(&mut cx).await,
        RevokeToken => tokens::revoke(&mut cx).await,
        Audit => audit::serve(&mut cx).await,
        ListWebhooks | CreateWebhook | GetWebhook | UpdateWebhook | DeleteWebhook | TestWebhook
        | ListDeliveries | RotateWebhookSecret => webhooks::serve(id, &mut cx).await,
        ListVersions | CreateVersion | GetVersion | GetVersionUpdate | DeleteVersion
        | RestoreVersion | DiffVersions | ReplayHistory | DocumentAt => {
            history_routes::serve(id, &mut cx).await
        }
        ListBranches | CreateBranch | PreviewMerge | MergeBranch => {
            branches::serve(id, &mut cx).await
        }
        ListThreads | CreateThread | GetThread | UpdateThread | DeleteThread | AddComment
        | EditComment | DeleteComment | AddReaction | RemoveReaction | ListChat | PostChat
        | GetSubscription | PutSubscription => conversations::serve(id, &mut cx).await,
        ListReviews | RequestReview | GetReview | SubmitReview | WithdrawReview => {
            reviews::serve(id, &mut cx).await
        }
        DocumentActivity | ProjectActivity => activity::serve(id, &mut cx).await,
        ListInbox | InboxCount | MarkInboxRead | DeleteNotification => {
            inbox::serve(id, &mut cx).await
        }
        IceServers => calls::ice_servers(&cx).await,
        ListAssets
        | AssetStorage
        | GetAsset
        | UpdateAsset
        | DeleteAsset
        | RestoreAsset
        | PurgeAsset
        | GetAssetContent
        | ListAssetVersions
        | GetAssetVersionContent
        | AssetPreview
        | PutAssetTag
        | DeleteAssetTag
        | SignAssetLink
        | AssetUsage
        | DocumentAssets => assets::serve(id, &mut cx).await,
        UploadAsset | UploadAssetVersion | CreateUpload | GetUpload | AbortUpload
        | PutUploadPart | CompleteUpload => uploads::serve(id, &mut cx).await,
        ExportDocument => archive::export(&mut cx).await,
        ImportDocument => archive::import(&mut cx).await,
        Index | Health | Room | Signal | OpenApi | DevToken => Err(ApiError::NotFound),
    }
}

/// A JavaScript value of a cursor's key part (a string or an integer).
fn key_arg(v: Option<&serde_json::Value>) -> worker::wasm_bindgen::JsValue {
    match v {
        Some(serde_json::Value::String(s)) => d1::text(s),
        Some(v) => v
            .as_u64()
            .map_or(worker::wasm_bindgen::JsValue::NULL, d1::num),
        None => worker::wasm_bindgen::JsValue::NULL,
    }
}

/// Serves one page of a list. `sql` takes `?1` = the project (or another owner id), then one
/// parameter per part of the sort key (`NULL` on the first page: the query reads `?2 IS NULL
/// OR (key) > (?2, ...)`), then the row limit; `key` names the columns of a row's sort key.
async fn list_page(
    cx: &Call<'_>,
    sql: &str,
    owner: &str,
    key: &[&str],
    field: &str,
) -> Result<Response> {
    let query = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    let page = crate::pages::Page::parse(query.as_deref(), key.len())?;
    let mut args = vec![d1::text(owner)];
    for i in 0..key.len() {
        args.push(key_arg(page.after.as_ref().and_then(|k| k.get(i))));
    }
    args.push(d1::num(page.fetch() as u64));
    let mut rows: Vec<serde_json::Value> = d1::rows(&cx.db()?, sql, &args).await?;
    let next = page.finish(&mut rows, |row| {
        key.iter().map(|k| row[*k].clone()).collect()
    });
    http::json(&serde_json::json!({ field: rows, "next_cursor": next }))
}

/// Purges trashed assets past their project's trash days, and every asset of a deleted
/// project, and drops expired uploads: a bounded number of each per run (the cron trigger runs
/// it again).
pub async fn sweep_assets(env: &Env) -> Result<()> {
    #[derive(Deserialize)]
    struct Trashed {
        project_id: String,
        id: String,
    }
    #[derive(Deserialize)]
    struct Expired {
        project_id: String,
        id: String,
        r2_key: String,
        r2_upload_id: String,
    }
    let db = access::db(env)?;
    let now = crate::edge::platform::now_ms();
    let trashed: Vec<Trashed> = d1::rows(
        &db,
        "SELECT a.project_id, a.id FROM assets a JOIN projects p ON p.id = a.project_id
         WHERE p.deleted_at IS NOT NULL
            OR (a.deleted_at IS NOT NULL
                AND a.deleted_at + COALESCE(p.asset_trash_days, ?1) * 86400000 <= ?2)
         LIMIT 50",
        &[d1::num(assets::default_trash_days(env)), d1::num(now)],
    )
    .await?;
    for t in trashed {
        assets::purge(env, &db, &t.project_id, &t.id, "system").await?;
    }
    let expired: Vec<Expired> = d1::rows(
        &db,
        "SELECT project_id, id, r2_key, r2_upload_id FROM asset_uploads WHERE expires_at <= ? LIMIT 50",
        &[d1::num(now)],
    )
    .await?;
    for u in expired {
        uploads::drop_upload(env, &db, &u.project_id, &u.id, &u.r2_key, &u.r2_upload_id).await?;
    }
    Ok(())
}
