//! `ce-load`: load figures for docs/benchmarks.md, against the local
//! DynamoDB-compatible server (run through scripts/with-moto.sh).
//!
//! `ce-load dispatch --count N [--concurrency C]`: stores N pending
//! notifications, then sweeps them to a local receiver and reports
//! deliveries per second, with every delivery checked by webhook-id.
//!
//! `ce-load poll --changed N`: one WooCommerce and one BigCommerce poll
//! cycle over N changed orders; reports store calls against the minimum
//! ⌈N/page⌉ + 1 and the process's peak memory (run it for several N: memory
//! stays bounded by a page, not by N).
//!
//! `ce-load faults --count N`: injects each fault and counts that nothing is
//! lost or doubled: a receiver answering 500 for a while, a slow receiver,
//! a receiver down (502) and back, the DynamoDB server going down and coming
//! back mid-run (a TCP proxy cut in front of it, vendors retrying their 5xx),
//! two pollers racing, and a poller killed mid-poll. Retry delays are crossed
//! by sweeping at a simulated later time. Then issue 15's hostile cases
//! (`ce_load/hostile.rs`): a poison `Retry-After`, a hanging tenant beside a
//! healthy one, and the table down during WooCommerce and ONe deliveries.
//!
//! `ce-load hostile --count N`: only the hostile cases of `faults`.
//!
//! `ce-load webhooks --rate R --count N`: sends N ONe webhooks at R per
//! second over HTTP to the served functions, with the dispatcher on its
//! stream trigger, and reports accepted/s, p50/p99 ingest latency, p50/p99
//! ingest→callback latency, exactly-once delivery by webhook-id, and the
//! raw conditional-PutItem rate of the same DynamoDB server as the floor.
//!
//! `dispatch`, `webhooks` and `poll` also report the store requests and
//! capacity units per event, by operation, and CPU seconds per event here
//! and in the DynamoDB server (`ce_load/usage.rs`).

#[path = "ce_load/hostile.rs"]
mod hostile;
#[path = "ce_load/usage.rs"]
mod usage;

use std::time::Instant;

use ce_tests::receiver::start_receiver;
use ce_tests::{ingest, served_stack};
use chrono::Utc;
use serde_json::json;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| {
            w[1].parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dispatch") => {
            dispatch(arg(&args, "--count", 500), arg(&args, "--concurrency", 16)).await
        }
        Some("webhooks") => {
            webhooks(
                arg(&args, "--rate", 50),
                arg(&args, "--count", 500),
                arg(&args, "--payload-bytes", 0),
            )
            .await
        }
        Some("poll") => poll(arg(&args, "--changed", 1000)).await,
        Some("poll-budget") => {
            poll_budget(arg(&args, "--changed", 20_000), arg(&args, "--pages", 5)).await
        }
        Some("faults") => faults(arg(&args, "--count", 100)).await,
        // Only issue 15's hostile-tenant cases of `faults`.
        Some("hostile") => {
            let count = arg(&args, "--count", 100);
            let mut ok = hostile::poison_retry_after(count / 2).await;
            ok &= hostile::hanging_tenant(count * 4, count / 10).await;
            ok &= hostile::table_down(count).await;
            assert!(ok, "a hostile case lost or doubled something");
        }
        _ => {
            eprintln!("usage: ce-load dispatch [--count N] [--concurrency C]\n       ce-load webhooks [--rate R] [--count N] [--payload-bytes B]\n       ce-load poll [--changed N]\n       ce-load poll-budget [--changed N] [--pages P]\n       ce-load faults [--count N]\n       ce-load hostile [--count N]");
            std::process::exit(2);
        }
    }
}

async fn dispatch(count: usize, concurrency: usize) {
    let mut s = served_stack().await;
    s.dispatcher.config.concurrency = concurrency;
    s.dispatcher.config.sweep_batch = 1000;
    let receiver = start_receiver(None, None).await;
    let body = json!({"element": {"key": "one"}, "name": "load", "configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": receiver.url,
        "one.webhook.username": "u", "one.webhook.password": "p"}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    let path = format!("/events/one/{}", created.body["id"]);
    let auth = vec![
        (
            "Authorization".to_string(),
            ce_tests::vendors::one::basic_auth("u", "p"),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    eprintln!("storing {count} notifications…");
    let ingest_usage = usage::Usage::now(&[&s.webhooks.store]);
    let stored = Instant::now();
    for i in 0..count {
        let event = json!({"event": "Client logged", "customerId": format!("c-{i}")}).to_string();
        let reply = ingest(&s.webhooks, &path, &auth, event.as_bytes()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if (i + 1) % 100 == 0 {
            eprintln!("  {} stored", i + 1);
        }
    }
    let store_secs = stored.elapsed().as_secs_f64();
    println!(
        "{}",
        ingest_usage.report("dispatch, ingest", &[&s.webhooks.store], count)
    );
    eprintln!("delivering…");
    let delivery_usage = usage::Usage::now(&[&s.dispatcher.store]);
    let started = Instant::now();
    let mut delivered = 0;
    while delivered < count {
        let report = dispatcher::sweep(&s.dispatcher, Utc::now())
            .await
            .expect("sweep");
        delivered += report.delivered;
        eprintln!("  {delivered} delivered");
        if report.due == 0 {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        delivery_usage.report("dispatch, delivery", &[&s.dispatcher.store], delivered)
    );
    let accepted = receiver.accepted_ids();
    let exactly_once = accepted.len() == count && accepted.values().all(|&n| n == 1);
    println!(
        "dispatch: {count} notifications, concurrency {concurrency}: {delivered} delivered in {secs:.2} s = {:.1} deliveries/s \
         (ingest {:.1}/s); receiver saw {} distinct webhook-ids, exactly once: {exactly_once}",
        delivered as f64 / secs,
        count as f64 / store_secs,
        accepted.len()
    );
    assert!(
        exactly_once,
        "every notification must be delivered exactly once"
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Conditional PutItems per second on the same server: the floor every
/// accepted webhook pays at least once.
async fn put_item_floor(store: &shared::store::Store, count: usize) -> f64 {
    use aws_sdk_dynamodb::types::AttributeValue;
    let started = Instant::now();
    for i in 0..count {
        store
            .client()
            .put_item()
            .table_name(&store.tables().deliveries)
            .item("notification_id", AttributeValue::S(format!("floor-{i}")))
            .item("attempt", AttributeValue::N("1".into()))
            .condition_expression("attribute_not_exists(notification_id)")
            .send()
            .await
            .expect("put");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn webhooks(rate: usize, count: usize, payload_bytes: usize) {
    let s = served_stack().await;
    let receiver = start_receiver(None, None).await;
    let body = json!({"element": {"key": "one"}, "name": "load", "configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": receiver.url,
        "one.webhook.username": "u", "one.webhook.password": "p"}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    let url = created.body["webhookUrl"].as_str().unwrap().to_string();
    // The dispatcher on its stream trigger, as in AWS and `make run`.
    let sdk = shared::store::sdk_config_from_env().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stream = tokio::spawn(ce_local::triggers::run_stream(
        s.store.client().clone(),
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        s.store.tables().notifications.clone(),
        std::sync::Arc::new(s.dispatcher.clone()),
        stop_rx,
    ));
    let http = reqwest::Client::new();
    let interval = std::time::Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    eprintln!("sending {count} webhooks at {rate}/s…");
    let usage = usage::Usage::now(&[&s.webhooks.store, &s.dispatcher.store]);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let resp = http
                .post(&url)
                .basic_auth("u", Some("p"))
                .json(
                    &json!({"event": "Client logged", "customerId": format!("c-{i}"),
                    // Padding to the payload size asked for.
                    "note": "x".repeat(payload_bytes)}),
                )
                .send()
                .await;
            let ok = resp
                .as_ref()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            let id = match resp {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["eventIds"][0].as_str().map(str::to_string)),
                Err(_) => None,
            };
            (ok, sent, sent.elapsed().as_secs_f64() * 1000.0, id)
        }));
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            started + interval * (i as u32 + 1),
        ))
        .await;
    }
    let mut accepted = Vec::new();
    for t in tasks {
        let (ok, sent, ms, id) = t.await.unwrap();
        if ok {
            accepted.push((sent, ms, id.unwrap_or_default()));
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    eprintln!("waiting for every accepted webhook's callback…");
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while receiver.accepted_ids().len() < accepted.len() && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = stream.await;
    let received = receiver.received();
    let last_callback = received
        .iter()
        .map(|r| r.received_at.duration_since(started).as_secs_f64())
        .fold(0.0, f64::max);
    let arrival: std::collections::HashMap<String, Instant> = received
        .iter()
        .filter_map(|r| r.webhook_id.clone().map(|id| (id, r.received_at)))
        .collect();
    let mut ingest: Vec<f64> = accepted.iter().map(|(_, ms, _)| *ms).collect();
    ingest.sort_by(f64::total_cmp);
    let mut end_to_end: Vec<f64> = accepted
        .iter()
        .filter_map(|(sent, _, id)| {
            arrival
                .get(id)
                .map(|at| at.duration_since(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    end_to_end.sort_by(f64::total_cmp);
    let ids = receiver.accepted_ids();
    let exactly_once = ids.len() == accepted.len() && ids.values().all(|&n| n == 1);
    println!(
        "{}",
        usage.report(
            "webhook path (ingest and delivery)",
            &[&s.webhooks.store, &s.dispatcher.store],
            ids.len()
        )
    );
    let mut samples = Vec::new();
    for id in ids.keys().take(50) {
        let item = s
            .store
            .client()
            .get_item()
            .table_name(&s.store.tables().notifications)
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
            .send()
            .await
            .expect("a delivered notification is read")
            .item
            .expect("the delivered notification exists");
        samples.push(shared::store::metering::ItemSample::of(&item));
    }
    println!("{}", usage::write_units_per_event(&samples));
    eprintln!("measuring the raw conditional-PutItem rate of the same server…");
    let floor = put_item_floor(&s.store, 300).await;
    let accepted_rate = accepted.len() as f64 / send_secs;
    // Ingest plus delivery: from the first webhook sent until the last
    // callback arrived, with nothing left pending.
    let end_to_end_rate = ids.len() as f64 / last_callback;
    println!(
        "webhooks: {count} sent at {rate}/s, {} accepted = {accepted_rate:.1}/s; ingest p50 {:.1} ms p99 {:.1} ms; \
         ingest→callback p50 {:.1} ms p99 {:.1} ms; delivered {} distinct, exactly once: {exactly_once}; \
         end to end {end_to_end_rate:.1}/s in {last_callback:.1} s; \
         conditional PutItem floor {floor:.1}/s, accepted/s = {:.2} × floor, end to end = {:.2} × floor",
        accepted.len(),
        percentile(&ingest, 0.5),
        percentile(&ingest, 0.99),
        percentile(&end_to_end, 0.5),
        percentile(&end_to_end, 0.99),
        ids.len(),
        accepted_rate / floor,
        end_to_end_rate / floor,
    );
    assert!(
        exactly_once,
        "every accepted webhook must be delivered exactly once"
    );
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

/// Resets the peak-memory mark (Linux `clear_refs` 5) and returns the
/// current resident size: the poll's own peak is measured from here, apart
/// from the simulators' memory in this same process.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

/// Growth of peak resident memory since `reset_peak`, in KiB.
fn peak_growth(from: u64) -> u64 {
    status_kib("VmHWM:").saturating_sub(from)
}

/// One window of `changed` WooCommerce orders, polled with a budget of
/// `pages` store calls per cycle: how many cycles until the cursor reaches
/// the window's end, and whether every change was notified exactly once.
async fn poll_budget(changed: usize, pages: usize) {
    use ce_tests::vendors::woocommerce;
    use chrono::Timelike;
    let s = served_stack().await;
    let base = Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(5);
    let woo = woocommerce::start_store("ck", "cs").await;
    for id in 1..=changed as u64 {
        let t = (base + chrono::Duration::seconds(id as i64)).naive_utc();
        woo.upsert("orders", id, t, t);
    }
    let body = json!({"element": {"key": "woocommercerest"}, "name": "budget", "configuration": {
        "store.url": woo.base_url, "oauth.api.key": "ck", "oauth.api.secret": "cs",
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": "https://example.com/cb", "event.poller.refresh_interval": "15",
        "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    let instance = s
        .app
        .store
        .get_instance(created.body["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap()
        .open(&s.app.settings.secrets)
        .unwrap();
    let mut poller = s.poller.clone();
    poller.config.max_pages_per_poll = pages;
    let started = Instant::now();
    let mut at = base + chrono::Duration::seconds(changed as i64 + 60);
    let (mut cycles, mut calls, mut notifications) = (0usize, 0usize, 0usize);
    loop {
        cycles += 1;
        let report = poller::poll_instance(&poller, &instance, at).await;
        calls += report.calls();
        notifications += report.notifications();
        match report.outcome {
            poller::PollOutcome::Completed => break,
            poller::PollOutcome::Checkpointed => {}
            other => {
                println!("poll-budget: cycle {cycles} ended {other:?}; stopping");
                break;
            }
        }
        if cycles > changed {
            break;
        }
        at += chrono::Duration::seconds(1);
    }
    // Every notified version, counted through the store's event log.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut cursor = None;
    loop {
        let (page, next) = s
            .app
            .store
            .list_notifications(instance.id, None, 200, cursor.as_ref())
            .await
            .unwrap();
        for n in &page {
            for e in &n.notification.events {
                *seen
                    .entry(format!("{}@{}", e.object_id, e.event_date))
                    .or_default() += 1;
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let twice = seen.values().filter(|&&n| n > 1).count();
    println!(
        "poll-budget woocommerce: {changed} changes in one window, {pages} pages per cycle: {cycles} cycles to completion, {calls} store calls (minimum ⌈{changed}/100⌉+1 = {}), {notifications} notifications, {} distinct changes notified, {twice} notified more than once, {} lost, {:.1} s",
        changed.div_ceil(100) + 1,
        seen.len(),
        changed.saturating_sub(seen.len()),
        started.elapsed().as_secs_f64()
    );
}

async fn poll(changed: usize) {
    use ce_tests::vendors::{bigcommerce, woocommerce};
    use chrono::Timelike;
    let s = served_stack().await;
    let base = Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(5);

    let woo = woocommerce::start_store("ck", "cs").await;
    for id in 1..=changed as u64 {
        let t = (base + chrono::Duration::seconds(id as i64)).naive_utc();
        woo.upsert("orders", id, t, t);
    }
    let body = json!({"element": {"key": "woocommercerest"}, "name": "load", "configuration": {
        "store.url": woo.base_url, "oauth.api.key": "ck", "oauth.api.secret": "cs",
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": "https://example.com/cb", "event.poller.refresh_interval": "15",
        "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    let instance = s
        .app
        .store
        .get_instance(created.body["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap()
        .open(&s.app.settings.secrets)
        .unwrap();
    let rss = reset_peak();
    let poll_usage = usage::Usage::now(&[&s.poller.store]);
    let started = Instant::now();
    let report = poller::poll_instance(
        &s.poller,
        &instance,
        base + chrono::Duration::seconds(changed as i64 + 60),
    )
    .await;
    let woo_secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        poll_usage.report(
            "poll woocommerce, storing (per changed order)",
            &[&s.poller.store],
            report.changes()
        )
    );
    let woo_mem = peak_growth(rss);
    let woo_min = changed.div_ceil(100) + 1;
    println!(
        "poll woocommerce: {changed} changed orders: {} store calls (minimum ⌈{changed}/100⌉+1 = {woo_min}), {} changes, {} notifications, {:?}, {woo_secs:.2} s, peak memory growth during the poll {woo_mem} KiB (store simulator included)",
        report.calls(), report.changes(), report.notifications(), report.outcome
    );

    let big = bigcommerce::start_store("u", "t").await;
    big.set_quota(100_000, std::time::Duration::from_secs(30));
    for id in 1..=changed as u64 {
        big.upsert(
            "orders",
            id,
            base + chrono::Duration::seconds(id as i64 % 600),
            base - chrono::Duration::days(1),
        );
    }
    let body = json!({"element": {"key": "bigcommerce"}, "name": "load", "configuration": {
        "username": "u", "password": "t", "store.url": format!("{}/api/v2", big.base_url),
        "event.notification.enabled": true, "event.notification.callback.url": "https://example.com/cb",
        "event.poller.refresh_interval": "15",
        "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}});
    let created = ce_tests::call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    let instance = s
        .app
        .store
        .get_instance(created.body["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap()
        .open(&s.app.settings.secrets)
        .unwrap();
    let rss = reset_peak();
    let started = Instant::now();
    let report =
        poller::poll_instance(&s.poller, &instance, base + chrono::Duration::seconds(700)).await;
    let big_secs = started.elapsed().as_secs_f64();
    let big_mem = peak_growth(rss);
    let big_min = changed.div_ceil(250) + 1;
    println!(
        "poll bigcommerce: {changed} changed orders: {} store calls (minimum ⌈{changed}/250⌉+1 = {big_min}), {} changes, {} notifications, {:?}, {big_secs:.2} s, peak memory growth during the poll {big_mem} KiB (store simulator included)",
        report.calls(), report.changes(), report.notifications(), report.outcome
    );
}

struct FaultRun<'a> {
    s: &'a ce_tests::Stack,
    receiver: ce_tests::receiver::Receiver,
    webhook_url: String,
    instance_id: serde_json::Value,
    /// Non-2xx answers the vendor got (and retried).
    refused: std::sync::atomic::AtomicUsize,
}

impl FaultRun<'_> {
    async fn new(s: &ce_tests::Stack) -> FaultRun<'_> {
        let receiver = start_receiver(None, None).await;
        let created = s
            .create(
                json!({"element": {"key": "one"}, "name": "faults", "configuration": {
                "event.notification.enabled": true, "event.notification.callback.url": receiver.url,
                "one.webhook.username": "u", "one.webhook.password": "p"}}),
            )
            .await;
        FaultRun {
            s,
            receiver,
            webhook_url: created["webhookUrl"].as_str().unwrap().to_string(),
            instance_id: created["id"].clone(),
            refused: Default::default(),
        }
    }

    /// Sends webhooks as a vendor does: a non-2xx is retried with the same body.
    async fn send(&self, from: usize, to: usize) -> usize {
        let http = reqwest::Client::new();
        let mut accepted = 0;
        for i in from..to {
            let body = json!({"event": "Client logged", "customerId": format!("c-{i}")});
            for _ in 0..200 {
                let ok = http
                    .post(&self.webhook_url)
                    .basic_auth("u", Some("p"))
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    accepted += 1;
                    break;
                }
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        accepted
    }

    /// Sweeps at simulated times across the retry schedule (10 min to about
    /// 10 h ahead), so every retry that is due by then gets its attempt.
    async fn drain(&self) {
        let mut at = Utc::now() + chrono::Duration::minutes(10);
        for _ in 0..20 {
            let _ = dispatcher::sweep(&self.s.dispatcher, at).await;
            at += chrono::Duration::minutes(31);
        }
    }

    async fn stored(&self) -> usize {
        let mut n = 0;
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(t) => format!(
                    "/elements/api-v2/instances/{}/events?pageSize=200&nextPage={t}",
                    self.instance_id
                ),
                None => format!(
                    "/elements/api-v2/instances/{}/events?pageSize=200",
                    self.instance_id
                ),
            };
            let reply = ce_tests::call(&self.s.app, "GET", &path, Some(&self.s.auth), None).await;
            n += reply.body.as_array().map(Vec::len).unwrap_or(0);
            next = reply
                .response
                .header("elements-next-page-token")
                .map(str::to_string);
            if next.is_none() {
                return n;
            }
        }
    }

    async fn report(&self, name: &str, sent: usize, accepted: usize) -> bool {
        let stored = self.stored().await;
        let ids = self.receiver.accepted_ids();
        let doubled = ids.values().filter(|&&n| n > 1).count();
        let lost = accepted.saturating_sub(ids.len());
        println!("fault {name}: sent {sent}, accepted {accepted}, stored {stored}, delivered {} distinct, delivered more than once {doubled}, lost {lost}", ids.len());
        stored == accepted && lost == 0 && doubled == 0 && accepted == sent
    }
}

async fn faults(count: usize) {
    use ce_tests::receiver::Behaviour;
    let mut all_ok = true;

    let s = served_stack().await;
    let run = FaultRun::new(&s).await;
    run.receiver.set_default(Behaviour::Status(500));
    let accepted = run.send(0, count).await;
    run.drain_once().await;
    run.receiver.set_default(Behaviour::Status(200));
    run.drain().await;
    all_ok &= run
        .report("receiver-500-for-a-while", count, accepted)
        .await;

    let run = FaultRun::new(&s).await;
    run.receiver
        .set_default(Behaviour::Slow(std::time::Duration::from_millis(200), 200));
    let accepted = run.send(0, count / 2).await;
    run.drain().await;
    all_ok &= run.report("slow-receiver", count / 2, accepted).await;

    let run = FaultRun::new(&s).await;
    run.receiver.set_default(Behaviour::Status(502));
    let accepted = run.send(0, count).await;
    run.drain_once().await;
    run.drain_once().await;
    run.receiver.set_default(Behaviour::Status(200));
    run.drain().await;
    all_ok &= run.report("receiver-down-and-back", count, accepted).await;

    // DynamoDB goes down mid-run and comes back.
    let proxy =
        ce_tests::outage::OutageProxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let s2 = ce_tests::served_stack_via(&proxy.endpoint).await;
    let run = FaultRun::new(&s2).await;
    let first = run.send(0, count / 2).await;
    proxy.down();
    // Back after 3 s; meanwhile the vendor keeps retrying its 5xx.
    let outage = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        proxy.up();
        proxy
    });
    let second = run.send(count / 2, count).await;
    let proxy = outage.await.unwrap();
    // Every webhook sent again (a vendor retrying after a lost answer):
    // accepted, and collapsed onto what was stored (or spooled).
    let replays = run.send(0, count).await;
    run.drain().await;
    let refused = run.refused.load(std::sync::atomic::Ordering::Relaxed);
    println!("fault dynamodb-down-and-back: the vendor got {refused} non-2xx answers during the outage (verified deliveries are spooled and answered 200); {replays} replays accepted as duplicates");
    all_ok &= replays == count;
    all_ok &= run
        .report("dynamodb-down-and-back", count, first + second)
        .await;
    drop(proxy);

    all_ok &= hostile::poison_retry_after(count / 2).await;
    all_ok &= hostile::hanging_tenant(count * 4, count / 10).await;
    all_ok &= hostile::table_down(count).await;
    all_ok &= poll_faults(&s).await;
    assert!(all_ok, "a fault lost or doubled something");
}

impl FaultRun<'_> {
    async fn drain_once(&self) {
        let _ = dispatcher::sweep(
            &self.s.dispatcher,
            Utc::now() + chrono::Duration::minutes(1),
        )
        .await;
    }
}

/// Two pollers racing, and a poller killed mid-poll: every order once.
async fn poll_faults(s: &ce_tests::Stack) -> bool {
    use ce_tests::vendors::woocommerce;
    use chrono::Timelike;
    let mut ok = true;
    for scenario in ["two-pollers-racing", "poller-killed-mid-poll"] {
        let store = woocommerce::start_store("ck", "cs").await;
        let created = s
            .create(json!({"element": {"key": "woocommercerest"}, "name": "faults", "configuration": {
                "store.url": store.base_url, "oauth.api.key": "ck", "oauth.api.secret": "cs",
                "event.notification.enabled": true, "event.vendor.type": "polling",
                "event.notification.callback.url": "https://example.com/cb", "event.poller.refresh_interval": "15",
                "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}}))
            .await;
        let instance = s
            .app
            .store
            .get_instance(created["id"].as_u64().unwrap())
            .await
            .unwrap()
            .unwrap()
            .open(&s.app.settings.secrets)
            .unwrap();
        let base = Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(5);
        let orders = 300u64;
        for id in 1..=orders {
            let t = (base + chrono::Duration::seconds(id as i64)).naive_utc();
            store.upsert("orders", id, t, t);
        }
        store.set_delay(std::time::Duration::from_millis(50));
        let at = base + chrono::Duration::seconds(orders as i64 + 60);
        if scenario == "two-pollers-racing" {
            let (a, b) = tokio::join!(
                poller::poll_instance(&s.poller, &instance, at),
                poller::poll_instance(&s.poller, &instance, at)
            );
            let _ = (a, b);
        } else {
            let p = s.poller.clone();
            let i = instance.clone();
            let task = tokio::spawn(async move { poller::poll_instance(&p, &i, at).await });
            while store.list_calls() < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            task.abort();
            let _ = task.await;
        }
        store.set_delay(std::time::Duration::ZERO);
        let _ = poller::poll_instance(
            &s.poller,
            &instance,
            at + s.poller.config.lease + chrono::Duration::seconds(1),
        )
        .await;
        let reply = ce_tests::call(
            &s.app,
            "GET",
            &format!(
                "/elements/api-v2/instances/{}/events?pageSize=200",
                created["id"]
            ),
            Some(&s.auth),
            None,
        )
        .await;
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut pages = vec![reply];
        while let Some(token) = pages
            .last()
            .unwrap()
            .response
            .header("elements-next-page-token")
            .map(str::to_string)
        {
            pages.push(
                ce_tests::call(
                    &s.app,
                    "GET",
                    &format!(
                        "/elements/api-v2/instances/{}/events?pageSize=200&nextPage={token}",
                        created["id"]
                    ),
                    Some(&s.auth),
                    None,
                )
                .await,
            );
        }
        for page in &pages {
            for n in page.body.as_array().unwrap() {
                for e in n["events"].as_array().unwrap() {
                    *seen
                        .entry(e["objectId"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
            }
        }
        let doubled = seen.values().filter(|&&n| n > 1).count();
        let lost = orders as usize - seen.len();
        println!("fault {scenario}: {orders} changed orders, notified {} distinct, notified more than once {doubled}, lost {lost}", seen.len());
        ok &= doubled == 0 && lost == 0;
    }
    ok
}
