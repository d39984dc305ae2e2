//! Room tokens: minted for a user by an API key (or the admin), and the development sign-in.

use super::{created, Call, Result};
use crate::api::{parse_body, ApiError, DevToken, MAX_BODY_BYTES};
use crate::auth::{self, granted_role, Role, TokenRequest};
use crate::codec::hex;
use crate::edge::access;
use crate::edge::d1::{self, num, text};
use crate::edge::http;
use crate::edge::platform::{now_ms, random};
use crate::edge::rate_limits::{self, Limit};
use crate::edge::revocation;
use crate::room_call::Revocation;
use serde_json::json;
use worker::{Env, Request, Response};

/// Project id of the development flow's project.
const DEV_PROJECT: &str = "prj_dev";

/// `POST .../tokens`: a token for `sub`, with the role the request asks for, capped by the
/// caller's ceiling and by the user's membership.
pub async fn mint(cx: &mut Call<'_>) -> Result<Response> {
    let input: TokenRequest = cx.body().await?;
    auth::validate_sub(&input.sub).map_err(ApiError::InvalidBody)?;
    let project = cx.project()?.to_string();
    rate_limits::check(
        cx.env,
        Limit::Mints,
        &format!("sub:{project}:{}", input.sub),
    )
    .await?;
    let db = cx.db()?;
    let member = d1::membership(&db, &project, &input.sub).await?;
    let role = granted_role(input.role, cx.actor.ceiling(), member, &input.sub)?;
    let now = now_ms();
    let jti = new_jti()?;
    let (token, exp) = auth::mint(
        &access::token_key(cx.env)?,
        &project,
        cx.actor.key_id(),
        role,
        &input,
        &jti,
        now / 1000,
    )?;
    d1::batch(
        &db,
        vec![d1::audit(
            &db,
            Some(&project),
            &cx.actor_name(),
            "token.issued",
            Some(&input.sub),
            json!({ "room": input.room, "role": role, "expires_at": exp, "id": jti }),
            now,
        )?],
    )
    .await?;
    created(
        &json!({ "token": token, "id": jti, "expires_at": exp, "room": input.room, "role": role, "sub": input.sub }),
    )
}

/// A token id: 128 random bits.
fn new_jti() -> Result<String> {
    Ok(format!("tok_{}", hex(&random::<16>()?)))
}

/// `DELETE .../tokens/{token}`: revokes one token by its id. It admits no new connection from
/// now on, and the connections it admitted are closed (`4403`). Revoking an id that was never
/// issued is allowed (a project's own signer chooses its ids): the answer is the same.
pub async fn revoke(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let jti = cx.params.token()?.to_string();
    let db = cx.db()?;
    let now = now_ms();
    // No token outlives this: tokens are refused beyond the longest lifetime (auth::verify).
    let expires = now + (auth::MAX_TTL_SECONDS + auth::CLOCK_SKEW_SECONDS) * 1000;
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO revoked_tokens (project_id, jti, expires_at, revoked_at, revoked_by)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                &[
                    text(project.as_str()),
                    text(&jti),
                    num(expires),
                    num(now),
                    text(&cx.actor_name()),
                ],
            )?,
            d1::stmt(
                &db,
                "DELETE FROM revoked_tokens WHERE project_id = ? AND expires_at < ?",
                &[text(project.as_str()), num(now)],
            )?,
            d1::audit(
                &db,
                Some(project.as_str()),
                &cx.actor_name(),
                "token.revoked",
                Some(&jti),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    let reached =
        revocation::fan_out(cx.env, &project, Revocation::Token { jti: jti.clone() }).await;
    http::json(&json!({ "revoked": jti, "rooms": reached }))
}

/// Development flow: a token for any room of the `prj_dev` project, no credential needed.
/// Only routed when the worker runs with `DEV_MODE=true`.
pub async fn dev_token(mut req: Request, env: &Env) -> Result<Response> {
    let input: DevToken = parse_body(&http::read_body(&mut req, MAX_BODY_BYTES).await?)?;
    let db = access::db(env)?;
    let now = now_ms();
    d1::stmt(
        &db,
        "INSERT INTO projects (id, name, created_at) VALUES (?, 'Local development', ?) ON CONFLICT DO NOTHING",
        &[text(DEV_PROJECT), num(now)],
    )?
    .run()
    .await
    .map_err(http::internal("dev project"))?;
    let sub = match input.sub {
        Some(sub) => sub,
        None => format!("dev-{}", hex(&random::<6>()?)),
    };
    let request = TokenRequest {
        sub: sub.clone(),
        room: input.room,
        role: Some(input.role.unwrap_or(Role::Editor)),
        name: input.name,
        color: input.color,
        ttl_seconds: None,
    };
    let role = request.role.unwrap_or(Role::Editor);
    let jti = new_jti()?;
    let (token, exp) = auth::mint(
        &access::token_key(env)?,
        DEV_PROJECT,
        None,
        role,
        &request,
        &jti,
        now / 1000,
    )?;
    // Development sign-ins are members of the development project with the role they asked
    // for, so that they can be mentioned and asked for reviews.
    d1::stmt(
        &db,
        "INSERT INTO members (project_id, sub, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (project_id, sub) DO UPDATE SET role = excluded.role,
           updated_at = excluded.updated_at, removed_at = NULL",
        &[
            text(DEV_PROJECT),
            text(&sub),
            text(role.as_str()),
            num(now),
            num(now),
        ],
    )?
    .run()
    .await
    .map_err(http::internal("dev member"))?;
    created(
        &json!({ "token": token, "id": jti, "expires_at": exp, "room": request.room, "role": role, "sub": sub, "project": DEV_PROJECT }),
    )
}
