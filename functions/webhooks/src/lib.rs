//! The webhooks function: vendor ingestion at
//! `POST /elements/api-v2/events/{elementKey}[/{instanceId}]`.
//!
//! For each request: find the instance(s), verify the sender, normalize the
//! payload into events, store pending notifications, and only then answer
//! 2xx. A storage failure answers 503: vendors that retry (Ecwid, BigCommerce)
//! send again and the retry maps to the same notification ids and collapses;
//! WooCommerce never retries, so its reconciliation poll delivers what a 503
//! lost.

mod instance_id;

use base64::Engine;
use chrono::Utc;
use http::Method;
use serde_json::json;
use shared::api::{ApiRequest, ApiResponse};
use shared::elements::{self, Element};
use shared::error::ApiError;
use shared::events::{Notification, ObjectVersion, Source, MAX_EVENTS_PER_WEBHOOK_NOTIFICATION};
use shared::model::Instance;
use shared::settings::Settings;
use shared::store::{Store, Stored};
use shared::webhook::{WebhookContent, WebhookRequest};
use tracing::Instrument;

pub use instance_id::parse_instance_id;

#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub settings: Settings,
    /// Added to the clock when a webhook is stamped: lets tests be a day
    /// later (dedupe windows) without waiting. Zero in production.
    pub clock_offset: chrono::Duration,
}

impl App {
    pub fn new(store: Store, settings: Settings) -> Self {
        Self {
            store,
            settings,
            clock_offset: chrono::Duration::zero(),
        }
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (_, settings, store) = shared::settings::function_context().await?;
        Ok(Self::new(store, settings))
    }
}

pub async fn handle(app: &App, req: ApiRequest) -> ApiResponse {
    shared::api::respond(&req, "webhook", ingest(app, &req)).await
}

async fn ingest(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let segments = req.segments();
    let (element_key, instance_segment) = match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["events", element] => (element.to_string(), None),
        ["events", element, instance] => (element.to_string(), Some(instance.to_string())),
        _ => {
            return Err(ApiError::NotFound(format!(
                "no route for {} {}",
                req.method, req.path
            )))
        }
    };
    // The instance the URL names, before anything can fail, so that every
    // line of the request says which instance was addressed.
    if let Some(id) = instance_segment.as_deref().and_then(parse_instance_id) {
        shared::logging::record_instance(id);
    }
    if req.method != Method::POST {
        return Err(ApiError::MethodNotAllowed(
            "webhooks are delivered with POST".into(),
        ));
    }
    if req.body.len() > app.settings.max_webhook_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: app.settings.max_webhook_body_bytes,
        });
    }
    let element = elements::find(&element_key)
        .ok_or_else(|| ApiError::NotFound(format!("unknown element '{element_key}'")))?;
    let webhook = WebhookRequest {
        headers: &req.headers,
        body: &req.body,
    };
    if element.is_handshake(&webhook) {
        tracing::info!(element = element.key(), "webhook handshake answered");
        return Ok(ApiResponse::json(
            200,
            &json!({ "accepted": 0, "handshake": true }),
        ));
    }

    let candidates = match find_instances(app, element, instance_segment.as_deref(), &webhook)
        .await?
    {
        Routed::Instances(candidates) => candidates,
        Routed::UnknownStore(store) => {
            // One app URL serves every store that installed the app, and the
            // vendor retries a refusal for a day and then blocks the app:
            // a store with no instance here is acknowledged and dropped.
            tracing::warn!(
                element = element.key(),
                store = %store,
                "webhook for a store with no instance here dropped"
            );
            shared::metrics::emit(
                element.key(),
                &[("WebhooksUnrouted", 1.0, shared::metrics::Unit::Count)],
            );
            return Ok(ApiResponse::json(
                200,
                &json!({ "accepted": 0, "eventIds": [], "duplicates": 0, "dropped": 1, "unknownStore": true }),
            ));
        }
    };
    let verified: Vec<Instance> = candidates
        .into_iter()
        .filter(
            |instance| match element.verify_webhook(&instance.configuration, &webhook) {
                Ok(()) => true,
                Err(_) => {
                    // Logged without the header values or secrets.
                    tracing::warn!(
                        element = element.key(),
                        instance_id = instance.id,
                        "webhook verification failed"
                    );
                    false
                }
            },
        )
        .collect();
    if verified.is_empty() {
        return Err(ApiError::Unauthorized(
            "webhook signature or credentials are invalid".into(),
        ));
    }

    let now = Utc::now() + app.clock_offset;
    let (dedupe_key, events, versions) = match element.parse_webhook(&webhook, now)? {
        WebhookContent::Ping => {
            return Ok(ApiResponse::json(
                200,
                &json!({ "accepted": 0, "handshake": true }),
            ));
        }
        WebhookContent::Events {
            dedupe_key,
            events,
            versions,
        } => (dedupe_key, events, versions),
    };
    let raw = String::from_utf8_lossy(&req.body).into_owned();
    if let (None, [only]) = (&instance_segment, verified.as_slice()) {
        shared::logging::record_instance(only.id);
    }

    let mut stored_ids = Vec::new();
    let mut duplicates = 0;
    let mut dropped = 0;
    for instance in &verified {
        if !instance.events.enabled {
            // Documented: events off means acknowledged and dropped.
            dropped += 1;
            continue;
        }
        let batch = Notification::batch(
            instance.id,
            &instance.org_id,
            element.key(),
            Source::Webhook,
            events.clone(),
            &raw,
            &dedupe_key,
            MAX_EVENTS_PER_WEBHOOK_NOTIFICATION,
            now,
        );
        // A store shared by several organizations fans out: each store call
        // and line inside names the instance it is for.
        let stored = store_batch(app, element, &batch, &versions, &dedupe_key)
            .instrument(shared::logging::instance_span(instance.id))
            .await?;
        match stored {
            Stored::New => stored_ids.extend(batch.iter().map(|n| n.id.clone())),
            Stored::Duplicate => duplicates += 1,
        }
    }
    Ok(ApiResponse::json(
        200,
        &json!({
            "accepted": stored_ids.len(),
            "eventIds": stored_ids,
            "duplicates": duplicates,
            "dropped": dropped,
        }),
    ))
}

/// Stores one instance's notifications of a webhook: all of them, or none if
/// the vendor sent this delivery before.
async fn store_batch(
    app: &App,
    element: &dyn Element,
    batch: &[Notification],
    versions: &[ObjectVersion],
    webhook_id: &str,
) -> Result<Stored, ApiError> {
    let stored = match batch {
        // With the markers of the versions it reports, in one transaction,
        // so the reconciliation poll does not deliver them again (and a
        // version the poll delivered first is not delivered by this one).
        [single] if !versions.is_empty() => {
            match app
                .store
                .put_notification_with_markers(single, versions)
                .await?
            {
                true => Stored::New,
                false => Stored::Duplicate,
            }
        }
        _ => app.store.put_notifications(batch).await?,
    };
    let events: usize = batch.iter().map(|n| n.events.len()).sum();
    let event_ids: Vec<&str> = batch.iter().map(|n| n.id.as_str()).collect();
    let event_ids = event_ids.join(",");
    if let Stored::New = stored {
        shared::metrics::emit(
            element.key(),
            &[(
                "EventsIngested",
                events as f64,
                shared::metrics::Unit::Count,
            )],
        );
    }
    tracing::info!(
        element = element.key(),
        webhook_id,
        event_ids,
        events,
        duplicate = matches!(stored, Stored::Duplicate),
        "webhook stored"
    );
    Ok(stored)
}

/// Where a webhook goes.
enum Routed {
    /// The candidates, each to be verified with its own secret.
    Instances(Vec<Instance>),
    /// A store-routed webhook (no instance id) for a store no instance here
    /// is connected to, of a vendor that must not be refused for it.
    UnknownStore(String),
}

/// The instances a webhook is for: the one named in the URL, or every
/// instance connected to the store the payload names (one index Query and
/// one batch read, at most `MAX_INSTANCES_PER_STORE` of them). A candidate
/// that cannot be read or opened is logged and skipped; the others still get
/// the webhook.
async fn find_instances(
    app: &App,
    element: &dyn Element,
    instance_segment: Option<&str>,
    webhook: &WebhookRequest<'_>,
) -> Result<Routed, ApiError> {
    let (records, by_store, identity) = match instance_segment {
        Some(segment) => {
            let id = parse_instance_id(segment)
                .ok_or_else(|| ApiError::NotFound(format!("no instance '{segment}'")))?;
            let records = app
                .store
                .get_instance(id)
                .await?
                .filter(|r| r.element_key == element.key())
                .into_iter()
                .collect::<Vec<_>>();
            (records, false, None)
        }
        None => match element.webhook_store_identity(webhook)? {
            Some(identity) => {
                let found = app
                    .store
                    .find_instances_by_store(&format!("{}#{identity}", element.key()))
                    .await?;
                if found.truncated {
                    tracing::error!(
                        element = element.key(),
                        cap = shared::store::MAX_INSTANCES_PER_STORE,
                        "more instances share this store than are routed"
                    );
                }
                if found.unreadable > 0 && found.records.is_empty() {
                    // Something is there, but nothing we can read: a 5xx, so
                    // the vendor's retry gets another chance.
                    return Err(ApiError::Unavailable(
                        "the store's instances could not be read".into(),
                    ));
                }
                (found.records, true, Some(identity))
            }
            None => {
                return Err(ApiError::NotFound(format!(
                    "webhooks for {} must be sent to /events/{}/{{instanceId}}",
                    element.key(),
                    element.key()
                )))
            }
        },
    };
    let mut instances = Vec::with_capacity(records.len());
    let mut unreadable = 0;
    for record in &records {
        match record.open(&app.settings.secrets) {
            Ok(instance) if instance.receives_webhooks() => instances.push(instance),
            Ok(_) => {}
            Err(e) if by_store => {
                unreadable += 1;
                tracing::warn!(element = element.key(), instance_id = record.id, error = %e,
                    "candidate instance unreadable; skipped");
            }
            Err(e) => return Err(e),
        }
    }
    if instances.is_empty() {
        if by_store && unreadable > 0 {
            return Err(ApiError::Unavailable(
                "the store's instances could not be read".into(),
            ));
        }
        if let Some(store) = identity.filter(|_| element.acknowledges_unknown_stores()) {
            return Ok(Routed::UnknownStore(store));
        }
        return Err(ApiError::NotFound(format!(
            "no {} instance receives webhooks at this address",
            element.key()
        )));
    }
    Ok(Routed::Instances(instances))
}

/// Encodes an instance id the way Cloud Elements put it in webhook URLs.
pub fn base64_instance_id(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(id.to_string())
}
