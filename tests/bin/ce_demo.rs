//! `ce-demo` (`make demo`): the whole product in one minute, on this machine.
//!
//! Starts the local stack (`ce-local`, with its own moto server), sandbox
//! WooCommerce, BigCommerce, Ecwid and ONe stores, and a callback receiver
//! that verifies every signature independently. Creates one instance per
//! store, makes one scripted change in each, and prints each verified,
//! signed callback as it arrives.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ce_tests::receiver::start_receiver;
use ce_tests::vendors::{bigcommerce, ecwid, one, woocommerce};
use chrono::{Timelike, Utc};
use serde_json::{json, Value};

const KEY: &str = "demo-signature-key";
const USER: &str = "dev-user-secret";
const ORG: &str = "dev-org-secret";

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("ce-demo: {e}");
        std::process::exit(1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let local = exe.with_file_name("ce-local");
    if !local.exists() {
        return Err(format!("{} not built; run `make demo`", local.display()));
    }
    let port = free_port();
    println!(
        "▶ starting the local stack (ce-local on 127.0.0.1:{port}, with its own moto server)…"
    );
    let mut stack = Command::new(&local)
        .env("PORT", port.to_string())
        .env("CE_USER_SECRET", USER)
        .env("CE_ORG_SECRET", ORG)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start ce-local: {e}"))?;
    let stdout = stack.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "ce-local did not get ready".to_string())?;
    println!("  {ready}");
    let result = demo(port).await;
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(stack.id() as i32, libc::SIGTERM) };
    let _ = stack.wait();
    println!("▶ local stack stopped");
    result
}

async fn demo(port: u16) -> Result<(), String> {
    let api = format!("http://127.0.0.1:{port}/elements/api-v2");
    let auth = format!("User {USER}, Organization {ORG}");
    let whsec = format!("whsec_{}", base64_encode(KEY.as_bytes()));
    let receiver = start_receiver(Some(&whsec), Some(KEY.as_bytes())).await;
    println!(
        "▶ callback receiver at {} (verifies Standard Webhooks with {whsec}…)",
        receiver.url
    );
    let woo = woocommerce::start_store("ck_demo", "cs_demo").await;
    let big = bigcommerce::start_store("demo", "bc-demo-token").await;
    println!(
        "▶ sandbox stores: WooCommerce {}, BigCommerce {}/api/v2",
        woo.base_url, big.base_url
    );
    let http = reqwest::Client::new();
    let create = |body: Value| {
        let http = http.clone();
        let api = api.clone();
        let auth = auth.clone();
        async move {
            let resp = http
                .post(format!("{api}/instances"))
                .header("authorization", auth)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("creating an instance: {status} {v}"));
            }
            Ok::<Value, String>(v)
        }
    };
    let events = |extra: Value| {
        let mut cfg = json!({"event.notification.enabled": true, "event.notification.callback.url": receiver.url,
                             "event.notification.signature.key": KEY});
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cfg
    };
    println!("▶ creating one instance per store");
    let woo_i = create(json!({"element": {"key": "woocommercerest"}, "name": "Demo WooCommerce",
        "configuration": events(json!({"store.url": woo.base_url, "oauth.api.key": "ck_demo", "oauth.api.secret": "cs_demo", "event.vendor.type": "webhook"}))})).await?;
    println!(
        "  woocommercerest {} — {} webhooks registered at the store",
        woo_i["id"],
        woo.registered().len()
    );
    let big_i = create(json!({"element": {"key": "bigcommerce"}, "name": "Demo BigCommerce",
        "configuration": events(json!({"username": "demo", "password": "bc-demo-token", "store.url": format!("{}/api/v2", big.base_url),
                                       "event.poller.refresh_interval": "1",
                                       "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}))})).await?;
    println!("  bigcommerce {} — polled every minute", big_i["id"]);
    let ecwid_i = create(json!({"element": {"key": "ecwid"}, "name": "Demo Ecwid",
        "configuration": events(json!({"ecwid.store.id": "1003", "ecwid.order.key": "secret_order", "ecwid.client.secret": "ecwid-client-secret"}))})).await?;
    println!(
        "  ecwid {} — webhook URL {}",
        ecwid_i["id"],
        ecwid_i["webhookUrl"].as_str().unwrap_or("")
    );
    let one_i = create(json!({"element": {"key": "one"}, "name": "Demo ONe",
        "configuration": events(json!({"one.webhook.username": "admin", "one.webhook.password": "admin"}))})).await?;
    println!(
        "  one {} — webhook URL {}",
        one_i["id"],
        one_i["webhookUrl"].as_str().unwrap_or("")
    );

    println!("▶ making one change in each store");
    let now = Utc::now().with_nanosecond(0).unwrap();
    let stamp = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let fired = woo
        .fire(
            "order.updated",
            &woocommerce::order_payload(727, "completed", &stamp, &stamp),
        )
        .await;
    println!(
        "  WooCommerce: order 727 completed → webhook answered {}",
        fired.first().map(|f| f.status).unwrap_or(0)
    );
    let body = ecwid::event(
        "order.created",
        1003,
        103838293,
        "80aece08-40e8-4145-8764-6c2f0d3867a5",
        now.timestamp(),
        ecwid::order_created_data("XJ12H"),
    );
    let (status, _) = woocommerce::send(
        &ecwid::delivery(&body, "ecwid-client-secret"),
        ecwid_i["webhookUrl"].as_str().unwrap(),
    )
    .await;
    println!("  Ecwid: order XJ12H created → webhook answered {status}");
    let (status, _) = woocommerce::send(
        &one::delivery(
            &one::with_timestamp(one::cart_opened("cust-7", "cart-42"), &now.to_rfc3339()),
            "admin",
            "admin",
        ),
        one_i["webhookUrl"].as_str().unwrap(),
    )
    .await;
    println!("  ONe: cart cart-42 opened → webhook answered {status}");
    big.upsert("orders", 250, now, now);
    let poll = http
        .post(format!("{api}/instances/{}/events/poll", big_i["id"]))
        .header("authorization", &auth)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "  BigCommerce: order 250 created → polled now (the minute rule would find it too): {}",
        poll.status()
    );

    println!("▶ callbacks (each signature verified by the receiver):");
    let started = Instant::now();
    let mut shown = 0;
    while started.elapsed() < Duration::from_secs(20) && shown < 4 {
        let received = receiver.received();
        for cb in received.iter().skip(shown) {
            let m = &cb.json["message"];
            let e = &m["events"][0];
            println!(
                "  ✓ {:<16} {}/{} {} — webhook-id {} — Standard Webhooks signature {}, Elements signature {}",
                m["elementKey"].as_str().unwrap_or(""),
                e["objectType"].as_str().unwrap_or(""),
                e["objectId"].as_str().unwrap_or(""),
                e["eventType"].as_str().unwrap_or(""),
                cb.webhook_id.as_deref().unwrap_or("-"),
                if cb.standard_signature_valid { "valid" } else { "INVALID" },
                if cb.elements_signature_valid { "valid" } else { "INVALID" },
            );
        }
        shown = received.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_valid = receiver
        .received()
        .iter()
        .all(|c| c.standard_signature_valid && c.elements_signature_valid);
    println!(
        "▶ {shown} of 4 changes arrived as verified callbacks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if shown < 4 || !all_valid {
        return Err("not every change arrived as a verified callback".into());
    }
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
