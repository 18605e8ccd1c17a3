//! WooCommerce REST API v3 (`/wp-json/wc/v3`): polling or webhooks.

use super::{default_poller_for, require_all, Element, EventMode, HubResource};
use crate::config::values::Configuration;
use crate::error::ApiError;

pub struct WooCommerce;

const RESOURCES: &[HubResource] = &[
    HubResource {
        hub: "ecommerce",
        name: "orders",
        vendor_path: "/wp-json/wc/v3/orders",
    },
    HubResource {
        hub: "ecommerce",
        name: "products",
        vendor_path: "/wp-json/wc/v3/products",
    },
    HubResource {
        hub: "ecommerce",
        name: "customers",
        vendor_path: "/wp-json/wc/v3/customers",
    },
    // Cloud Elements calls WooCommerce coupons "discounts".
    HubResource {
        hub: "ecommerce",
        name: "discounts",
        vendor_path: "/wp-json/wc/v3/coupons",
    },
];

impl Element for WooCommerce {
    fn key(&self) -> &'static str {
        "woocommercerest"
    }

    fn modes(&self) -> &'static [EventMode] {
        &[EventMode::Polling, EventMode::Webhook]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &["oauth.api.secret", "woocommerce.webhook.secret"]
    }

    fn validate_credentials(&self, cfg: &Configuration) -> Result<(), ApiError> {
        require_all(cfg, &["store.url", "oauth.api.key", "oauth.api.secret"])
    }

    fn hub_resources(&self) -> &'static [HubResource] {
        RESOURCES
    }

    fn default_poller_configuration(&self) -> Option<serde_json::Value> {
        // WooCommerce's `_gmt` fields are UTC without an offset.
        Some(default_poller_for(
            RESOURCES,
            "date_modified_gmt",
            "date_created_gmt",
            "yyyy-MM-dd'T'HH:mm:ss",
        ))
    }

    fn store_identity(&self, cfg: &Configuration) -> Option<String> {
        // Webhooks carry `X-WC-Webhook-Source: https://shop.example/`.
        crate::config::values::optional_str(cfg, "store.url")
            .ok()
            .flatten()
            .map(|u| normalize_store_url(&u))
    }

    fn outbound_url_keys(&self) -> &'static [&'static str] {
        &["store.url"]
    }
}

/// Scheme + host + path without trailing slash, lowercase host: the form both
/// the configuration and the `X-WC-Webhook-Source` header are compared in.
pub fn normalize_store_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path().trim_end_matches('/')
        ),
        Err(_) => raw.trim().trim_end_matches('/').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_compare_without_trailing_slash_or_case() {
        assert_eq!(
            normalize_store_url("https://Shop.Example.com/"),
            "https://shop.example.com"
        );
        assert_eq!(
            normalize_store_url("http://127.0.0.1:8080/wp/"),
            "http://127.0.0.1:8080/wp"
        );
    }
}
