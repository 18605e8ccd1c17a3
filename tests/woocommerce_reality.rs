//! WooCommerce as it really behaves (the simulator's defaults follow
//! WooCommerce's source: tests/support/vendors/woocommerce/): same-second
//! delivery ids, no retries and disabled hooks, site-local dates, OAuth 1.0a
//! over plain HTTP, firewall pages, short pages, old versions, slow creates,
//! the trash and large bodies. Every case goes through the served functions
//! and counts what was delivered.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use ce_tests::vendors::woocommerce::{self, WooStore};
use ce_tests::{call, seeds, served_stack, Stack};
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use serde_json::{json, Value};

const INSTANCES: &str = "/elements/api-v2/instances";
const KEY: &str = "ck_reality";
const SECRET: &str = "cs_reality";

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap().naive_utc()
}

fn gmt(t: DateTime<Utc>) -> String {
    naive(t).format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn polling_body(store: &WooStore, poller: Value) -> Value {
    json!({"element": {"key": "woocommercerest"}, "name": "reality", "configuration": {
        "store.url": store.base_url, "oauth.api.key": KEY, "oauth.api.secret": SECRET,
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": "https://mycoolapp.com/events",
        "event.poller.refresh_interval": "5", "event.poller.configuration": poller}})
}

fn webhook_body(store: &WooStore) -> Value {
    json!({"element": {"key": "woocommercerest"}, "name": "hooks", "configuration": {
        "store.url": store.base_url, "oauth.api.key": KEY, "oauth.api.secret": SECRET,
        "event.notification.enabled": true, "event.vendor.type": "webhook",
        "event.notification.callback.url": "https://mycoolapp.com/events"}})
}

fn resource(url: &str) -> Value {
    json!({"url": url, "idField": "id", "datesConfiguration": {}})
}

async fn poll_now(s: &Stack, id: &Value) -> Value {
    let reply = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{id}/events/poll"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn get_instance(s: &Stack, id: &Value) -> Value {
    let reply = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    reply.body
}

/// Every event of an instance: (objectType, objectId, eventType) → count.
async fn events(s: &Stack, id: &Value) -> BTreeMap<(String, String, String), usize> {
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
                    e["objectType"].as_str().unwrap().to_string(),
                    e["objectId"].as_str().unwrap().to_string(),
                    e["eventType"].as_str().unwrap().to_string(),
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

fn ids_of(counts: &BTreeMap<(String, String, String), usize>, object_type: &str) -> Vec<String> {
    let mut ids: Vec<String> = counts
        .keys()
        .filter(|(t, _, _)| t == object_type)
        .map(|(_, id, _)| id.clone())
        .collect();
    ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
    ids
}

// 1. Delivery ids are per hook and second, not per delivery.
#[tokio::test]
async fn different_deliveries_in_one_second_are_all_kept_and_a_resend_collapses() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s.create(webhook_body(&store)).await;
    let frozen = naive(Utc::now());
    store.freeze_clock(Some(frozen));
    let mut records = Vec::new();
    for id in 501..=503u64 {
        let payload =
            woocommerce::order_payload(id, "processing", &gmt(Utc::now()), &gmt(Utc::now()));
        records.extend(store.fire("order.updated", &payload).await);
    }
    assert_eq!(records.len(), 3);
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r.delivery.header("X-WC-Webhook-Delivery-ID").unwrap())
        .collect();
    assert!(
        ids.iter().all(|d| *d == ids[0]),
        "one hook, one second, one delivery id: {ids:?}"
    );
    for r in &records {
        assert_eq!(r.status, 200, "{}", r.body);
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body["accepted"], 1,
            "a different order is a different delivery: {body}"
        );
    }
    // The same bytes again (a proxy's re-send) collapse.
    let again = woocommerce::send(
        &records[0].delivery,
        &s.url(&format!("/events/woocommercerest/{}", instance["id"])),
    )
    .await;
    assert_eq!(again.0, 200);
    let body: Value = serde_json::from_str(&again.1).unwrap();
    assert_eq!(body["duplicates"], 1, "{body}");
    let counts = events(&s, &instance["id"]).await;
    assert_eq!(ids_of(&counts, "orders"), ["501", "502", "503"]);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

// 2. No retries, disabled hooks: health and reconciliation.
#[tokio::test]
async fn hooks_disabled_by_an_outage_are_reactivated_and_the_missed_changes_arrive_once() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s.create(webhook_body(&store)).await;
    let id = &instance["id"];
    assert_eq!(instance["eventReconciliationInterval"], 60);
    assert_eq!(store.registered().len(), 16);

    // One change delivered by webhook, and found again by reconciliation.
    let t0 = Utc::now();
    store.upsert("orders", 700, naive(t0), naive(t0));
    let payload = woocommerce::order_payload(700, "processing", &gmt(t0), &gmt(t0));
    let fired = store.fire("order.created", &payload).await;
    assert_eq!(fired[0].status, 200, "{}", fired[0].body);

    // Our endpoint fails (a broken deploy, an outage): WooCommerce does not
    // retry, and after more than 5 failures in a row it disables each hook.
    for hook in store.registered() {
        store.set_delivery_url(hook.id, "http://127.0.0.1:9/unreachable");
    }
    let lost: Vec<u64> = (701..=707).collect();
    for oid in &lost {
        let t = Utc::now();
        store.upsert("orders", *oid, naive(t), naive(t));
        let p = woocommerce::order_payload(*oid, "processing", &gmt(t), &gmt(t));
        let out = store.fire("order.created", &p).await;
        assert_ne!(out[0].status, 200);
    }
    let hooks = store.registered();
    let disabled = hooks.iter().filter(|h| h.status == "disabled").count();
    assert!(
        disabled >= 1,
        "the order.created hook is disabled: {hooks:?}"
    );
    // The outage ends; the hooks stay disabled at the store.
    let url = s.url(&format!("/events/woocommercerest/{id}"));
    for hook in store.registered() {
        store.set_delivery_url(hook.id, &url);
    }

    // Reconciliation (poll now runs it) re-activates and delivers the rest.
    let report = poll_now(&s, id).await;
    assert_eq!(report["webhookHealth"]["reactivated"], disabled, "{report}");
    assert!(store.registered().iter().all(|h| h.status == "active"));
    let shown = get_instance(&s, id).await;
    assert_eq!(shown["webhookHealth"]["active"], 16, "{shown}");
    assert_eq!(shown["webhookHealth"]["registered"], 16);
    assert!(shown["webhookHealth"]["checkedAt"].is_string());

    let counts = events(&s, id).await;
    let mut expected: Vec<String> = vec!["700".into()];
    expected.extend(lost.iter().map(u64::to_string));
    assert_eq!(ids_of(&counts, "orders"), expected, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "700 came by webhook and is not delivered again: {counts:?}"
    );

    // Deliveries work again, and a second reconciliation adds nothing.
    let t = Utc::now();
    store.upsert("orders", 708, naive(t), naive(t));
    let p = woocommerce::order_payload(708, "processing", &gmt(t), &gmt(t));
    assert_eq!(store.fire("order.created", &p).await[0].status, 200);
    poll_now(&s, id).await;
    let counts = events(&s, id).await;
    assert_eq!(counts.len(), 9);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
async fn missing_hooks_are_created_again() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s.create(webhook_body(&store)).await;
    let gone: Vec<u64> = store.registered().iter().take(3).map(|h| h.id).collect();
    for id in &gone {
        assert!(store.remove_hook(*id));
    }
    let report = poll_now(&s, &instance["id"]).await;
    assert_eq!(report["webhookHealth"]["recreated"], 3, "{report}");
    let hooks = store.registered();
    assert_eq!(hooks.len(), 16);
    let mut topics: Vec<&str> = hooks.iter().map(|h| h.topic.as_str()).collect();
    topics.sort();
    topics.dedup();
    assert_eq!(topics.len(), 16, "every topic once");
    // The instance now lists the new ids: deleting it removes every hook.
    let reply = call(
        &s.app,
        "DELETE",
        &format!("{INSTANCES}/{}", instance["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(store.registered().is_empty(), "{:?}", store.registered());
}

// 3. Site-local dates: the seed bodies on stores west and east of UTC.
async fn seed_body_delivers_every_change_once(seed: &str, zone: &str) {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    store.set_timezone(zone);
    let mut body = seeds::load(seed);
    let cfg = body["configuration"].as_object_mut().unwrap();
    cfg.insert("store.url".into(), json!(store.base_url));
    cfg.insert("oauth.api.key".into(), json!(KEY));
    cfg.insert("oauth.api.secret".into(), json!(SECRET));
    cfg.insert("event.notification.signature.key".into(), json!("sig-key"));
    cfg.insert("event.poller.refresh_interval".into(), json!("15"));
    cfg.insert(
        "event.notification.callback.url".into(),
        json!("https://mycoolapp.com/e"),
    );
    body["name"] = json!("seed");
    body["tags"] = json!(["seed"]);
    let instance = s.create(body).await;
    let t = Utc::now() + Duration::seconds(1);
    for id in 1..=3u64 {
        store.upsert("customers", id, naive(t), naive(t - Duration::days(30)));
        store.upsert("orders", id, naive(t), naive(t - Duration::days(1)));
    }
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    let report = poll_now(&s, &instance["id"]).await;
    assert_eq!(report["outcome"], "Completed", "{report}");
    let counts = events(&s, &instance["id"]).await;
    // The seed names the customers resource `contacts`.
    assert_eq!(
        ids_of(&counts, "contacts"),
        ["1", "2", "3"],
        "{zone}: {counts:?}"
    );
    assert_eq!(
        ids_of(&counts, "orders"),
        ["1", "2", "3"],
        "{zone}: {counts:?}"
    );
    assert!(counts.values().all(|&n| n == 1));
    // Nothing again on the next poll.
    let again = poll_now(&s, &instance["id"]).await;
    assert_eq!(again["notifications"], 0, "{again}");
}

#[tokio::test]
async fn the_open_connectors_seed_polls_a_store_west_of_utc() {
    seed_body_delivers_every_change_once(
        "000_openconnectors_woocommerce_1.json",
        "America/New_York",
    )
    .await;
}

#[tokio::test]
async fn the_cloud_elements_seed_polls_a_store_east_of_utc() {
    seed_body_delivers_every_change_once("001_cloudelements_woocommerce_1.json", "Europe/Athens")
        .await;
}

// 4. Authentication by scheme; the header-stripping host.
#[tokio::test]
async fn plain_http_stores_are_polled_with_oauth1_signatures() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s
        .create(polling_body(
            &store,
            json!({"orders": resource("/hubs/ecommerce/orders")}),
        ))
        .await;
    let t = Utc::now();
    store.upsert("orders", 1, naive(t), naive(t));
    let report = poll_now(&s, &instance["id"]).await;
    assert_eq!(report["outcome"], "Completed", "{report}");
    assert_eq!(report["changes"], 1);
    let log = store.auth_log();
    assert!(
        !log.is_empty() && log.iter().all(|m| *m == "oauth1"),
        "{log:?}"
    );
}

#[tokio::test]
async fn keys_move_to_the_query_when_the_host_strips_authorization() {
    let store = woocommerce::start_store(KEY, SECRET).await;
    store.set_https(true);
    store.set_strip_authorization(true);
    let client = reqwest::Client::new();
    let url = url::Url::parse(&store.catalog_url("orders")).unwrap();
    let auth = shared::request_auth::RequestAuth::WooCommerceKeys {
        key: KEY.into(),
        secret: SECRET.into(),
    };
    let resp = shared::request_auth::send(&client, reqwest::Method::GET, &url, None, &auth)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Remembered: the next call goes to the query at once.
    let resp = shared::request_auth::send(&client, reqwest::Method::GET, &url, None, &auth)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(store.auth_log(), ["query", "query"]);
    assert!(matches!(
        shared::request_auth::RequestAuth::woocommerce(
            "https://shop.example",
            "k".into(),
            "s".into()
        ),
        shared::request_auth::RequestAuth::WooCommerceKeys { .. }
    ));
    assert!(matches!(
        shared::request_auth::RequestAuth::woocommerce(
            "http://shop.example",
            "k".into(),
            "s".into()
        ),
        shared::request_auth::RequestAuth::OAuth1 { .. }
    ));
}

// 5. Only WooCommerce's own auth errors invalidate an instance.
#[tokio::test]
async fn a_firewall_page_is_transient_and_a_bad_secret_invalidates() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s
        .create(polling_body(
            &store,
            json!({"orders": resource("/hubs/ecommerce/orders")}),
        ))
        .await;
    let id = &instance["id"];
    store.fail_next_html(403, 1);
    let report = poll_now(&s, id).await;
    assert!(
        report["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Incomplete"),
        "{report}"
    );
    assert_eq!(get_instance(&s, id).await["valid"], true);
    store.fail_next_html(503, 1);
    poll_now(&s, id).await;
    assert_eq!(get_instance(&s, id).await["valid"], true);

    let other = woocommerce::start_store(KEY, "cs_rotated").await;
    let patched = call(
        &s.app,
        "PATCH",
        &format!("{INSTANCES}/{id}"),
        Some(&s.auth),
        Some(
            &json!({"configuration": {"store.url": other.base_url, "oauth.api.secret": SECRET}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let report = poll_now(&s, id).await;
    assert!(
        report["outcome"].as_str().unwrap().starts_with("Invalid"),
        "{report}"
    );
    let shown = get_instance(&s, id).await;
    assert_eq!(shown["valid"], false);
    assert!(
        shown["invalidReason"]
            .as_str()
            .unwrap()
            .contains("woocommerce_rest_authentication_error"),
        "{shown}"
    );
}

// 6. Short pages do not end a window.
#[tokio::test]
async fn a_short_page_with_a_next_link_is_not_the_end() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s
        .create(polling_body(
            &store,
            json!({"orders": resource("/hubs/ecommerce/orders")}),
        ))
        .await;
    let base = Utc::now() + Duration::seconds(1);
    for id in 1..=150u64 {
        store.upsert("orders", id, naive(base), naive(base));
    }
    // Objects the key may not read are dropped from the page, not the query.
    for id in [3u64, 17, 40] {
        store.hide_from_api("orders", id);
    }
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    let report = poll_now(&s, &instance["id"]).await;
    assert_eq!(report["outcome"], "Completed", "{report}");
    let counts = events(&s, &instance["id"]).await;
    assert_eq!(counts.len(), 147, "every readable order: {}", counts.len());
}

// 7. Before 5.8 `modified_after` is ignored.
#[tokio::test]
async fn a_store_older_than_5_8_is_reported_not_paged_forever() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    store.set_version("5.7.2");
    let old = Utc::now() - Duration::days(400);
    for id in 1..=5u64 {
        store.upsert("orders", id, naive(old), naive(old));
    }
    let instance = s
        .create(polling_body(
            &store,
            json!({"orders": resource("/hubs/ecommerce/orders")}),
        ))
        .await;
    let report = poll_now(&s, &instance["id"]).await;
    assert!(
        report["outcome"].as_str().unwrap().starts_with("Invalid"),
        "{report}"
    );
    assert_eq!(report["changes"], 0, "{report}");
    let shown = get_instance(&s, &instance["id"]).await;
    assert_eq!(shown["valid"], false);
    assert!(
        shown["invalidReason"].as_str().unwrap().contains("5.8"),
        "{shown}"
    );
}

// 8. Slow, synchronous creates.
#[tokio::test]
async fn sixteen_slow_creates_finish_well_inside_the_gateway_timeout() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    store.set_create_latency(StdDuration::from_millis(1500));
    let started = Instant::now();
    let instance = s.create(webhook_body(&store)).await;
    let took = started.elapsed();
    assert_eq!(store.registered().len(), 16);
    assert!(
        took < StdDuration::from_secs(12),
        "16 creates of 1.5 s each, a few at a time: {took:?}"
    );
    assert!(instance["id"].is_u64());
}

// 9. The trash.
#[tokio::test]
async fn trashed_orders_and_products_are_deleted_events() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s
        .create(polling_body(
            &store,
            json!({
            "orders": resource("/hubs/ecommerce/orders"),
            "products": resource("/hubs/ecommerce/products")}),
        ))
        .await;
    let t = Utc::now() + Duration::seconds(1);
    store.upsert("orders", 10, naive(t), naive(t - Duration::days(3)));
    store.upsert("products", 20, naive(t), naive(t - Duration::days(3)));
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    poll_now(&s, &instance["id"]).await;
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    store.delete("orders", 10);
    store.delete("products", 20);
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    let report = poll_now(&s, &instance["id"]).await;
    assert_eq!(report["outcome"], "Completed", "{report}");
    let counts = events(&s, &instance["id"]).await;
    for (t, id) in [("orders", "10"), ("products", "20")] {
        assert_eq!(
            counts.get(&(t.into(), id.into(), "UPDATED".into())),
            Some(&1),
            "{counts:?}"
        );
        assert_eq!(
            counts.get(&(t.into(), id.into(), "DELETED".into())),
            Some(&1),
            "{counts:?}"
        );
    }
}

// 10. Bodies over 256 KiB.
#[tokio::test]
async fn an_order_webhook_over_256_kib_is_stored_whole() {
    let s = served_stack().await;
    let store = woocommerce::start_store(KEY, SECRET).await;
    let instance = s.create(webhook_body(&store)).await;
    let payload = woocommerce::order_payload_with_line_items(900, 700);
    let fired = store.fire("order.updated", &payload).await;
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0].delivery.body.len() > 256 * 1024,
        "{}",
        fired[0].delivery.body.len()
    );
    assert_eq!(
        fired[0].status,
        200,
        "{}",
        &fired[0].body[..fired[0].body.len().min(300)]
    );
    let body: Value = serde_json::from_str(&fired[0].body).unwrap();
    let event_id = body["eventIds"][0].as_str().unwrap();
    let stored = s
        .app
        .store
        .get_notification(event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.notification.raw.as_bytes(),
        fired[0].delivery.body.as_slice()
    );
    let counts = events(&s, &instance["id"]).await;
    assert_eq!(ids_of(&counts, "orders"), ["900"]);
}
