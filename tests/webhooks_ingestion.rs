//! Webhook ingestion end to end: simulated stores sign and send real-shaped
//! payloads; the webhooks function verifies, normalizes and stores them in the
//! local DynamoDB server; the event log shows what was stored.

use ce_tests::vendors::{bigcommerce, ecwid, one, woocommerce};
use ce_tests::{call, ingest, new_account, served_stack, stack, test_settings, Reply, Stack};
use serde_json::{json, Value};

const INSTANCES: &str = "/elements/api-v2/instances";

async fn create(s: &Stack, body: Value) -> Value {
    s.create(body).await
}

async fn events_of(s: &Stack, instance_id: &Value) -> Vec<Value> {
    let reply = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{instance_id}/events?pageSize=200"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

fn instance_body(element: &str, configuration: Value) -> Value {
    let mut cfg = json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": "https://mycoolapp.com/events",
        "event.notification.signature.key": "callback-signing-key",
    });
    cfg.as_object_mut()
        .unwrap()
        .extend(configuration.as_object().unwrap().clone());
    json!({"element": {"key": element}, "name": format!("{element} test"), "configuration": cfg})
}

// ---------------------------------------------------------------- WooCommerce

struct WooSetup {
    s: Stack,
    store: woocommerce::WooStore,
    instance: Value,
}

async fn woo_setup() -> WooSetup {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_test_key", "cs_test_secret").await;
    let instance = create(
        &s,
        instance_body(
            "woocommercerest",
            json!({"store.url": store.base_url, "oauth.api.key": "ck_test_key",
                   "oauth.api.secret": "cs_test_secret", "event.vendor.type": "webhook"}),
        ),
    )
    .await;
    WooSetup { s, store, instance }
}

#[tokio::test]
async fn woocommerce_webhooks_are_registered_then_deliveries_become_events() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let webhook_url = instance["webhookUrl"]
        .as_str()
        .expect("webhook instances show their URL");
    assert_eq!(
        webhook_url,
        s.url(&format!("/events/woocommercerest/{}", instance["id"]))
    );
    assert!(instance["configuration"]
        .get("woocommerce.webhook.secret")
        .is_some_and(|v| v == "********"));

    let registered = store.registered();
    let mut topics: Vec<&str> = registered.iter().map(|h| h.topic.as_str()).collect();
    topics.sort();
    for topic in [
        "order.created",
        "order.updated",
        "order.deleted",
        "order.restored",
        "product.created",
        "customer.deleted",
        "coupon.updated",
        "coupon.restored",
    ] {
        assert!(
            topics.contains(&topic),
            "{topic} not registered: {topics:?}"
        );
    }
    assert!(registered
        .iter()
        .all(|h| h.delivery_url == webhook_url && h.status == "active"));
    let secrets: std::collections::HashSet<&str> =
        registered.iter().map(|h| h.secret.as_str()).collect();
    assert_eq!(secrets.len(), 1, "one generated secret for all topics");
    assert!(secrets.iter().next().unwrap().len() >= 32);
    // WooCommerce pings each new webhook; the ping is answered 200.
    let pings = store.pings();
    assert_eq!(pings.len(), registered.len());
    assert!(pings.iter().all(|p| p.status == Some(200)), "{pings:?}");

    // The store fires an order update over HTTP to the registered URL.
    let order = woocommerce::order_payload(
        727,
        "processing",
        "2026-11-20T09:00:00",
        "2026-11-23T10:15:30",
    );
    let fired = store.fire("order.updated", &order).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].status, 200, "{}", fired[0].body);

    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["status"], "RECEIVED", "Cloud Elements' word");
    assert_eq!(e["deliveryStatus"], "pending");
    assert_eq!(e["source"], "webhook");
    assert_eq!(e["events"][0]["objectType"], "orders");
    assert_eq!(e["events"][0]["objectId"], "727");
    assert_eq!(e["events"][0]["eventType"], "UPDATED");
    assert_eq!(e["events"][0]["eventDate"], "2026-11-23T10:15:30.000Z");
    assert_eq!(e["events"][0]["vendorEventType"], "order.updated");
    // The raw vendor body is kept byte for byte (PHP's `\/` escapes included).
    let stored = s
        .app
        .store
        .get_notification(e["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.notification.raw.as_bytes(),
        fired[0].delivery.body.as_slice()
    );
    assert!(
        stored.notification.raw.contains("\\/"),
        "the PHP-escaped slashes are kept"
    );

    // The single-event read answers the same.
    let one = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/events/{}", e["id"].as_str().unwrap()),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!((one.status, one.body["id"].clone()), (200, e["id"].clone()));
}

#[tokio::test]
async fn woocommerce_topics_map_to_object_and_event_types() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let cases = [
        (
            "order.created",
            woocommerce::order_payload(1, "pending", "2026-11-23T10:00:00", "2026-11-23T10:00:00"),
            "orders",
            "CREATED",
        ),
        (
            "order.deleted",
            woocommerce::deleted_payload(2),
            "orders",
            "DELETED",
        ),
        (
            "order.restored",
            woocommerce::order_payload(3, "pending", "2026-11-20T10:00:00", "2026-11-23T10:00:00"),
            "orders",
            "UPDATED",
        ),
        (
            "product.updated",
            woocommerce::product_payload(4, "Mug", "2026-11-20T10:00:00", "2026-11-23T10:00:00"),
            "products",
            "UPDATED",
        ),
        (
            "customer.created",
            woocommerce::customer_payload(
                5,
                "zoe@example.com",
                "2026-11-23T10:00:00",
                "2026-11-23T10:00:00",
            ),
            "customers",
            "CREATED",
        ),
        (
            "coupon.updated",
            woocommerce::coupon_payload(6, "WINTER", "2026-11-20T10:00:00", "2026-11-23T10:00:00"),
            "discounts",
            "UPDATED",
        ),
    ];
    for (topic, payload, _, _) in &cases {
        let fired = store.fire(topic, payload).await;
        assert_eq!(fired.len(), 1, "{topic}");
        assert_eq!(fired[0].status, 200, "{topic}: {}", fired[0].body);
    }
    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), cases.len());
    for (topic, payload, object_type, event_type) in cases {
        let id = payload["id"].to_string();
        let found = events
            .iter()
            .find(|e| e["events"][0]["objectId"] == id.as_str())
            .unwrap_or_else(|| panic!("{topic}: no event for object {id}"));
        assert_eq!(found["events"][0]["objectType"], object_type, "{topic}");
        assert_eq!(found["events"][0]["eventType"], event_type, "{topic}");
    }
}

#[tokio::test]
async fn a_replayed_woocommerce_delivery_yields_one_notification() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let hook = store
        .registered()
        .into_iter()
        .find(|h| h.topic == "order.updated")
        .unwrap();
    let order =
        woocommerce::order_payload(9, "completed", "2026-11-20T10:00:00", "2026-11-23T11:00:00");
    let delivery = woocommerce::delivery(
        "order.updated",
        &store.source(),
        hook.id,
        "d-e1f2",
        &hook.secret,
        &order,
    );
    let first = woocommerce::send(&delivery, &hook.delivery_url).await;
    let second = woocommerce::send(&delivery, &hook.delivery_url).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    let second_body: Value = serde_json::from_str(&second.1).unwrap();
    assert_eq!(second_body["duplicates"], 1);
    assert_eq!(events_of(&s, &instance["id"]).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_woocommerce_signature_is_401_and_stores_nothing() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let hook = store.registered().into_iter().next().unwrap();
    let order = woocommerce::order_payload(
        10,
        "completed",
        "2026-11-20T10:00:00",
        "2026-11-23T11:00:00",
    );
    let forged = woocommerce::delivery(
        "order.updated",
        &store.source(),
        hook.id,
        "d-1",
        "not-the-secret",
        &order,
    );
    assert_eq!(woocommerce::send(&forged, &hook.delivery_url).await.0, 401);
    let mut unsigned = woocommerce::delivery(
        "order.updated",
        &store.source(),
        hook.id,
        "d-2",
        &hook.secret,
        &order,
    );
    unsigned
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("x-wc-webhook-signature"));
    assert_eq!(
        woocommerce::send(&unsigned, &hook.delivery_url).await.0,
        401
    );
    // A body changed after signing fails too.
    let mut tampered = woocommerce::delivery(
        "order.updated",
        &store.source(),
        hook.id,
        "d-3",
        &hook.secret,
        &order,
    );
    tampered.body = woocommerce::php_json_encode(&woocommerce::order_payload(
        11,
        "refunded",
        "2026-11-20T10:00:00",
        "2026-11-23T11:00:00",
    ));
    assert_eq!(
        woocommerce::send(&tampered, &hook.delivery_url).await.0,
        401
    );
    assert!(events_of(&s, &instance["id"]).await.is_empty());
}

#[tokio::test]
async fn the_woocommerce_ping_is_answered_200_with_no_event() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let ping = woocommerce::ping(142);
    let (status, _) = woocommerce::send(&ping, instance["webhookUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // Also at the element URL, where no instance can be found from a ping.
    let (status, _) = woocommerce::send(&ping, &s.url("/events/woocommercerest")).await;
    assert_eq!(status, 200);
    assert!(events_of(&s, &instance["id"]).await.is_empty());
    drop(store);
}

#[tokio::test]
async fn woocommerce_deliveries_without_an_instance_id_are_routed_by_source() {
    let WooSetup { s, store, instance } = woo_setup().await;
    let hook = store
        .registered()
        .into_iter()
        .find(|h| h.topic == "product.created")
        .unwrap();
    let product =
        woocommerce::product_payload(31, "Tee", "2026-11-23T10:00:00", "2026-11-23T10:00:00");
    let delivery = woocommerce::delivery(
        "product.created",
        &store.source(),
        hook.id,
        "d-31",
        &hook.secret,
        &product,
    );
    let (status, body) = woocommerce::send(&delivery, &s.url("/events/woocommercerest")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(events_of(&s, &instance["id"]).await.len(), 1);
    // A source no instance is connected to is 404.
    let stranger = woocommerce::delivery(
        "product.created",
        "https://other-shop.example/",
        hook.id,
        "d-32",
        &hook.secret,
        &product,
    );
    assert_eq!(
        woocommerce::send(&stranger, &s.url("/events/woocommercerest"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn deleting_a_woocommerce_instance_removes_its_webhooks_at_the_store() {
    let WooSetup { s, store, instance } = woo_setup().await;
    assert_eq!(store.registered().len(), 16);
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

#[tokio::test]
async fn a_store_refusing_registration_fails_creation_with_nothing_left_behind() {
    let s = served_stack().await;
    let store = woocommerce::start_store("ck_right", "cs_right").await;
    let body = instance_body(
        "woocommercerest",
        json!({"store.url": store.base_url, "oauth.api.key": "ck_wrong", "oauth.api.secret": "cs_wrong",
               "event.vendor.type": "webhook"}),
    );
    let reply = call(
        &s.app,
        "POST",
        INSTANCES,
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["field"], "configuration.oauth.api.key");
    assert!(
        reply.body["message"].as_str().unwrap().contains("401"),
        "{}",
        reply.body
    );
    assert!(
        !reply.body.to_string().contains("cs_wrong"),
        "a secret was echoed"
    );
    let listed = call(&s.app, "GET", INSTANCES, Some(&s.auth), None).await;
    assert_eq!(listed.body, json!([]), "no instance was stored");
    assert!(store.registered().is_empty());

    // A store failing mid-way: what was created is removed again.
    let body = instance_body(
        "woocommercerest",
        json!({"store.url": store.base_url, "oauth.api.key": "ck_right", "oauth.api.secret": "cs_right",
               "event.vendor.type": "webhook"}),
    );
    store.fail_next(500, 1);
    let reply = call(
        &s.app,
        "POST",
        INSTANCES,
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(store.registered().is_empty());
}

// ---------------------------------------------------------------------- Ecwid

async fn ecwid_instance(s: &Stack, store_id: u64, client_secret: Option<&str>) -> Value {
    let mut cfg = json!({"ecwid.store.id": store_id.to_string(), "ecwid.order.key": "secret_order",
                         "ecwid.product.key": "secret_product"});
    if let Some(secret) = client_secret {
        cfg["ecwid.client.secret"] = json!(secret);
    }
    create(s, instance_body("ecwid", cfg)).await
}

#[tokio::test]
async fn ecwid_webhooks_are_routed_by_store_verified_and_deduped_on_event_id() {
    let s = stack().await;
    let instance = ecwid_instance(&s, 1003, Some("app-client-secret")).await;
    assert!(instance["webhookUrl"]
        .as_str()
        .unwrap()
        .ends_with("/elements/api-v2/events/ecwid"));

    let body = ecwid::event(
        "order.updated",
        1003,
        103838293,
        "80aece08-40e8-4145-8764-6c2f0d3867a5",
        1469429912,
        ecwid::order_updated_data("XJ12H"),
    );
    let delivery = ecwid::delivery(&body, "app-client-secret");
    let first = ingest(
        &s.webhooks,
        "/events/ecwid",
        &delivery.headers,
        &delivery.body,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = ingest(
        &s.webhooks,
        "/events/ecwid",
        &delivery.headers,
        &delivery.body,
    )
    .await;
    assert_eq!(
        (again.status, again.body["duplicates"].clone()),
        (200, json!(1))
    );

    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), 1);
    let e = &events[0]["events"][0];
    assert_eq!(e["objectType"], "orders");
    assert_eq!(e["objectId"], "XJ12H", "orders are known by data.orderId");
    assert_eq!(e["eventType"], "UPDATED");
    assert_eq!(e["eventDate"], "2016-07-25T06:58:32.000Z");

    // A product event takes entityId.
    let product = ecwid::docs_product_updated_example();
    let mut product = product.clone();
    product["storeId"] = json!(1003);
    let delivery = ecwid::delivery(&product, "app-client-secret");
    assert_eq!(
        ingest(
            &s.webhooks,
            "/events/ecwid",
            &delivery.headers,
            &delivery.body
        )
        .await
        .status,
        200
    );
    let events = events_of(&s, &instance["id"]).await;
    let product_event = events
        .iter()
        .find(|e| e["events"][0]["objectType"] == "products")
        .expect("product event");
    assert_eq!(
        product_event["events"][0]["objectId"],
        product["entityId"].to_string()
    );
}

#[tokio::test]
async fn ecwid_signatures_and_stores_are_checked() {
    let s = stack().await;
    let instance = ecwid_instance(&s, 2004, Some("right-secret")).await;
    let body = ecwid::event(
        "order.created",
        2004,
        1,
        "e-1",
        1700000000,
        ecwid::order_created_data("A1"),
    );
    let forged = ecwid::delivery(&body, "wrong-secret");
    assert_eq!(
        ingest(&s.webhooks, "/events/ecwid", &forged.headers, &forged.body)
            .await
            .status,
        401
    );
    let unknown = ecwid::event(
        "order.created",
        9999,
        1,
        "e-2",
        1700000000,
        ecwid::order_created_data("A1"),
    );
    let delivery = ecwid::delivery(&unknown, "right-secret");
    let reply = ingest(
        &s.webhooks,
        "/events/ecwid",
        &delivery.headers,
        &delivery.body,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["dropped"].clone()),
        (200, json!(1)),
        "a store with no instance here is acknowledged, not refused"
    );
    assert!(events_of(&s, &instance["id"]).await.is_empty());

    // The docs' body has no client secret: nothing it receives can be verified.
    let unverifiable = ecwid_instance(&s, 3005, None).await;
    let body = ecwid::event(
        "order.created",
        3005,
        1,
        "e-3",
        1700000000,
        ecwid::order_created_data("A1"),
    );
    let delivery = ecwid::delivery(&body, "anything");
    assert_eq!(
        ingest(
            &s.webhooks,
            "/events/ecwid",
            &delivery.headers,
            &delivery.body
        )
        .await
        .status,
        401
    );
    assert!(events_of(&s, &unverifiable["id"]).await.is_empty());
}

#[tokio::test]
async fn two_organizations_on_one_ecwid_store_each_get_their_event() {
    let s = stack().await;
    let first = ecwid_instance(&s, 4006, Some("shared-app-secret")).await;
    let (other_auth, _) = new_account(&s.store).await;
    let other_body = instance_body(
        "ecwid",
        json!({"ecwid.store.id": "4006", "ecwid.order.key": "k",
                                                   "ecwid.client.secret": "shared-app-secret"}),
    );
    let reply = call(
        &s.app,
        "POST",
        INSTANCES,
        Some(&other_auth),
        Some(&other_body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200);
    let second = reply.body;
    let body = ecwid::event(
        "order.created",
        4006,
        1,
        "e-4",
        1700000000,
        ecwid::order_created_data("B2"),
    );
    let delivery = ecwid::delivery(&body, "shared-app-secret");
    let reply = ingest(
        &s.webhooks,
        "/events/ecwid",
        &delivery.headers,
        &delivery.body,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["accepted"].clone()),
        (200, json!(2))
    );
    assert_eq!(events_of(&s, &first["id"]).await.len(), 1);
    let theirs = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}/events", second["id"]),
        Some(&other_auth),
        None,
    )
    .await;
    assert_eq!(theirs.body.as_array().unwrap().len(), 1);
    // Neither organization sees the other's events.
    let event_id = theirs.body[0]["id"].as_str().unwrap();
    assert_eq!(
        call(
            &s.app,
            "GET",
            &format!("{INSTANCES}/events/{event_id}"),
            Some(&s.auth),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &s.app,
            "GET",
            &format!("{INSTANCES}/{}/events", second["id"]),
            Some(&s.auth),
            None
        )
        .await
        .status,
        404
    );
}

// ---------------------------------------------------------------- BigCommerce

#[tokio::test]
async fn bigcommerce_webhooks_verify_by_custom_header_and_standard_webhooks() {
    let s = stack().await;
    let signing_secret = b"bc-app-client-secret";
    let instance = create(
        &s,
        instance_body(
            "bigcommerce",
            json!({"username": "admin", "password": "token", "store.url": "https://store-abc.mybigcommerce.com/api/v2",
                   "event.vendor.type": "webhook",
                   "bigcommerce.webhook.header.name": "X-Shared-Secret",
                   "bigcommerce.webhook.header.secret": "header-secret-value",
                   "bigcommerce.webhook.signing.secret": bigcommerce::whsec(signing_secret)}),
        ),
    )
    .await;
    let path = format!("/events/bigcommerce/{}", instance["id"]);
    let now = chrono::Utc::now().timestamp();
    let body = bigcommerce::webhook(
        "store/order/created",
        "abc123",
        250,
        "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
        now,
    );
    let good = bigcommerce::delivery(
        &body,
        &[("X-Shared-Secret", "header-secret-value")],
        Some(signing_secret),
        "msg_1",
        now,
    );
    let reply = ingest(&s.webhooks, &path, &good.headers, &good.body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // BigCommerce's retry is the same Standard Webhooks message: the same
    // `webhook-id`, a later `webhook-timestamp`. One notification.
    let retry = bigcommerce::delivery(
        &body,
        &[("X-Shared-Secret", "header-secret-value")],
        Some(signing_secret),
        "msg_1",
        now + 60,
    );
    assert_eq!(
        ingest(&s.webhooks, &path, &retry.headers, &retry.body)
            .await
            .body["duplicates"],
        1
    );

    let wrong_header = bigcommerce::delivery(
        &body,
        &[("X-Shared-Secret", "guess")],
        Some(signing_secret),
        "msg_3",
        now,
    );
    assert_eq!(
        ingest(
            &s.webhooks,
            &path,
            &wrong_header.headers,
            &wrong_header.body
        )
        .await
        .status,
        401
    );
    let wrong_signature = bigcommerce::delivery(
        &body,
        &[("X-Shared-Secret", "header-secret-value")],
        Some(b"other"),
        "msg_4",
        now,
    );
    assert_eq!(
        ingest(
            &s.webhooks,
            &path,
            &wrong_signature.headers,
            &wrong_signature.body
        )
        .await
        .status,
        401
    );
    let stale = bigcommerce::delivery(
        &body,
        &[("X-Shared-Secret", "header-secret-value")],
        Some(signing_secret),
        "msg_5",
        now - 3600,
    );
    assert_eq!(
        ingest(&s.webhooks, &path, &stale.headers, &stale.body)
            .await
            .status,
        401,
        "replayed an hour later"
    );

    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), 1);
    let e = &events[0]["events"][0];
    assert_eq!(
        (
            e["objectType"].clone(),
            e["objectId"].clone(),
            e["eventType"].clone()
        ),
        (json!("orders"), json!("250"), json!("CREATED"))
    );
    assert_eq!(e["vendorEventType"], "store/order/created");
    // The base64 instance id Cloud Elements used reaches the same instance.
    let b64 = webhooks::base64_instance_id(instance["id"].as_u64().unwrap());
    let body2 = bigcommerce::webhook(
        "store/product/updated",
        "abc123",
        77,
        "ffff0976e06b67aaf671e73f49dcb79230ebf9d0",
        now,
    );
    let d = bigcommerce::delivery(
        &body2,
        &[("X-Shared-Secret", "header-secret-value")],
        Some(signing_secret),
        "msg_6",
        now,
    );
    assert_eq!(
        ingest(
            &s.webhooks,
            &format!("/events/bigcommerce/{b64}"),
            &d.headers,
            &d.body
        )
        .await
        .status,
        200
    );
    assert_eq!(events_of(&s, &instance["id"]).await.len(), 2);
}

// ------------------------------------------------------------------------ ONe

async fn one_instance(s: &Stack, enabled: bool) -> Value {
    let mut body = instance_body(
        "one",
        json!({"one.webhook.username": "admin", "one.webhook.password": "s3cret-pass"}),
    );
    body["configuration"]["event.notification.enabled"] = json!(enabled);
    create(s, body).await
}

#[tokio::test]
async fn one_webhooks_authenticate_with_basic_and_map_each_event() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    let ts = "2026-11-23T10:15:30Z";
    for body in [
        one::with_timestamp(one::cart_opened("cust-1", "cart-9"), ts),
        one::with_timestamp(one::client_logged("cust-1"), ts),
        one::with_timestamp(one::offer_opened("cust-1", "offer-5"), ts),
    ] {
        let d = one::delivery(&body, "admin", "s3cret-pass");
        let reply = ingest(&s.webhooks, &path, &d.headers, &d.body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
    }
    let test = one::delivery(&one::test_webhook(ts), "admin", "s3cret-pass");
    let reply = ingest(&s.webhooks, &path, &test.headers, &test.body).await;
    assert_eq!(
        (reply.status, reply.body["accepted"].clone()),
        (200, json!(0))
    );
    for (user, pass) in [("admin", "wrong"), ("root", "s3cret-pass"), ("", "")] {
        let d = one::delivery(
            &one::with_timestamp(one::client_logged("cust-2"), ts),
            user,
            pass,
        );
        assert_eq!(
            ingest(&s.webhooks, &path, &d.headers, &d.body).await.status,
            401,
            "{user}:{pass}"
        );
    }
    let mut no_auth = one::delivery(
        &one::with_timestamp(one::client_logged("cust-3"), ts),
        "admin",
        "s3cret-pass",
    );
    no_auth
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    assert_eq!(
        ingest(&s.webhooks, &path, &no_auth.headers, &no_auth.body)
            .await
            .status,
        401
    );

    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), 3);
    let by_vendor = |name: &str| {
        events
            .iter()
            .map(|e| &e["events"][0])
            .find(|e| e["vendorEventType"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let cart = by_vendor("Cart opened");
    assert_eq!(
        (cart["objectType"].clone(), cart["objectId"].clone()),
        (json!("carts"), json!("cart-9"))
    );
    let login = by_vendor("Client logged");
    assert_eq!(
        (login["objectType"].clone(), login["objectId"].clone()),
        (json!("customers"), json!("cust-1"))
    );
    let offer = by_vendor("OfferOpened BO");
    assert_eq!(
        (offer["objectType"].clone(), offer["objectId"].clone()),
        (json!("offers"), json!("offer-5"))
    );
    assert_eq!(cart["eventType"], "UNKNOWN");
    assert_eq!(cart["eventDate"], "2026-11-23T10:15:30.000Z");
}

#[tokio::test]
async fn with_events_disabled_a_webhook_is_acknowledged_and_dropped() {
    let s = stack().await;
    let instance = one_instance(&s, false).await;
    let d = one::delivery(
        &one::with_timestamp(one::client_logged("cust-1"), "2026-11-23T10:15:30Z"),
        "admin",
        "s3cret-pass",
    );
    let reply = ingest(
        &s.webhooks,
        &format!("/events/one/{}", instance["id"]),
        &d.headers,
        &d.body,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body["dropped"].clone()),
        (200, json!(1))
    );
    assert!(events_of(&s, &instance["id"]).await.is_empty());
}

// ---------------------------------------------------------- Rules for all

#[tokio::test]
async fn bad_requests_get_clear_4xx_answers() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    let auth = vec![
        (
            "Authorization".to_string(),
            one::basic_auth("admin", "s3cret-pass"),
        ),
        ("Content-Type".into(), "application/json".into()),
    ];
    let check = |reply: Reply, status: u16, what: &str| {
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert!(
            reply.body["message"].as_str().is_some() && reply.body["requestId"].as_str().is_some(),
            "{what}"
        );
    };
    // ONe takes every verified body (see one_bodies_of_unknown_shape_…);
    // BigCommerce, which retries, gets a 400 for what it cannot mean.
    let big = create(
        &s,
        instance_body(
            "bigcommerce",
            json!({"username": "admin", "password": "token", "store.url": "https://store-abc.mybigcommerce.com/api/v2",
                   "event.vendor.type": "webhook", "bigcommerce.webhook.header.secret": "hs"}),
        ),
    )
    .await;
    let big_path = format!("/events/bigcommerce/{}", big["id"]);
    let big_auth = vec![
        ("X-Webhook-Secret".to_string(), "hs".to_string()),
        ("Content-Type".into(), "application/json".into()),
    ];
    check(
        ingest(&s.webhooks, &big_path, &big_auth, b"{not json").await,
        400,
        "malformed JSON",
    );
    check(
        ingest(&s.webhooks, &big_path, &big_auth, b"[1,2]").await,
        400,
        "not an object",
    );
    check(
        ingest(&s.webhooks, &big_path, &big_auth, br#"{"data":{"id":1}}"#).await,
        400,
        "no scope",
    );
    assert!(events_of(&s, &big["id"]).await.is_empty());
    let huge = vec![b' '; shared::settings::DEFAULT_MAX_WEBHOOK_BODY_BYTES + 1];
    check(
        ingest(&s.webhooks, &path, &auth, &huge).await,
        413,
        "too large",
    );
    check(
        ingest(&s.webhooks, "/events/shopify/1", &auth, b"{}").await,
        404,
        "unknown element",
    );
    check(
        ingest(&s.webhooks, "/events/one/424242", &auth, b"{}").await,
        404,
        "unknown instance",
    );
    check(
        ingest(&s.webhooks, "/events/one/not-an-id", &auth, b"{}").await,
        404,
        "bad instance id",
    );
    check(
        ingest(&s.webhooks, "/events/one", &auth, b"{}").await,
        404,
        "ONe needs the instance id",
    );
    // An instance of another element at this element's URL is not found.
    check(
        ingest(
            &s.webhooks,
            &format!("/events/ecwid/{}", instance["id"]),
            &auth,
            b"{}",
        )
        .await,
        404,
        "element mismatch",
    );
    assert!(events_of(&s, &instance["id"]).await.is_empty());
}

#[tokio::test]
async fn a_stopped_dynamodb_gets_5xx_so_the_vendor_retries() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let dead = webhooks::App::new(ce_tests::unreachable_store(&s.app.store), test_settings());
    let d = one::delivery(
        &one::with_timestamp(one::client_logged("cust-1"), "2026-11-23T10:15:30Z"),
        "admin",
        "s3cret-pass",
    );
    let reply = ingest(
        &dead,
        &format!("/events/one/{}", instance["id"]),
        &d.headers,
        &d.body,
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        events_of(&s, &instance["id"]).await.is_empty(),
        "nothing was acknowledged"
    );
}

#[tokio::test]
async fn the_event_log_is_paged_newest_first_and_filtered_by_status() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    for i in 0..5 {
        let d = one::delivery(
            &one::with_timestamp(
                one::client_logged(&format!("cust-{i}")),
                &format!("2026-11-23T10:15:3{i}Z"),
            ),
            "admin",
            "s3cret-pass",
        );
        assert_eq!(
            ingest(&s.webhooks, &path, &d.headers, &d.body).await.status,
            200
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(t) => format!(
                "{INSTANCES}/{}/events?pageSize=2&nextPage={t}",
                instance["id"]
            ),
            None => format!("{INSTANCES}/{}/events?pageSize=2", instance["id"]),
        };
        let reply = call(&s.app, "GET", &url, Some(&s.auth), None).await;
        assert_eq!(reply.status, 200);
        seen.extend(
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["events"][0]["objectId"].as_str().unwrap().to_string()),
        );
        next = reply
            .response
            .header("elements-next-page-token")
            .map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        ["cust-4", "cust-3", "cust-2", "cust-1", "cust-0"],
        "newest first, each once"
    );
    let pending = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}/events?status=pending", instance["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(pending.body.as_array().unwrap().len(), 5);
    let delivered = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}/events?status=delivered", instance["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(delivered.body, json!([]));
    let bad = call(
        &s.app,
        "GET",
        &format!("{INSTANCES}/{}/events?status=lost", instance["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["field"].clone()),
        (400, json!("status"))
    );
}

#[tokio::test]
async fn invalid_unicode_and_oversized_headers_get_4xx_not_5xx() {
    let s = served_stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    // Invalid UTF-8 inside a JSON string, to a vendor that retries (ONe
    // takes every verified body as an event, see one_bodies_of_unknown_shape_…).
    let (big, big_path) = bigcommerce_hook_instance(&s, None).await;
    let reply = ingest(
        &s.webhooks,
        &big_path,
        &[("X-Webhook-Secret".to_string(), "hs".to_string())],
        b"{\"scope\":\"store/order/created\",\"data\":{\"id\":\"\xff\xfe\"}}",
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(events_of(&s, &big["id"]).await.is_empty());
    let reply = call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some("{\"name\":\"\u{0}\""),
    )
    .await;
    assert_eq!(reply.status, 400);
    // Over HTTP: a header block far beyond what API Gateway accepts.
    let http = reqwest::Client::new();
    let big = "x".repeat(512 * 1024);
    let resp = http
        .post(s.url(&path))
        .basic_auth("admin", Some("s3cret-pass"))
        .header("x-padding", big)
        .body("{}")
        .send()
        .await;
    match resp {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        // The server may close the connection on a header block this size.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e:?}"),
    }
    let mut many = http
        .post(s.url(&path))
        .basic_auth("admin", Some("s3cret-pass"));
    for i in 0..200 {
        many = many.header(format!("x-h{i}"), "v");
    }
    match many.body("{}").send().await {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e:?}"),
    }
    // The oversized requests stored nothing.
    assert!(events_of(&s, &instance["id"]).await.is_empty());
}

#[tokio::test]
async fn patching_events_on_or_the_store_moves_the_webhooks_at_the_store() {
    let s = served_stack().await;
    let first = woocommerce::start_store("ck_test_key", "cs_test_secret").await;
    let mut body = instance_body(
        "woocommercerest",
        json!({"store.url": first.base_url, "oauth.api.key": "ck_test_key",
               "oauth.api.secret": "cs_test_secret", "event.vendor.type": "webhook"}),
    );
    body["configuration"]["event.notification.enabled"] = json!(false);
    let instance = create(&s, body).await;
    assert!(
        first.registered().is_empty(),
        "events off: nothing subscribed"
    );
    let path = format!("{INSTANCES}/{}", instance["id"]);
    let patch = |v: Value| v.to_string();

    let on = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            json!({"configuration": {"event.notification.enabled": true}}),
        )),
    )
    .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(first.registered().len(), 16, "turning events on subscribes");

    let second = woocommerce::start_store("ck_test_key", "cs_test_secret").await;
    let moved = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            // A new store needs its secret sent again (issue 15, point 4).
            json!({"configuration": {"store.url": second.base_url,
                                     "oauth.api.secret": "cs_test_secret"}}),
        )),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        (first.registered().len(), second.registered().len()),
        (0, 16),
        "the subscription moved stores"
    );

    // A store refusing the new credentials changes nothing.
    let refused = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            json!({"configuration": {"oauth.api.key": "ck_wrong"}}),
        )),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(second.registered().len(), 16);
    let shown = call(&s.app, "GET", &path, Some(&s.auth), None).await;
    assert_eq!(shown.body["configuration"]["oauth.api.key"], "ck_test_key");

    let off = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            json!({"configuration": {"event.notification.enabled": false}}),
        )),
    )
    .await;
    assert_eq!(off.status, 200);
    assert!(
        second.registered().is_empty(),
        "turning events off unsubscribes"
    );
}

// ------------------------------------------------- the table down (issue 15, point 6)

/// Posts a vendor's request to the served stack, as the vendor would.
async fn post_delivery(url: &str, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let mut req = client.post(url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(resp) => (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// Sends `n` verified deliveries while DynamoDB is down (each answered 2xx,
/// spooled), ten of them twice as a vendor re-send, brings DynamoDB back and
/// sweeps: every delivery is stored and delivered exactly once.
async fn deliveries_survive_the_table_down<F, Fut>(
    s: &Stack,
    proxy: &ce_tests::outage::OutageProxy,
    receiver: &ce_tests::receiver::Receiver,
    instance_id: &Value,
    n: usize,
    send: F,
) where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, String)>,
{
    use futures_util::stream::{self, StreamExt};
    // One delivery while the table is up: the function has read the
    // instance, as a live container has.
    let (status, body) = send(0).await;
    assert_eq!(status, 200, "{body}");

    proxy.down();
    let send = &send;
    let answers: Vec<(usize, u16, String)> = stream::iter(1..=n)
        .map(|i| async move {
            let (status, body) = send(i).await;
            (i, status, body)
        })
        .buffer_unordered(10)
        .collect()
        .await;
    for (i, status, body) in &answers {
        assert!(
            (200..300).contains(status),
            "delivery {i} during the outage: {status} {body}"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["spooled"].as_array().map(Vec::len), Some(1), "{body}");
    }
    // The vendor re-sends ten of them (a lost answer): spooled again.
    for i in 1..=10 {
        assert_eq!(send(i).await.0, 200);
    }
    proxy.up();

    let mut sweeps = 0;
    while receiver.accepted_ids().len() < n + 1 && sweeps < 10 {
        dispatcher::sweep(&s.dispatcher, chrono::Utc::now())
            .await
            .unwrap();
        sweeps += 1;
    }
    let accepted = receiver.accepted_ids();
    assert_eq!(accepted.len(), n + 1, "every delivery reached the callback");
    assert!(
        accepted.values().all(|times| *times == 1),
        "each exactly once: {accepted:?}"
    );
    assert_eq!(events_of(s, instance_id).await.len(), n + 1);
    // The spool is empty: a last drain finds nothing.
    let last = dispatcher::drain_spool(&s.dispatcher).await.unwrap();
    assert_eq!(last.received, 0, "{last:?}");
}

#[tokio::test]
async fn the_table_down_during_one_deliveries_loses_nothing() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("make test sets AWS_ENDPOINT_URL");
    let proxy = ce_tests::outage::OutageProxy::start(&moto).await;
    let s = ce_tests::served_stack_via(&proxy.endpoint).await;
    let receiver = ce_tests::receiver::start_receiver(None, None).await;
    let mut body = instance_body(
        "one",
        json!({"one.webhook.username": "admin", "one.webhook.password": "s3cret-pass"}),
    );
    body["configuration"]["event.notification.callback.url"] = json!(receiver.url);
    let instance = create(&s, body).await;
    let url = s.url(&format!("/events/one/{}", instance["id"]));
    deliveries_survive_the_table_down(&s, &proxy, &receiver, &instance["id"], 100, |i| {
        let d = one::delivery(
            &one::client_logged(&format!("cust-{i}")),
            "admin",
            "s3cret-pass",
        );
        let url = url.clone();
        async move { post_delivery(&url, &d.headers, &d.body).await }
    })
    .await;
}

/// The issue's case: WooCommerce never retries. Needs the WooCommerce
/// simulator (OAuth 1.0a over http) to create the instance.
#[tokio::test]
async fn the_table_down_during_woocommerce_deliveries_loses_nothing() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("make test sets AWS_ENDPOINT_URL");
    let proxy = ce_tests::outage::OutageProxy::start(&moto).await;
    let s = ce_tests::served_stack_via(&proxy.endpoint).await;
    let receiver = ce_tests::receiver::start_receiver(None, None).await;
    let store = woocommerce::start_store("ck_test_key", "cs_test_secret").await;
    let mut body = instance_body(
        "woocommercerest",
        json!({"store.url": store.base_url, "oauth.api.key": "ck_test_key",
               "oauth.api.secret": "cs_test_secret", "event.vendor.type": "webhook"}),
    );
    body["configuration"]["event.notification.callback.url"] = json!(receiver.url);
    let instance = create(&s, body).await;
    let hook = store
        .registered()
        .into_iter()
        .find(|h| h.topic == "order.updated")
        .unwrap();
    let source = store.source();
    deliveries_survive_the_table_down(&s, &proxy, &receiver, &instance["id"], 100, |i| {
        let order = woocommerce::order_payload(
            1000 + i as u64,
            "completed",
            "2026-11-20T10:00:00",
            "2026-11-23T11:00:00",
        );
        let d = woocommerce::delivery(
            "order.updated",
            &source,
            hook.id,
            &format!("d-{i}"),
            &hook.secret,
            &order,
        );
        let url = hook.delivery_url.clone();
        async move { woocommerce::send(&d, &url).await }
    })
    .await;
}

// ------------------------------------------ BigCommerce, Ecwid, ONe as they behave

async fn bigcommerce_hook_instance(s: &Stack, signing_secret: Option<&[u8]>) -> (Value, String) {
    let mut cfg = json!({"username": "admin", "password": "token",
        "store.url": "https://store-abc.mybigcommerce.com/api/v2",
        "event.vendor.type": "webhook", "bigcommerce.webhook.header.secret": "hs"});
    if let Some(secret) = signing_secret {
        cfg["bigcommerce.webhook.signing.secret"] = json!(bigcommerce::whsec(secret));
    }
    let instance = create(s, instance_body("bigcommerce", cfg)).await;
    let path = format!("/events/bigcommerce/{}", instance["id"]);
    (instance, path)
}

#[tokio::test]
async fn bigcommerce_sub_scope_webhooks_are_mapped_to_the_object_they_change() {
    let s = stack().await;
    let (instance, path) = bigcommerce_hook_instance(&s, None).await;
    let now = chrono::Utc::now().timestamp();
    let bodies = [
        bigcommerce::address_webhook("store/customer/address/deleted", "abc123", 60, 32, now),
        bigcommerce::event_with_data(
            "store/order/refund/created",
            "abc123",
            bigcommerce::order_refund_data(250, 3),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/message/created",
            "abc123",
            bigcommerce::order_message_data(250, 4),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/transaction/created",
            "abc123",
            bigcommerce::order_transaction_data(251, "176342342"),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/archived",
            "abc123",
            json!({"type": "order", "id": 252}),
            now,
        ),
        bigcommerce::event_with_data(
            "store/brand/metafield/created",
            "abc123",
            json!({"type": "metafield", "id": 9}),
            now,
        ),
    ];
    for body in &bodies {
        let d = bigcommerce::delivery(body, &[("X-Webhook-Secret", "hs")], None, "", now);
        let reply = ingest(&s.webhooks, &path, &d.headers, &d.body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
    }
    let events: Vec<Value> = events_of(&s, &instance["id"])
        .await
        .iter()
        .map(|n| n["events"][0].clone())
        .collect();
    let of = |scope: &str| {
        events
            .iter()
            .find(|e| e["vendorEventType"] == scope)
            .cloned()
            .unwrap_or_else(|| panic!("no {scope} in {events:?}"))
    };
    let brief = |e: &Value| {
        (
            e["objectType"].clone(),
            e["objectId"].clone(),
            e["eventType"].clone(),
        )
    };
    // An address deletion is a change of its customer, not a customer deleted.
    let address = of("store/customer/address/deleted");
    assert_eq!(
        brief(&address),
        (json!("customers"), json!("32"), json!("UPDATED"))
    );
    assert_eq!(address["vendorDetail"]["addressId"], "60");
    assert_eq!(
        address["vendorDetail"]["scope"],
        "store/customer/address/deleted"
    );
    let refund = of("store/order/refund/created");
    assert_eq!(
        brief(&refund),
        (json!("orders"), json!("250"), json!("UPDATED"))
    );
    assert_eq!(refund["vendorDetail"]["refundId"], "3");
    assert_eq!(
        brief(&of("store/order/message/created")),
        (json!("orders"), json!("250"), json!("UPDATED"))
    );
    assert_eq!(
        brief(&of("store/order/transaction/created")),
        (json!("orders"), json!("251"), json!("UPDATED"))
    );
    assert_eq!(
        brief(&of("store/order/archived")),
        (json!("orders"), json!("252"), json!("DELETED"))
    );
    // A scope we do not know names no object.
    let unknown = of("store/brand/metafield/created");
    assert_eq!(
        (unknown["objectType"].clone(), unknown["eventType"].clone()),
        (json!("events"), json!("UNKNOWN"))
    );
    assert_eq!(
        unknown["vendorDetail"]["scope"],
        "store/brand/metafield/created"
    );
    assert_eq!(unknown["vendorDetail"]["data"]["id"], 9);
}

#[tokio::test]
async fn bigcommerce_dedupes_on_webhook_id_else_on_hash_scope_and_time() {
    let s = stack().await;
    let secret = b"bc-client-secret";
    let (signed, signed_path) = bigcommerce_hook_instance(&s, Some(secret)).await;
    let now = chrono::Utc::now().timestamp();
    // Two updates of one product carry the same `data`, so the same hash.
    let data = json!({"type": "product", "id": 205});
    let first =
        bigcommerce::event_with_data("store/product/updated", "abc123", data.clone(), now - 30);
    let second =
        bigcommerce::event_with_data("store/product/updated", "abc123", data.clone(), now - 20);
    assert_eq!(first["hash"], second["hash"]);
    let hs = [("X-Webhook-Secret", "hs")];
    let send = |body: &Value, path: &str, id: &str, ts: i64| {
        let d = bigcommerce::delivery(body, &hs, Some(secret), id, ts);
        let (webhooks, path) = (&s.webhooks, path.to_string());
        async move { ingest(webhooks, &path, &d.headers, &d.body).await }
    };
    let reply = send(&first, &signed_path, "msg_a", now).await;
    assert_eq!(
        (reply.status, reply.body["accepted"].clone()),
        (200, json!(1)),
        "{}",
        reply.body
    );
    // Its retry: the same message id, a later attempt.
    let reply = send(&first, &signed_path, "msg_a", now + 120).await;
    assert_eq!(reply.body["duplicates"], 1, "{}", reply.body);
    // The second update: another message, though the hash is the same.
    let reply = send(&second, &signed_path, "msg_b", now).await;
    assert_eq!(reply.body["accepted"], 1, "{}", reply.body);
    assert_eq!(events_of(&s, &signed["id"]).await.len(), 2);

    // Without Standard Webhooks: the hash with the scope and created_at.
    let (plain, plain_path) = bigcommerce_hook_instance(&s, None).await;
    let unsigned = |body: &Value| {
        let d = bigcommerce::delivery(body, &hs, None, "", now);
        let (webhooks, path) = (&s.webhooks, plain_path.clone());
        async move { ingest(webhooks, &path, &d.headers, &d.body).await }
    };
    assert_eq!(unsigned(&first).await.body["accepted"], 1);
    assert_eq!(
        unsigned(&first).await.body["duplicates"],
        1,
        "a re-send collapses"
    );
    assert_eq!(
        unsigned(&second).await.body["accepted"],
        1,
        "a second update does not"
    );
    let deleted = bigcommerce::event_with_data("store/product/deleted", "abc123", data, now - 20);
    assert_eq!(deleted["hash"], second["hash"]);
    assert_eq!(
        unsigned(&deleted).await.body["accepted"],
        1,
        "nor another scope at that second"
    );
    assert_eq!(events_of(&s, &plain["id"]).await.len(), 3);
}

#[tokio::test]
async fn an_ecwid_webhook_for_a_store_with_no_instance_is_acknowledged_and_dropped() {
    let s = stack().await;
    let instance = ecwid_instance(&s, 6101, Some("app-secret")).await;
    // The app's one URL also receives the webhooks of stores that installed
    // the app but have no instance here; Ecwid would retry a refusal for a
    // day and then block the app.
    let body = ecwid::event(
        "order.created",
        6199,
        1,
        "e-unknown",
        1700000000,
        ecwid::order_created_data("Z9"),
    );
    let d = ecwid::delivery(&body, "app-secret");
    let reply = ingest(&s.webhooks, "/events/ecwid", &d.headers, &d.body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (
            reply.body["accepted"].clone(),
            reply.body["dropped"].clone()
        ),
        (json!(0), json!(1))
    );
    assert_eq!(reply.body["unknownStore"], true);
    assert!(events_of(&s, &instance["id"]).await.is_empty());
}

#[tokio::test]
async fn ecwid_routing_reads_all_candidates_in_one_batch_and_skips_an_unreadable_one() {
    let s = stack().await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(ecwid_instance(&s, 7202, Some("shared-secret")).await["id"].clone());
    }
    // One candidate's sealed secrets are damaged (a bad restore, a key
    // rotation gone wrong): it must not cost the others their event.
    s.app
        .store
        .client()
        .update_item()
        .table_name(&s.app.store.tables().instances)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(ids[3].to_string()),
        )
        .update_expression("SET sealed_secrets = :x")
        .expression_attribute_values(
            ":x",
            aws_sdk_dynamodb::types::AttributeValue::S("v1:garbage".into()),
        )
        .send()
        .await
        .unwrap();
    let (logged, log) = ce_tests::logged_store(&s.webhooks.store);
    let webhooks = webhooks::App::new(logged, s.webhooks.settings.clone());
    let body = ecwid::event(
        "order.created",
        7202,
        1,
        "e-batch",
        1700000000,
        ecwid::order_created_data("R1"),
    );
    let d = ecwid::delivery(&body, "shared-secret");
    let reply = ingest(&webhooks, "/events/ecwid", &d.headers, &d.body).await;
    assert_eq!(
        (reply.status, reply.body["accepted"].clone()),
        (200, json!(7)),
        "{}",
        reply.body
    );
    let reads: Vec<String> = log
        .operations()
        .into_iter()
        .filter(|op| matches!(op.as_str(), "Query" | "GetItem" | "BatchGetItem"))
        .collect();
    assert!(reads.len() <= 3, "routing 8 candidates took {reads:?}");
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(events_of(&s, id).await.len(), 1, "instance {i}");
    }
}

#[tokio::test]
async fn an_ecwid_instance_with_events_but_no_client_secret_is_warned_at_creation() {
    let s = stack().await;
    // The Cloud Elements body: the legacy keys, no client secret.
    let warned = ecwid_instance(&s, 8303, None).await;
    let warning = warned["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("ecwid.client.secret"), "{warning}");
    assert!(
        !warned.to_string().contains("secret_order"),
        "no secret echoed"
    );
    let fine = ecwid_instance(&s, 8304, Some("app-secret")).await;
    assert!(fine.get("warnings").is_none(), "{fine}");
    // What the legacy ION Cannon posts can be neither routed nor verified.
    let ion = ecwid::ion_cannon_delivery(1001);
    let reply = ingest(&s.webhooks, "/events/ecwid", &ion.headers, &ion.body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(events_of(&s, &warned["id"]).await.is_empty());
}

#[tokio::test]
async fn one_repeated_activity_collapses_only_within_minutes() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    // ONe sends the same bytes for the same activity: no id, no time.
    let login = one::delivery(&one::client_logged("cust-1"), "admin", "s3cret-pass");
    let at = |offset: chrono::Duration| {
        let mut app = s.webhooks.clone();
        app.clock_offset = offset;
        app
    };
    let send = |app: webhooks::App| {
        let (path, d) = (path.clone(), login.clone());
        async move { ingest(&app, &path, &d.headers, &d.body).await }
    };
    assert_eq!(send(at(chrono::Duration::zero())).await.body["accepted"], 1);
    // A quick re-send of the same delivery collapses...
    let again = send(at(chrono::Duration::zero())).await;
    assert_eq!(again.body["duplicates"], 1, "{}", again.body);
    // ...a login after 30 minutes of inactivity, or tomorrow, is an event.
    assert_eq!(
        send(at(chrono::Duration::minutes(35))).await.body["accepted"],
        1
    );
    assert_eq!(
        send(at(chrono::Duration::days(1))).await.body["accepted"],
        1
    );
    assert_eq!(events_of(&s, &instance["id"]).await.len(), 3);
}

#[tokio::test]
async fn one_bodies_of_unknown_shape_become_unknown_events_with_the_raw_body() {
    let s = stack().await;
    let instance = one_instance(&s, true).await;
    let path = format!("/events/one/{}", instance["id"]);
    let bodies: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&one::unknown_shape()).unwrap(),
        br#"{"event":"Cart opened"}"#.to_vec(),
        b"not json at all".to_vec(),
    ];
    for body in &bodies {
        let mut d = one::delivery(&json!({}), "admin", "s3cret-pass");
        d.body = body.clone();
        let reply = ingest(&s.webhooks, &path, &d.headers, &d.body).await;
        assert_eq!(
            (reply.status, reply.body["accepted"].clone()),
            (200, json!(1)),
            "{}",
            reply.body
        );
    }
    let events = events_of(&s, &instance["id"]).await;
    assert_eq!(events.len(), 3);
    for n in &events {
        let e = &n["events"][0];
        assert_eq!(
            (e["objectType"].clone(), e["eventType"].clone()),
            (json!("events"), json!("UNKNOWN"))
        );
        let stored = s
            .app
            .store
            .get_notification(n["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            bodies
                .iter()
                .any(|b| b.as_slice() == stored.notification.raw.as_bytes()),
            "raw kept"
        );
    }
    // With a signature failure, still nothing.
    let wrong = one::delivery(&one::unknown_shape(), "admin", "wrong");
    assert_eq!(
        ingest(&s.webhooks, &path, &wrong.headers, &wrong.body)
            .await
            .status,
        401
    );
}

/// The cases of docs/reliability.md "Vendors as they really behave", end to
/// end: the vendors' deliveries (retries and repeats included) through
/// ingestion, then the dispatcher to a callback receiver. Every change the
/// vendors reported arrives once; re-sends arrive never.
#[tokio::test]
async fn vendor_behaviours_end_to_end_every_change_once_none_lost() {
    let s = served_stack().await;
    let receiver = ce_tests::receiver::start_receiver(None, None).await;
    let with_callback = |mut body: Value| {
        body["configuration"]["event.notification.callback.url"] = json!(receiver.url.clone());
        body
    };
    let big = create(
        &s,
        with_callback(instance_body(
            "bigcommerce",
            json!({"username": "admin", "password": "token", "store.url": "https://store-abc.mybigcommerce.com/api/v2",
                   "event.vendor.type": "webhook", "bigcommerce.webhook.header.secret": "hs"}),
        )),
    )
    .await;
    let big_path = format!("/events/bigcommerce/{}", big["id"]);
    let ecwid_body = |store: &str| {
        with_callback(instance_body(
            "ecwid",
            json!({"ecwid.store.id": store, "ecwid.order.key": "k", "ecwid.client.secret": "app-secret"}),
        ))
    };
    let ecwid_a = create(&s, ecwid_body("9401")).await;
    let ecwid_b = create(&s, ecwid_body("9401")).await;
    let mut one_body = instance_body(
        "one",
        json!({"one.webhook.username": "admin", "one.webhook.password": "s3cret-pass"}),
    );
    one_body = with_callback(one_body);
    let one_i = create(&s, one_body).await;
    let one_path = format!("/events/one/{}", one_i["id"]);

    let now = chrono::Utc::now().timestamp();
    let mut sent = 0;
    let mut expected = 0;
    let mut duplicates = 0;
    let mut dropped = 0;
    let mut tally = |reply: Reply, what: &str| {
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        sent += 1;
        expected += reply.body["accepted"].as_u64().unwrap() as usize;
        duplicates += reply.body["duplicates"].as_u64().unwrap() as usize;
        dropped += reply.body["dropped"].as_u64().unwrap() as usize;
    };
    // BigCommerce: six sub-scope callbacks, each retried once; two updates of
    // one product with one hash.
    let product = json!({"type": "product", "id": 205});
    let bc_bodies = [
        bigcommerce::address_webhook("store/customer/address/updated", "abc123", 60, 32, now),
        bigcommerce::event_with_data(
            "store/order/refund/created",
            "abc123",
            bigcommerce::order_refund_data(250, 3),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/transaction/created",
            "abc123",
            bigcommerce::order_transaction_data(250, "t-1"),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/archived",
            "abc123",
            json!({"type": "order", "id": 251}),
            now,
        ),
        bigcommerce::event_with_data(
            "store/order/statusUpdated",
            "abc123",
            bigcommerce::order_status_updated_data(252, 0, 11),
            now,
        ),
        bigcommerce::event_with_data(
            "store/app/uninstalled",
            "abc123",
            json!({"type": "app", "id": 1}),
            now,
        ),
        bigcommerce::event_with_data("store/product/updated", "abc123", product.clone(), now - 10),
        bigcommerce::event_with_data("store/product/updated", "abc123", product, now - 5),
    ];
    for (i, body) in bc_bodies.iter().enumerate() {
        let d = bigcommerce::delivery(body, &[("X-Webhook-Secret", "hs")], None, "", now);
        tally(
            ingest(&s.webhooks, &big_path, &d.headers, &d.body).await,
            "bigcommerce",
        );
        if i < 6 {
            tally(
                ingest(&s.webhooks, &big_path, &d.headers, &d.body).await,
                "bigcommerce retry",
            );
        }
    }
    // Ecwid: one store with two instances (two organizations would do the
    // same), its retry, and a store with no instance here.
    for (store, event_id) in [(9401, "e-1"), (9401, "e-1"), (9499, "e-2")] {
        let body = ecwid::event(
            "order.created",
            store,
            1,
            event_id,
            now,
            ecwid::order_created_data("K1"),
        );
        let d = ecwid::delivery(&body, "app-secret");
        tally(
            ingest(&s.webhooks, "/events/ecwid", &d.headers, &d.body).await,
            "ecwid",
        );
    }
    // ONe: a login, its quick re-send, the same login tomorrow, a body of an
    // unknown shape.
    let login = one::delivery(&one::client_logged("cust-1"), "admin", "s3cret-pass");
    let unknown = one::delivery(&one::unknown_shape(), "admin", "s3cret-pass");
    let mut tomorrow = s.webhooks.clone();
    tomorrow.clock_offset = chrono::Duration::days(1);
    for (app, d) in [
        (&s.webhooks, &login),
        (&s.webhooks, &login),
        (&tomorrow, &login),
        (&s.webhooks, &unknown),
    ] {
        tally(ingest(app, &one_path, &d.headers, &d.body).await, "one");
    }
    assert_eq!((sent, expected, duplicates, dropped), (21, 13, 9, 1));

    // Deliver everything due (the day-later one included).
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    loop {
        let report = dispatcher::sweep(&s.dispatcher, later).await.unwrap();
        if report.due == 0 {
            break;
        }
    }
    let ids = receiver.accepted_ids();
    let delivered = ids.len();
    let doubled = ids.values().filter(|&&n| n > 1).count();
    println!(
        "vendor behaviours: sent {sent}, notifications {expected}, re-sends collapsed {duplicates}, \
         unknown store dropped {dropped}, delivered {delivered}, delivered twice {doubled}, lost {}",
        expected - delivered
    );
    assert_eq!((delivered, doubled), (expected, 0));
    for (instance, n) in [(&big, 8), (&ecwid_a, 1), (&ecwid_b, 1), (&one_i, 3)] {
        assert_eq!(events_of(&s, &instance["id"]).await.len(), n);
    }
}
