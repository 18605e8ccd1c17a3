//! The webhooks API, the ping, deliveries and their failure accounting.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::*;
use super::{client, receiver, signed, signed_as, t};

#[tokio::test]
async fn store_simulator_round_trip() {
    let (hook_base, got, _stop) = receiver().await;
    let store = start_store("ck_test", "cs_test").await;
    let client = client();
    let url = store.webhooks_url();
    let body = json!({
        "name": "Order updated",
        "topic": "order.updated",
        "delivery_url": format!("{hook_base}/hooks/woo"),
        "secret": "my-webhook-secret"
    });
    let post = |secret: Option<&str>, body: &Value| {
        let target = match secret {
            Some(s) => signed_as("POST", &url, "ck_test", s),
            None => url.clone(),
        };
        client.post(target).json(body).send()
    };

    let r = post(None, &body).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_create");
    assert_eq!(v["data"]["status"], 401);

    let r = post(Some("wrong"), &body).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_authentication_error");
    assert_eq!(
        v["message"],
        "Invalid signature - provided signature does not match."
    );

    let mut bad = body.clone();
    bad["topic"] = json!("order.exploded");
    let r = post(Some("cs_test"), &bad).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_shop_webhook_invalid_topic");

    let r = post(Some("cs_test"), &body).await.unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let raw = r.text().await.unwrap();
    assert!(
        raw.contains(r#"http:\/\/127.0.0.1"#),
        "WP escapes slashes: {raw}"
    );
    let created: Value = serde_json::from_str(&raw).unwrap();
    let id = created["id"].as_u64().unwrap();
    assert_eq!(location, format!("{url}/{id}"));
    assert_eq!(created["status"], "active");
    assert_eq!(created["resource"], "order");
    assert_eq!(created["event"], "updated");
    assert!(created.get("secret").is_none());
    // Site-local (New York) and GMT dates differ by 4 or 5 hours.
    let gmt = t(created["date_created_gmt"].as_str().unwrap());
    let local = t(created["date_created"].as_str().unwrap());
    assert!([4, 5].contains(&(gmt - local).num_hours()), "{created}");
    assert_eq!(
        store.registered(),
        vec![RegisteredWebhook {
            id,
            topic: "order.updated".into(),
            delivery_url: format!("{hook_base}/hooks/woo"),
            secret: "my-webhook-secret".into(),
            status: "active".into(),
            failure_count: 0,
            pending_delivery: false,
        }]
    );
    assert_eq!(store.hook(id), store.registered().pop());
    assert_eq!(store.hook(1), None);

    // The ping reached the receiver before the 201.
    assert_eq!(store.pings()[0].status, Some(200));
    {
        let got = got.lock().unwrap();
        let ping = &got[0];
        assert_eq!(ping.body, format!("webhook_id={id}").as_bytes());
        assert_eq!(
            ping.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(ping.header("user-agent"), Some(USER_AGENT));
        assert!(ping.header("x-wc-webhook-signature").is_none());
    }
    assert_eq!(store.delivery_state(id), Some((0, false)));

    let r = client
        .get(signed_as("GET", &url, "ck_test", "cs_test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-wp-total"], "1");
    let list: Value = r.json().await.unwrap();
    assert_eq!(list[0]["id"], id);

    let r = client
        .get(signed_as(
            "GET",
            &format!("{url}/999999"),
            "ck_test",
            "cs_test",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // An event delivery, signed over the exact PHP-encoded bytes.
    let payload = order_payload(
        727,
        "processing",
        "2017-03-22T19:28:02",
        "2017-03-22T19:28:08",
    );
    let fired = store.fire("order.updated", &payload).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].status, 200);
    {
        let got = got.lock().unwrap();
        let d = &got[1];
        assert_eq!(d.path, "/hooks/woo");
        assert_eq!(d.body, php_json_encode(&payload));
        assert_eq!(
            d.header("x-wc-webhook-signature").unwrap(),
            signature("my-webhook-secret", &d.body)
        );
        assert_eq!(d.header("x-wc-webhook-id"), Some(id.to_string().as_str()));
        assert_eq!(
            d.header("x-wc-webhook-source"),
            Some(store.source().as_str())
        );
    }

    // Injected failures, then normal service again.
    let before = store.requests();
    store.fail_next(503, 2);
    for _ in 0..2 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    let r = client
        .get(signed_as("GET", &url, "ck_test", "cs_test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(store.requests(), before + 3);

    // DELETE: trash unsupported, then force, then unknown.
    let del = |path: String| {
        client
            .delete(signed_as("DELETE", &path, "ck_test", "cs_test"))
            .send()
    };
    let r = del(format!("{url}/{id}")).await.unwrap();
    assert_eq!(r.status(), 501);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_trash_not_supported");
    let r = del(format!("{url}/{id}?force=true")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id);
    let r = del(format!("{url}/{id}?force=true")).await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_shop_webhook_invalid_id");
    assert!(store.registered().is_empty());
}

/// Creates a webhook through the API (signed with `ck`/`cs`); returns its id.
async fn create_hook(store: &WooStore, topic: &str, delivery_url: &str) -> u64 {
    let r = client()
        .post(signed("POST", &store.webhooks_url()))
        .json(&json!({"topic": topic, "delivery_url": delivery_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_u64().unwrap()
}

#[tokio::test]
async fn store_disables_after_the_seventh_failure_and_reactivation_keeps_the_count() {
    let (hook_base, _got, _stop) = receiver().await;
    let store = start_store("ck", "cs").await;
    store.set_ping(false);
    let id = create_hook(&store, "order.created", &format!("{hook_base}/fail")).await;
    let hook = store.hook(id).unwrap();
    assert_eq!(hook.secret.chars().count(), 50);
    assert!(hook.pending_delivery, "no ping, still pending");
    assert!(store.pings().is_empty());
    for n in 1..=6 {
        let fired = store.fire("order.created", &deleted_payload(1)).await;
        assert_eq!(fired[0].status, 500);
        assert_eq!(store.delivery_state(id).unwrap().0, n);
    }
    assert_eq!(store.hook(id).unwrap().status, "active");
    // The 7th failure is still sent, then the hook is disabled.
    assert_eq!(
        store.fire("order.created", &deleted_payload(1)).await.len(),
        1
    );
    assert_eq!(store.hook(id).unwrap().status, "disabled");
    assert_eq!(store.hook(id).unwrap().failure_count, 6);
    assert!(store
        .fire("order.created", &deleted_payload(1))
        .await
        .is_empty());

    // PUT status=active re-activates it but keeps failure_count (update_item
    // never resets it): one more failure disables it again.
    let r = client()
        .put(signed("PUT", &format!("{}/{id}", store.webhooks_url())))
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(store.hook(id).unwrap().status, "active");
    assert_eq!(store.hook(id).unwrap().failure_count, 6);
    store.fire("order.created", &deleted_payload(1)).await;
    assert_eq!(store.hook(id).unwrap().status, "disabled");

    // An invalid status is refused by the schema.
    let r = client()
        .post(signed("POST", &format!("{}/{id}", store.webhooks_url())))
        .json(&json!({"status": "enabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // `GET /webhooks?status=disabled` filters.
    let url = format!("{}?status=disabled", store.webhooks_url());
    let r = client().get(signed("GET", &url)).send().await.unwrap();
    assert_eq!(r.headers()["x-wp-total"], "1");
    let url = format!("{}?status=active", store.webhooks_url());
    let r = client().get(signed("GET", &url)).send().await.unwrap();
    assert_eq!(r.headers()["x-wp-total"], "0");
}

#[tokio::test]
async fn deliveries_in_one_second_share_the_delivery_id() {
    let (hook_base, got, _stop) = receiver().await;
    let store = start_store("ck", "cs").await;
    store.set_ping(false);
    let a = create_hook(&store, "order.updated", &format!("{hook_base}/a")).await;
    let b = create_hook(&store, "order.updated", &format!("{hook_base}/b")).await;
    store.freeze_clock(Some(t("2026-05-01T10:00:00")));
    let first = store.fire("order.updated", &deleted_payload(1)).await;
    let second = store.fire("order.updated", &deleted_payload(2)).await;
    let id_of = |r: &FireRecord| {
        r.delivery
            .header("X-WC-Webhook-Delivery-ID")
            .unwrap()
            .to_string()
    };
    let unix = t("2026-05-01T10:00:00").and_utc().timestamp();
    // Same webhook, same second: same id, although the bodies differ.
    assert_eq!(id_of(&first[0]), id_of(&second[0]));
    assert_eq!(id_of(&first[0]), delivery_id_at(a, unix));
    // Another webhook in that second: another id.
    assert_eq!(id_of(&first[1]), delivery_id_at(b, unix));
    assert_ne!(id_of(&first[0]), id_of(&first[1]));
    // The next second: a new id.
    store.freeze_clock(Some(t("2026-05-01T10:00:01")));
    let third = store.fire("order.updated", &deleted_payload(3)).await;
    assert_eq!(id_of(&third[0]), delivery_id_at(a, unix + 1));
    assert_eq!(got.lock().unwrap().len(), 6);
    assert_eq!(
        first[0].delivery.header("User-Agent"),
        Some("WooCommerce/9.8.1 Hookshot (WordPress/6.7.2)")
    );
}

#[tokio::test]
async fn batch_creates_updates_and_deletes() {
    let (hook_base, got, _stop) = receiver().await;
    let store = start_store("ck", "cs").await;
    let batch_url = format!("{}/batch", store.webhooks_url());
    let r = client()
        .post(signed("POST", &batch_url))
        .json(&json!({
            "create": [
                {"topic": "order.created", "delivery_url": format!("{hook_base}/1")},
                {"topic": "order.nope", "delivery_url": format!("{hook_base}/2")},
                {"topic": "product.updated", "delivery_url": format!("{hook_base}/3"), "status": "paused"}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "only `create`: {v}");
    let created = v["create"].as_array().unwrap();
    assert_eq!(created.len(), 3);
    assert_eq!(created[0]["topic"], "order.created");
    assert_eq!(created[1]["id"], 0);
    assert_eq!(
        created[1]["error"]["code"],
        "woocommerce_rest_shop_webhook_invalid_topic"
    );
    assert_eq!(created[1]["error"]["data"]["status"], 400);
    // `status` is ignored on create.
    assert_eq!(created[2]["status"], "active");
    // One synchronous ping per created hook.
    assert_eq!(store.pings().len(), 2);
    assert_eq!(got.lock().unwrap().len(), 2);
    let (a, b) = (
        created[0]["id"].as_u64().unwrap(),
        created[2]["id"].as_u64().unwrap(),
    );

    let r = client()
        .put(signed("PUT", &batch_url))
        .json(&json!({
            "update": [{"id": a, "status": "paused"}, {"id": 999, "status": "active"}],
            "delete": [b, 0, 12345]
        }))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["update"][0]["status"], "paused");
    assert_eq!(v["update"][1]["id"], 999);
    assert_eq!(
        v["update"][1]["error"]["code"],
        "woocommerce_rest_shop_webhook_invalid_id"
    );
    assert_eq!(v["delete"][0]["id"], b);
    assert_eq!(v["delete"][1]["error"]["data"]["status"], 404);
    assert_eq!(v["delete"].as_array().unwrap().len(), 2, "id 0 is skipped");
    assert_eq!(store.registered().len(), 1);
    assert_eq!(store.hook(a).unwrap().status, "paused");

    // More than 100 entries: 413, nothing done.
    let many: Vec<Value> = (0..101).map(|i| json!(i + 1)).collect();
    let r = client()
        .post(signed("POST", &batch_url))
        .json(&json!({ "delete": many }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_request_entity_too_large");
    assert_eq!(
        v["message"],
        "Unable to accept more than 100 items for this request."
    );
    assert_eq!(store.registered().len(), 1);

    // Anonymous: the batch permission error.
    let r = client()
        .post(&batch_url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_batch");
}

#[tokio::test]
async fn creates_are_slow_and_ping_first() {
    let (hook_base, got, _stop) = receiver().await;
    let store = start_store("ck", "cs").await;
    store.set_create_latency(Duration::from_millis(300));
    let started = Instant::now();
    create_hook(&store, "order.created", &format!("{hook_base}/x")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The ping had arrived before the answer.
    assert_eq!(got.lock().unwrap().len(), 1);
    // A batch of two creates waits twice.
    let started = Instant::now();
    let r = client()
        .post(signed("POST", &format!("{}/batch", store.webhooks_url())))
        .json(&json!({"create": [
            {"topic": "order.created", "delivery_url": format!("{hook_base}/y")},
            {"topic": "order.created", "delivery_url": format!("{hook_base}/z")}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn html_error_pages_instead_of_json() {
    let store = start_store("ck", "cs").await;
    store.fail_next_html(403, 1);
    let r = client()
        .get(signed("GET", &store.webhooks_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "text/html; charset=UTF-8");
    let text = r.text().await.unwrap();
    assert!(text.contains("Access denied"), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());

    store.fail_next_html(503, 2);
    for _ in 0..2 {
        let r = client()
            .get(store.catalog_url("orders"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "600");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Briefly unavailable for scheduled maintenance"));
    }
    store.fail_next_html(502, 1);
    let r = client()
        .get(store.catalog_url("orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));
    // Then WordPress answers again (JSON).
    let r = client()
        .get(store.catalog_url("orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
}

#[tokio::test]
async fn a_transport_error_is_a_failure_and_nothing_is_retried() {
    let store = start_store("ck", "cs").await;
    store.set_ping(false);
    // Nothing listens on port 9.
    let id = create_hook(&store, "coupon.updated", "http://127.0.0.1:9/hook").await;
    let fired = store.fire("coupon.updated", &deleted_payload(5)).await;
    assert_eq!(fired.len(), 1, "one attempt, no retry");
    assert_eq!(fired[0].status, 0);
    assert_eq!(store.hook(id).unwrap().failure_count, 1);
}
