//! Issue 17: the per-container instance cache (shared/src/instance_cache.rs)
//! and its staleness rules, through the served functions:
//! - a webhook costs one store request once its instance is cached;
//! - a rotated WooCommerce webhook secret works at once (a failed
//!   verification is tried again on a fresh read);
//! - a PATCHed callback URL, a deleted instance and a 410 pause take effect
//!   within the staleness bound, and a pause at once in the container that
//!   saw the 410.
//!
//! The bound here is 2 s instead of the default 10 s, so that the tests wait
//! less; the rules do not depend on its length.

use std::time::{Duration as StdDuration, Instant};

use ce_tests::receiver::{start_receiver, Behaviour};
use ce_tests::vendors::{one, woocommerce};
use ce_tests::{call, ingest, served_stack, Stack};
use chrono::Utc;
use dispatcher::{attempt, Outcome};
use serde_json::{json, Value};
use shared::instance_cache::{InstanceCache, Staleness};

const INSTANCES: &str = "/elements/api-v2/instances";
const BOUND: StdDuration = StdDuration::from_secs(2);

fn cache() -> InstanceCache {
    InstanceCache::new(Staleness(BOUND), 100)
}

/// A served stack whose webhooks and dispatcher cache for [`BOUND`].
async fn stack() -> Stack {
    let mut s = served_stack().await;
    s.webhooks.instances = cache();
    s.dispatcher.instances = cache();
    s
}

async fn one_instance(s: &Stack, callback: &str) -> Value {
    s.create(
        json!({"element": {"key": "one"}, "name": "cache", "configuration": {
        "event.notification.enabled": true,
        "event.notification.callback.url": callback,
        "one.webhook.username": "admin", "one.webhook.password": "pw"}}),
    )
    .await
}

/// Ingests one ONe event; returns the reply.
async fn send_one(s: &Stack, instance: &Value, customer: &str) -> ce_tests::Reply {
    let d = one::delivery(&one::client_logged(customer), "admin", "pw");
    ingest(
        &s.webhooks,
        &format!("/events/one/{}", instance["id"]),
        &d.headers,
        &d.body,
    )
    .await
}

async fn event(s: &Stack, instance: &Value, customer: &str) -> String {
    let reply = send_one(s, instance, customer).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["eventIds"][0].as_str().unwrap().to_string()
}

async fn patch(s: &Stack, instance: &Value, body: Value) {
    let reply = call(
        &s.app,
        "PATCH",
        &format!("{INSTANCES}/{}", instance["id"]),
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_cached_webhook_costs_one_store_request() {
    let s = stack().await;
    let r = start_receiver(None, None).await;
    let inst = one_instance(&s, &r.url).await;
    event(&s, &inst, "warm").await;
    let before = s.webhooks.store.meter().snapshot();
    for i in 0..5 {
        event(&s, &inst, &format!("c-{i}")).await;
    }
    let spent = s.webhooks.store.meter().snapshot().since(&before);
    assert_eq!(
        spent.requests(),
        5,
        "one conditional PutItem per webhook: {}",
        spent.summary()
    );
    assert_eq!(spent.operations["PutItem"].requests, 5);

    // And a first attempt that succeeds is two: the claim and the
    // completion, which carries the attempt record.
    let id = event(&s, &inst, "delivered").await;
    attempt(&s.dispatcher, &id, Utc::now()).await.unwrap();
    let before = s.dispatcher.store.meter().snapshot();
    let id = event(&s, &inst, "delivered-2").await;
    assert_eq!(
        attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );
    let spent = s.dispatcher.store.meter().snapshot().since(&before);
    assert_eq!(spent.requests(), 2, "{}", spent.summary());
    assert_eq!(spent.operations["UpdateItem"].requests, 2);
    // The delivery log still shows the attempt.
    let log = s.app.store.list_attempts(&id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].attempt, log[0].status), (1, Some(200)));
}

#[tokio::test]
async fn a_rotated_woocommerce_secret_works_at_once() {
    let s = stack().await;
    let first = woocommerce::start_store("ck_cache", "cs_cache").await;
    let inst = s
        .create(json!({"element": {"key": "woocommercerest"}, "name": "hooks", "configuration": {
            "store.url": first.base_url, "oauth.api.key": "ck_cache", "oauth.api.secret": "cs_cache",
            "event.notification.enabled": true, "event.vendor.type": "webhook",
            "event.notification.callback.url": "https://mycoolapp.com/events"}}))
        .await;
    let payload = |id: u64| {
        let now = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        woocommerce::order_payload(id, "processing", &now, &now)
    };
    let fired = first.fire("order.updated", &payload(1)).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].status, 200, "{}", fired[0].body);

    // The store moves: its hooks are registered at the new store with a
    // fresh secret (instances/src/rebind.rs). The webhooks function still
    // holds the old record in its cache.
    let second = woocommerce::start_store("ck_cache", "cs_cache").await;
    patch(
        &s,
        &inst,
        json!({"configuration": {"store.url": second.base_url, "oauth.api.secret": "cs_cache"}}),
    )
    .await;
    let fired = second.fire("order.updated", &payload(2)).await;
    assert_eq!(fired.len(), 1, "the new store has our hook");
    assert_eq!(
        fired[0].status, 200,
        "signed with the new secret, verified on a fresh read: {}",
        fired[0].body
    );
    let body: Value = serde_json::from_str(&fired[0].body).unwrap();
    assert_eq!(body["accepted"], 1, "{body}");
}

#[tokio::test]
async fn a_patched_callback_url_applies_within_the_bound() {
    let s = stack().await;
    let old = start_receiver(None, None).await;
    let new = start_receiver(None, None).await;
    let inst = one_instance(&s, &old.url).await;
    let id = event(&s, &inst, "before").await;
    assert_eq!(
        attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );
    patch(
        &s,
        &inst,
        json!({"configuration": {"event.notification.callback.url": new.url}}),
    )
    .await;
    let patched = Instant::now();
    // Attempt a new notification until one reaches the new URL.
    let mut sent = 0;
    let arrived = loop {
        let id = event(&s, &inst, &format!("after-{sent}")).await;
        sent += 1;
        assert_eq!(
            attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
            Outcome::Delivered
        );
        if !new.received().is_empty() {
            break patched.elapsed();
        }
        assert!(
            patched.elapsed() < BOUND * 2,
            "still delivering to the old URL {:?} after the PATCH",
            patched.elapsed()
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    };
    assert!(
        arrived <= BOUND + StdDuration::from_millis(500),
        "{arrived:?}"
    );
    assert_eq!(
        old.received().len() + new.received().len(),
        1 + sent,
        "each notification delivered once, to one URL or the other"
    );
}

#[tokio::test]
async fn a_deleted_instance_gets_nothing_after_the_bound() {
    let s = stack().await;
    let r = start_receiver(None, None).await;
    let inst = one_instance(&s, &r.url).await;
    let id = event(&s, &inst, "warm").await;
    assert_eq!(
        attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );
    let pending = event(&s, &inst, "left-behind").await;
    let deleted = call(
        &s.app,
        "DELETE",
        &format!("{INSTANCES}/{}", inst["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    tokio::time::sleep(BOUND).await;
    // Ingestion: refused once the bound has passed.
    let reply = send_one(&s, &inst, "late").await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    // Delivery: the notification stored before the delete is failed, and
    // nothing is sent.
    assert_eq!(
        attempt(&s.dispatcher, &pending, Utc::now()).await.unwrap(),
        Outcome::Failed
    );
    assert_eq!(r.received().len(), 1);
}

#[tokio::test]
async fn a_410_pause_applies_at_once_here_and_within_the_bound_elsewhere() {
    let s = stack().await;
    let r = start_receiver(None, None).await;
    let inst = one_instance(&s, &r.url).await;
    // A second dispatcher container, with its own cache, warmed.
    let mut other = s.dispatcher.clone();
    other.instances = cache();
    let id = event(&s, &inst, "warm").await;
    assert_eq!(
        attempt(&other, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );
    let id = event(&s, &inst, "warm-here").await;
    assert_eq!(
        attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );

    r.script(vec![Behaviour::Status(410)]);
    let gone = event(&s, &inst, "gone").await;
    assert_eq!(
        attempt(&s.dispatcher, &gone, Utc::now()).await.unwrap(),
        Outcome::Queued
    );
    let seen = r.received().len();
    // The container that saw the 410 queues the next one without a request.
    let next = event(&s, &inst, "next").await;
    assert_eq!(
        attempt(&s.dispatcher, &next, Utc::now()).await.unwrap(),
        Outcome::Queued
    );
    assert_eq!(r.received().len(), seen);
    // The other container, once the bound has passed, too.
    tokio::time::sleep(BOUND).await;
    let later = event(&s, &inst, "later").await;
    assert_eq!(
        attempt(&other, &later, Utc::now()).await.unwrap(),
        Outcome::Queued
    );
    assert_eq!(r.received().len(), seen, "no request after the bound");
}
