//! Polling one resource of one instance through its window, page by page.

use std::collections::HashSet;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::{json, Value};
use shared::config::poller::PollResource;
use shared::config::{macros, where_clause};
use shared::elements::{Element, HubResource};
use shared::events::EventType;
use shared::events::{Event, Notification, Source, MAX_EVENTS_PER_POLL_NOTIFICATION};
use shared::model::Instance;
use shared::polling::changes::{Change, ChangeReader};
use shared::polling::{PagePosition, PageSeen, PollFailure, PollQuery, PollResponse};
use shared::store::{ObjectVersion, PollCheckpoint, StoreError};

use crate::{App, PollOutcome};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceReport {
    pub resource: String,
    pub outcome: PollOutcome,
    pub calls: usize,
    pub changes: usize,
    pub notifications: usize,
    pub already_notified: usize,
    pub throttled: usize,
    /// Objects listed but outside the window: older than it (a full-scan
    /// resource) or changed after this poll began (the next poll takes them).
    pub outside_window: usize,
    /// Objects that could not be read (no id, an unreadable date).
    pub unreadable: usize,
    /// Versions DynamoDB refused to store even alone (`ValidationException`):
    /// logged, counted in the `NotificationsRejected` metric, and alarmed.
    pub rejected: usize,
    pub cursor: Option<DateTime<Utc>>,
}

impl ResourceReport {
    pub fn to_json(&self) -> Value {
        json!({
            "resource": self.resource,
            "outcome": format!("{:?}", self.outcome),
            "storeCalls": self.calls,
            "changes": self.changes,
            "notifications": self.notifications,
            "alreadyNotified": self.already_notified,
            "throttled": self.throttled,
            "outsideWindow": self.outside_window,
            "unreadable": self.unreadable,
            "rejected": self.rejected,
            "cursor": self.cursor.map(shared::model::format_date),
        })
    }
}

fn hub_resource(element: &dyn Element, poll: &PollResource) -> Option<HubResource> {
    element
        .hub_resources()
        .iter()
        .find(|r| r.name == poll.resource)
        .copied()
}

/// What one instance's poll may still spend: a deadline and a page count,
/// shared by its resources. A window that does not fit is checkpointed and
/// resumed by the next poll, so every poll makes progress and none holds an
/// invocation past its share.
#[derive(Debug, Clone)]
pub struct PollBudget {
    pub deadline: tokio::time::Instant,
    pub pages_left: usize,
}

impl PollBudget {
    pub fn new(time: std::time::Duration, pages: usize) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + time,
            pages_left: pages,
        }
    }

    fn spent(&self) -> bool {
        self.pages_left == 0 || tokio::time::Instant::now() >= self.deadline
    }
}

/// The window one poll of a resource reads, and where it starts reading.
struct Window {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    pass: usize,
    position: PagePosition,
}

/// Where this poll's window is: a checkpointed one resumes; otherwise from
/// the cursor (or from when polling began: creation, or the PATCH that
/// turned polling on) less the overlap, up to now.
async fn window(
    app: &App,
    instance: &Instance,
    poll: &PollResource,
    now: DateTime<Utc>,
) -> Result<Window, String> {
    let state = app
        .store
        .poll_cursor_state(instance.id, &poll.name)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(cp) = state.checkpoint {
        return Ok(Window {
            since: cp.since,
            until: cp.until,
            pass: cp.pass,
            position: cp.position,
        });
    }
    // Where polling began bounds every window from below: at creation, the
    // overlap still reaches back (a store clock behind ours stamps the first
    // changes a little early); when polling was turned on later, it starts
    // exactly there, so nothing from before is delivered.
    let floor = match instance.events.poll_since {
        Some(on) => on.max(instance.created_at),
        None => instance.created_at - app.config.overlap,
    };
    let since = state
        .cursor
        .map_or(floor, |c| (c - app.config.overlap).max(floor));
    Ok(Window {
        since,
        until: now,
        pass: 0,
        position: PagePosition::First,
    })
}

pub async fn poll_resource(
    app: &App,
    instance: &Instance,
    poll: &PollResource,
    now: DateTime<Utc>,
    owner: &str,
    budget: &mut PollBudget,
) -> ResourceReport {
    let mut report = ResourceReport {
        resource: poll.name.clone(),
        ..Default::default()
    };
    let incomplete = |report: &mut ResourceReport, why: String| {
        tracing::warn!(resource = %poll.name, reason = %why, "poll incomplete; cursor unchanged");
        report.outcome = PollOutcome::Incomplete(why);
    };
    let element = instance.element();
    let Some(hub) = hub_resource(element, poll) else {
        incomplete(&mut report, format!("unknown resource {}", poll.resource));
        return report;
    };
    // The dates as the vendor means them (WooCommerce: the `_gmt` twins).
    let read_as = PollResource {
        dates: element.dates_to_read_for(&instance.configuration, &hub, &poll.dates),
        ..poll.clone()
    };
    let reader = match ChangeReader::new(&read_as, &element.default_dates(&hub)) {
        Ok(r) => r,
        Err(e) => {
            incomplete(&mut report, e);
            return report;
        }
    };
    let Window {
        since,
        until,
        pass: first_pass,
        position: first_position,
    } = match window(app, instance, poll, now).await {
        Ok(w) => w,
        Err(e) => {
            incomplete(&mut report, e);
            return report;
        }
    };
    let extra = match where_params(poll, since) {
        Ok(p) => p,
        Err(e) => {
            incomplete(&mut report, e);
            return report;
        }
    };

    let mut throttle_waited = Duration::zero();
    let passes = element.poll_passes(&hub);
    let mut next_start = Some((first_pass, first_position));
    while let Some((pass, mut position)) = next_start.take() {
        if pass >= passes {
            break;
        }
        loop {
            // The lease is renewed with each page: a poll that outlives it
            // stops, rather than writing beside the poller that took over.
            if let Err(e) = app
                .store
                .renew_poll_lease(instance.id, owner, now.max(Utc::now()) + app.config.lease)
                .await
            {
                incomplete(&mut report, format!("lease not renewed: {e}"));
                return report;
            }
            let query = PollQuery {
                cfg: &instance.configuration,
                resource: &hub,
                poll,
                since,
                until,
                position: &position,
                pass,
                extra_params: &extra,
            };
            let request = match element.poll_request(&query) {
                Ok(r) => r,
                Err(e) => {
                    incomplete(&mut report, e.to_string());
                    return report;
                }
            };
            report.calls += 1;
            budget.pages_left = budget.pages_left.saturating_sub(1);
            let page = match fetch(app, &request, element).await {
                Ok(page) => page,
                Err(PollFailure::RateLimited(wait)) => {
                    report.throttled += 1;
                    // A store's hint is clamped: never below the floor (a 0 or
                    // negative reset would be a hot loop); one longer than the
                    // patience left ends the poll now, cursor unchanged.
                    let wait = wait.max(MIN_THROTTLE_WAIT);
                    throttle_waited += wait.min(app.config.max_throttle_wait + MIN_THROTTLE_WAIT);
                    if throttle_waited > app.config.max_throttle_wait {
                        incomplete(&mut report, "rate limited past this poll's patience".into());
                        return report;
                    }
                    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
                    continue;
                }
                Err(PollFailure::Unauthorized(why) | PollFailure::Unsupported(why)) => {
                    report.outcome = PollOutcome::Invalid(why);
                    return report;
                }
                Err(PollFailure::Transient(why)) => {
                    incomplete(&mut report, why);
                    return report;
                }
            };
            if let Err(PollFailure::Unsupported(why)) = element.check_page(&query, &page.items) {
                report.outcome = PollOutcome::Invalid(why);
                return report;
            }
            let (changes, seen) = read_page(
                element,
                &reader,
                poll,
                page.items,
                page.more,
                since,
                until,
                &mut report,
            );
            if let Err(e) = store_changes(app, instance, poll, changes, &mut report).await {
                incomplete(&mut report, e);
                return report;
            }
            if let Some(why) = page.stop {
                // Stopped cleanly: what this page listed is stored, the cursor
                // stays, and the next cycle reads the window again.
                tracing::info!(resource = %poll.name, reason = %why, "poll deferred; cursor unchanged");
                report.outcome = PollOutcome::Deferred(why);
                return report;
            }
            if let Some(pause) = page.pause {
                let pause = pause.max(Duration::zero());
                throttle_waited += pause.min(app.config.max_throttle_wait + MIN_THROTTLE_WAIT);
                if throttle_waited > app.config.max_throttle_wait {
                    incomplete(
                        &mut report,
                        "rate limit window longer than this poll's patience".into(),
                    );
                    return report;
                }
                report.throttled += 1;
                tokio::time::sleep(pause.to_std().unwrap_or_default()).await;
            }
            let next = match element.next_position(&query, &seen) {
                Some(next) => Some((pass, next)),
                None => (pass + 1 < passes).then_some((pass + 1, PagePosition::First)),
            };
            let Some((next_pass, next_position)) = next else {
                break;
            };
            if budget.spent() {
                // Every page before `next_position` is stored: resume there.
                let checkpoint = PollCheckpoint {
                    since,
                    until,
                    pass: next_pass,
                    position: next_position,
                };
                match app
                    .store
                    .save_poll_checkpoint(instance.id, &poll.name, &checkpoint, owner)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(resource = %poll.name, calls = report.calls, "poll budget spent; checkpointed");
                        report.outcome = PollOutcome::Checkpointed;
                    }
                    Err(e) => incomplete(&mut report, format!("checkpoint not saved: {e}")),
                }
                return report;
            }
            if next_pass != pass {
                next_start = Some((next_pass, next_position));
                break;
            }
            position = next_position;
        }
    }
    // Everything up to `until` is stored: only now may the cursor move.
    match app
        .store
        .advance_poll_cursor(instance.id, &poll.name, until, owner)
        .await
    {
        Ok(()) => report.cursor = Some(until),
        Err(e) => incomplete(&mut report, format!("cursor not advanced: {e}")),
    }
    report
}

/// The shortest wait for a rate limit, whatever the store says.
pub const MIN_THROTTLE_WAIT: Duration = Duration::seconds(1);

/// A page's objects as changes inside the window, and what the page says
/// about the next one. Objects outside the window are counted, not lost.
#[allow(clippy::too_many_arguments)]
fn read_page(
    element: &dyn Element,
    reader: &ChangeReader,
    poll: &PollResource,
    items: Vec<Value>,
    more: Option<bool>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    report: &mut ResourceReport,
) -> (Vec<Change>, PageSeen) {
    let len = items.len();
    let mut last_modified: Option<DateTime<Utc>> = None;
    let mut changes: Vec<Change> = Vec::with_capacity(len);
    let mut outside = 0;
    for item in items {
        let deleted = element.is_deleted_in_listing(&item);
        match reader.read(item) {
            Ok(mut change) => {
                last_modified =
                    Some(last_modified.map_or(change.modified, |m| m.max(change.modified)));
                // Outside the window: older than it (a full-scan resource),
                // or changed after this poll began (the next poll takes it).
                if change.modified > since && change.modified <= until {
                    if deleted {
                        change.event_type = EventType::Deleted;
                    }
                    changes.push(change);
                } else {
                    outside += 1;
                }
            }
            Err(e) => {
                report.unreadable += 1;
                tracing::warn!(resource = %poll.name, error = %e, "object skipped: unreadable")
            }
        }
    }
    if outside > 0 {
        report.outside_window += outside;
        tracing::debug!(resource = %poll.name, count = outside, "objects outside the window skipped");
    }
    (
        changes,
        PageSeen {
            len,
            more,
            last_modified,
        },
    )
}

/// Largest page body read from a store; a bigger answer is cut off, not
/// buffered whole.
pub const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

async fn fetch(
    app: &App,
    request: &shared::polling::PollRequest,
    element: &dyn Element,
) -> Result<shared::polling::PollPage, PollFailure> {
    let url = url::Url::parse(&request.url)
        .map_err(|e| PollFailure::Transient(format!("bad store URL: {e}")))?;
    app.settings.guard.check_url(&url).map_err(|e| {
        PollFailure::Transient(format!("store URL refused by the network guard: {e}"))
    })?;
    let mut resp = shared::request_auth::send_get(&app.http, &url, &request.headers, &request.auth)
        .await
        .map_err(|e| PollFailure::Transient(format!("store unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| PollFailure::Transient(format!("store answer cut: {e}")))?
    {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(PollFailure::Transient(format!(
                "store answered a page over {MAX_PAGE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    element.read_poll_page(&PollResponse {
        status,
        headers: &headers,
        body: &body,
    })
}

/// The `where` clause's conditions as query parameters, macros expanded at
/// the window's start (the last poll time).
fn where_params(
    poll: &PollResource,
    since: DateTime<Utc>,
) -> Result<Vec<(String, String)>, String> {
    let Some(clause) = &poll.where_clause else {
        return Ok(Vec::new());
    };
    let zone = poll
        .dates
        .updated_timezone
        .as_deref()
        .map(shared::javadate::parse_zone)
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    where_clause::parse(clause, "where")
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| {
            Ok((
                c.name,
                macros::expand(&c.value, since, zone, "where").map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

/// Stores the page's new object versions as notifications of at most ten
/// events, each with the markers of its versions, all or nothing.
async fn store_changes(
    app: &App,
    instance: &Instance,
    poll: &PollResource,
    changes: Vec<Change>,
    report: &mut ResourceReport,
) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    let versions: Vec<ObjectVersion> = changes
        .iter()
        .map(|c| ObjectVersion {
            // The hub resource, not the client's name for it: a webhook of
            // the same object marks the same version. A deletion is a version
            // of its own: an object trashed or archived in the same second as
            // its last change keeps that `modified`, and must not be taken
            // for the change already notified.
            resource: if c.event_type == EventType::Deleted {
                format!("{}#deleted", poll.resource)
            } else {
                poll.resource.clone()
            },
            object_id: c.object_id.clone(),
            modified_ms: c.modified.timestamp_millis(),
        })
        .collect();
    let seen = app
        .store
        .seen_versions(instance.id, &versions)
        .await
        .map_err(|e| e.to_string())?;
    let mut fresh: Vec<(Change, ObjectVersion)> = Vec::new();
    let mut in_page = HashSet::new();
    for (change, version) in changes.into_iter().zip(versions) {
        if seen.contains(&version) || !in_page.insert(version.clone()) {
            report.already_notified += 1;
        } else {
            fresh.push((change, version));
        }
    }
    report.changes += fresh.len();
    let mut pending: Vec<Vec<(Change, ObjectVersion)>> = fresh
        .chunks(MAX_EVENTS_PER_POLL_NOTIFICATION)
        .map(<[_]>::to_vec)
        .collect();
    while let Some(chunk) = pending.pop() {
        let versions: Vec<ObjectVersion> = chunk.iter().map(|(_, v)| v.clone()).collect();
        match app
            .store
            .put_notification_with_markers(&notification_of(instance, poll, &chunk), &versions)
            .await
        {
            Ok(true) => report.notifications += 1,
            Ok(false) => {
                // Some version of the chunk was stored meanwhile (another
                // poller, or a webhook): store the rest, not nothing.
                let seen = app
                    .store
                    .seen_versions(instance.id, &versions)
                    .await
                    .map_err(|e| e.to_string())?;
                let (done, rest): (Vec<_>, Vec<_>) =
                    chunk.into_iter().partition(|(_, v)| seen.contains(v));
                report.already_notified += done.len();
                report.changes -= done.len();
                if done.is_empty() {
                    // The notification itself exists (its markers expired).
                    report.already_notified += rest.len();
                    report.changes -= rest.len();
                } else if !rest.is_empty() {
                    pending.push(rest);
                }
            }
            // A permanent refusal must not stop the resource for good:
            // halve the batch until the refused version stands alone, and
            // store everything else.
            Err(StoreError::Rejected(why)) if chunk.len() > 1 => {
                tracing::warn!(reason = %why, size = chunk.len(), "notification refused; storing its versions apart");
                let mut chunk = chunk;
                let half = chunk.split_off(chunk.len() / 2);
                pending.push(chunk);
                pending.push(half);
            }
            Err(StoreError::Rejected(why)) => {
                let (_, v) = &chunk[0];
                tracing::error!(reason = %why, resource = %v.resource, object_id = %v.object_id, "object version refused by DynamoDB; not notified");
                report.rejected += 1;
                report.changes -= 1;
                shared::metrics::emit_alarmed(
                    instance.element().key(),
                    &[("NotificationsRejected", 1.0, shared::metrics::Unit::Count)],
                );
            }
            Err(e) => return Err(format!("notifications not stored: {e}")),
        }
    }
    Ok(())
}

/// One notification of up to ten changes; its id follows from the
/// versions, so storing the same batch again is the same notification.
fn notification_of(
    instance: &Instance,
    poll: &PollResource,
    chunk: &[(Change, ObjectVersion)],
) -> Notification {
    let events: Vec<Event> = chunk
        .iter()
        .map(|(c, _)| {
            Event::new(
                instance.element().key(),
                poll.name.clone(),
                c.object_id.clone(),
                c.event_type,
                c.modified,
            )
        })
        .collect();
    let key = chunk
        .iter()
        .map(|(_, v)| format!("{}:{}:{}", v.resource, v.object_id, v.modified_ms))
        .collect::<Vec<_>>()
        .join(",");
    let dedupe_key = format!("poll:{}", shared::events::body_digest(key.as_bytes()));
    // Cloud Elements' poller shape: clients find a poll's callback by
    // `message.raw.objectType`, and its records under the resource's name.
    let mut raw = serde_json::Map::new();
    raw.insert("objectType".into(), json!(poll.name));
    raw.insert("instance_id".into(), json!(instance.id));
    raw.insert(
        "eventId".into(),
        json!(shared::events::notification_id(instance.id, &dedupe_key)),
    );
    raw.insert(
        poll.name.clone(),
        Value::Array(chunk.iter().map(|(c, _)| c.object.clone()).collect()),
    );
    let raw = Value::Object(raw).to_string();
    Notification::batch(
        instance.id,
        &instance.org_id,
        instance.element().key(),
        Source::Polling,
        events,
        &raw,
        &dedupe_key,
        MAX_EVENTS_PER_POLL_NOTIFICATION,
        Utc::now(),
    )
    .remove(0)
}
