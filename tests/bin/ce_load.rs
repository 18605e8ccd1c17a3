//! `ce-load`: load figures for docs/benchmarks.md, against the local
//! DynamoDB-compatible server (run through scripts/with-moto.sh).
//!
//! `ce-load dispatch --count N [--concurrency C]`: stores N pending
//! notifications, then sweeps them to a local receiver and reports
//! deliveries per second, with every delivery checked by webhook-id.

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
        _ => {
            eprintln!("usage: ce-load dispatch [--count N] [--concurrency C]");
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
    eprintln!("delivering…");
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
