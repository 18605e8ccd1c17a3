//! Ecwid: webhooks only, delivered to `/events/ecwid` without an instance id
//! and routed by `storeId`.
//!
//! Configuration keys: `ecwid.store.id`, `ecwid.order.key`, `ecwid.product.key`
//! (the legacy API secrets the Cloud Elements docs ask for) and
//! `ecwid.client.secret`, the app's client secret Ecwid signs webhooks with.

use super::{require_all, Element, EventMode};
use crate::config::values::{optional_str, required_str, Configuration};
use crate::error::ApiError;

pub struct Ecwid;

impl Element for Ecwid {
    fn key(&self) -> &'static str {
        "ecwid"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[
            "ecwid.order.key",
            "ecwid.product.key",
            "ecwid.client.secret",
        ]
    }

    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["ecwid.store.id", "ecwid.order.key"])?;
        let store_id = required_str(cfg, "ecwid.store.id")?;
        if !store_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::field(
                "configuration.ecwid.store.id",
                format!("must be the numeric Ecwid store id, got '{store_id}'"),
            ));
        }
        optional_str(cfg, "ecwid.product.key")?;
        optional_str(cfg, "ecwid.client.secret")?;
        Ok(())
    }

    fn store_identity(&self, cfg: &Configuration) -> Option<String> {
        optional_str(cfg, "ecwid.store.id").ok().flatten()
    }
}
