//! Webhook health: WooCommerce never re-sends a delivery, and after more
//! than 5 consecutive failures it sets the hook's status to `disabled` and
//! never sends again (`WC_Webhook::failed_delivery`, filter
//! `woocommerce_max_webhook_delivery_failures`). A merchant may also pause or
//! delete hooks by hand. So each reconciliation asks the store for its hooks
//! and repairs ours: disabled or paused ones are set `active` again
//! (`PUT /webhooks/{id}`), missing topics are created again, and hooks to
//! our URL that no instance registered (left by an interrupted
//! registration) are deleted.

use std::collections::HashSet;

use serde_json::Value;

use super::store_api::StoreApi;
use super::{webhook_body, WEBHOOK_TOPICS};
use crate::config::values::required_str;
use crate::elements::{RegistrationContext, WebhookHealth};
use crate::error::ApiError;

struct StoreHook {
    id: String,
    topic: String,
    status: String,
    delivery_url: String,
    created: Option<chrono::DateTime<chrono::Utc>>,
}

/// A hook to our URL that no instance lists is a stray only once it is this
/// old: a registration in flight (a create or PATCH between its store calls
/// and its write) has hooks that are not listed yet.
const STRAY_MIN_AGE_MINUTES: i64 = 60;

fn read_hook(v: &Value) -> Option<StoreHook> {
    let o = v.as_object()?;
    Some(StoreHook {
        id: crate::webhook::text_at(o, "id")?,
        topic: crate::webhook::text_at(o, "topic").unwrap_or_default(),
        status: crate::webhook::text_at(o, "status").unwrap_or_default(),
        delivery_url: crate::webhook::text_at(o, "delivery_url").unwrap_or_default(),
        created: crate::webhook::text_at(o, "date_created_gmt")
            .as_deref()
            .and_then(super::parse_wc_gmt),
    })
}

pub(super) async fn check(
    ctx: RegistrationContext<'_>,
    registered: &[String],
) -> Result<WebhookHealth, ApiError> {
    let api = StoreApi::connect(&ctx).await?;
    let listed: Vec<StoreHook> = api.list_webhooks().await?.iter().filter_map(read_hook).collect();
    let ours: HashSet<&str> = registered.iter().map(String::as_str).collect();
    let mut health = WebhookHealth {
        checked_at: crate::model::format_date(chrono::Utc::now()),
        ..Default::default()
    };

    // Where our hooks deliver: as the caller knows it, else as our own
    // hooks at the store say.
    let delivery_url = if ctx.delivery_url.is_empty() {
        listed
            .iter()
            .find(|h| ours.contains(h.id.as_str()) && !h.delivery_url.is_empty())
            .map(|h| h.delivery_url.clone())
            .unwrap_or_default()
    } else {
        ctx.delivery_url.to_string()
    };
    let mut kept = Vec::new();
    let mut covered = HashSet::new();
    let mut strays = Vec::new();
    for hook in &listed {
        if ours.contains(hook.id.as_str()) {
            health.registered += 1;
            if hook.status != "active" {
                api.set_status(&hook.id, "active").await?;
                health.reactivated += 1;
                tracing::info!(webhook_id = %hook.id, was = %hook.status, "WooCommerce webhook re-activated");
            }
            health.active += 1;
            covered.insert(hook.topic.clone());
            kept.push(hook.id.clone());
        } else if !delivery_url.is_empty()
            && hook.delivery_url == delivery_url
            && hook.created.is_some_and(|t| {
                chrono::Utc::now() - t > chrono::Duration::minutes(STRAY_MIN_AGE_MINUTES)
            })
        {
            strays.push(hook.id.clone());
        }
    }
    if !strays.is_empty() {
        api.delete_webhooks(&strays).await;
        health.strays_removed = strays.len();
    }

    let missing: Vec<&str> = WEBHOOK_TOPICS
        .iter()
        .copied()
        .filter(|t| !covered.contains(*t))
        .collect();
    if !missing.is_empty() {
        if delivery_url.is_empty() {
            health.error = Some(format!(
                "{} webhooks are missing at the store and this function does not know the webhook URL to create them again (set PUBLIC_BASE_URL)",
                missing.len()
            ));
        } else {
            let secret = required_str(ctx.cfg, super::WEBHOOK_SECRET_KEY)?;
            let bodies = missing
                .iter()
                .map(|topic| webhook_body(topic, &delivery_url, &secret))
                .collect();
            let created = api.create_webhooks(bodies).await?;
            health.recreated = created.len();
            health.registered += created.len();
            health.active += created.len();
            tracing::info!(count = created.len(), "missing WooCommerce webhooks created again");
            kept.extend(created);
        }
    }
    health.webhook_ids = kept;
    Ok(health)
}
