//! Issue 19: the number of `by-due` shards is a deployment parameter
//! (`DueShards`, `DUE_SHARDS`). A pending notification keeps the shard it
//! was written with, so after the count changes, up or down, every due
//! notification must still be found by the sweep and delivered.
//!
//! Before the parameter the sweep read `p0..p3` whatever the writers used;
//! a reader that follows only the current count misses the old shards,
//! which the `forgotten previous` checks below show is a real loss.

use std::collections::BTreeSet;

use ce_tests::receiver::start_receiver;
use ce_tests::vendors::one;
use ce_tests::{call, ingest, served_stack, Stack};
use chrono::{Duration, Utc};
use dispatcher::sweep;
use serde_json::{json, Value};
use shared::events::DeliveryStatus;
use shared::store::{DueShards, Store};

/// An ONe instance calling back `callback`.
async fn instance(s: &Stack, callback: &str) -> Value {
    let body = json!({"element": {"key": "one"}, "name": "due shards", "configuration": {
        "event.notification.enabled": true,
        "event.notification.callback.url": callback,
        "one.webhook.username": "admin", "one.webhook.password": "pw"}});
    let reply = call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// `n` notifications ingested by the webhooks function as it is deployed
/// with `shards`; their ids.
async fn ingest_under(s: &mut Stack, inst: &Value, shards: u32, n: usize) -> BTreeSet<String> {
    s.webhooks.store = s
        .webhooks
        .store
        .clone()
        .with_due_shards(DueShards::new(shards, shards).unwrap());
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let d = one::delivery(
            &one::with_timestamp(
                one::client_logged(&format!("c{shards}-{i}")),
                "2026-11-23T10:15:30Z",
            ),
            "admin",
            "pw",
        );
        let reply = ingest(
            &s.webhooks,
            &format!("/events/one/{}", inst["id"]),
            &d.headers,
            &d.body,
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        ids.insert(reply.body["eventIds"][0].as_str().unwrap().to_string());
    }
    ids
}

async fn due_ids(store: &Store, count: u32, previous: u32) -> BTreeSet<String> {
    store
        .clone()
        .with_due_shards(DueShards::new(count, previous).unwrap())
        .due_notifications(Utc::now() + Duration::seconds(1), 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// Written under 4 shards (the old fixed count), then the count raised to 8
/// and lowered to 2: with the old count as `previous`, every one is due.
#[tokio::test]
async fn notifications_written_under_four_shards_are_due_after_the_count_changes() {
    let mut s = served_stack().await;
    let inst = instance(&s, "https://callback.example.com/hook").await;
    let written = ingest_under(&mut s, &inst, 4, 40).await;
    assert_eq!(written.len(), 40);

    for (count, previous) in [(4, 4), (8, 4), (2, 4), (1, 4), (64, 4)] {
        assert_eq!(
            due_ids(&s.store, count, previous).await,
            written,
            "count {count}, previous {previous}"
        );
    }
    // The reader that follows only the new count (as a fixed `0..count`
    // would) loses the notifications in p2 and p3: what `previous` is for.
    let forgotten = due_ids(&s.store, 2, 2).await;
    assert!(
        forgotten.len() < written.len(),
        "some of 40 notifications are in p2/p3: {} found",
        forgotten.len()
    );
}

/// The sweep delivers what was written under the old count: 4 → 8, then
/// 8 → 2, each time with the old count as `previous`. A re-queue moves a
/// notification to the current count, so `previous` can later be lowered.
#[tokio::test]
async fn the_sweep_delivers_what_was_written_before_the_count_changed() {
    let mut s = served_stack().await;
    let r = start_receiver(None, None).await;
    let inst = instance(&s, &r.url).await;

    // Written under 4, swept by a dispatcher deployed with 8 (previous 4).
    let under_four = ingest_under(&mut s, &inst, 4, 30).await;
    let mut dispatcher = s.dispatcher.clone();
    dispatcher.store = dispatcher
        .store
        .clone()
        .with_due_shards(DueShards::new(8, 4).unwrap());
    let report = sweep(&dispatcher, Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(report.delivered, 30, "{report:?}");
    let delivered: BTreeSet<String> = r.accepted_ids().into_keys().collect();
    assert_eq!(delivered, under_four);

    // Written under 8, swept by a dispatcher deployed with 2 (previous 8).
    let under_eight = ingest_under(&mut s, &inst, 8, 30).await;
    assert!(
        due_ids(&s.store, 2, 2).await.len() < under_eight.len(),
        "some are in p2..p7, which a reader of 2 shards alone never sees"
    );
    dispatcher.store = dispatcher
        .store
        .clone()
        .with_due_shards(DueShards::new(2, 8).unwrap());
    let report = sweep(&dispatcher, Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(report.delivered, 30, "{report:?}");
    let delivered: BTreeSet<String> = r.accepted_ids().into_keys().collect();
    assert_eq!(
        delivered,
        under_four.union(&under_eight).cloned().collect(),
        "each delivered"
    );
    assert!(r.accepted_ids().values().all(|n| *n == 1), "exactly once");

    // A replay under 2 shards writes its shard anew: found by 2 alone.
    let replayed = under_eight.iter().next().unwrap();
    let now = Utc::now();
    assert!(s
        .store
        .clone()
        .with_due_shards(DueShards::new(2, 8).unwrap())
        .requeue_notification(replayed, &s.org_id, inst["id"].as_u64().unwrap(), now)
        .await
        .unwrap());
    assert!(due_ids(&s.store, 2, 2).await.contains(replayed));
    let stored = s.store.get_notification(replayed).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Pending);
}
