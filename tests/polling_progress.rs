//! Polling that never gets stuck: a poll's budget, checkpoints at stored
//! page boundaries, polling turned on later, and an invalid mark that a
//! concurrent fix is not undone by. Against the WooCommerce simulator and
//! the local DynamoDB server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;

use ce_tests::vendors::woocommerce::{self, WooStore};
use ce_tests::{call, served_stack, Stack};
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use poller::{poll_instance, PollOutcome};
use serde_json::{json, Value};
use shared::events::{Event, EventType, Notification, Source};
use shared::model::Instance;
use shared::store::{ObjectVersion, Store};

const INSTANCES: &str = "/elements/api-v2/instances";

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap().naive_utc()
}

fn body(store: &WooStore, interval: &str, enabled: bool, mode: &str) -> Value {
    json!({"element": {"key": "woocommercerest"}, "name": "progress", "configuration": {
        "store.url": store.base_url, "oauth.api.key": "ck_p", "oauth.api.secret": "cs_p",
        "event.notification.enabled": enabled, "event.vendor.type": mode,
        "event.notification.callback.url": "https://mycoolapp.com/events",
        "event.poller.refresh_interval": interval,
        "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}})
}

async fn load(s: &Stack, id: &Value) -> Instance {
    s.app
        .store
        .get_instance(id.as_u64().unwrap())
        .await
        .unwrap()
        .unwrap()
        .open(&s.app.settings.secrets)
        .unwrap()
}

/// (objectId, eventDate) → how many times it was notified.
async fn notified(s: &Stack, id: &Value) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(t) => format!("{INSTANCES}/{id}/events?pageSize=200&nextPage={t}"),
            None => format!("{INSTANCES}/{id}/events?pageSize=200"),
        };
        let reply = call(&s.app, "GET", &path, Some(&s.auth), None).await;
        assert_eq!(reply.status, 200);
        for n in reply.body.as_array().unwrap() {
            for e in n["events"].as_array().unwrap() {
                let key = (
                    e["objectId"].as_str().unwrap().to_string(),
                    e["eventDate"].as_str().unwrap().to_string(),
                );
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        next = reply
            .response
            .header("elements-next-page-token")
            .map(str::to_string);
        if next.is_none() {
            return counts;
        }
    }
}

fn with_budget(s: &Stack, pages: usize) -> poller::App {
    let mut app = s.poller.clone();
    app.config.max_pages_per_poll = pages;
    app
}

#[tokio::test]
async fn a_window_larger_than_the_budget_completes_over_several_cycles_each_change_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", true, "polling")).await;
    let instance = load(&s, &created["id"]).await;
    let base = Utc::now().with_nanosecond(0).unwrap() + Duration::seconds(2);
    for id in 1..=650u64 {
        store.upsert(
            "orders",
            id,
            naive(base + Duration::seconds(id as i64)),
            naive(base),
        );
    }
    let poller = with_budget(&s, 2);
    let mut at = base + Duration::seconds(700);
    let mut cycles = 0;
    loop {
        cycles += 1;
        assert!(cycles <= 10, "the window never completed");
        let report = poll_instance(&poller, &instance, at).await;
        assert!(report.calls() <= 2, "the budget holds: {report:?}");
        match report.outcome {
            PollOutcome::Completed => break,
            PollOutcome::Checkpointed => {}
            other => panic!("unexpected outcome {other:?}"),
        }
        at += Duration::seconds(1);
    }
    // 650 changes at 100 a page: 7 pages (the last one short), so 4 cycles.
    assert!((4..=5).contains(&cycles), "cycles: {cycles}");
    let counts = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 650);
    assert!(
        counts.values().all(|&n| n == 1),
        "every change exactly once"
    );
    let cursor = s
        .app
        .store
        .poll_cursor(instance.id, "orders")
        .await
        .unwrap();
    assert!(cursor.is_some(), "the cursor reached the window's end");
}

#[tokio::test]
async fn an_endless_store_does_not_keep_an_honest_one_from_being_polled() {
    let s = served_stack().await;
    let endless = woocommerce::start_store("ck_p", "cs_p").await;
    let honest = woocommerce::start_store("ck_p", "cs_p").await;
    let a = s.create(body(&endless, "7", true, "polling")).await;
    let b = s.create(body(&honest, "7", true, "polling")).await;
    // 2,000 changes inside the first window (the overlap reaches back
    // 2 minutes): 20 pages, far more than one poll's budget of 3.
    let created_at = load(&s, &a["id"]).await.created_at;
    for id in 1..=2000u64 {
        let t = created_at - Duration::seconds(100) + Duration::seconds((id % 100) as i64);
        endless.upsert("orders", id, naive(t), naive(t));
    }
    // Every page of the endless store is slow as well.
    endless.set_delay(StdDuration::from_millis(50));
    let poller = with_budget(&s, 3);
    for cycle in 0..3u64 {
        let t = Utc::now();
        honest.upsert("orders", 100 + cycle, naive(t), naive(t));
        tokio::time::sleep(StdDuration::from_millis(1100)).await;
        let report = poller::poll_interval(
            &poller,
            7,
            None,
            std::time::Instant::now() + StdDuration::from_secs(600),
        )
        .await;
        assert_eq!(report.polled, 2, "both instances every cycle: {report:?}");
    }
    let honest_events = notified(&s, &b["id"]).await;
    assert_eq!(honest_events.len(), 3, "{honest_events:?}");
    let endless_events = notified(&s, &a["id"]).await;
    assert!(endless_events.len() <= 900 && !endless_events.is_empty());
}

#[tokio::test]
async fn polling_turned_on_later_starts_then_without_history() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", false, "polling")).await;
    let id = &created["id"];
    // Changes while events were off: history, not to be delivered.
    let before = Utc::now() + Duration::seconds(1);
    for oid in 1..=5u64 {
        store.upsert("orders", oid, naive(before), naive(before));
    }
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    let reply = call(
        &s.app,
        "PATCH",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        Some(&json!({"configuration": {"event.notification.enabled": true}}).to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = Utc::now() + Duration::seconds(1);
    store.upsert("orders", 6, naive(after), naive(after));
    let instance = load(&s, id).await;
    assert!(instance.events.poll_since.is_some());
    // The overlap reaches 2 minutes back: the history must still not come.
    let report = poll_instance(&s.poller, &instance, after + Duration::seconds(2)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let counts = notified(&s, id).await;
    let ids: Vec<&str> = counts.keys().map(|(o, _)| o.as_str()).collect();
    assert_eq!(ids, ["6"], "only what changed after polling was turned on");
}

#[tokio::test]
async fn a_credentials_fix_during_a_poll_is_not_undone_by_its_invalid_mark() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let mut b = body(&store, "5", true, "polling");
    b["configuration"]["oauth.api.secret"] = json!("cs_wrong");
    let created = s.create(b).await;
    let id = created["id"].clone();
    let instance = load(&s, &id).await;
    store.set_delay(StdDuration::from_millis(800));
    let poller = s.poller.clone();
    let task = tokio::spawn(async move { poll_instance(&poller, &instance, Utc::now()).await });
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let reply = call(
        &s.app,
        "PATCH",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        Some(&json!({"configuration": {"oauth.api.secret": "cs_p"}}).to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = task.await.unwrap();
    assert!(
        matches!(report.outcome, PollOutcome::Invalid(_)),
        "{report:?}"
    );
    let shown = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(shown.body["valid"], true, "the fix stands: {}", shown.body);
}

#[tokio::test]
async fn large_orders_are_stored_out_of_line_and_delivered_whole() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", true, "polling")).await;
    let instance = load(&s, &created["id"]).await;
    let base = Utc::now().with_nanosecond(0).unwrap() + Duration::seconds(2);
    // Ten orders of 45 KB: one notification of 450 KB, past the item limit.
    for id in 1..=10u64 {
        store.upsert(
            "orders",
            id,
            naive(base + Duration::seconds(id as i64)),
            naive(base),
        );
        assert!(store.set_meta_bytes("orders", id, 45 * 1024));
    }
    // One order of 1 MB, alone in its notification.
    store.upsert(
        "orders",
        11,
        naive(base + Duration::seconds(30)),
        naive(base),
    );
    assert!(store.set_meta_bytes("orders", 11, 1024 * 1024));
    let report = poll_instance(&s.poller, &instance, base + Duration::seconds(60)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    assert_eq!(report.changes(), 11);
    let counts = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 11);
    assert!(counts.values().all(|&n| n == 1));
    // Each notification reads back whole, as the dispatcher and the events
    // API get it.
    let (page, _) = s
        .app
        .store
        .list_notifications(instance.id, None, 50, None)
        .await
        .unwrap();
    let mut sizes: Vec<usize> = page.iter().map(|n| n.notification.raw.len()).collect();
    sizes.sort();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes[0] > 450 * 1024 && sizes[1] > 1024 * 1024, "{sizes:?}");
    for n in &page {
        let raw: Value =
            serde_json::from_str(&n.notification.raw).expect("the raw body is whole JSON");
        assert_eq!(raw["objectType"], "orders", "Cloud Elements' poller shape");
        assert_eq!(raw["eventId"], n.notification.id.as_str());
        assert!(raw["orders"].is_array());
        let one = s
            .app
            .store
            .get_notification(&n.notification.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.notification.raw, n.notification.raw);
    }
    // A second poll finds nothing new.
    let again = poll_instance(&s.poller, &instance, base + Duration::seconds(61)).await;
    assert_eq!(again.notifications(), 0);
}

/// The event-log indexes carry ids, `status` and `attempts` only: a claim
/// or a completion no longer rewrites a raw body into an index (issue 14,
/// index cost). The log itself still shows everything, read from the table.
#[tokio::test]
async fn the_event_log_indexes_carry_no_raw_bodies() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", true, "polling")).await;
    let instance = load(&s, &created["id"]).await;
    let t = Utc::now().with_nanosecond(0).unwrap() + Duration::seconds(1);
    store.upsert("orders", 1, naive(t), naive(t));
    let report = poll_instance(&s.poller, &instance, t + Duration::seconds(5)).await;
    assert_eq!(report.notifications(), 1, "{report:?}");
    let client = s.app.store.client();
    for (index, key, value) in [
        ("by-instance-log", "instance_id", instance.id.to_string()),
        ("by-org-log", "org_id", instance.org_id.clone()),
    ] {
        let out = client
            .query()
            .table_name(&s.app.store.tables().notifications)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", aws_sdk_dynamodb::types::AttributeValue::S(value))
            .send()
            .await
            .unwrap();
        let items = out.items();
        assert_eq!(items.len(), 1, "{index}");
        let mut attrs: Vec<&str> = items[0].keys().map(String::as_str).collect();
        attrs.sort();
        assert!(
            !attrs.contains(&"raw") && !attrs.contains(&"events"),
            "{index}: {attrs:?}"
        );
        assert!(
            attrs.contains(&"status") && attrs.contains(&"attempts"),
            "{index}: {attrs:?}"
        );
    }
    // The log shows the whole notification all the same.
    let counts = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 1);
}

/// A poll started late in a busy invocation (its `now` minutes old) used to
/// write a lease that was already expired, so a second poller ran beside
/// it. The lease now runs from when it is written and is renewed per page:
/// the second poller finds it held, and every change is notified once.
#[tokio::test]
async fn a_lease_taken_with_a_stale_clock_is_not_born_expired() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", true, "polling")).await;
    let instance = load(&s, &created["id"]).await;
    let base = Utc::now().with_nanosecond(0).unwrap() - Duration::seconds(30);
    for id in 1..=250u64 {
        store.upsert(
            "orders",
            id,
            naive(base + Duration::seconds((id % 25) as i64)),
            naive(base),
        );
    }
    store.set_delay(StdDuration::from_millis(150));
    let stale = Utc::now() - Duration::minutes(10);
    let first = {
        let poller = s.poller.clone();
        let instance = instance.clone();
        tokio::spawn(async move { poll_instance(&poller, &instance, stale).await })
    };
    while store.list_calls() < 1 {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let second = poll_instance(&s.poller, &instance, Utc::now()).await;
    assert_eq!(second.outcome, PollOutcome::Busy, "{second:?}");
    let first = first.await.unwrap();
    assert!(matches!(first.outcome, PollOutcome::Completed), "{first:?}");
    // (The stale poll's window ended ten minutes ago; the next one reads
    // the changes.)
    store.set_delay(StdDuration::ZERO);
    poll_instance(&s.poller, &instance, Utc::now()).await;
    let again = poll_instance(&s.poller, &instance, Utc::now()).await;
    assert_eq!(again.notifications(), 0, "{again:?}");
    let counts = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 250);
    assert!(counts.values().all(|&n| n == 1));
}

/// Another writer (a webhook, or a poller that ran beside this one) storing
/// one version of the poller's chunk in the gap between the poller's marker
/// read (`seen_versions`) and its transaction: it runs, through the admin's
/// store, just before the poller's first `TransactWriteItems` that carries
/// markers is serialized. A transaction is all or nothing: one failed
/// condition cancels it whole (`TransactionCanceledException`, API
/// reference of TransactWriteItems), on DynamoDB as on moto.
#[derive(Debug, Clone)]
struct OtherWriterFirst {
    store: Store,
    instance: Instance,
    /// The version the other writer stored, once it has.
    stored: Arc<Mutex<Option<ObjectVersion>>>,
}

/// The version a marker `Put` of the poller's transaction claims: its sort
/// key is `seen#<resource>#<object id>#<modified ms>` (the store's
/// `marker_sk`; the resource may itself hold a `#`, as `orders#deleted`).
fn marker_version(sk: &str) -> Option<ObjectVersion> {
    let rest = sk.strip_prefix("seen#")?;
    let mut parts = rest.rsplitn(3, '#');
    let modified_ms = parts.next()?.parse().ok()?;
    let object_id = parts.next()?.to_string();
    let resource = parts.next()?.to_string();
    Some(ObjectVersion {
        resource,
        object_id,
        modified_ms,
    })
}

impl Intercept for OtherWriterFirst {
    fn name(&self) -> &'static str {
        "OtherWriterFirst"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(tx) = context.input().downcast_ref::<TransactWriteItemsInput>() else {
            return Ok(());
        };
        let markers: Vec<ObjectVersion> = tx
            .transact_items()
            .iter()
            .filter_map(|item| item.put()?.item().get("sk")?.as_s().ok())
            .filter_map(|sk| marker_version(sk))
            .collect();
        // Only a chunk of several versions shows the partial conflict; and
        // only once, so that the poller's retry of the rest goes through.
        let mut stored_once = self.stored.lock().unwrap();
        if markers.len() < 2 || stored_once.is_some() {
            return Ok(());
        }
        let version = markers[markers.len() / 2].clone();
        let date = DateTime::from_timestamp_millis(version.modified_ms).expect("a marker's date");
        let event = Event::new(
            "woocommercerest",
            "orders",
            version.object_id.clone(),
            EventType::Updated,
            date,
        );
        let dedupe = format!("webhook:order.updated:{}", version.object_id);
        let notification = Notification::batch(
            self.instance.id,
            &self.instance.org_id,
            "woocommercerest",
            Source::Webhook,
            vec![event],
            &json!({"id": version.object_id}).to_string(),
            &dedupe,
            10,
            Utc::now(),
        )
        .remove(0);
        // Interceptors are synchronous: the write runs to its end on a
        // thread of its own, with its own runtime, before the poller's
        // transaction is even serialized.
        let store = self.store.clone();
        let marked = version.clone();
        let stored = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(store.put_notification_with_markers(&notification, &[marked]))
        })
        .join()
        .expect("the other writer's thread");
        assert_eq!(
            stored.ok(),
            Some(true),
            "the other writer stored its version"
        );
        *stored_once = Some(version);
        Ok(())
    }
}

/// Two writers met on one chunk: a webhook (or a second poller) stored one
/// of its ten versions after the poll read the markers and before the
/// poll's transaction, which DynamoDB then cancelled whole. The poll used to
/// count the whole chunk as "already notified", losing the nine versions
/// nobody stored; it now re-reads the markers and stores the rest.
#[test]
fn a_partial_marker_conflict_stores_the_rest_of_the_chunk() {
    // Many handler futures in one debug-build test: a roomier stack.
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(partial_marker_conflict())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn partial_marker_conflict() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_p", "cs_p").await;
    let created = s.create(body(&store, "5", true, "polling")).await;
    let instance = load(&s, &created["id"]).await;
    let base = Utc::now().with_nanosecond(0).unwrap() + Duration::seconds(2);
    // Twenty changes: two chunks of ten, two transactions.
    for id in 1..=20u64 {
        store.upsert(
            "orders",
            id,
            naive(base + Duration::seconds(id as i64)),
            naive(base),
        );
    }
    let other = OtherWriterFirst {
        store: s.store.clone(),
        instance: instance.clone(),
        stored: Arc::default(),
    };
    // The poller's own client (its IAM user's keys, its refusals recorded),
    // with the other writer in front of its transactions.
    let mut poller = s.poller.clone();
    let client = aws_sdk_dynamodb::Client::from_conf(
        poller
            .store
            .client()
            .config()
            .to_builder()
            .interceptor(other.clone())
            .build(),
    );
    poller.store = Store::new(client, poller.store.tables().clone());

    let report = poll_instance(&poller, &instance, base + Duration::seconds(60)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let taken = other
        .stored
        .lock()
        .unwrap()
        .clone()
        .expect("the other writer ran before the poller's first transaction");
    let counts = notified(&s, &created["id"]).await;
    let lost: Vec<u64> = (1..=20u64)
        .filter(|id| !counts.keys().any(|(o, _)| *o == id.to_string()))
        .collect();
    assert!(
        lost.is_empty(),
        "versions lost (the other writer stored order {}): {lost:?}",
        taken.object_id
    );
    assert_eq!(counts.len(), 20, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "every version exactly once, the other writer's included: {counts:?}"
    );
    // Counted as the poll saw it: one version already notified (by the
    // other writer), the other nineteen stored by the poll.
    assert_eq!(report.already_notified(), 1, "{report:?}");
    assert_eq!(report.changes(), 19, "{report:?}");
    // The next poll reads the window again (the overlap) and adds nothing.
    let again = poll_instance(&s.poller, &instance, base + Duration::seconds(61)).await;
    assert_eq!(again.notifications(), 0, "{again:?}");
}
