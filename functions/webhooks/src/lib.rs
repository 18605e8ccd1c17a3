//! The webhooks function: vendor ingestion at
//! `POST /elements/api-v2/events/{elementKey}[/{instanceId}]`.
//!
//! For each request: find the instance(s), verify the sender, normalize the
//! payload into events, store pending notifications, and only then answer
//! 2xx. A storage failure answers 503: vendors that retry (Ecwid, BigCommerce)
//! send again and the retry maps to the same notification ids and collapses;
//! WooCommerce never retries, so its reconciliation poll delivers what a 503
//! lost.

mod form;
mod instance_id;

use base64::Engine;
use chrono::Utc;
use http::Method;
use serde_json::json;
use shared::api::{ApiRequest, ApiResponse};
use shared::elements::{self, Element};
use shared::error::ApiError;
use shared::events::{Notification, ObjectVersion, Source, MAX_EVENTS_PER_WEBHOOK_NOTIFICATION};
use shared::instance_cache::{InstanceCache, Staleness};
use shared::model::Instance;
use shared::settings::Settings;
use shared::spool::{Spool, SpooledBatch};
use shared::store::{Store, StoreError, Stored};
use shared::webhook::{WebhookContent, WebhookRequest};
use tracing::Instrument;

pub use instance_id::parse_instance_id;

#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub settings: Settings,
    /// Where verified webhooks go when the state store cannot take them.
    pub spool: Option<Spool>,
    /// Instances read within the staleness bound: one webhook is then one
    /// store request (the conditional write). Also the fallback that still
    /// verifies a webhook while the state store is unreachable.
    pub instances: InstanceCache,
    /// Added to the clock when a webhook is stamped: lets tests be a day
    /// later (dedupe windows) without waiting. Zero in production.
    pub clock_offset: chrono::Duration,
}

impl App {
    pub fn new(store: Store, settings: Settings) -> Self {
        Self {
            store,
            settings,
            spool: None,
            instances: InstanceCache::default(),
            clock_offset: chrono::Duration::zero(),
        }
    }

    pub fn with_spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (sdk, settings, store) = shared::settings::function_context().await?;
        let mut app = Self::new(store, settings);
        app.instances = InstanceCache::new(
            Staleness::from_env()?,
            shared::instance_cache::DEFAULT_CAPACITY,
        );
        Ok(match Spool::from_env(&sdk) {
            Some(spool) => app.with_spool(spool),
            None => app,
        })
    }
}

/// How long an instance read stays usable to verify webhooks while the state
/// store is unreachable, so that they can be spooled. A secret changed by a
/// PATCH is honoured at most this long after an outage began; a cold
/// container during an outage has no entries and answers 503.
pub const OUTAGE_FALLBACK_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

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
    // Cloud Elements also took GETs with the data in the query string.
    if req.method != Method::POST && req.method != Method::GET {
        return Err(ApiError::MethodNotAllowed(
            "webhooks are delivered with POST (or GET with the data in the query)".into(),
        ));
    }
    if req.body.len() > app.settings.max_webhook_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: app.settings.max_webhook_body_bytes,
        });
    }
    let element = elements::find(&element_key)
        .ok_or_else(|| ApiError::NotFound(format!("unknown element '{element_key}'")))?;
    // The sender is verified over the bytes it sent; the events are read
    // from them as JSON, a form or a query string made into a JSON object.
    let as_json = form::json_body(req);
    let webhook = WebhookRequest {
        headers: &req.headers,
        body: &req.body,
    };
    let content = WebhookRequest {
        headers: &req.headers,
        body: as_json.as_deref().unwrap_or(&req.body),
    };
    if element.is_handshake(&webhook) {
        tracing::info!(element = element.key(), "webhook handshake answered");
        return Ok(ApiResponse::json(
            200,
            &json!({ "accepted": 0, "handshake": true }),
        ));
    }

    let named = instance_segment.as_deref().and_then(parse_instance_id);
    let candidates = match find_instances(app, element, instance_segment.as_deref(), &content).await
    {
        Ok(Routed::Instances(found)) => found,
        Ok(Routed::UnknownStore(store)) => {
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
        // The state store is down: an instance read in the last minutes
        // still verifies its webhook, so the delivery can be spooled.
        Err(ApiError::Unavailable(why)) => {
            let fallback = named
                .and_then(|id| app.instances.fallback(id, OUTAGE_FALLBACK_AGE))
                .filter(|r| r.element_key == element.key())
                .and_then(|r| r.open(&app.settings.secrets).ok());
            match fallback {
                Some(instance) => vec![Candidate {
                    instance,
                    cached: false,
                }],
                None => return Err(ApiError::Unavailable(why)),
            }
        }
        Err(e) => return Err(e),
    };
    let verified = verify(app, element, &webhook, candidates).await?;
    if verified.is_empty() {
        return Err(ApiError::Unauthorized(
            "webhook signature or credentials are invalid".into(),
        ));
    }

    let now = Utc::now() + app.clock_offset;
    let (dedupe_key, events, versions) = match element.parse_webhook(&content, now)? {
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
    let raw = String::from_utf8_lossy(content.body).into_owned();
    if let (None, [only]) = (&instance_segment, verified.as_slice()) {
        shared::logging::record_instance(only.id);
    }

    let mut stored_ids = Vec::new();
    let mut spooled_ids = Vec::new();
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
            Durable::Stored(Stored::New) => stored_ids.extend(batch.iter().map(|n| n.id.clone())),
            Durable::Stored(Stored::Duplicate) => duplicates += 1,
            Durable::Spooled => spooled_ids.extend(batch.iter().map(|n| n.id.clone())),
        }
    }
    let mut body = json!({
        "accepted": stored_ids.len() + spooled_ids.len(),
        "eventIds": stored_ids,
        "duplicates": duplicates,
        "dropped": dropped,
    });
    if !spooled_ids.is_empty() {
        // Durable in the spool; the ids are final (derived from the dedupe
        // key), stored when the spool drains.
        body["spooled"] = json!(spooled_ids);
    }
    Ok(ApiResponse::json(200, &body))
}

/// The candidates the webhook verifies against. One that fails against a
/// cached record is verified again against a fresh read before it is
/// refused: a secret rotated a moment ago works at once.
async fn verify(
    app: &App,
    element: &dyn Element,
    webhook: &WebhookRequest<'_>,
    candidates: Vec<Candidate>,
) -> Result<Vec<Instance>, ApiError> {
    let mut verified = Vec::with_capacity(candidates.len());
    for Candidate { instance, cached } in candidates {
        if element
            .verify_webhook(&instance.configuration, webhook)
            .is_ok()
        {
            verified.push(instance);
            continue;
        }
        if cached {
            let fresh = app
                .instances
                .refresh(&app.store, instance.id)
                .await?
                .filter(|r| r.element_key == element.key())
                .map(|r| r.open(&app.settings.secrets))
                .transpose()?
                .filter(Instance::receives_webhooks);
            if let Some(fresh) = fresh {
                if element
                    .verify_webhook(&fresh.configuration, webhook)
                    .is_ok()
                {
                    verified.push(fresh);
                    continue;
                }
            }
        }
        // Logged without the header values or secrets.
        tracing::warn!(
            element = element.key(),
            instance_id = instance.id,
            "webhook verification failed"
        );
    }
    Ok(verified)
}

/// Where a verified batch is durable.
enum Durable {
    Stored(Stored),
    Spooled,
}

/// Stores one instance's notifications of a webhook: all of them, or none if
/// the vendor sent this delivery before.
async fn store_batch(
    app: &App,
    element: &dyn Element,
    batch: &[Notification],
    versions: &[ObjectVersion],
    webhook_id: &str,
) -> Result<Durable, ApiError> {
    // With the markers of the versions it reports, in one transaction, so
    // the reconciliation poll does not deliver them again (and a version the
    // poll delivered first is not delivered by this one).
    let stored = match shared::spool::store_batch(&app.store, batch, versions).await {
        Ok(stored) => stored,
        Err(StoreError::Unavailable(why)) => return spool(app, batch, versions, why).await,
        Err(e) => return Err(e.into()),
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
    Ok(Durable::Stored(stored))
}

/// The state store failed: the verified batch goes to the spool, and the
/// vendor gets its 2xx. Without a spool, or if SQS fails too, the answer is
/// the 503 it always was.
async fn spool(
    app: &App,
    batch: &[Notification],
    versions: &[ObjectVersion],
    why: String,
) -> Result<Durable, ApiError> {
    let Some(spool) = &app.spool else {
        return Err(StoreError::Unavailable(why).into());
    };
    let spooled = SpooledBatch {
        notifications: batch.to_vec(),
        versions: versions.to_vec(),
    };
    match spool.send(&spooled).await {
        Ok(()) => {
            let event_ids: Vec<&str> = batch.iter().map(|n| n.id.as_str()).collect();
            tracing::warn!(error = %why, event_ids = event_ids.join(","),
                "state store unavailable; verified webhook spooled");
            if let Some(first) = batch.first() {
                shared::metrics::emit_alarmed(
                    &first.element_key,
                    &[("WebhooksSpooled", 1.0, shared::metrics::Unit::Count)],
                );
            }
            Ok(Durable::Spooled)
        }
        Err(e) => {
            tracing::error!(error = %e, store_error = %why, "webhook neither stored nor spooled");
            Err(StoreError::Unavailable(why).into())
        }
    }
}

/// The instances whose finder matches the payload: for each finder path
/// of the element, the payload's value there, looked up in the store index.
async fn find_by_finder(
    app: &App,
    element: &dyn Element,
    webhook: &WebhookRequest<'_>,
) -> Result<Vec<shared::model::InstanceRecord>, ApiError> {
    let Ok(body) = webhook.json_object() else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    for path in app.store.finder_paths(element.key()).await? {
        let Some(value) = shared::webhook::text_at(&body, &path) else {
            continue;
        };
        let key = shared::config::finder::Finder::route_key(element.key(), &path, &value);
        let found = app.store.find_instances_by_store(&key).await?;
        records.extend(found.records);
    }
    Ok(records)
}

/// The most instances one `Element-Instances` header may address: each is a
/// read and a verification.
pub const MAX_ADDRESSED_INSTANCES: usize = 20;

/// An instance a webhook may be for, and whether it was read from the cache.
struct Candidate {
    instance: Instance,
    cached: bool,
}

/// Where a webhook goes.
enum Routed {
    /// The candidates, each to be verified with its own secret.
    Instances(Vec<Candidate>),
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
            let records = cached_instance(app, id)
                .await?
                .filter(|(r, _)| r.element_key == element.key())
                .into_iter()
                .collect::<Vec<_>>();
            (records, false, None)
        }
        None if webhook.header("element-instances").is_some() => {
            // Cloud Elements' header: the instances the sender addresses,
            // each then verified with its own secret.
            let header = webhook.header("element-instances").unwrap_or_default();
            let ids: Vec<u64> = header
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| {
                    parse_instance_id(t).ok_or_else(|| {
                        ApiError::field("Element-Instances", format!("'{t}' is not an instance id"))
                    })
                })
                .collect::<Result<_, _>>()?;
            if ids.is_empty() || ids.len() > MAX_ADDRESSED_INSTANCES {
                return Err(ApiError::field(
                    "Element-Instances",
                    format!("must list 1 to {MAX_ADDRESSED_INSTANCES} instance ids"),
                ));
            }
            let mut records = Vec::new();
            for id in ids {
                if let Some((r, cached)) = cached_instance(app, id).await? {
                    if r.element_key == element.key() {
                        records.push((r, cached));
                    }
                }
            }
            (records, false, None)
        }
        None if element.webhook_store_identity(webhook)?.is_none() => {
            // No store identity: Cloud Elements' instance finder.
            let records = fresh(app, find_by_finder(app, element, webhook).await?);
            if records.is_empty() {
                return Err(ApiError::NotFound(format!(
                    "webhooks for {} must be sent to /events/{}/{{instanceId}}, name their instances in an Element-Instances header, or match an instance finder",
                    element.key(),
                    element.key()
                )));
            }
            (records, true, None)
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
                (fresh(app, found.records), true, Some(identity))
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
    for (record, cached) in &records {
        match record.open(&app.settings.secrets) {
            Ok(instance) if instance.receives_webhooks() => instances.push(Candidate {
                instance,
                cached: *cached,
            }),
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

/// The instance from the cache within its staleness bound, or read now;
/// with whether it came from the cache.
async fn cached_instance(
    app: &App,
    id: u64,
) -> Result<Option<(shared::model::InstanceRecord, bool)>, ApiError> {
    if let Some(record) = app.instances.cached(id) {
        return Ok(Some((record, true)));
    }
    Ok(app
        .instances
        .refresh(&app.store, id)
        .await?
        .map(|r| (r, false)))
}

/// Records just read by a routing query: kept as the outage fallback.
fn fresh(
    app: &App,
    records: Vec<shared::model::InstanceRecord>,
) -> Vec<(shared::model::InstanceRecord, bool)> {
    app.instances.remember(&records);
    records.into_iter().map(|r| (r, false)).collect()
}

/// Encodes an instance id the way Cloud Elements put it in webhook URLs.
pub fn base64_instance_id(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(id.to_string())
}
