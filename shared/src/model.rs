//! A connector instance: in memory (secrets in the clear, never logged) and at
//! rest (secrets sealed), and the JSON shape the API answers with.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::{self, values::Configuration, EventSettings};
use crate::crypto::SecretBox;
use crate::elements::{self, Element};
use crate::error::ApiError;

#[derive(Clone)]
pub struct Instance {
    pub id: u64,
    pub org_id: String,
    pub element_key: String,
    pub name: String,
    pub tags: Vec<String>,
    /// The full configuration, secrets included. Only ever leaves the process
    /// sealed ([`Instance::seal`]) or redacted ([`Instance::to_api_json`]).
    pub configuration: Configuration,
    pub events: EventSettings,
    pub token_hash: String,
    /// The vendor's ids of the webhooks registered at the store for us.
    pub registered_webhooks: Vec<String>,
    /// Why and since when delivery is paused (a 410 from the callback URL).
    pub events_paused: Option<String>,
    /// How many times delivery was resumed (recover). A pause or a
    /// "queued" completion is written only if it is unchanged since the
    /// writer read it, so a recover is never silently undone.
    pub delivery_epoch: u64,
    /// Why and since when the store refuses the credentials (polling stops).
    pub poll_invalid: Option<String>,
    /// The last webhook health check (`elements::WebhookHealth`), written by
    /// the poller's reconciliation.
    pub webhook_health: Option<elements::WebhookHealth>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version; every write is conditional on it.
    pub version: u64,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("element_key", &self.element_key)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The at-rest form the store writes: public configuration as JSON text,
/// secrets sealed, and the attributes the indexes need.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: u64,
    pub org_id: String,
    pub element_key: String,
    pub name: String,
    pub tags: Vec<String>,
    pub public_config: String,
    pub sealed_secrets: String,
    pub events: String,
    /// Set only while polling is on, so the interval index stays sparse.
    pub poll_interval: Option<u32>,
    /// `element#identity`, for routing webhooks that carry no instance id.
    pub store_key: Option<String>,
    pub token_hash: String,
    pub registered_webhooks: Vec<String>,
    /// Set by the dispatcher when the callback URL answered 410; not written
    /// by instance updates.
    pub events_paused: Option<String>,
    /// Counts resumes (recover); written only by the store's pause/resume.
    pub delivery_epoch: u64,
    /// Set by the poller when the store refused the credentials; cleared by
    /// an instance update.
    pub poll_invalid: Option<String>,
    /// The last webhook health check as JSON; written by the poller only.
    pub webhook_health: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

pub fn secrets_context(id: u64) -> String {
    format!("instance:{id}")
}

pub use crate::events::format_date;

impl Instance {
    pub fn element(&self) -> &'static dyn Element {
        elements::find(&self.element_key).expect("instances are only built for known elements")
    }

    pub fn seal(&self, secrets: &SecretBox) -> InstanceRecord {
        let element = self.element();
        let (public, secret) = config::split_secrets(element, &self.configuration);
        InstanceRecord {
            id: self.id,
            org_id: self.org_id.clone(),
            element_key: self.element_key.clone(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            public_config: Value::Object(public).to_string(),
            sealed_secrets: secrets.seal(
                Value::Object(secret).to_string().as_bytes(),
                &secrets_context(self.id),
            ),
            events: serde_json::to_string(&self.events).expect("event settings serialize"),
            poll_interval: self.events.poll_interval(),
            store_key: element
                .store_identity(&self.configuration)
                .map(|identity| format!("{}#{identity}", self.element_key))
                .or_else(|| {
                    // Validated at every write; an unparsable one routes nothing.
                    crate::config::finder::parse(&self.configuration)
                        .ok()
                        .flatten()
                        .map(|f| {
                            crate::config::finder::Finder::route_key(
                                &self.element_key,
                                &f.payload_path,
                                &f.value,
                            )
                        })
                }),
            token_hash: self.token_hash.clone(),
            registered_webhooks: self.registered_webhooks.clone(),
            events_paused: self.events_paused.clone(),
            delivery_epoch: self.delivery_epoch,
            poll_invalid: self.poll_invalid.clone(),
            webhook_health: self
                .webhook_health
                .as_ref()
                .and_then(|h| serde_json::to_string(h).ok()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// True when the instance takes events from vendor webhooks.
    pub fn receives_webhooks(&self) -> bool {
        self.events.mode == Some(elements::EventMode::Webhook)
    }

    /// The URL the vendor must deliver webhooks to, for webhook instances.
    pub fn webhook_url(&self, public_base_url: &str) -> Option<String> {
        self.receives_webhooks().then(|| {
            format!(
                "{}{}{}",
                public_base_url.trim_end_matches('/'),
                crate::api::API_PREFIX,
                self.element().webhook_path(self.id)
            )
        })
    }

    /// The Cloud Elements instance JSON. `token` is shown only when the
    /// instance is created; secrets are always masked. `webhookUrl` (where
    /// the vendor must deliver) is shown when the public base URL is known.
    pub fn to_api_json(&self, token: Option<&str>, public_base_url: Option<&str>) -> Value {
        let mut body = json!({
            "id": self.id,
            "name": self.name,
            "element": { "key": self.element_key },
            "tags": self.tags,
            "createdDate": format_date(self.created_at),
            "updatedDate": format_date(self.updated_at),
            "eventsEnabled": self.events.enabled,
            "eventsNotificationCallbackUrl": self.events.callback_url,
            "eventVendorType": self.events.mode.map(|m| m.as_str()),
            "eventPollerRefreshInterval": self.events.poll_interval_minutes,
            "configuration": config::redact(self.element(), &self.configuration),
            "valid": self.poll_invalid.is_none(),
            "invalidReason": self.poll_invalid,
            "disabled": false,
            "eventsPaused": self.events_paused,
        });
        if let Some(token) = token {
            body["token"] = Value::String(token.to_string());
        }
        if self.receives_webhooks() {
            body["eventReconciliationInterval"] = json!(self.events.poll_interval());
            if let Some(health) = &self.webhook_health {
                body["webhookHealth"] = json!(health);
            }
        }
        if let Some(url) = public_base_url.and_then(|base| self.webhook_url(base)) {
            body["webhookUrl"] = Value::String(url);
        }
        body
    }
}

impl InstanceRecord {
    pub fn open(&self, secrets: &SecretBox) -> Result<Instance, ApiError> {
        let corrupt = |what: &str| {
            ApiError::Internal(format!("instance {} has an unreadable {what}", self.id))
        };
        let mut configuration: Configuration =
            serde_json::from_str(&self.public_config).map_err(|_| corrupt("configuration"))?;
        let plain = secrets
            .open(&self.sealed_secrets, &secrets_context(self.id))
            .map_err(|_| corrupt("sealed secrets (wrong CE_ENCRYPTION_KEY?)"))?;
        let secret: Configuration =
            serde_json::from_slice(&plain).map_err(|_| corrupt("secrets"))?;
        configuration.extend(secret);
        if elements::find(&self.element_key).is_none() {
            return Err(corrupt("element key"));
        }
        Ok(Instance {
            id: self.id,
            org_id: self.org_id.clone(),
            element_key: self.element_key.clone(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            configuration,
            events: serde_json::from_str(&self.events).map_err(|_| corrupt("event settings"))?,
            token_hash: self.token_hash.clone(),
            registered_webhooks: self.registered_webhooks.clone(),
            events_paused: self.events_paused.clone(),
            delivery_epoch: self.delivery_epoch,
            poll_invalid: self.poll_invalid.clone(),
            webhook_health: self
                .webhook_health
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netguard::NetGuard;

    fn woo_instance() -> Instance {
        let mut cfg: Configuration = serde_json::from_value(json!({
            "store.url": "https://shop.example.com",
            "oauth.api.key": "ck_public",
            "oauth.api.secret": "cs_very_secret",
            "event.notification.enabled": "true",
            "event.vendor.type": "polling",
            "event.notification.callback.url": "https://app.example.com/cb",
            "event.notification.signature.key": "sig-key-secret",
            "event.poller.refresh_interval": "5"
        }))
        .unwrap();
        let element = elements::find("woocommercerest").unwrap();
        let events =
            config::validate_configuration(element, &mut cfg, &NetGuard::new(false)).unwrap();
        let now = Utc::now();
        Instance {
            id: 42,
            org_id: "org-1".into(),
            element_key: "woocommercerest".into(),
            name: "shop".into(),
            tags: vec!["a".into()],
            configuration: cfg,
            events,
            token_hash: "h".into(),
            registered_webhooks: Vec::new(),
            events_paused: None,
            delivery_epoch: 0,
            poll_invalid: None,
            webhook_health: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn sealing_keeps_secrets_out_of_the_record_and_round_trips() {
        let sb = SecretBox::from_key_bytes(&[1u8; 32]).unwrap();
        let inst = woo_instance();
        let rec = inst.seal(&sb);
        let dump = format!("{rec:?}");
        assert!(!dump.contains("cs_very_secret") && !dump.contains("sig-key-secret"));
        assert!(rec.public_config.contains("ck_public"));
        assert_eq!(rec.poll_interval, Some(5));
        assert_eq!(
            rec.store_key.as_deref(),
            Some("woocommercerest#https://shop.example.com")
        );
        let back = rec.open(&sb).unwrap();
        assert_eq!(back.configuration, inst.configuration);
        assert_eq!(back.events, inst.events);
    }

    #[test]
    fn api_json_masks_secrets_and_shows_the_token_only_when_given() {
        let inst = woo_instance();
        let shown = inst.to_api_json(None, None).to_string();
        assert!(!shown.contains("cs_very_secret") && !shown.contains("sig-key-secret"));
        assert!(shown.contains(config::REDACTED));
        assert!(inst.to_api_json(None, None).get("token").is_none());
        assert_eq!(inst.to_api_json(Some("t"), None).get("token").unwrap(), "t");
        let body = inst.to_api_json(None, None);
        assert_eq!(body["eventsEnabled"], true);
        assert_eq!(body["eventPollerRefreshInterval"], 5);
        assert_eq!(body["element"]["key"], "woocommercerest");
    }

    #[test]
    fn a_record_sealed_for_another_instance_does_not_open() {
        let sb = SecretBox::from_key_bytes(&[1u8; 32]).unwrap();
        let mut rec = woo_instance().seal(&sb);
        rec.id = 43;
        assert_eq!(rec.open(&sb).unwrap_err().status(), 500);
    }
}
