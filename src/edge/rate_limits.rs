//! HTTP rate limits, on the platform's Rate Limiting bindings (`[[ratelimits]]` in
//! `wrangler.toml`; <https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/>).
//! Each binding counts calls per key over its period. The counters are kept where the request
//! is served (each Cloudflare location counts on its own) and are eventually consistent, so a
//! limit is a ceiling on a burst, not an exact quota; `wrangler dev` runs the same counters
//! locally.

use super::env;
use super::log::{self, Emit};
use crate::api::ApiError;
use worker::js_sys::{Function, Object, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::Env;

/// Which limit a call counts against.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// API writes (every method but GET and HEAD), per caller.
    Writes,
    /// Room tokens minted, per caller and per user they are minted for.
    Mints,
    /// Threads, comments and chat messages created, per user and project.
    Comments,
}

impl Limit {
    fn binding(self) -> &'static str {
        match self {
            Limit::Writes => env::WRITE_LIMITER,
            Limit::Mints => env::MINT_LIMITER,
            Limit::Comments => env::COMMENT_LIMITER,
        }
    }

    /// The binding's period in seconds (as `wrangler.toml` sets it): a refused caller may try
    /// again after it.
    fn period_seconds(self) -> u32 {
        60
    }
}

/// Counts one call against `limit` for `key`; `Err` (429) when over. A missing binding or a
/// failing call lets the request through: the limits bound abuse, they do not guard data.
pub async fn check(env: &Env, limit: Limit, key: &str) -> Result<(), ApiError> {
    // Counted under a digest: the key holds ids and user names, which stay out of the
    // platform's counters as they stay out of URLs.
    let digest = crate::codec::hex(&hmac_sha256::Hash::hash(key.as_bytes()));
    match ask(env, limit, &digest).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::RateLimited {
            retry_after_seconds: limit.period_seconds(),
        }),
        Err(e) => {
            log::warn("rate_limit.unchecked")
                .message("rate limit not checked; let through")
                .field("binding", limit.binding())
                .cause(format!("{e:?}"))
                .emit();
            Ok(())
        }
    }
}

async fn ask(env: &Env, limit: Limit, key: &str) -> Result<bool, JsValue> {
    let env: &JsValue = env.as_ref();
    let binding = Reflect::get(env, &JsValue::from_str(limit.binding()))?;
    if binding.is_undefined() {
        return Err(JsValue::from_str("binding missing"));
    }
    let call: Function = Reflect::get(&binding, &JsValue::from_str("limit"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let promise: Promise = call.call1(&binding, &options)?.dyn_into()?;
    let outcome = worker::wasm_bindgen_futures::JsFuture::from(promise).await?;
    Ok(Reflect::get(&outcome, &JsValue::from_str("success"))?
        .as_bool()
        .unwrap_or(true))
}
