//! Polling one resource of one instance through its window, page by page.

use std::collections::HashSet;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::{json, Value};
use shared::config::poller::PollResource;
use shared::elements::{Element, HubResource};
use shared::events::{Event, Notification, Source, MAX_EVENTS_PER_POLL_NOTIFICATION};
use shared::model::Instance;
use shared::polling::changes::{Change, ChangeReader};
use shared::events::EventType;
use shared::polling::{
    macros, where_clause, PagePosition, PageSeen, PollFailure, PollQuery, PollResponse,
};
use shared::store::ObjectVersion;

use crate::{App, PollOutcome};

/// The shortest wait after a 429, whatever the store's headers say: a reset
/// of 0 or less must not become a hot loop against the store.
pub const MIN_THROTTLE_WAIT: Duration = Duration::seconds(1);

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

pub async fn poll_resource(
    app: &App,
    instance: &Instance,
    poll: &PollResource,
    now: DateTime<Utc>,
    owner: &str,
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
        dates: element.dates_to_read(&poll.dates),
        ..poll.clone()
    };
    let reader = match ChangeReader::new(&read_as, &element.default_dates(&hub)) {
        Ok(r) => r,
        Err(e) => {
            incomplete(&mut report, e);
            return report;
        }
    };
    // The first poll starts where the instance was created: no history flood.
    let cursor = match app.store.poll_cursor(instance.id, &poll.name).await {
        Ok(c) => c.unwrap_or(instance.created_at),
        Err(e) => {
            incomplete(&mut report, e.to_string());
            return report;
        }
    };
    let since = cursor - app.config.overlap;
    let until = now;
    let extra = match where_params(poll, since) {
        Ok(p) => p,
        Err(e) => {
            incomplete(&mut report, e);
            return report;
        }
    };

    let mut throttle_waited = Duration::zero();
    for pass in 0..element.poll_passes(&hub) {
    let mut position = PagePosition::First;
    loop {
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
        let page = match fetch(app, &request, element, &mut report).await {
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
        let page_len = page.items.len();
        let more = page.more;
        let mut last_modified: Option<DateTime<Utc>> = None;
        let mut changes: Vec<Change> = Vec::with_capacity(page_len);
        let mut outside = 0;
        for item in page.items {
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
        if let Err(e) = store_changes(app, instance, poll, changes, &mut report).await {
            incomplete(&mut report, e);
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
        let seen = PageSeen {
            len: page_len,
            more,
            last_modified,
        };
        match element.next_position(&query, &seen) {
            Some(next) => position = next,
            None => break,
        }
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

async fn fetch(
    app: &App,
    request: &shared::polling::PollRequest,
    element: &dyn Element,
    report: &mut ResourceReport,
) -> Result<shared::polling::PollPage, PollFailure> {
    let url = url::Url::parse(&request.url)
        .map_err(|e| PollFailure::Transient(format!("bad store URL: {e}")))?;
    app.settings.guard.check_url(&url).map_err(|e| {
        PollFailure::Transient(format!("store URL refused by the network guard: {e}"))
    })?;
    let resp = shared::request_auth::send_get(&app.http, &url, &request.headers, &request.auth)
        .await
        .map_err(|e| PollFailure::Transient(format!("store unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| PollFailure::Transient(format!("store answer cut: {e}")))?;
    let _ = report;
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
            // the same object marks the same version.
            resource: poll.resource.clone(),
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
    for chunk in fresh.chunks(MAX_EVENTS_PER_POLL_NOTIFICATION) {
        let versions: Vec<ObjectVersion> = chunk.iter().map(|(_, v)| v.clone()).collect();
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
        let raw = Value::Array(chunk.iter().map(|(c, _)| c.object.clone()).collect()).to_string();
        // The id follows from the versions, so a retry of this batch is the
        // same notification.
        let key = versions
            .iter()
            .map(|v| format!("{}:{}:{}", v.resource, v.object_id, v.modified_ms))
            .collect::<Vec<_>>()
            .join(",");
        let notification = Notification::batch(
            instance.id,
            &instance.org_id,
            instance.element().key(),
            Source::Polling,
            events,
            &raw,
            &format!("poll:{}", shared::events::body_digest(key.as_bytes())),
            MAX_EVENTS_PER_POLL_NOTIFICATION,
            Utc::now(),
        )
        .remove(0);
        match app
            .store
            .put_notification_with_markers(&notification, &versions)
            .await
        {
            Ok(true) => report.notifications += 1,
            Ok(false) => report.already_notified += chunk.len(),
            Err(e) => return Err(format!("notifications not stored: {e}")),
        }
    }
    Ok(())
}
