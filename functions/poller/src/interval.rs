//! One invocation for one refresh interval: every instance with that
//! interval, a few at a time, handing the rest on when time runs short.

use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::{
    poll_instance, App, Continuation, PollOutcome, CONTINUATION_DETAIL_TYPE, CONTINUATION_SOURCE,
};

/// Instances read from the interval index per page.
const PAGE: i32 = 50;
/// Time kept back for handing over: a page of polls must fit in the rest.
const RESERVE: StdDuration = StdDuration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalReport {
    pub interval_minutes: u32,
    pub polled: usize,
    pub busy: usize,
    pub incomplete: usize,
    /// The rest was handed to a continuation event…
    pub handed_over: bool,
    /// …to resume after this instance id (`None`: from the start).
    pub continued_after: Option<u64>,
}

/// Routes the poller's event: `{"intervalMinutes": N[, "startAfter": id]}`,
/// from the schedule rule or a continuation (whose detail it is).
pub async fn handle_event(app: &App, event: &Value, budget: StdDuration) -> Value {
    let body = if event.get("detail-type").and_then(Value::as_str) == Some(CONTINUATION_DETAIL_TYPE)
    {
        &event["detail"]
    } else {
        event
    };
    let Some(interval) = body["intervalMinutes"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
    else {
        tracing::error!(event = %body, "poller event without intervalMinutes");
        return json!({ "error": "intervalMinutes is required" });
    };
    let start_after = body["startAfter"].as_u64();
    let report = poll_interval(app, interval, start_after, Instant::now() + budget).await;
    json!({
        "intervalMinutes": report.interval_minutes,
        "polled": report.polled,
        "busy": report.busy,
        "incomplete": report.incomplete,
        "handedOver": report.handed_over,
        "continuedAfter": report.continued_after,
    })
}

pub async fn poll_interval(
    app: &App,
    interval: u32,
    mut start_after: Option<u64>,
    deadline: Instant,
) -> IntervalReport {
    let mut report = IntervalReport {
        interval_minutes: interval,
        ..Default::default()
    };
    loop {
        let ids = match app
            .store
            .instances_by_interval(interval, start_after, PAGE)
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(interval, error = %e, "instances of the interval not read");
                return report;
            }
        };
        if ids.is_empty() {
            return report;
        }
        if let Continuation::EventBridge { client, bus } = &app.continuation {
            if deadline.saturating_duration_since(Instant::now()) < RESERVE {
                match continue_later(client, bus, interval, start_after).await {
                    Ok(()) => {
                        report.handed_over = true;
                        report.continued_after = start_after;
                    }
                    Err(e) => {
                        tracing::error!(interval, error = %e, "continuation not sent; the next cycle polls the rest")
                    }
                }
                return report;
            }
        }
        start_after = ids.last().copied();
        let now = Utc::now();
        let outcomes: Vec<PollOutcome> = stream::iter(ids)
            .map(|id| async move {
                // Each instance's poll is isolated: a panic in one (a bug, or
                // a store's value that slipped past a clamp) is caught and
                // counted; the other instances are polled all the same. Its
                // lease expires and the next cycle tries it again.
                let poll = async {
                    match app.store.get_instance(id).await {
                        Ok(Some(rec)) => match rec.open(&app.settings.secrets) {
                            Ok(instance) => poll_instance(app, &instance, now).await.outcome,
                            Err(e) => PollOutcome::Incomplete(e.to_string()),
                        },
                        Ok(None) => PollOutcome::Skipped("deleted".into()),
                        Err(e) => PollOutcome::Incomplete(e.to_string()),
                    }
                };
                match std::panic::AssertUnwindSafe(poll).catch_unwind().await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::error!(instance_id = id, "poll panicked; the others go on");
                        shared::metrics::emit_alarmed(
                            "all",
                            &[("PollPanics", 1.0, shared::metrics::Unit::Count)],
                        );
                        PollOutcome::Incomplete("the poll panicked".into())
                    }
                }
            })
            .buffer_unordered(app.config.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                PollOutcome::Busy => report.busy += 1,
                PollOutcome::Incomplete(_) | PollOutcome::Deferred(_) => report.incomplete += 1,
                _ => report.polled += 1,
            }
        }
    }
}

async fn continue_later(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    interval: u32,
    start_after: Option<u64>,
) -> Result<(), String> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(CONTINUATION_SOURCE)
        .detail_type(CONTINUATION_DETAIL_TYPE)
        .detail(json!({ "intervalMinutes": interval, "startAfter": start_after }).to_string())
        .build();
    let out = client
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string())?;
    if out.failed_entry_count() > 0 {
        return Err("PutEvents rejected the continuation".into());
    }
    Ok(())
}
