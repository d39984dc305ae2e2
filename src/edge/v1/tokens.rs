//! Room tokens: minted for a user by an API key (or the admin), and the development sign-in.

use super::{created, Call, Result};
use crate::api::{parse_body, ApiError, DevToken, MAX_BODY_BYTES};
use crate::auth::{self, granted_role, Role, TokenRequest};
use crate::edge::access::{self, hex, now_ms, random};
use crate::edge::d1::{self, num, text};
use crate::edge::http;
use serde::Deserialize;
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
    let db = cx.db()?;
    #[derive(Deserialize)]
    struct Member {
        role: Role,
    }
    let member: Option<Member> = d1::row(
        &db,
        "SELECT role FROM members WHERE project_id = ? AND sub = ?",
        &[text(&project), text(&input.sub)],
    )
    .await?;
    let role = granted_role(input.role, cx.actor.ceiling(), member.map(|m| m.role))?;
    let now = now_ms();
    let (token, exp) = auth::mint(
        &access::token_key(cx.env)?,
        &project,
        cx.actor.key_id(),
        role,
        &input,
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
            json!({ "room": input.room, "role": role, "expires_at": exp }),
            now,
        )?],
    )
    .await?;
    created(
        &json!({ "token": token, "expires_at": exp, "room": input.room, "role": role, "sub": input.sub }),
    )
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
    let (token, exp) = auth::mint(
        &access::token_key(env)?,
        DEV_PROJECT,
        None,
        role,
        &request,
        now / 1000,
    )?;
    created(
        &json!({ "token": token, "expires_at": exp, "room": request.room, "role": role, "sub": sub, "project": DEV_PROJECT }),
    )
}
