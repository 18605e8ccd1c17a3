//! `ce-load faults`, issue 15's cases: a poison `Retry-After`, a hanging
//! tenant beside a healthy one, and the table down during WooCommerce (and
//! ONe) deliveries. Each prints sent, delivered, duplicated and lost.

use std::time::{Duration, Instant};

use ce_tests::receiver::{start_receiver, Behaviour, Receiver};
use ce_tests::Stack;
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

/// Creates an ONe instance calling back `callback` for the organization of
/// `auth`; returns its id.
async fn one_instance(s: &Stack, auth: &str, callback: &str) -> Value {
    let body = json!({"element": {"key": "one"}, "name": "hostile", "configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": callback,
        "one.webhook.username": "u", "one.webhook.password": "p"}});
    let reply = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["id"].clone()
}

/// Sends `n` ONe webhooks straight to the handler; returns their event ids.
async fn events(s: &Stack, instance: &Value, n: usize, tag: &str) -> Vec<String> {
    stream::iter(0..n)
        .map(|i| async move {
            let d = ce_tests::vendors::one::delivery(
                &ce_tests::vendors::one::client_logged(&format!("{tag}-{i}")),
                "u",
                "p",
            );
            let reply = ce_tests::ingest(
                &s.webhooks,
                &format!("/events/one/{instance}"),
                &d.headers,
                &d.body,
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["eventIds"][0].as_str().unwrap().to_string()
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Sent, delivered (distinct ids among `ids`), delivered more than once, lost.
fn count(receiver: &Receiver, ids: &[String]) -> (usize, usize, usize, usize) {
    let accepted = receiver.accepted_ids();
    let delivered = ids.iter().filter(|id| accepted.contains_key(*id)).count();
    let doubled = ids
        .iter()
        .filter(|id| accepted.get(*id).is_some_and(|n| *n > 1))
        .count();
    (ids.len(), delivered, doubled, ids.len() - delivered)
}

fn print(
    name: &str,
    (sent, delivered, doubled, lost): (usize, usize, usize, usize),
    extra: &str,
) -> bool {
    println!("fault {name}: sent {sent}, delivered {delivered}, delivered more than once {doubled}, lost {lost}{extra}");
    lost == 0 && doubled == 0
}

/// A receiver answering `Retry-After: 9999999999999999` beside a healthy
/// one: the sweep goes on for the healthy tenant; the poisoned one is
/// retried 12 h later (not never, not in a crash loop) and delivered.
pub async fn poison_retry_after(count_each: usize) -> bool {
    let s = ce_tests::served_stack().await;
    let poison = start_receiver(None, None).await;
    poison.set_default(Behaviour::RetryAfter(429, "9999999999999999".into()));
    let healthy = start_receiver(None, None).await;
    let bad = one_instance(&s, &s.auth, &poison.url).await;
    let good = one_instance(&s, &s.auth, &healthy.url).await;
    let bad_ids = events(&s, &bad, count_each, "poison").await;
    let good_ids = events(&s, &good, count_each, "healthy").await;
    let now = Utc::now();
    let first = dispatcher::sweep(&s.dispatcher, now).await;
    let healthy_first = count(&healthy, &good_ids);
    poison.set_default(Behaviour::Status(200));
    for hours in [1, 11, 13] {
        let _ = dispatcher::sweep(&s.dispatcher, now + chrono::Duration::hours(hours)).await;
    }
    let extra = format!(
        "; first sweep: {:?}; the healthy tenant's {} delivered in it",
        first.as_ref().map(|r| (r.delivered, r.retrying, r.errors)),
        healthy_first.1
    );
    let a = print(
        "poison-retry-after (healthy tenant)",
        count(&healthy, &good_ids),
        &extra,
    );
    let b = print(
        "poison-retry-after (the poisoned tenant, after its 12 h cap)",
        count(&poison, &bad_ids),
        "",
    );
    a && b && first.is_ok() && healthy_first.1 == count_each
}

/// One organization's `hanging` notifications at a URL that never answers,
/// and another organization's `healthy` ones: the healthy ones are all
/// delivered in the first sweep, while the hanging instance takes only its
/// budget; then the hanging URL comes back and everything is delivered.
pub async fn hanging_tenant(hanging_count: usize, healthy_count: usize) -> bool {
    let mut s = ce_tests::served_stack().await;
    s.dispatcher.config.shares.instance_budget = Duration::from_secs(4);
    let hanging = start_receiver(None, None).await;
    hanging.set_default(Behaviour::Hang);
    let healthy = start_receiver(None, None).await;
    let x = one_instance(&s, &s.auth, &hanging.url).await;
    let (other, _) = ce_tests::new_account(&s.store).await;
    let y = one_instance(&s, &other, &healthy.url).await;
    let x_ids = events(&s, &x, hanging_count, "hang").await;
    let y_ids = events(&s, &y, healthy_count, "ok").await;
    let started = Instant::now();
    let first = dispatcher::sweep(&s.dispatcher, Utc::now()).await.ok();
    let took = started.elapsed();
    let y_first = count(&healthy, &y_ids);
    let last_y = healthy
        .received()
        .iter()
        .map(|r| r.received_at.duration_since(started))
        .max()
        .unwrap_or_default();
    // The hanging URL comes back; sweeps across the schedule deliver the rest.
    drop(hanging);
    let back = start_receiver(None, None).await;
    let patch = json!({"configuration": {"event.notification.callback.url": back.url}}).to_string();
    let patched = ce_tests::call(
        &s.app,
        "PATCH",
        &format!("/elements/api-v2/instances/{x}"),
        Some(&s.auth),
        Some(&patch),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let mut at = Utc::now();
    for _ in 0..40 {
        at += chrono::Duration::minutes(6);
        let _ = dispatcher::sweep(&s.dispatcher, at).await;
        if count(&back, &x_ids).3 == 0 {
            break;
        }
    }
    let extra = format!(
        "; first sweep {took:?} ({:?}), the healthy tenant's last delivery {last_y:?} after it began, {} of the hanging tenant's attempted in it",
        first.as_ref().map(|r| (r.delivered, r.retrying, r.deferred)),
        first.as_ref().map_or(0, |r| r.retrying)
    );
    let a = print(
        "hanging-tenant-beside-a-healthy-one (healthy tenant, first sweep)",
        y_first,
        &extra,
    );
    let b = print(
        "hanging-tenant-beside-a-healthy-one (hanging tenant, once its URL is back)",
        count(&back, &x_ids),
        "",
    );
    a && b
}

/// Sends `n` deliveries once each (a vendor that never retries) while the
/// table is down, then brings it back and sweeps; counts against the callback.
async fn table_down_run<F, Fut>(
    name: &str,
    s: &Stack,
    proxy: &ce_tests::outage::OutageProxy,
    receiver: &Receiver,
    n: usize,
    send: F,
) -> bool
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Option<String>)>,
{
    // A live container has read the instance before the outage.
    let (status, warm_id) = send(0).await;
    assert_eq!(status, 200);
    proxy.down();
    let send = &send;
    let answers: Vec<(u16, Option<String>)> = stream::iter(1..=n)
        .map(|i| async move { send(i).await })
        .buffer_unordered(10)
        .collect()
        .await;
    proxy.up();
    let answered_2xx = answers
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .count();
    let mut ids: Vec<String> = answers.into_iter().filter_map(|(_, id)| id).collect();
    ids.extend(warm_id);
    let mut sweeps = 0;
    while count(receiver, &ids).3 > 0 && sweeps < 10 {
        let _ = dispatcher::sweep(&s.dispatcher, Utc::now()).await;
        sweeps += 1;
    }
    let (_, delivered, doubled, _) = count(receiver, &ids);
    let sent = n + 1;
    let lost = sent - delivered;
    println!("fault {name}: sent {sent} (answered 2xx during the outage: {answered_2xx} of {n}), delivered {delivered}, delivered more than once {doubled}, lost {lost}");
    lost == 0 && doubled == 0 && answered_2xx == n
}

fn spooled_or_stored(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["spooled"][0]
        .as_str()
        .or_else(|| v["eventIds"][0].as_str())
        .map(str::to_string)
}

/// The table down during WooCommerce deliveries (and ONe's, which have no
/// published retry policy either).
pub async fn table_down(n: usize) -> bool {
    use ce_tests::vendors::woocommerce;
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("run through scripts/with-moto.sh");
    let mut ok = true;

    // ONe.
    let proxy = ce_tests::outage::OutageProxy::start(&moto).await;
    let s = ce_tests::served_stack_via(&proxy.endpoint).await;
    let receiver = start_receiver(None, None).await;
    let id = one_instance(&s, &s.auth, &receiver.url).await;
    let url = s.url(&format!("/events/one/{id}"));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    ok &= table_down_run(
        "the-table-down-during-one-deliveries",
        &s,
        &proxy,
        &receiver,
        n,
        |i| {
            let d = ce_tests::vendors::one::delivery(
                &ce_tests::vendors::one::client_logged(&format!("down-{i}")),
                "u",
                "p",
            );
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut req = http.post(&url).body(d.body);
                for (k, v) in &d.headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (
                            status,
                            spooled_or_stored(&r.text().await.unwrap_or_default()),
                        )
                    }
                    Err(_) => (0, None),
                }
            }
        },
    )
    .await;

    // WooCommerce: its instance is created against the store simulator.
    let proxy = ce_tests::outage::OutageProxy::start(&moto).await;
    let s = ce_tests::served_stack_via(&proxy.endpoint).await;
    let receiver = start_receiver(None, None).await;
    let store = woocommerce::start_store("ck_load", "cs_load").await;
    let body = json!({"element": {"key": "woocommercerest"}, "name": "down", "configuration": {
        "store.url": store.base_url, "oauth.api.key": "ck_load", "oauth.api.secret": "cs_load",
        "event.vendor.type": "webhook", "event.notification.enabled": true,
        "event.notification.callback.url": receiver.url}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    if created.status != 200 {
        println!(
            "fault the-table-down-during-woocommerce-deliveries: not run, the WooCommerce instance was not created ({} {})",
            created.status, created.body["message"]
        );
        return false;
    }
    let hook = store
        .registered()
        .into_iter()
        .find(|h| h.topic == "order.updated")
        .expect("order.updated is registered");
    let source = store.source();
    ok &= table_down_run(
        "the-table-down-during-woocommerce-deliveries",
        &s,
        &proxy,
        &receiver,
        n,
        |i| {
            let order = woocommerce::order_payload(
                5000 + i as u64,
                "completed",
                "2026-11-20T10:00:00",
                "2026-11-23T11:00:00",
            );
            let d = woocommerce::delivery(
                "order.updated",
                &source,
                hook.id,
                &format!("load-{i}"),
                &hook.secret,
                &order,
            );
            let url = hook.delivery_url.clone();
            async move {
                let (status, body) = woocommerce::send(&d, &url).await;
                (status, spooled_or_stored(&body))
            }
        },
    )
    .await;
    ok
}
