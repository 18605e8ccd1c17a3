//! The OAuth code exchange of a BigCommerce app install, done by the instances
//! function when the instance body carries Cloud Elements' `providerData`
//! (`{"code", "context": "stores/{hash}", "scope"}` from the app's auth
//! callback).
//!
//! Source: `bigcommerce/docs:docs/integrations/apps/guide/auth.mdx`:
//! `POST https://login.bigcommerce.com/oauth2/token` with the JSON body
//! `{client_id, client_secret, code, context, scope, grant_type:
//! "authorization_code", redirect_uri}`; the answer carries `access_token`
//! and `context` (`stores/{STORE_HASH}`). The error answer is not documented
//! (the simulator answers a wrong code 400 `{"error": …}`).

use std::time::Duration;

use serde_json::{json, Value};

use super::{ACCESS_TOKEN_KEY, STORE_HASH_KEY};
use crate::config::values::{required_str, Configuration};
use crate::elements::ProviderDataContext;
use crate::error::ApiError;

/// BigCommerce's token endpoint host; `BIGCOMMERCE_LOGIN_URL` overrides it.
pub const DEFAULT_LOGIN_URL: &str = "https://login.bigcommerce.com";

fn provider_field(pd: &serde_json::Map<String, Value>, name: &str) -> Result<String, ApiError> {
    pd.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::required(format!("providerData.{name}")))
}

/// The store hash of a `stores/{hash}` context.
pub(super) fn store_hash(context: &str) -> Option<&str> {
    let hash = context.trim().strip_prefix("stores/")?;
    (!hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric())).then_some(hash)
}

pub(super) async fn exchange(
    ctx: ProviderDataContext<'_>,
    cfg: &mut Configuration,
) -> Result<(), ApiError> {
    let pd = ctx.provider_data.as_object().ok_or_else(|| {
        ApiError::field(
            "providerData",
            "must be an object with code, context and scope",
        )
    })?;
    let code = provider_field(pd, "code")?;
    let context = provider_field(pd, "context")?;
    if store_hash(&context).is_none() {
        return Err(ApiError::field(
            "providerData.context",
            "must be stores/{store hash}",
        ));
    }
    let scope = pd
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let body = json!({
        "client_id": required_str(cfg, "oauth.api.key")?,
        "client_secret": required_str(cfg, "oauth.api.secret")?,
        "code": code,
        "context": context,
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": required_str(cfg, "oauth.callback.url")?,
    });
    let url = format!("{}/oauth2/token", ctx.login_url.trim_end_matches('/'));
    // The login URL is the operator's, not the tenant's: no network guard,
    // but no redirects either.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .user_agent(crate::outbound::USER_AGENT)
        .build()
        .map_err(|e| ApiError::BadGateway(format!("BigCommerce token endpoint: {e}")))?;
    let resp = client
        .post(&url)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            ApiError::BadGateway(format!("BigCommerce token endpoint unreachable: {e}"))
        })?;
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if (400..500).contains(&status) {
        // Only BigCommerce's own error text, never what we sent.
        let reason: String = answer
            .get("error")
            .or_else(|| answer.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .chars()
            .take(200)
            .collect();
        return Err(ApiError::field(
            "providerData.code",
            format!("BigCommerce refused the code ({status}: {reason}); start the app install again for a fresh code"),
        ));
    }
    if !(200..300).contains(&status) {
        return Err(ApiError::BadGateway(format!(
            "BigCommerce token endpoint answered {status}"
        )));
    }
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadGateway("BigCommerce answered no access_token".into()))?;
    let hash = answer
        .get("context")
        .and_then(Value::as_str)
        .and_then(store_hash)
        .or_else(|| store_hash(&context))
        .ok_or_else(|| ApiError::BadGateway("BigCommerce answered no store context".into()))?;
    cfg.insert(ACCESS_TOKEN_KEY.into(), json!(token));
    cfg.insert(STORE_HASH_KEY.into(), json!(hash));
    Ok(())
}
