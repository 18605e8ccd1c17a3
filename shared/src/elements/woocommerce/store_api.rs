//! The store's `/wp-json/wc/v3/webhooks` endpoint, authenticated as
//! WooCommerce requires for the store URL's scheme
//! ([`crate::request_auth::RequestAuth::woocommerce`]).

use std::time::Duration;

use futures_util::{stream, StreamExt};
use serde_json::Value;

use super::polling::auth;
use crate::config::values::{field_path, required_str};
use crate::elements::RegistrationContext;
use crate::error::ApiError;
use crate::request_auth::{send, RequestAuth};

pub(super) struct StoreApi {
    client: reqwest::Client,
    endpoint: url::Url,
    auth: RequestAuth,
}

/// One call's timeout. A create waits for the store's synchronous ping
/// (`WC_REST_Webhooks_V1_Controller::create_item` → `deliver_ping`, up to
/// WordPress's 5 s HTTP timeout) on top of shared hosting's own slowness.
const STORE_API_TIMEOUT: Duration = Duration::from_secs(15);

/// Creates in flight at once: 16 one after another at a few seconds each
/// would outlast API Gateway's 29 s.
pub(super) const CREATE_CONCURRENCY: usize = 8;

/// WordPress's largest `per_page`.
const LIST_PAGE_SIZE: usize = 100;

/// A page limit for listing a store's webhooks (10,000 hooks).
const MAX_LIST_PAGES: usize = 100;

impl StoreApi {
    pub(super) async fn connect(ctx: &RegistrationContext<'_>) -> Result<Self, ApiError> {
        let store_url = required_str(ctx.cfg, "store.url")?;
        let endpoint = url::Url::parse(&format!(
            "{}/wp-json/wc/v3/webhooks",
            store_url.trim_end_matches('/')
        ))
        .map_err(|e| ApiError::field(field_path("store.url"), format!("is not a URL: {e}")))?;
        let client = crate::outbound::pinned_client(ctx.guard, &endpoint, STORE_API_TIMEOUT)
            .await
            .map_err(|e| {
                ApiError::field(field_path("store.url"), format!("cannot be reached: {e}"))
            })?;
        Ok(Self {
            client,
            endpoint,
            auth: auth(ctx.cfg)?,
        })
    }

    fn item_url(&self, id: &str, query: &[(&str, &str)]) -> url::Url {
        let mut u = self.endpoint.clone();
        u.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .push(id);
        for (k, v) in query {
            u.query_pairs_mut().append_pair(k, v);
        }
        u
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        body: Option<&Value>,
    ) -> Result<(u16, String, http::HeaderMap), ApiError> {
        let resp = send(&self.client, method, url, body, &self.auth)
            .await
            .map_err(|e| {
                ApiError::BadGateway(format!(
                    "WooCommerce store at {} did not answer: {e}",
                    self.endpoint
                ))
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text, headers))
    }

    /// Creates one webhook; its id.
    pub(super) async fn create_webhook(&self, body: &Value) -> Result<String, ApiError> {
        let (status, text, _) = self
            .call(reqwest::Method::POST, &self.endpoint, Some(body))
            .await?;
        if !(200..300).contains(&status) {
            return Err(store_refusal(self.endpoint.as_str(), status, &text));
        }
        let created: Value = serde_json::from_str(&text).map_err(|_| {
            ApiError::BadGateway(format!(
                "WooCommerce store at {} answered {status} without JSON",
                self.endpoint
            ))
        })?;
        created
            .as_object()
            .and_then(|o| crate::webhook::text_at(o, "id"))
            .ok_or_else(|| {
                ApiError::BadGateway(format!(
                    "WooCommerce store at {} created a webhook without an id",
                    self.endpoint
                ))
            })
    }

    /// Creates one webhook per body, a few at a time. All or nothing: on the
    /// first failure, every hook this call created is deleted again.
    pub(super) async fn create_webhooks(&self, bodies: Vec<Value>) -> Result<Vec<String>, ApiError> {
        let results: Vec<Result<String, ApiError>> = stream::iter(bodies)
            .map(|body| async move { self.create_webhook(&body).await })
            .buffered(CREATE_CONCURRENCY)
            .collect()
            .await;
        let (created, failures): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        let created: Vec<String> = created.into_iter().filter_map(Result::ok).collect();
        match failures.into_iter().find_map(Result::err) {
            None => Ok(created),
            Some(err) => {
                self.delete_webhooks(&created).await;
                Err(err)
            }
        }
    }

    /// Every webhook the store holds, page by page.
    pub(super) async fn list_webhooks(&self) -> Result<Vec<Value>, ApiError> {
        let mut all = Vec::new();
        for page in 1..=MAX_LIST_PAGES {
            let mut url = self.endpoint.clone();
            url.query_pairs_mut()
                .append_pair("per_page", &LIST_PAGE_SIZE.to_string())
                .append_pair("page", &page.to_string());
            let (status, text, headers) = self.call(reqwest::Method::GET, &url, None).await?;
            if !(200..300).contains(&status) {
                return Err(ApiError::BadGateway(format!(
                    "WooCommerce store answered {status} to the webhooks list"
                )));
            }
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => all.extend(items),
                _ => {
                    return Err(ApiError::BadGateway(
                        "WooCommerce store answered the webhooks list without a JSON array".into(),
                    ))
                }
            }
            let total_pages = headers
                .get("x-wp-totalpages")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(1);
            if page >= total_pages {
                break;
            }
        }
        Ok(all)
    }

    /// Sets a webhook's status (`PUT /webhooks/{id}`).
    pub(super) async fn set_status(&self, id: &str, status: &str) -> Result<(), ApiError> {
        let url = self.item_url(id, &[]);
        let (code, _, _) = self
            .call(
                reqwest::Method::PUT,
                &url,
                Some(&serde_json::json!({ "status": status })),
            )
            .await?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(ApiError::BadGateway(format!(
                "WooCommerce store answered {code} to re-activating webhook {id}"
            )))
        }
    }

    /// Deletes webhooks for good (`force=true`; webhooks have no trash).
    /// Best effort: failures are logged.
    pub(super) async fn delete_webhooks(&self, ids: &[String]) {
        let deletes = stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let url = self.item_url(&id, &[("force", "true")]);
                (id, self.call(reqwest::Method::DELETE, &url, None).await)
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (id, result) in deletes {
            match result {
                Ok((status, _, _)) if (200..300).contains(&status) || status == 404 => {}
                Ok((status, _, _)) => {
                    tracing::warn!(webhook_id = %id, status, "WooCommerce webhook not deleted")
                }
                Err(e) => {
                    tracing::warn!(webhook_id = %id, error = %e, "WooCommerce webhook not deleted")
                }
            }
        }
    }
}

/// A store's refusal as the client's error, naming the field to fix.
fn store_refusal(endpoint: &str, status: u16, body: &str) -> ApiError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            let code = v.get("code")?.as_str()?.to_string();
            let message = v.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!("{code}: {message}"))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let what = format!("the WooCommerce store refused to create webhooks ({status} {detail})");
    match status {
        401 | 403 => ApiError::field(
            field_path("oauth.api.key"),
            format!("{what}; check the consumer key and secret and their read/write permission"),
        ),
        404 => ApiError::field(
            field_path("store.url"),
            format!("no WooCommerce REST API at {endpoint} ({status})"),
        ),
        400..=499 => ApiError::field(field_path("store.url"), what),
        _ => ApiError::BadGateway(what),
    }
}
