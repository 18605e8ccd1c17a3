//! The production log format, captured while an instance is created, a
//! webhook is stored, a callback is delivered, a poll runs and DynamoDB is
//! down: every line is JSON, every line our code writes names the request,
//! instance or event it belongs to (through spans, so lines from deep helpers
//! do too), and no line holds a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use ce_tests::receiver::start_receiver;
use ce_tests::vendors::woocommerce;
use ce_tests::{call, served_stack, unreachable_store};
use chrono::{DurationRound, Utc};
use serde_json::{json, Value};
use tracing_subscriber::fmt::MakeWriter;

const INSTANCES: &str = "/elements/api-v2/instances";
const CONSUMER_KEY: &str = "ck_log_test_consumer_key_0001";
const CONSUMER_SECRET: &str = "cs_log_test_consumer_secret_0001";
const SIGNATURE_KEY: &str = "log-test-callback-signing-key-0001";

/// An in-memory log sink the subscriber writes each line into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("log output is UTF-8")
    }

    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// The value of `field` in the innermost open span that has it.
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a Value> {
    line["spans"]
        .as_array()?
        .iter()
        .rev()
        .find_map(|span| span.get(field))
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

fn ours(line: &Value) -> bool {
    let target = line["target"].as_str().unwrap_or_default();
    ["instances", "webhooks", "dispatcher", "poller", "shared"]
        .iter()
        .any(|krate| target == *krate || target.starts_with(&format!("{krate}::")))
}

fn woo_body(store: &woocommerce::WooStore, mode: &str, callback: &str) -> Value {
    json!({"element": {"key": "woocommercerest"}, "name": format!("logs {mode}"), "configuration": {
        "store.url": store.base_url, "oauth.api.key": CONSUMER_KEY, "oauth.api.secret": CONSUMER_SECRET,
        "event.notification.enabled": true, "event.vendor.type": mode,
        "event.poller.refresh_interval": "15",
        "event.notification.callback.url": callback,
        "event.notification.signature.key": SIGNATURE_KEY}})
}

#[tokio::test]
async fn every_line_names_its_request_instance_or_event_and_holds_no_secret() {
    let captured = Captured::default();
    // Thread-local: this test's current-thread runtime runs the handlers,
    // the simulated store and the receiver on this thread.
    let _logging = tracing::subscriber::set_default(shared::logging::json_subscriber(
        captured.clone(),
        "info",
    ));

    let s = served_stack().await;
    let store = woocommerce::start_store(CONSUMER_KEY, CONSUMER_SECRET).await;
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SIGNATURE_KEY)
    );
    let receiver = start_receiver(Some(&whsec), Some(SIGNATURE_KEY.as_bytes())).await;

    // 1. A webhook instance: creation registers webhooks at the store.
    let hooked = s.create(woo_body(&store, "webhook", &receiver.url)).await;
    let hooked_id = hooked["id"].as_u64().unwrap();
    let instance_token = hooked["token"].as_str().map(str::to_string);

    // 2. The store fires an order update; it is stored.
    let order = woocommerce::order_payload(
        727,
        "processing",
        "2026-11-20T09:00:00",
        "2026-11-23T10:15:30",
    );
    let fired = store.fire("order.updated", &order).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].status, 200, "{}", fired[0].body);
    let event_id = fired[0].body.parse::<Value>().unwrap()["eventIds"][0]
        .as_str()
        .expect("the stored event's id")
        .to_string();

    // 3. A forged delivery is refused.
    let hook = store.registered()[0].id;
    let forged = woocommerce::delivery(
        "order.updated",
        &store.source(),
        hook,
        &woocommerce::delivery_id(hook),
        "not-the-webhook-secret",
        &order,
    );
    let (status, _) = woocommerce::send(
        &forged,
        &s.url(&format!("/events/woocommercerest/{hooked_id}")),
    )
    .await;
    assert_eq!(status, 401);

    // 4. The callback is delivered.
    let outcome = dispatcher::deliver(&s.dispatcher, &event_id).await.unwrap();
    assert_eq!(outcome, dispatcher::Outcome::Delivered);
    assert_eq!(receiver.accepted().len(), 1);

    // 5. A polling instance, polled on request after a change.
    let polled = s.create(woo_body(&store, "polling", &receiver.url)).await;
    let polled_id = polled["id"].as_u64().unwrap();
    let now = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
        .naive_utc();
    store.upsert("orders", 900, now, now);
    let poll = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{polled_id}/events/poll"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(poll.status, 200, "{}", poll.body);

    // 6. DynamoDB down while a webhook arrives: a 503, and the failure is
    //    logged deep in the store module, still under the request's span.
    let down = webhooks::App::new(
        unreachable_store(&s.webhooks.store),
        s.webhooks.settings.clone(),
    );
    let retry = &fired[0].delivery;
    let reply = ce_tests::ingest(
        &down,
        &format!("/events/woocommercerest/{hooked_id}"),
        &retry.headers,
        &retry.body,
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);

    let lines = captured.lines();
    assert!(lines.len() >= 8, "too few lines: {}", captured.text());

    // Each step's line carries its ids.
    let created = with_message(&lines, "instance created");
    assert_eq!(created.len(), 2, "{created:?}");
    for line in &created {
        assert!(span_field(line, "request_id").is_some(), "{line}");
    }
    assert_eq!(
        span_field(created[0], "instance_id"),
        Some(&json!(hooked_id))
    );
    assert_eq!(
        span_field(created[1], "instance_id"),
        Some(&json!(polled_id))
    );

    let stored = with_message(&lines, "webhook stored");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(span_field(stored[0], "request_id").is_some());
    assert_eq!(
        span_field(stored[0], "instance_id"),
        Some(&json!(hooked_id))
    );
    assert!(
        stored[0]["event_ids"].as_str().unwrap().contains(&event_id),
        "{}",
        stored[0]
    );

    let refused = with_message(&lines, "webhook verification failed");
    assert_eq!(refused.len(), 1);
    assert!(span_field(refused[0], "request_id").is_some());
    assert_eq!(
        span_field(refused[0], "instance_id"),
        Some(&json!(hooked_id))
    );

    // WooCommerce pings each new webhook at the instance's URL.
    let pings = with_message(&lines, "webhook handshake answered");
    assert_eq!(pings.len(), store.registered().len());
    for line in &pings {
        assert_eq!(span_field(line, "instance_id"), Some(&json!(hooked_id)));
    }

    let delivered = with_message(&lines, "delivery attempt");
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(span_field(delivered[0], "event_id"), Some(&json!(event_id)));
    assert_eq!(
        span_field(delivered[0], "instance_id"),
        Some(&json!(hooked_id))
    );

    let polls = with_message(&lines, "instance polled");
    assert_eq!(polls.len(), 1, "{polls:?}");
    assert_eq!(span_field(polls[0], "instance_id"), Some(&json!(polled_id)));
    assert!(span_field(polls[0], "request_id").is_some());

    let db_down = with_message(&lines, "DynamoDB call failed");
    assert!(!db_down.is_empty(), "{}", captured.text());
    for line in &db_down {
        assert!(span_field(line, "request_id").is_some(), "{line}");
        assert_eq!(span_field(line, "instance_id"), Some(&json!(hooked_id)));
        assert_eq!(line["target"], "shared::store");
    }

    // Every line our code wrote, whatever it is, names what it is about.
    for line in lines.iter().filter(|l| ours(l)) {
        assert!(
            ["request_id", "instance_id", "event_id"]
                .iter()
                .any(|f| span_field(line, f).is_some()),
            "a line without an id: {line}"
        );
    }

    // No secret, in any form a log could take it.
    let text = captured.text();
    let mut secrets = vec![
        CONSUMER_KEY.to_string(),
        CONSUMER_SECRET.to_string(),
        SIGNATURE_KEY.to_string(),
        whsec,
    ];
    secrets.extend(store.registered().iter().map(|h| h.secret.clone()));
    secrets.extend(
        s.auth
            .split(", ")
            .filter_map(|part| part.split_once(' ').map(|(_, v)| v.to_string())),
    );
    secrets.extend(instance_token);
    assert!(secrets.len() >= 7, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret was logged: {secret}"
        );
    }
}
