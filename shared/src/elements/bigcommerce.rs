//! BigCommerce: polling only (v2 API with Basic auth, or OAuth with X-Auth-Token).

use super::{default_poller_for, require_all, Element, EventMode, HubResource};
use crate::config::values::{optional_str, Configuration};
use crate::error::ApiError;

pub struct BigCommerce;

const RESOURCES: &[HubResource] = &[
    HubResource {
        hub: "ecommerce",
        name: "orders",
        vendor_path: "/orders",
    },
    HubResource {
        hub: "ecommerce",
        name: "products",
        vendor_path: "/products",
    },
    HubResource {
        hub: "ecommerce",
        name: "customers",
        vendor_path: "/customers",
    },
];

impl Element for BigCommerce {
    fn key(&self) -> &'static str {
        "bigcommerce"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Polling]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["password", "oauth.api.secret", "oauth.access.token"]
    }

    /// Either the legacy v2 API account (`username`, `password`, `store.url`
    /// ending in `/api/v2`) or an OAuth app (`oauth.api.key`, `oauth.api.secret`),
    /// the two bodies the Cloud Elements docs show.
    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        let basic = ["username", "password", "store.url"];
        let oauth = ["oauth.api.key", "oauth.api.secret"];
        let any_given = |keys: &[&str]| keys.iter().any(|k| cfg.contains_key(*k));
        if any_given(&basic) || !any_given(&oauth) {
            require_all(cfg, &basic)
        } else {
            require_all(cfg, &oauth)?;
            optional_str(cfg, "oauth.callback.url")?;
            Ok(())
        }
    }

    fn hub_resources(&self) -> &'static [HubResource] {
        RESOURCES
    }

    fn default_poller_configuration(&self) -> Option<serde_json::Value> {
        Some(default_poller_for(
            RESOURCES,
            "date_modified",
            "date_created",
            "EEE, dd MMM yyyy HH:mm:ss Z",
        ))
    }

    fn outbound_url_keys(&self) -> &'static [&'static str] {
        &["store.url", "oauth.callback.url"]
    }
}
