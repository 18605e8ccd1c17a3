//! CPU paths, measured with Criterion (`cargo bench -p connector-events-shared`;
//! figures in docs/benchmarks.md):
//! - webhook ingestion per element (verify + parse + normalize + build the
//!   notification and its callback body) against the floor of one JSON parse
//!   plus one HMAC of the same bytes;
//! - callback signing (both schemes);
//! - Java-format date parsing and formatting;
//! - normalization of a 100-record poll page.

use std::hint::black_box;

use base64::Engine;
use chrono::{FixedOffset, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use shared::config::poller::{DatesConfiguration, PollResource};
use shared::config::values::Configuration;
use shared::elements::{self, Element, HubResource};
use shared::events::{Event, Notification, Source};
use shared::javadate::JavaDateFormat;
use shared::polling::changes::ChangeReader;
use shared::signing::{hmac_sha256_base64, standard_webhooks_signature};
use shared::webhook::{WebhookContent, WebhookRequest};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn woo_order(id: u64) -> Value {
    json!({
        "id": id, "parent_id": 0, "status": "processing", "currency": "USD", "version": "9.8.1",
        "date_created": "2026-11-23T07:15:30", "date_created_gmt": "2026-11-23T10:15:30",
        "date_modified": "2026-11-23T07:16:30", "date_modified_gmt": "2026-11-23T10:16:30",
        "total": "29.35", "customer_id": 26,
        "billing": {"first_name": "Zoë", "last_name": "Doe", "address_1": "969 Market", "city": "San Francisco",
                    "state": "CA", "postcode": "94103", "country": "US", "email": "zoe@example.com", "phone": "(555) 555-5555"},
        "line_items": [{"id": 315, "name": "Woo Single #1", "product_id": 93, "quantity": 2, "total": "6.00",
                        "meta_data": [], "sku": "", "price": 3}],
        "_links": {"self": [{"href": "https://example.com/wp-json/wc/v3/orders/727"}]}
    })
}

struct Case {
    name: &'static str,
    element: &'static dyn Element,
    cfg: Configuration,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The bytes and key the floor HMACs.
    hmac_key: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    // WooCommerce: HMAC of the body.
    let body = serde_json::to_vec(&woo_order(727)).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-wc-webhook-topic",
        HeaderValue::from_static("order.updated"),
    );
    headers.insert(
        "x-wc-webhook-delivery-id",
        HeaderValue::from_static("5f0c4e1b2a"),
    );
    headers.insert(
        "x-wc-webhook-signature",
        HeaderValue::from_str(&hmac_sha256_base64(b"wc-secret", &body)).unwrap(),
    );
    let cfg: Configuration =
        serde_json::from_value(json!({"woocommerce.webhook.secret": "wc-secret"})).unwrap();
    out.push(Case {
        name: "woocommercerest",
        element: elements::find("woocommercerest").unwrap(),
        cfg,
        headers,
        body,
        hmac_key: b"wc-secret".to_vec(),
    });
    // Ecwid: HMAC of "{eventCreated}.{eventId}".
    let body = serde_json::to_vec(&json!({"eventId": "80aece08-40e8-4145-8764-6c2f0d3867a5", "eventCreated": 1469429912,
        "storeId": 1003, "entityId": 103838293, "eventType": "order.updated",
        "data": {"orderId": "XJ12H", "oldPaymentStatus": "AWAITING_PAYMENT", "newPaymentStatus": "PAID",
                 "oldFulfillmentStatus": "PROCESSING", "newFulfillmentStatus": "SHIPPED"}})).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ecwid-webhook-signature",
        HeaderValue::from_str(&hmac_sha256_base64(
            b"client-secret",
            b"1469429912.80aece08-40e8-4145-8764-6c2f0d3867a5",
        ))
        .unwrap(),
    );
    let cfg: Configuration =
        serde_json::from_value(json!({"ecwid.client.secret": "client-secret"})).unwrap();
    out.push(Case {
        name: "ecwid",
        element: elements::find("ecwid").unwrap(),
        cfg,
        headers,
        body,
        hmac_key: b"client-secret".to_vec(),
    });
    // BigCommerce: custom header plus a Standard Webhooks signature.
    let now = Utc::now().timestamp();
    let body = serde_json::to_vec(
        &json!({"scope": "store/order/created", "store_id": "1025646",
        "data": {"type": "order", "id": 250}, "hash": "dd70c0976e06b67aaf671e73f49dcb79230ebf9d",
        "created_at": now, "producer": "stores/abc123"}),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-webhook-secret",
        HeaderValue::from_static("header-secret"),
    );
    headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&now.to_string()).unwrap(),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&standard_webhooks_signature(
            b"bc-secret",
            "msg_1",
            now,
            &body,
        ))
        .unwrap(),
    );
    let cfg: Configuration =
        serde_json::from_value(json!({"bigcommerce.webhook.header.secret": "header-secret",
        "bigcommerce.webhook.signing.secret": "bc-secret"}))
        .unwrap();
    out.push(Case {
        name: "bigcommerce",
        element: elements::find("bigcommerce").unwrap(),
        cfg,
        headers,
        body,
        hmac_key: b"bc-secret".to_vec(),
    });
    // ONe: Basic credentials.
    let body = serde_json::to_vec(
        &json!({"event": "Cart opened", "timestamp": "2026-11-23T10:15:30Z",
        "customerId": "c-1", "cartId": "cart-9"}),
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {}", b64(b"admin:s3cret"))).unwrap(),
    );
    let cfg: Configuration = serde_json::from_value(
        json!({"one.webhook.username": "admin", "one.webhook.password": "s3cret"}),
    )
    .unwrap();
    out.push(Case {
        name: "one",
        element: elements::find("one").unwrap(),
        cfg,
        headers,
        body,
        hmac_key: b"s3cret".to_vec(),
    });
    out
}

fn ingest(case: &Case) -> Vec<u8> {
    let req = WebhookRequest {
        headers: &case.headers,
        body: &case.body,
    };
    case.element
        .verify_webhook(&case.cfg, &req)
        .expect("verifies");
    let WebhookContent::Events {
        dedupe_key, events, ..
    } = case
        .element
        .parse_webhook(&req, Utc::now())
        .expect("parses")
    else {
        panic!("no events")
    };
    let raw = std::str::from_utf8(&case.body).unwrap();
    let batch = Notification::batch(
        42,
        "org",
        case.element.key(),
        Source::Webhook,
        events,
        raw,
        &dedupe_key,
        20,
        Utc::now(),
    );
    batch[0].callback_body()
}

fn ingestion(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingestion");
    for case in cases() {
        group.bench_function(format!("{}/pipeline", case.name), |b| {
            b.iter(|| black_box(ingest(black_box(&case))))
        });
        group.bench_function(format!("{}/floor_parse_plus_hmac", case.name), |b| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(black_box(&case.body)).unwrap();
                black_box((v, hmac_sha256_base64(&case.hmac_key, &case.body)))
            })
        });
    }
    group.finish();
}

fn signing(c: &mut Criterion) {
    let body = serde_json::to_vec(
        &json!({"message": {"eventId": "evt_1", "events": [], "raw": woo_order(1)}}),
    )
    .unwrap();
    c.bench_function("signing/callback_both_schemes", |b| {
        b.iter(|| {
            black_box((
                hmac_sha256_base64(b"signature-key", black_box(&body)),
                standard_webhooks_signature(
                    b"signature-key",
                    "evt_1",
                    1_700_000_000,
                    black_box(&body),
                ),
            ))
        })
    });
}

fn dates(c: &mut Criterion) {
    let rfc = JavaDateFormat::compile("EEE, dd MMM yyyy HH:mm:ss Z").unwrap();
    let iso = JavaDateFormat::compile("yyyy-MM-dd'T'HH:mm:ss").unwrap();
    let utc = FixedOffset::east_opt(0).unwrap();
    let t = Utc
        .with_ymd_and_hms(2026, 11, 23, 10, 15, 30)
        .unwrap()
        .with_timezone(&utc);
    c.bench_function("javadate/compile_rfc2822", |b| {
        b.iter(|| {
            black_box(JavaDateFormat::compile(black_box(
                "EEE, dd MMM yyyy HH:mm:ss Z",
            )))
        })
    });
    c.bench_function("javadate/parse_rfc2822", |b| {
        b.iter(|| black_box(rfc.parse(black_box("Tue, 20 Nov 2012 00:00:00 +0000"), utc)))
    });
    c.bench_function("javadate/format_rfc2822", |b| {
        b.iter(|| black_box(rfc.format(black_box(t))))
    });
    c.bench_function("javadate/parse_woocommerce", |b| {
        b.iter(|| black_box(iso.parse(black_box("2026-11-23T10:15:30"), utc)))
    });
}

fn poll_page(c: &mut Criterion) {
    let element = elements::find("woocommercerest").unwrap();
    let hub: HubResource = element.hub_resources()[0];
    let poll = PollResource {
        name: "orders".into(),
        resource: "orders".into(),
        where_clause: None,
        id_field: "id".into(),
        dates: DatesConfiguration::default(),
    };
    let reader = ChangeReader::new(&poll, &element.default_dates(&hub)).unwrap();
    let page: Vec<Value> = (0..100).map(woo_order).collect();
    c.bench_function("polling/normalize_100_record_page", |b| {
        b.iter(|| {
            let changes: Vec<_> = page
                .iter()
                .cloned()
                .map(|o| reader.read(o).unwrap())
                .collect();
            let notifications: Vec<Vec<u8>> = changes
                .chunks(10)
                .map(|chunk| {
                    let events: Vec<Event> = chunk
                        .iter()
                        .map(|c| {
                            Event::new(
                                "woocommercerest",
                                "orders",
                                c.object_id.clone(),
                                c.event_type,
                                c.modified,
                            )
                        })
                        .collect();
                    let raw =
                        Value::Array(chunk.iter().map(|c| c.object.clone()).collect()).to_string();
                    Notification::batch(
                        42,
                        "org",
                        "woocommercerest",
                        Source::Polling,
                        events,
                        &raw,
                        "k",
                        10,
                        Utc::now(),
                    )[0]
                    .callback_body()
                })
                .collect();
            black_box(notifications)
        })
    });
}

criterion_group!(benches, ingestion, signing, dates, poll_page);
criterion_main!(benches);
