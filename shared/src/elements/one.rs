//! ONe platform: webhooks only, authenticated with HTTP_BASIC.
//!
//! Configuration keys: `one.webhook.username` and `one.webhook.password`, the
//! credentials entered in ONe's webhook form ("Username"/"Password").

use super::{require_all, Element, EventMode};
use crate::config::values::Configuration;
use crate::error::ApiError;

pub struct One;

impl Element for One {
    fn key(&self) -> &'static str {
        "one"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["one.webhook.password"]
    }

    fn validate_credentials(&self, _cfg: &Configuration) -> Result<(), ApiError> {
        // ONe pushes to us; there is no store API to call.
        Ok(())
    }

    fn validate_webhook_settings(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["one.webhook.username", "one.webhook.password"])
    }
}
