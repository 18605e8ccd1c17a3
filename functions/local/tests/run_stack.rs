//! The run command end to end, over HTTP only: the `ce-local` binary starts
//! its own moto server, serves the API, ingests a webhook and delivers the
//! signed callback to a receiver; SIGTERM stops everything it started.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use ce_local::http_server::{serve, Handler};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use shared::api::ApiResponse;

const USER: &str = "e2e-user-secret";
const ORG: &str = "e2e-org-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Stack {
    child: Child,
    base: String,
    moto_port: u16,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start_stack(port: u16) -> Stack {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ce-local"))
        .env("PORT", port.to_string())
        .env("CE_USER_SECRET", USER)
        .env("CE_ORG_SECRET", ORG)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("PUBLIC_BASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ce-local starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("ce-local prints its ready line");
    assert!(line.contains("ready"), "{line}");
    let moto_port: u16 = line
        .split("DynamoDB at http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("the ready line names the DynamoDB endpoint");
    Stack {
        child,
        base: format!("http://127.0.0.1:{port}/elements/api-v2"),
        moto_port,
    }
}

type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

async fn start_receiver() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let handler: Handler = Arc::new(move |req| {
        let record = record.clone();
        Box::pin(async move {
            let headers = req
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            record.lock().unwrap().push((headers, req.body));
            ApiResponse::json(200, &json!({}))
        })
    });
    tokio::spawn(serve(listener, handler, std::future::pending::<()>()));
    (url, seen)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn process_with_arg_exists(arg: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .map(|raw| raw.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
                .unwrap_or(false)
        })
}

#[tokio::test]
async fn the_run_command_serves_ingests_delivers_and_stops_cleanly() {
    let mut stack = start_stack(free_port());
    let http = reqwest::Client::new();
    let auth = format!("User {USER}, Organization {ORG}");
    let (callback, seen) = start_receiver().await;
    // The console is served beside the API, as on AWS.
    let console_url = stack.base.replace("/elements/api-v2", "/console/");
    let page = http.get(&console_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("connector-events console"));
    let created: Value = http
        .post(format!("{}/instances", stack.base))
        .header("authorization", &auth)
        .json(
            &json!({"element": {"key": "one"}, "name": "e2e", "configuration": {
            "event.notification.enabled": true, "event.notification.callback.url": callback,
            "event.notification.signature.key": "e2e-key",
            "one.webhook.username": "admin", "one.webhook.password": "admin"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_url = created["webhookUrl"]
        .as_str()
        .expect("webhook URL")
        .to_string();
    let sent = Instant::now();
    let ingested = http
        .post(&webhook_url)
        .basic_auth("admin", Some("admin"))
        .json(&json!({"event": "Cart opened", "customerId": "c-1", "cartId": "cart-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ingested.status(), 200);
    while seen.lock().unwrap().is_empty() && sent.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (headers, body) = seen
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("the callback arrived");
    // Standard Webhooks, verified here independently of the service's code.
    let id = header(&headers, "webhook-id").unwrap();
    let ts = header(&headers, "webhook-timestamp").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"e2e-key").unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        header(&headers, "webhook-signature"),
        Some(expected.as_str())
    );
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(message["message"]["events"][0]["objectId"], "cart-1");

    // SIGTERM stops the stack and the moto server it started.
    let pid = stack.child.id() as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = stack.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ce-local did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let moto_port = stack.moto_port.to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_with_arg_exists(&moto_port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !process_with_arg_exists(&moto_port),
        "moto_server was left running"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", stack.moto_port)).is_err());
}

#[test]
fn a_busy_port_is_reported_clearly() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_ce-local"))
        .env("PORT", port.to_string())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );
}
