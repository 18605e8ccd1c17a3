//! The poller function. EventBridge invokes it once per refresh interval with
//! `{"intervalMinutes": N}`; it polls every instance with that interval, each
//! under a lease so overlapping invocations never poll one instance twice.
//!
//! One poll of one resource: the window runs from the cursor minus an overlap
//! to the moment the poll started (frozen); pages are read one at a time
//! (memory bounded by a page); each new object version becomes an event,
//! stored in notifications of at most 10 together with a marker per version,
//! all or nothing; the cursor moves to the window's end only after every
//! page is stored. A failure anywhere leaves the cursor where it was, and the
//! markers make the next poll skip what was already stored.

pub mod interval;
pub mod resource;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::elements::{RegistrationContext, WebhookHealth};
use shared::model::Instance;
use shared::store::StoreError;
use shared::settings::Settings;
use shared::store::Store;
use tracing::Instrument;

pub use interval::{handle_event, poll_interval, IntervalReport};
pub use resource::ResourceReport;

#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Instances polled at once by one invocation.
    pub concurrency: usize,
    /// How far each window reaches back before the cursor: covers store
    /// clocks behind ours and objects saved just before a poll but listed
    /// only after it.
    pub overlap: Duration,
    /// One instance's poll lease.
    pub lease: Duration,
    /// Each store call's timeout.
    pub request_timeout: StdDuration,
    /// The longest a rate limit is waited out within one poll; longer, and
    /// the poll stops there (cursor unchanged) for the next cycle.
    pub max_throttle_wait: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            overlap: Duration::seconds(120),
            lease: Duration::minutes(5),
            request_timeout: StdDuration::from_secs(20),
            max_throttle_wait: Duration::seconds(30),
        }
    }
}

/// How an invocation hands the rest of its instances on when its time
/// budget runs out.
#[derive(Debug, Clone)]
pub enum Continuation {
    /// `PutEvents` of a `Poll continuation` event on this bus; a rule in
    /// template.yaml routes it back to the poller.
    EventBridge {
        client: aws_sdk_eventbridge::Client,
        bus: String,
    },
    /// Keep going in this process (the local stack).
    Inline,
}

#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub settings: Settings,
    pub config: PollConfig,
    pub http: reqwest::Client,
    pub continuation: Continuation,
}

pub const CONTINUATION_SOURCE: &str = "connector-events.poller";
pub const CONTINUATION_DETAIL_TYPE: &str = "Poll continuation";

impl App {
    pub fn new(
        store: Store,
        settings: Settings,
        config: PollConfig,
        continuation: Continuation,
    ) -> Self {
        let http = shared::outbound::guarded_client(settings.guard, config.request_timeout)
            .expect("the HTTP client builds with static settings");
        Self {
            store,
            settings,
            config,
            http,
            continuation,
        }
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (sdk, settings, store) = shared::settings::function_context().await?;
        let continuation = Continuation::EventBridge {
            client: aws_sdk_eventbridge::Client::new(&sdk),
            bus: std::env::var("POLL_EVENT_BUS").unwrap_or_else(|_| "default".into()),
        };
        Ok(Self::new(
            store,
            settings,
            PollConfig::default(),
            continuation,
        ))
    }
}

/// What polling one instance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub instance_id: u64,
    pub outcome: PollOutcome,
    /// One per resource polled; the instance's totals are their sums.
    pub resources: Vec<ResourceReport>,
    /// What the webhook health check found and repaired (webhook instances).
    pub webhook_health: Option<WebhookHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PollOutcome {
    #[default]
    Completed,
    /// Another poller holds the instance's lease.
    Busy,
    /// Not polled: events are off, the instance does not poll, or it is
    /// marked invalid.
    Skipped(String),
    /// Stopped with the cursor left where it was; the next cycle retries.
    Incomplete(String),
    /// The store refused the credentials; the instance is marked invalid.
    Invalid(String),
}

impl PollReport {
    fn total(&self, count: impl Fn(&ResourceReport) -> usize) -> usize {
        self.resources.iter().map(count).sum()
    }

    /// Store API calls, throttled ones included.
    pub fn calls(&self) -> usize {
        self.total(|r| r.calls)
    }

    pub fn changes(&self) -> usize {
        self.total(|r| r.changes)
    }

    pub fn notifications(&self) -> usize {
        self.total(|r| r.notifications)
    }

    pub fn already_notified(&self) -> usize {
        self.total(|r| r.already_notified)
    }

    pub fn throttled(&self) -> usize {
        self.total(|r| r.throttled)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "instanceId": self.instance_id,
            "outcome": format!("{:?}", self.outcome),
            "storeCalls": self.calls(),
            "changes": self.changes(),
            "notifications": self.notifications(),
            "alreadyNotified": self.already_notified(),
            "throttled": self.throttled(),
            "resources": self.resources.iter().map(ResourceReport::to_json).collect::<Vec<_>>(),
            "webhookHealth": self.webhook_health,
        })
    }
}

/// Polls every resource of one instance, under its lease. Everything it
/// logs carries the instance id.
pub async fn poll_instance(app: &App, instance: &Instance, now: DateTime<Utc>) -> PollReport {
    poll_instance_in_span(app, instance, now)
        .instrument(shared::logging::instance_span(instance.id))
        .await
}

async fn poll_instance_in_span(app: &App, instance: &Instance, now: DateTime<Utc>) -> PollReport {
    let mut report = PollReport {
        instance_id: instance.id,
        ..Default::default()
    };
    if !instance.events.enabled || instance.events.poll_resources.is_empty() {
        report.outcome =
            PollOutcome::Skipped("events are off or the instance does not poll".into());
        return report;
    }
    if let Some(reason) = &instance.poll_invalid {
        report.outcome = PollOutcome::Skipped(format!("instance is invalid: {reason}"));
        return report;
    }
    let owner = match app
        .store
        .acquire_poll_lease(instance.id, now, app.config.lease)
        .await
    {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            report.outcome = PollOutcome::Busy;
            return report;
        }
        Err(e) => {
            report.outcome = PollOutcome::Incomplete(format!("lease: {e}"));
            return report;
        }
    };
    if instance.receives_webhooks() {
        report.webhook_health = check_webhooks(app, instance).await;
    }
    for poll in &instance.events.poll_resources {
        let r = resource::poll_resource(app, instance, poll, now, &owner).await;
        let stop = match &r.outcome {
            PollOutcome::Invalid(reason) => {
                if let Err(e) = app
                    .store
                    .mark_instance_poll_invalid(instance.id, reason)
                    .await
                {
                    tracing::error!(error = %e, "could not mark the instance invalid");
                }
                report.outcome = r.outcome.clone();
                true
            }
            PollOutcome::Incomplete(_) if report.outcome == PollOutcome::Completed => {
                report.outcome = r.outcome.clone();
                false
            }
            _ => false,
        };
        report.resources.push(r);
        if stop {
            break;
        }
    }
    shared::metrics::emit(
        instance.element().key(),
        &[
            (
                "PollDuration",
                (Utc::now() - now).num_milliseconds().max(0) as f64,
                shared::metrics::Unit::Milliseconds,
            ),
            (
                "StoreApiCalls",
                report.calls() as f64,
                shared::metrics::Unit::Count,
            ),
            (
                "StoreThrottled",
                report.throttled() as f64,
                shared::metrics::Unit::Count,
            ),
        ],
    );
    if let Err(e) = app.store.release_poll_lease(instance.id, &owner).await {
        tracing::warn!(error = %e, "poll lease not released; it expires");
    }
    tracing::info!(outcome = ?report.outcome, calls = report.calls(),
        changes = report.changes(), notifications = report.notifications(), "instance polled");
    report
}

/// Checks and repairs a webhook instance's hooks at the store, and records
/// what it found on the instance. A failure is recorded and logged; the
/// reconciliation poll goes on regardless.
async fn check_webhooks(app: &App, instance: &Instance) -> Option<WebhookHealth> {
    let element = instance.element();
    let delivery_url = app
        .settings
        .public_base_url
        .as_deref()
        .and_then(|base| instance.webhook_url(base))
        .unwrap_or_default();
    let ctx = || RegistrationContext {
        cfg: &instance.configuration,
        delivery_url: &delivery_url,
        guard: &app.settings.guard,
    };
    let health = match element
        .check_webhooks(ctx(), &instance.registered_webhooks)
        .await
    {
        Ok(Some(h)) => h,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "webhook health check failed");
            WebhookHealth {
                checked_at: shared::model::format_date(Utc::now()),
                error: Some(e.to_string()),
                webhook_ids: instance.registered_webhooks.clone(),
                ..Default::default()
            }
        }
    };
    let json = serde_json::to_string(&health).unwrap_or_default();
    let changed = health.webhook_ids != instance.registered_webhooks;
    let ids = changed.then_some((health.webhook_ids.as_slice(), instance.version));
    match app.store.record_webhook_health(instance.id, &json, ids).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) if changed => {
            // A PATCH changed the instance meanwhile: its subscription wins,
            // and the hooks this check created go again.
            let created: Vec<String> = health
                .webhook_ids
                .iter()
                .filter(|id| !instance.registered_webhooks.contains(id))
                .cloned()
                .collect();
            if let Err(e) = element.unregister_webhooks(ctx(), &created).await {
                tracing::warn!(error = %e, "re-created webhooks not removed after a concurrent change");
            }
        }
        Err(e) => tracing::warn!(error = %e, "webhook health not recorded"),
    }
    tracing::info!(
        registered = health.registered,
        active = health.active,
        reactivated = health.reactivated,
        recreated = health.recreated,
        "webhook health checked"
    );
    Some(health)
}
