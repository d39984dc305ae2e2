//! Signing keys: public keys a project registers so that its own backend signs room tokens.

use super::{created, list_page, Call, Result};
use crate::api::{validate_kid, ApiError, CreateSigningKey};
use crate::auth::ProjectKey;
use crate::codec::hex;
use crate::edge::d1::{self, num, text, SigningKeyRow};
use crate::edge::platform::{now_ms, random};
use crate::edge::{http, revocation};
use crate::room_call::Revocation;
use crate::routes::RouteId;
use serde_json::json;
use worker::Response;

/// Serves the signing key routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    match id {
        RouteId::ListSigningKeys => {
            let project = cx.project()?.to_string();
            list_page(
                cx,
                "SELECT kid, project_id, alg, public_key, created_at, revoked_at
                 FROM signing_keys WHERE project_id = ?1
                   AND (?2 IS NULL OR (created_at, kid) > (?2, ?3))
                 ORDER BY created_at, kid LIMIT ?4",
                &project,
                &["created_at", "kid"],
                "signing_keys",
            )
            .await
        }
        RouteId::AddSigningKey => add(cx).await,
        RouteId::RevokeSigningKey => revoke(cx).await,
        _ => Err(ApiError::NotFound),
    }
}

async fn add(cx: &mut Call<'_>) -> Result<Response> {
    let input: CreateSigningKey = cx.body().await?;
    ProjectKey::from_pem(&input.alg, &input.public_key).map_err(ApiError::InvalidBody)?;
    let kid = match input.kid {
        Some(kid) => kid,
        None => format!("sk_{}", hex(&random::<8>()?)),
    };
    validate_kid(&kid)?;
    let project = cx.project()?.to_string();
    let db = cx.db()?;
    let taken: Option<serde_json::Value> = d1::row(
        &db,
        "SELECT kid FROM signing_keys WHERE kid = ?",
        &[text(&kid)],
    )
    .await?;
    if taken.is_some() {
        return Err(ApiError::Conflict(format!(
            "signing key id {kid:?} is taken"
        )));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "INSERT INTO signing_keys (kid, project_id, alg, public_key, created_at) VALUES (?, ?, ?, ?, ?)",
                &[text(&kid), text(&project), text(&input.alg), text(&input.public_key), num(now)],
            )?,
            d1::audit(&db, Some(&project), &cx.actor_name(), "signing_key.added", Some(&kid), json!({ "alg": input.alg }), now)?,
        ],
    )
    .await?;
    created(&json!({ "kid": kid, "alg": input.alg, "created_at": now }))
}

async fn revoke(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    let kid = cx.params.kid()?.to_string();
    let db = cx.db()?;
    let row: Option<SigningKeyRow> = d1::row(
        &db,
        "SELECT kid, project_id, alg, public_key, created_at, revoked_at FROM signing_keys WHERE kid = ? AND project_id = ?",
        &[text(&kid), text(&project)],
    )
    .await?;
    let row = row.ok_or_else(|| ApiError::Missing("signing key", kid.clone()))?;
    if row.revoked_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "signing key {kid} is already revoked"
        )));
    }
    let now = now_ms();
    d1::batch(
        &db,
        vec![
            d1::stmt(
                &db,
                "UPDATE signing_keys SET revoked_at = ? WHERE kid = ?",
                &[num(now), text(&kid)],
            )?,
            d1::audit(
                &db,
                Some(&project),
                &cx.actor_name(),
                "signing_key.revoked",
                Some(&kid),
                json!({}),
                now,
            )?,
        ],
    )
    .await?;
    let reached = revocation::fan_out(
        cx.env,
        cx.project()?,
        Revocation::SigningKey { kid: kid.clone() },
    )
    .await;
    http::json(&json!({ "revoked": kid, "rooms": reached }))
}
