//! `ce-sandbox` (`make sandbox`): try the console by hand with no store and
//! no callback endpoint of your own.
//!
//! Starts the local stack (`ce-local`, with its own moto server), a sandbox
//! WooCommerce store (the simulator the tests use) and a callback receiver
//! that verifies each signature. Prints what to type into the console's
//! WooCommerce form, then changes an order at the store every 20 seconds and
//! prints each callback as it arrives, until Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ce_tests::receiver::start_receiver;
use ce_tests::vendors::woocommerce;
use chrono::Utc;

const USER: &str = "dev-user-secret";
const ORG: &str = "dev-org-secret";
const KEY: &str = "sandbox-signature-key";
const CONSUMER_KEY: &str = "ck_sandbox";
const CONSUMER_SECRET: &str = "cs_sandbox";
const CHANGE_EVERY: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("ce-sandbox: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let local = exe.with_file_name("ce-local");
    if !local.exists() {
        return Err(format!("{} not built; run `make sandbox`", local.display()));
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut stack = Command::new(&local)
        .env("PORT", port.to_string())
        .env("CE_USER_SECRET", USER)
        .env("CE_ORG_SECRET", ORG)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start ce-local: {e}"))?;
    let stdout = stack.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(120));
    let result = match ready {
        Ok(_) => sandbox(port).await,
        Err(_) => Err("ce-local did not get ready (is the port free? PORT=<another>)".into()),
    };
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(stack.id() as i32, libc::SIGTERM) };
    let _ = stack.wait();
    println!("▶ local stack stopped");
    result
}

async fn sandbox(port: u16) -> Result<(), String> {
    let whsec = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY)
    );
    let receiver = start_receiver(Some(&whsec), Some(KEY.as_bytes())).await;
    let store = woocommerce::start_store(CONSUMER_KEY, CONSUMER_SECRET).await;
    println!(
        "▶ open the console: http://127.0.0.1:{port}/console/\n\
         \x20   User secret          {USER}\n\
         \x20   Organization secret  {ORG}\n\
         ▶ New instance → Create a WooCommerce instance, with:\n\
         \x20   Store URL            {}\n\
         \x20   Consumer key         {CONSUMER_KEY}\n\
         \x20   Consumer secret      {CONSUMER_SECRET}\n\
         \x20   Callback URL         {}\n\
         \x20   Signature key        {KEY}   (optional; this receiver verifies it)\n\
         \x20   Polling, any resources with orders ticked → Create instance\n\
         ▶ an order changes at the store every {} s; press Poll now on the instance page\n\
         \x20 (or wait for the refresh interval). Callbacks are printed below. Ctrl-C stops everything.",
        store.base_url,
        receiver.url,
        CHANGE_EVERY.as_secs()
    );
    let mut order = 1000u64;
    let mut seen = 0usize;
    let mut change = tokio::time::interval(CHANGE_EVERY);
    // The first change one period from now, once there is an instance to see it.
    change.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = change.tick() => {
                let now = Utc::now().naive_utc();
                store.upsert("orders", order, now, now - chrono::Duration::hours(1));
                println!("  store: order {order} changed");
                order += 1;
            }
            _ = check.tick() => {
                let received = receiver.received();
                for r in &received[seen..] {
                    let events = r.json["message"]["events"].as_array().cloned().unwrap_or_default();
                    let what: Vec<String> = events
                        .iter()
                        .map(|e| format!("{}/{} {}", e["objectType"].as_str().unwrap_or("?"),
                            e["objectId"].as_str().unwrap_or("?"), e["eventType"].as_str().unwrap_or("?")))
                        .collect();
                    let signed = if r.elements_signature_valid && r.standard_signature_valid {
                        "signatures valid"
                    } else {
                        "unsigned (no signature key, or another one)"
                    };
                    println!("  ✓ callback {} — webhook-id {} — {signed}", what.join(", "), r.id().unwrap_or("?"));
                }
                seen = received.len();
            }
        }
    }
}
