//! Polling against faithful WooCommerce and BigCommerce simulators, with the
//! state in the local DynamoDB server and the schedules in its EventBridge.
//! Every case counts notifications: each object version exactly once.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use ce_tests::vendors::{bigcommerce, woocommerce};
use ce_tests::{call, served_stack, Stack};
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use poller::{poll_instance, PollOutcome};
use serde_json::{json, Value};
use shared::model::Instance;

const INSTANCES: &str = "/elements/api-v2/instances";

async fn create(s: &Stack, body: Value) -> Value {
    s.create(body).await
}

async fn load(s: &Stack, id: &Value) -> Instance {
    let rec = s
        .app
        .store
        .get_instance(id.as_u64().unwrap())
        .await
        .unwrap()
        .unwrap();
    rec.open(&s.app.settings.secrets).unwrap()
}

fn woo_body(store: &woocommerce::WooStore, interval: &str, poller_cfg: Option<Value>) -> Value {
    let mut cfg = json!({
        "store.url": store.base_url, "oauth.api.key": "ck_poll", "oauth.api.secret": "cs_poll",
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": "https://mycoolapp.com/events",
        "event.poller.refresh_interval": interval});
    if let Some(p) = poller_cfg {
        cfg["event.poller.configuration"] = p;
    }
    json!({"element": {"key": "woocommercerest"}, "name": "poll test", "configuration": cfg})
}

fn orders_only() -> Value {
    json!({"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}})
}

/// Every event of an instance: (objectType, objectId, eventDate) → count, and types.
async fn notified(
    s: &Stack,
    id: &Value,
) -> (BTreeMap<(String, String, String), usize>, Vec<String>) {
    let mut counts = BTreeMap::new();
    let mut types = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(t) => format!("{INSTANCES}/{id}/events?pageSize=200&nextPage={t}"),
            None => format!("{INSTANCES}/{id}/events?pageSize=200"),
        };
        let reply = call(&s.app, "GET", &path, Some(&s.auth), None).await;
        assert_eq!(reply.status, 200);
        for n in reply.body.as_array().unwrap() {
            assert_eq!(n["source"], "polling");
            assert!(
                n["events"].as_array().unwrap().len() <= 10,
                "at most 10 events per notification"
            );
            for e in n["events"].as_array().unwrap() {
                let key = (
                    e["objectType"].as_str().unwrap().to_string(),
                    e["objectId"].as_str().unwrap().to_string(),
                    e["eventDate"].as_str().unwrap().to_string(),
                );
                *counts.entry(key).or_insert(0) += 1;
                types.push(e["eventType"].as_str().unwrap().to_string());
            }
        }
        next = reply
            .response
            .header("elements-next-page-token")
            .map(str::to_string);
        if next.is_none() {
            return (counts, types);
        }
    }
}

fn exactly_once(counts: &BTreeMap<(String, String, String), usize>) -> bool {
    counts.values().all(|&n| n == 1)
}

/// Whole seconds, as the stores keep them.
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap()
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// Orders 1..=count, created at `base`, order `id` modified `id` seconds later.
fn seed_orders_a_second_apart(store: &woocommerce::WooStore, count: u64, base: DateTime<Utc>) {
    for id in 1..=count {
        store.upsert(
            "orders",
            id,
            naive(base + Duration::seconds(id as i64)),
            naive(base),
        );
    }
}

#[tokio::test]
async fn one_rule_per_interval_is_kept_in_eventbridge() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let a = create(&s, woo_body(&store, "5", Some(orders_only()))).await;
    let b = create(&s, woo_body(&store, "5", Some(orders_only()))).await;
    let c = create(
        &s,
        woo_body(&store, 15.to_string().as_str(), Some(orders_only())),
    )
    .await;
    let rules = |s: &Stack| {
        let events = s.events.clone();
        let prefix = s.rule_prefix.clone();
        async move {
            let out = events
                .list_rules()
                .name_prefix(&prefix)
                .send()
                .await
                .unwrap();
            let mut found = Vec::new();
            for r in out.rules() {
                let targets = events
                    .list_targets_by_rule()
                    .rule(r.name().unwrap())
                    .send()
                    .await
                    .unwrap();
                let t = &targets.targets()[0];
                found.push((
                    r.name().unwrap().to_string(),
                    r.schedule_expression().unwrap().to_string(),
                    t.arn().to_string(),
                    t.input().unwrap().to_string(),
                ));
            }
            found.sort();
            found
        }
    };
    let got = rules(&s).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, format!("{}poll-every-15m", s.rule_prefix));
    assert_eq!(got[0].1, "rate(15 minutes)");
    assert_eq!(got[0].2, ce_tests::TEST_POLLER_ARN);
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].3).unwrap(),
        json!({"intervalMinutes": 15})
    );
    assert_eq!(got[1].1, "rate(5 minutes)");

    // Deleting one of two 5-minute instances keeps the rule; the last removes it.
    assert_eq!(
        call(
            &s.app,
            "DELETE",
            &format!("{INSTANCES}/{}", a["id"]),
            Some(&s.auth),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(rules(&s).await.len(), 2);
    assert_eq!(
        call(
            &s.app,
            "DELETE",
            &format!("{INSTANCES}/{}", b["id"]),
            Some(&s.auth),
            None
        )
        .await
        .status,
        200
    );
    let got = rules(&s).await;
    assert_eq!(
        got.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["rate(15 minutes)"]
    );
    // Changing the interval moves the instance to another rule.
    let patch = json!({"configuration": {"event.poller.refresh_interval": "1"}}).to_string();
    assert_eq!(
        call(
            &s.app,
            "PATCH",
            &format!("{INSTANCES}/{}", c["id"]),
            Some(&s.auth),
            Some(&patch)
        )
        .await
        .status,
        200
    );
    let got = rules(&s).await;
    assert_eq!(
        got.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["rate(1 minute)"]
    );
}

#[tokio::test]
async fn woocommerce_changes_since_creation_become_events_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    // History from before the instance existed is not flooded in.
    let long_ago = secs(Utc::now() - Duration::days(3));
    for id in 1..=5 {
        store.upsert("orders", id, naive(long_ago), naive(long_ago));
    }
    let created = create(&s, woo_body(&store, "15", None)).await;
    let instance = load(&s, &created["id"]).await;
    let base = secs(Utc::now()) + Duration::seconds(2);
    store.upsert("orders", 10, naive(base), naive(base));
    store.upsert(
        "orders",
        2,
        naive(base + Duration::seconds(1)),
        naive(long_ago),
    );
    store.upsert(
        "products",
        20,
        naive(base + Duration::seconds(2)),
        naive(base + Duration::seconds(2)),
    );
    store.upsert(
        "coupons",
        30,
        naive(base + Duration::seconds(3)),
        naive(long_ago),
    );
    store.upsert(
        "customers",
        40,
        naive(base + Duration::seconds(4)),
        naive(base + Duration::seconds(4)),
    );

    let t1 = base + Duration::seconds(60);
    let report = poll_instance(&s.poller, &instance, t1).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (counts, types) = notified(&s, &created["id"]).await;
    let keys: Vec<(String, String)> = counts
        .keys()
        .map(|(t, id, _)| (t.clone(), id.clone()))
        .collect();
    assert_eq!(
        keys,
        [
            ("customers", "40"),
            ("discounts", "30"),
            ("orders", "10"),
            ("orders", "2"),
            ("products", "20")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(exactly_once(&counts));
    assert_eq!(
        types.iter().filter(|t| *t == "CREATED").count(),
        3,
        "created == modified within 1 s: {types:?}"
    );
    assert_eq!(types.iter().filter(|t| *t == "UPDATED").count(), 2);

    // Nothing changed: the next poll adds nothing, one call per resource.
    let report = poll_instance(&s.poller, &instance, t1 + Duration::seconds(60)).await;
    assert_eq!(
        (report.outcome.clone(), report.notifications()),
        (PollOutcome::Completed, 0),
        "{report:?}"
    );
    assert_eq!(notified(&s, &created["id"]).await.0, counts);
    // One change: one event, UPDATED.
    store.upsert("orders", 10, naive(t1 + Duration::seconds(30)), naive(base));
    let report = poll_instance(&s.poller, &instance, t1 + Duration::seconds(120)).await;
    assert_eq!(report.notifications(), 1, "{report:?}");
    let (after, _) = notified(&s, &created["id"]).await;
    assert_eq!(after.len(), counts.len() + 1);
    assert!(exactly_once(&after));
}

async fn orders_instance(s: &Stack, store: &woocommerce::WooStore) -> (Value, Instance) {
    let created = create(s, woo_body(store, "15", Some(orders_only()))).await;
    let instance = load(s, &created["id"]).await;
    (created, instance)
}

#[tokio::test]
async fn equal_timestamps_across_page_boundaries_are_all_notified_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let same = secs(Utc::now()) + Duration::seconds(5);
    for id in 1..=250 {
        store.upsert("orders", id, naive(same), naive(same - Duration::hours(1)));
    }
    let report = poll_instance(&s.poller, &instance, same + Duration::seconds(30)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (counts, _) = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 250);
    assert!(exactly_once(&counts));
}

#[tokio::test]
async fn objects_modified_during_the_scan_are_neither_lost_nor_doubled() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let base = secs(Utc::now()) + Duration::seconds(5);
    seed_orders_a_second_apart(&store, 250, base);
    let poll_at = base + Duration::seconds(400);
    // After the first page is answered: one order not yet read, and one
    // already read, change (after this poll began).
    store.schedule_upsert_after_calls(
        1,
        "orders",
        240,
        naive(poll_at + Duration::seconds(10)),
        naive(base),
    );
    store.schedule_upsert_after_calls(
        1,
        "orders",
        3,
        naive(poll_at + Duration::seconds(11)),
        naive(base),
    );
    let report = poll_instance(&s.poller, &instance, poll_at).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (first, _) = notified(&s, &created["id"]).await;
    assert_eq!(
        first.len(),
        249,
        "order 240 moved past this poll's end; the rest were seen"
    );
    let report = poll_instance(&s.poller, &instance, poll_at + Duration::seconds(60)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (all, _) = notified(&s, &created["id"]).await;
    assert!(exactly_once(&all));
    let ids: std::collections::BTreeSet<&str> = all.keys().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 250, "every order notified");
    assert_eq!(
        all.len(),
        251,
        "order 3 changed twice: two versions, each once"
    );
}

#[tokio::test]
async fn a_store_clock_behind_ours_is_covered_by_the_overlap() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let t1 = secs(Utc::now()) + Duration::seconds(10);
    assert_eq!(
        poll_instance(&s.poller, &instance, t1).await.outcome,
        PollOutcome::Completed
    );
    // Saved after our first poll, stamped by a store clock 60 s behind.
    store.upsert(
        "orders",
        7,
        naive(t1 - Duration::seconds(60)),
        naive(t1 - Duration::seconds(60)),
    );
    let report = poll_instance(&s.poller, &instance, t1 + Duration::seconds(30)).await;
    assert_eq!(report.notifications(), 1, "{report:?}");
    assert!(exactly_once(&notified(&s, &created["id"]).await.0));
}

#[tokio::test]
async fn a_store_going_down_mid_poll_leaves_the_cursor_and_the_retry_completes_exactly_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let base = secs(Utc::now()) + Duration::seconds(5);
    seed_orders_a_second_apart(&store, 250, base);
    let poll_at = base + Duration::seconds(400);
    store.set_delay(StdDuration::from_millis(150));
    let poller = s.poller.clone();
    let inst = instance.clone();
    let task = tokio::spawn(async move { poll_instance(&poller, &inst, poll_at).await });
    while store.list_calls() < 1 {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    store.fail_next(503, 10);
    let report = task.await.unwrap();
    assert!(
        matches!(report.outcome, PollOutcome::Incomplete(_)),
        "{report:?}"
    );
    let cursor = s
        .app
        .store
        .poll_cursor(instance.id, "orders")
        .await
        .unwrap();
    assert_eq!(cursor, None, "the cursor did not move");
    let (partial, _) = notified(&s, &created["id"]).await;
    assert!(partial.len() < 250);

    store.set_delay(StdDuration::ZERO);
    store.fail_next(503, 0);
    let report = poll_instance(&s.poller, &instance, poll_at + Duration::seconds(10)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (all, _) = notified(&s, &created["id"]).await;
    assert_eq!(all.len(), 250);
    assert!(
        exactly_once(&all),
        "what the failed poll stored is not stored again"
    );
}

#[tokio::test]
async fn two_pollers_at_once_poll_an_instance_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let base = secs(Utc::now()) + Duration::seconds(5);
    seed_orders_a_second_apart(&store, 120, base);
    store.set_delay(StdDuration::from_millis(100));
    let at = base + Duration::seconds(300);
    let (a, b) = tokio::join!(
        poll_instance(&s.poller, &instance, at),
        poll_instance(&s.poller, &instance, at)
    );
    let outcomes = [a.outcome, b.outcome];
    assert!(outcomes.contains(&PollOutcome::Busy), "{outcomes:?}");
    assert!(outcomes.contains(&PollOutcome::Completed), "{outcomes:?}");
    let (all, _) = notified(&s, &created["id"]).await;
    assert_eq!(all.len(), 120);
    assert!(exactly_once(&all));
}

#[tokio::test]
async fn a_poller_killed_mid_poll_is_taken_over_after_its_lease() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let base = secs(Utc::now()) + Duration::seconds(5);
    seed_orders_a_second_apart(&store, 250, base);
    store.set_delay(StdDuration::from_millis(150));
    let at = base + Duration::seconds(400);
    let poller = s.poller.clone();
    let inst = instance.clone();
    let task = tokio::spawn(async move { poll_instance(&poller, &inst, at).await });
    while store.list_calls() < 2 {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    task.abort(); // the Lambda timed out
    let _ = task.await;
    store.set_delay(StdDuration::ZERO);
    // While its lease lasts, another poller stays off.
    assert_eq!(
        poll_instance(&s.poller, &instance, at + Duration::seconds(10))
            .await
            .outcome,
        PollOutcome::Busy
    );
    let later = at + s.poller.config.lease + Duration::seconds(1);
    let report = poll_instance(&s.poller, &instance, later).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (all, _) = notified(&s, &created["id"]).await;
    assert_eq!(all.len(), 250);
    assert!(exactly_once(&all));
}

#[tokio::test]
async fn a_401_from_the_store_marks_the_instance_invalid_until_fixed() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_other", "cs_other").await;
    let (created, instance) = orders_instance(&s, &store).await;
    let report = poll_instance(&s.poller, &instance, Utc::now()).await;
    assert!(
        matches!(report.outcome, PollOutcome::Invalid(_)),
        "{report:?}"
    );
    let shown = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}", created["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(shown.body["valid"], false);
    assert!(
        shown.body["invalidReason"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{}",
        shown.body
    );
    let skipped = poll_instance(&s.poller, &load(&s, &created["id"]).await, Utc::now()).await;
    assert!(
        matches!(skipped.outcome, PollOutcome::Skipped(_)),
        "{skipped:?}"
    );
    let fix =
        json!({"configuration": {"oauth.api.key": "ck_other", "oauth.api.secret": "cs_other"}})
            .to_string();
    assert_eq!(
        call(
            &s.app,
            "PATCH",
            &format!("{INSTANCES}/{}", created["id"]),
            Some(&s.auth),
            Some(&fix)
        )
        .await
        .status,
        200
    );
    let shown = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}", created["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(shown.body["valid"], true);
    let report = poll_instance(&s.poller, &load(&s, &created["id"]).await, Utc::now()).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
}

fn bigcommerce_body(store: &bigcommerce::BigCommerceStore) -> Value {
    // The docs' example, pointed at the simulator's legacy v2 API.
    let mut body = ce_tests::seeds::filled("002_openconnectors_bigcommerce_2.json");
    let cfg = body["configuration"].as_object_mut().unwrap();
    for k in ["oauth.api.key", "oauth.api.secret", "oauth.callback.url"] {
        cfg.remove(k);
    }
    cfg.insert("username".into(), json!("bc-user"));
    cfg.insert("password".into(), json!("bc-token"));
    cfg.insert(
        "store.url".into(),
        json!(format!("{}/api/v2", store.base_url)),
    );
    body
}

#[tokio::test]
async fn bigcommerce_polls_with_rfc_2822_dates_through_429_storms_and_204s() {
    let s = served_stack().await;
    let store = bigcommerce::start_store("bc-user", "bc-token").await;
    let created = create(&s, bigcommerce_body(&store)).await;
    let instance = load(&s, &created["id"]).await;
    // Empty store: 204s, nothing notified, every resource completes.
    let t0 = secs(Utc::now()) + Duration::seconds(5);
    let report = poll_instance(&s.poller, &instance, t0).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    assert_eq!(report.notifications(), 0);

    let base = t0 + Duration::seconds(5);
    for id in 1..=600u64 {
        store.upsert(
            "orders",
            id,
            base + Duration::seconds(id as i64 % 50),
            base - Duration::days(1),
        );
    }
    store.upsert("products", 77, base, base);
    store.upsert(
        "customers",
        88,
        base + Duration::seconds(1),
        base + Duration::seconds(1),
    );
    // A tight quota: the poll runs into 429s and waits them out.
    store.set_quota(2, StdDuration::from_millis(800));
    let report = poll_instance(&s.poller, &instance, base + Duration::seconds(120)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    assert!(
        store.throttled_calls() + report.throttled() > 0,
        "the quota was hit"
    );
    let (counts, types) = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 602);
    assert!(exactly_once(&counts));
    assert_eq!(types.iter().filter(|t| *t == "CREATED").count(), 2);
    // Calls for orders against the minimum ⌈600/250⌉ + 1, plus one listing
    // of archived orders.
    let orders = report
        .resources
        .iter()
        .find(|r| r.resource == "orders")
        .unwrap();
    assert!(orders.calls - orders.throttled <= 4, "{orders:?}");
}

#[tokio::test]
async fn poll_now_runs_a_poll_and_reports_it() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, _) = orders_instance(&s, &store).await;
    let now = secs(Utc::now());
    store.upsert("orders", 5, naive(now), naive(now));
    let reply = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{}/events/poll", created["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["outcome"], "Completed");
    assert_eq!(reply.body["notifications"], 1);
    assert_eq!(notified(&s, &created["id"]).await.0.len(), 1);
    // A webhook instance does not poll.
    let hook = ce_tests::seeds::filled("003_openconnectors_ecwid_1.json");
    let ecwid = create(&s, hook).await;
    let reply = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{}/events/poll", ecwid["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 409);
}

#[tokio::test]
async fn the_interval_handler_polls_every_instance_of_its_interval() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(orders_instance(&s, &store).await.0["id"].clone());
    }
    let other = create(&s, woo_body(&store, "7", Some(orders_only()))).await;
    let now = secs(Utc::now());
    store.upsert("orders", 9, naive(now), naive(now));
    let result = poller::handle_event(
        &s.poller,
        &json!({"intervalMinutes": 15}),
        StdDuration::from_secs(300),
    )
    .await;
    assert_eq!(result["polled"], 3, "{result}");
    for id in &ids {
        assert_eq!(notified(&s, id).await.0.len(), 1);
    }
    assert!(
        notified(&s, &other["id"]).await.0.is_empty(),
        "other intervals are not polled"
    );
}

#[tokio::test]
async fn bad_poller_configuration_is_refused_at_creation_naming_the_field() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    for (cfg, field) in [
        (
            json!({"orders": {"url": "/hubs/ecommerce/orders?where=modified_after='${date:GGG}'"}}),
            "configuration.event.poller.configuration.orders.url",
        ),
        (
            json!({"orders": {"url": "/hubs/ecommerce/orders?where=modified_after='${nope}'"}}),
            "configuration.event.poller.configuration.orders.url",
        ),
        (
            json!({"orders": {"url": "/hubs/ecommerce/orders", "datesConfiguration": {"updatedAtFormat": "yyyy-qq"}}}),
            "configuration.event.poller.configuration.orders.datesConfiguration.updatedAtFormat",
        ),
        (
            json!({"orders": {"url": "/hubs/ecommerce/orders", "datesConfiguration": {"updatedAtTimezone": "Mars/Olympus"}}}),
            "configuration.event.poller.configuration.orders.datesConfiguration.updatedAtTimezone",
        ),
    ] {
        let reply = call(
            &s.app,
            "POST",
            INSTANCES,
            Some(&s.auth),
            Some(&woo_body(&store, "15", Some(cfg.clone())).to_string()),
        )
        .await;
        assert_eq!(
            (reply.status, reply.body["field"].clone()),
            (400, json!(field)),
            "{cfg}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn an_invocation_short_of_time_hands_the_rest_on_through_eventbridge() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let (created, _) = orders_instance(&s, &store).await;
    let now = secs(Utc::now());
    store.upsert("orders", 3, naive(now), naive(now));
    // A poller that hands over through the local EventBridge server.
    // Its own bus: moto's PutEvents fails on a bus that holds schedule rules
    // (it tries to match them as patterns: NotImplementedError), which
    // other concurrent tests create on the default bus. AWS has no such limit.
    let bus = format!("{}continuations", s.rule_prefix);
    s.events.create_event_bus().name(&bus).send().await.unwrap();
    let mut handing_over = s.poller.clone();
    handing_over.continuation = poller::Continuation::EventBridge {
        client: s.events.clone(),
        bus,
    };
    // Less time left than a page of polls needs: nothing is polled here,
    // the continuation event carries the interval on.
    let report = poller::poll_interval(
        &handing_over,
        15,
        None,
        std::time::Instant::now() + StdDuration::from_secs(5),
    )
    .await;
    assert_eq!(
        (report.polled, report.handed_over, report.continued_after),
        (0, true, None),
        "{report:?}"
    );
    assert!(notified(&s, &created["id"]).await.0.is_empty());
    // The continuation event, as the rule delivers it, polls from where it was.
    let event = json!({"detail-type": "Poll continuation", "source": "connector-events.poller",
                       "detail": {"intervalMinutes": 15, "startAfter": null}});
    let result = poller::handle_event(&s.poller, &event, StdDuration::from_secs(300)).await;
    assert_eq!(result["polled"], 1, "{result}");
    assert_eq!(notified(&s, &created["id"]).await.0.len(), 1);
}

/// The schedule expressions of the stack's poll rules, sorted.
async fn rule_schedules(s: &Stack) -> Vec<String> {
    let out = s
        .events
        .list_rules()
        .name_prefix(&s.rule_prefix)
        .send()
        .await
        .unwrap();
    let mut found: Vec<String> = out
        .rules()
        .iter()
        .map(|r| r.schedule_expression().unwrap().to_string())
        .collect();
    found.sort();
    found
}

async fn delete_instance(s: &Stack, id: &Value) -> u16 {
    call(
        &s.app,
        "DELETE",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        None,
    )
    .await
    .status
}

#[tokio::test]
async fn a_rule_outlives_the_last_delete_while_a_create_is_in_flight() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let a = create(&s, woo_body(&store, "7", Some(orders_only()))).await;
    assert_eq!(rule_schedules(&s).await, ["rate(7 minutes)"]);

    // Another create at 7 minutes has recorded its membership and ensured the
    // rule, but its instance is not written yet, so no index can show it.
    let in_flight = 4_242_424_242;
    s.app
        .store
        .add_interval_member(7, in_flight, Utc::now())
        .await
        .unwrap();
    assert_eq!(delete_instance(&s, &a["id"]).await, 200);
    assert_eq!(
        rule_schedules(&s).await,
        ["rate(7 minutes)"],
        "the rule is kept for the create in flight"
    );

    // That create never finished. Past the grace period its membership no
    // longer counts: the next release removes the rule and the membership.
    let abandoned =
        Utc::now() - Duration::minutes(shared::store::UNCONFIRMED_MEMBER_GRACE_MINUTES + 1);
    s.app
        .store
        .add_interval_member(7, in_flight, abandoned)
        .await
        .unwrap();
    let b = create(&s, woo_body(&store, "7", Some(orders_only()))).await;
    assert_eq!(delete_instance(&s, &b["id"]).await, 200);
    assert!(rule_schedules(&s).await.is_empty());
    assert!(!s.app.store.interval_in_use(7).await.unwrap());
}

#[tokio::test]
async fn instances_without_a_membership_still_keep_their_rule() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let a = create(&s, woo_body(&store, "9", Some(orders_only()))).await;
    let b = create(&s, woo_body(&store, "9", Some(orders_only()))).await;
    // `b` as written before memberships existed: only the index knows it.
    s.app
        .store
        .remove_interval_member(9, b["id"].as_u64().unwrap())
        .await
        .unwrap();
    assert_eq!(delete_instance(&s, &a["id"]).await, 200);
    assert_eq!(rule_schedules(&s).await, ["rate(9 minutes)"]);
    assert_eq!(delete_instance(&s, &b["id"]).await, 200);
    assert!(rule_schedules(&s).await.is_empty());
}

#[tokio::test]
async fn an_interval_change_moves_the_membership_and_the_rule() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_poll", "cs_poll").await;
    let a = create(&s, woo_body(&store, "5", Some(orders_only()))).await;
    assert!(s.app.store.interval_in_use(5).await.unwrap());
    let patch = json!({"configuration": {"event.poller.refresh_interval": "11"}}).to_string();
    let reply = call(
        &s.app,
        "PATCH",
        &format!("{INSTANCES}/{}", a["id"]),
        Some(&s.auth),
        Some(&patch),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(rule_schedules(&s).await, ["rate(11 minutes)"]);
    assert!(s.app.store.interval_in_use(11).await.unwrap());
    assert!(!s.app.store.interval_in_use(5).await.unwrap());
}

#[tokio::test]
async fn a_failed_update_takes_back_only_the_membership_it_wrote() {
    let s = served_stack().await;
    let id = 5_151_515_151;
    let mine = s
        .app
        .store
        .add_interval_member(13, id, Utc::now())
        .await
        .unwrap();
    // A concurrent update of the same instance to the same interval, which
    // succeeded, wrote the membership again.
    let theirs = s
        .app
        .store
        .add_interval_member(13, id, Utc::now())
        .await
        .unwrap();
    s.app
        .store
        .undo_interval_member(13, id, &mine)
        .await
        .unwrap();
    assert!(
        s.app.store.interval_in_use(13).await.unwrap(),
        "the other writer's membership stays"
    );
    s.app
        .store
        .undo_interval_member(13, id, &theirs)
        .await
        .unwrap();
    assert!(!s.app.store.interval_in_use(13).await.unwrap());
}

/// Issue 15, point 1: a store's hostile rate-limit headers. A negative
/// `X-Rate-Limit-Time-Reset-Ms` was a hot loop against the store; a
/// `Retry-After` of 9999999999999999 made chrono panic. Now each wait has a
/// floor, each value is clamped, and a wait past the poll's patience ends
/// the poll at once with the cursor unchanged.
#[tokio::test]
async fn hostile_rate_limit_headers_neither_spin_nor_panic() {
    use ce_tests::receiver::{start_receiver, Behaviour};
    let s = served_stack().await;
    let store = start_receiver(None, None).await;
    let base = store
        .url
        .trim_end_matches(ce_tests::receiver::CALLBACK_PATH);
    let mut body = ce_tests::seeds::filled("002_openconnectors_bigcommerce_2.json");
    let cfg = body["configuration"].as_object_mut().unwrap();
    for k in ["oauth.api.key", "oauth.api.secret", "oauth.callback.url"] {
        cfg.remove(k);
    }
    cfg.insert("username".into(), json!("bc-user"));
    cfg.insert("password".into(), json!("bc-token"));
    cfg.insert("store.url".into(), json!(format!("{base}/api/v2")));
    store.set_default(Behaviour::Respond(200, vec![], json!([])));
    let created = create(&s, body).await;
    let instance = load(&s, &created["id"]).await;
    let too_many = |name: &str, value: &str| {
        Behaviour::Respond(429, vec![(name.to_string(), value.to_string())], json!({}))
    };

    // A negative reset: waited out at the 1 s floor, a few times, then the
    // poll stops. Patience of 3 s per resource, three resources.
    let mut poller = s.poller.clone();
    poller.config.max_throttle_wait = Duration::seconds(3);
    store.set_default(too_many("x-rate-limit-time-reset-ms", "-5"));
    let before = store.received().len();
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(
        StdDuration::from_secs(40),
        poll_instance(&poller, &instance, Utc::now()),
    )
    .await
    .expect("the poll ends: no hot loop");
    assert!(
        matches!(report.outcome, PollOutcome::Incomplete(_)),
        "{report:?}"
    );
    let calls = store.received().len() - before;
    assert!(calls <= 3 * 4, "{calls} calls in {:?}", started.elapsed());

    // Values far past any clock: no panic, no wait, the cursor stays.
    for (name, value) in [
        ("retry-after", "9999999999999999"),
        ("x-rate-limit-time-reset-ms", "9223372036854775807"),
        ("x-rate-limit-time-reset-ms", "-9223372036854775808"),
    ] {
        store.set_default(too_many(name, value));
        let started = std::time::Instant::now();
        let report = tokio::time::timeout(
            StdDuration::from_secs(40),
            poll_instance(&poller, &instance, Utc::now()),
        )
        .await
        .expect("the poll ends");
        assert!(
            matches!(report.outcome, PollOutcome::Incomplete(_)),
            "{name}: {value}: {report:?}"
        );
        if !value.starts_with('-') {
            assert!(
                started.elapsed() < StdDuration::from_secs(5),
                "{name}: {value}: a wait past patience is not slept: {:?}",
                started.elapsed()
            );
        }
    }
    // The store recovers: the next poll completes.
    store.set_default(Behaviour::Respond(200, vec![], json!([])));
    let report = poll_instance(&s.poller, &instance, Utc::now()).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
}

// --------------------------------------------- BigCommerce as it really behaves

/// The Cloud Elements OAuth body (seed 002, second example) pointed at the
/// simulator's API host, with the given extra configuration and body keys.
fn bigcommerce_oauth_body(
    store: &bigcommerce::BigCommerceStore,
    extra_cfg: Value,
    provider_data: Option<Value>,
) -> Value {
    let mut body = ce_tests::seeds::filled("002_openconnectors_bigcommerce_2.json");
    let cfg = body["configuration"].as_object_mut().unwrap();
    cfg.insert("oauth.api.key".into(), json!("bc-client-id"));
    cfg.insert("oauth.api.secret".into(), json!("bc-client-secret"));
    cfg.insert(
        "oauth.callback.url".into(),
        json!("https://mycoolapp.com/auth"),
    );
    cfg.insert("bigcommerce.api.url".into(), json!(store.base_url.clone()));
    cfg.extend(extra_cfg.as_object().unwrap().clone());
    if let Some(pd) = provider_data {
        body["providerData"] = pd;
    }
    body
}

async fn post_instance(s: &Stack, body: &Value) -> ce_tests::Reply {
    call(
        &s.app,
        "POST",
        INSTANCES,
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_bigcommerce_oauth_install_code_is_exchanged_and_the_store_polled() {
    let mut s = served_stack().await;
    let store = bigcommerce::start_store("unused", "unused").await;
    store.register_app(
        "bc-client-id",
        "bc-client-secret",
        "https://mycoolapp.com/auth",
    );
    s.app.bigcommerce_login_url = store.base_url.clone();
    let context = format!("stores/{}", store.store_hash());

    // Neither the install code nor a token: a 400 naming what is missing.
    let reply = post_instance(&s, &bigcommerce_oauth_body(&store, json!({}), None)).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["field"], "providerData.code", "{}", reply.body);
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("bigcommerce.store.hash"));

    // A wrong code: BigCommerce refuses it, and so do we, naming the field.
    let wrong =
        json!({"code": "not-a-code", "context": context, "scope": "store_v2_orders_read_only"});
    let reply = post_instance(&s, &bigcommerce_oauth_body(&store, json!({}), Some(wrong))).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["field"], "providerData.code");
    assert!(!reply.body.to_string().contains("bc-client-secret"));

    // The code from the app's auth callback.
    let code = store.issue_code("store_v2_orders_read_only store_v2_products_read_only");
    let pd = json!({"code": code, "context": context, "scope": "store_v2_orders_read_only"});
    let reply = post_instance(
        &s,
        &bigcommerce_oauth_body(&store, json!({}), Some(pd.clone())),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let created = reply.body;
    assert_eq!(created["configuration"]["oauth.access.token"], "********");
    assert_eq!(
        created["configuration"]["bigcommerce.store.hash"],
        store.store_hash()
    );
    assert!(
        !created.to_string().contains("tok-"),
        "the token is never echoed"
    );
    // A code is good once.
    let reply = post_instance(&s, &bigcommerce_oauth_body(&store, json!({}), Some(pd))).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (400, json!("providerData.code"))
    );

    // The exchanged token polls the store.
    let instance = load(&s, &created["id"]).await;
    let t = secs(Utc::now()) + Duration::seconds(2);
    store.upsert("orders", 1, t, t);
    let report = poll_instance(&s.poller, &instance, t + Duration::seconds(10)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (counts, _) = notified(&s, &created["id"]).await;
    assert_eq!(
        counts.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
        ["1"]
    );

    // The hash and token may also be given directly.
    let direct = bigcommerce_oauth_body(
        &store,
        json!({"bigcommerce.store.hash": store.store_hash(), "oauth.access.token": "given-token"}),
        None,
    );
    assert_eq!(post_instance(&s, &direct).await.status, 200);
}

#[tokio::test]
async fn oauth_stores_poll_products_and_customers_through_v3_and_orders_through_v2() {
    let s = served_stack().await;
    let store = bigcommerce::start_store("unused", "unused").await;
    store.set_oauth_token("oauth-token-1");
    let created = create(
        &s,
        bigcommerce_oauth_body(
            &store,
            json!({"bigcommerce.store.hash": store.store_hash(), "oauth.access.token": "oauth-token-1"}),
            None,
        ),
    )
    .await;
    let instance = load(&s, &created["id"]).await;
    let base = secs(Utc::now()) + Duration::seconds(5);
    // More products than one page, several in the same second.
    for id in 1..=260u64 {
        store.upsert(
            "products",
            id,
            base + Duration::seconds((id / 3) as i64),
            base,
        );
    }
    store.upsert(
        "customers",
        7,
        base + Duration::seconds(1),
        base - Duration::days(3),
    );
    store.upsert("orders", 9, base, base);
    let report = poll_instance(&s.poller, &instance, base + Duration::seconds(200)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    assert!(
        store.v3_calls() >= 3,
        "products (2 pages) and customers through v3"
    );
    let (counts, _) = notified(&s, &created["id"]).await;
    assert!(exactly_once(&counts));
    let of = |t: &str| counts.keys().filter(|k| k.0 == t).count();
    assert_eq!((of("products"), of("customers"), of("orders")), (260, 1, 1));
    // The client's resource names are unchanged, and v3's ISO dates are read.
    let customer = counts.keys().find(|k| k.0 == "customers").unwrap();
    assert_eq!(customer.1, "7");
    assert_eq!(
        customer.2,
        shared::model::format_date(base + Duration::seconds(1))
    );
}

#[tokio::test]
async fn archived_bigcommerce_orders_are_reported_deleted_by_polling() {
    let s = served_stack().await;
    let store = bigcommerce::start_store("bc-user", "bc-token").await;
    let created = create(&s, bigcommerce_body(&store)).await;
    let instance = load(&s, &created["id"]).await;
    // Orders of a moment ago (inside the first window's overlap), so that the
    // archive, stamped with the store's clock, is a later version.
    let t = secs(Utc::now()) - Duration::seconds(10);
    store.upsert("orders", 41, t, t);
    store.upsert("orders", 42, t, t);
    let report = poll_instance(&s.poller, &instance, Utc::now()).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    // The merchant archives order 41: it leaves the default listing.
    store.delete("orders", 41);
    let report = poll_instance(&s.poller, &instance, Utc::now() + Duration::seconds(5)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (counts, _) = notified(&s, &created["id"]).await;
    assert!(exactly_once(&counts));
    let reply = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}/events?pageSize=200", created["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    let deleted: Vec<String> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["events"].as_array().unwrap().clone())
        .filter(|e| e["eventType"] == "DELETED")
        .map(|e| e["objectId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, ["41"], "{}", reply.body);
}

#[tokio::test]
async fn a_low_legacy_hourly_quota_stops_the_cycle_and_the_next_resumes() {
    let s = served_stack().await;
    let store = bigcommerce::start_store("bc-user", "bc-token").await;
    let created = create(&s, bigcommerce_body(&store)).await;
    let instance = load(&s, &created["id"]).await;
    let t = secs(Utc::now()) + Duration::seconds(2);
    for id in 1..=3u64 {
        store.upsert("orders", id, t, t);
    }
    store.upsert("products", 5, t, t);
    store.upsert("customers", 6, t, t);
    // The hour's quota is nearly used up by the merchant's other tools.
    store.set_hourly_quota_left(shared::elements::bigcommerce::LEGACY_QUOTA_RESERVE as u64 + 1);
    let calls_before = store.list_calls();
    let report = poll_instance(&s.poller, &instance, t + Duration::seconds(5)).await;
    assert!(
        matches!(report.outcome, PollOutcome::Deferred(_)),
        "{report:?}"
    );
    assert_eq!(
        store.list_calls() - calls_before,
        1,
        "stopped after one call"
    );
    assert!(
        report.resources.iter().all(|r| r.cursor.is_none()),
        "no cursor moved"
    );
    // The next hour: the cycle resumes where the window starts, nothing twice.
    store.set_hourly_quota_left(20_000);
    let report = poll_instance(&s.poller, &instance, t + Duration::seconds(10)).await;
    assert_eq!(report.outcome, PollOutcome::Completed, "{report:?}");
    let (counts, _) = notified(&s, &created["id"]).await;
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(exactly_once(&counts));
}
