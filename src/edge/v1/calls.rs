//! `GET /v1/projects/{project}/ice-servers`: STUN and short-lived TURN credentials for a call's
//! participants (docs/calls.md). Nothing a client sent reaches the TURN service: the key id and
//! its token come from configuration, the lifetime from configuration, the label from the
//! caller's verified identity.

use super::{Call, Result};
use crate::api::ApiError;
use crate::edge::access::{secret, Actor};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::{env, http};
use crate::ice::{self, IceServer};
use serde_json::json;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response};

/// How long the worker waits for Cloudflare's TURN API.
const CLOUDFLARE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A configuration variable, or `None` when unset or empty.
fn var(env: &worker::Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

fn misconfigured(name: &'static str) -> impl Fn(String) -> ApiError {
    move |why| {
        log::error("config.invalid")
            .field("var", name)
            .cause(why)
            .emit();
        ApiError::NotConfigured(name)
    }
}

/// Serves `GET /v1/projects/{project}/ice-servers`.
pub async fn ice_servers(cx: &Call<'_>) -> Result<Response> {
    let e = cx.env;
    let ttl = Some(env::number_or(e, env::TURN_TTL_SECONDS, 0) as u64)
        .filter(|n| ice::TTL_RANGE.contains(n))
        .unwrap_or(ice::DEFAULT_TTL_SECONDS);
    let now = now_ms();
    let expires_s = now / 1000 + ttl;
    let stun = match e.var(env::ICE_STUN_URLS) {
        Ok(list) => {
            ice::parse_stun(&list.to_string()).map_err(misconfigured(env::ICE_STUN_URLS))?
        }
        Err(_) => vec![ice::DEFAULT_STUN.to_owned()],
    };
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun,
            username: None,
            credential: None,
        });
    }
    let label = match &cx.actor {
        Actor::User { sub, .. } => sub.clone(),
        Actor::Key { id, .. } => id.clone(),
        Actor::Admin => "admin".to_owned(),
        Actor::Link { .. } => return Err(ApiError::NotFound),
    };
    if let Ok(shared) = secret(e, env::TURN_SECRET) {
        let urls = ice::parse_turn(&var(e, env::TURN_URLS).unwrap_or_default())
            .map_err(misconfigured(env::TURN_URLS))?;
        if urls.is_empty() {
            return Err(misconfigured(env::TURN_URLS)(
                "TURN_SECRET is set without URLs".into(),
            ));
        }
        servers.push(ice::turn_rest(shared.as_bytes(), urls, &label, expires_s));
    }
    if let Some(key_id) = var(e, env::CLOUDFLARE_TURN_KEY_ID) {
        servers.extend(cloudflare(e, &key_id, ttl).await?);
    }
    let body = json!({ "iceServers": servers, "ttl": ttl, "expires_at": expires_s * 1000 });
    let mut resp = http::json(&body)?;
    resp.headers_mut()
        .set("cache-control", "no-store")
        .map_err(http::internal("headers"))?;
    Ok(resp)
}

/// Credentials minted by Cloudflare Realtime TURN for `ttl` seconds.
async fn cloudflare(e: &worker::Env, key_id: &str, ttl: u64) -> Result<Vec<IceServer>> {
    // The key id is configuration, but it goes into a URL: only what Cloudflare's ids are.
    if key_id.is_empty() || key_id.len() > 64 || !key_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(misconfigured(env::CLOUDFLARE_TURN_KEY_ID)(
            "not an id".into(),
        ));
    }
    let token = secret(e, env::CLOUDFLARE_TURN_API_TOKEN)?;
    let base = var(e, env::CLOUDFLARE_TURN_API)
        .unwrap_or_else(|| "https://rtc.live.cloudflare.com/v1/turn/keys".to_owned());
    let url = format!(
        "{}/{key_id}/credentials/generate-ice-servers",
        base.trim_end_matches('/')
    );
    let headers = Headers::new();
    for (name, value) in [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
    ] {
        headers
            .set(name, &value)
            .map_err(http::internal("headers"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(json!({ "ttl": ttl }).to_string().into()));
    let req = Request::new_with_init(&url, &init).map_err(http::internal("turn request"))?;
    let unavailable = |why: String| {
        log::error("turn.unavailable")
            .message("Cloudflare's TURN service handed out no credentials")
            .cause(why)
            .emit();
        ApiError::Upstream(
            "turn-unavailable",
            "the TURN service did not hand out credentials; retry later".into(),
        )
    };
    let request = Fetch::Request(req);
    let fetch = request.send();
    let timeout = worker::Delay::from(CLOUDFLARE_TIMEOUT);
    futures::pin_mut!(fetch);
    futures::pin_mut!(timeout);
    let mut resp = match futures::future::select(fetch, timeout).await {
        futures::future::Either::Left((Ok(resp), _)) => resp,
        futures::future::Either::Left((Err(err), _)) => return Err(unavailable(err.to_string())),
        futures::future::Either::Right(_) => return Err(unavailable("timed out".into())),
    };
    if !(200..300).contains(&resp.status_code()) {
        return Err(unavailable(format!("status {}", resp.status_code())));
    }
    let body = resp.text().await.map_err(|e| unavailable(e.to_string()))?;
    if body.len() > 16 * 1024 {
        return Err(unavailable("answer over 16 KiB".into()));
    }
    ice::parse_cloudflare(&body).map_err(unavailable)
}
