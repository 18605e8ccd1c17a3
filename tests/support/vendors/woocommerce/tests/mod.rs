//! The simulator's own tests (`cargo test -p ce-tests --lib`).

mod auth;
mod catalog;
mod encoding;
mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ce_local::http_server::{serve, BoxFuture, Handler};
use chrono::NaiveDateTime;
use serde_json::Value;
use shared::api::{ApiRequest, ApiResponse};
use tokio::sync::oneshot;

use super::{oauth1_authorization_header, oauth1_signed_url};

/// A loopback receiver recording what it gets; `/fail` answers 500.
async fn receiver() -> (String, Arc<Mutex<Vec<ApiRequest>>>, oneshot::Sender<()>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let rec = got.clone();
    let handler: Handler = Arc::new(move |req: ApiRequest| -> BoxFuture {
        let rec = rec.clone();
        Box::pin(async move {
            let status = if req.path == "/fail" { 500 } else { 200 };
            rec.lock().unwrap().push(req);
            ApiResponse {
                status,
                headers: vec![],
                body: b"ok".to_vec(),
            }
        })
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, handler, async move {
        let _ = rx.await;
    }));
    (url, got, tx)
}

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A fresh nonce for each signed request.
fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "n{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` signed for `method` with HMAC-SHA1 now, RFC 5849 style.
fn signed_as(method: &str, url: &str, key: &str, secret: &str) -> String {
    oauth1_signed_url(
        method,
        url,
        key,
        secret,
        "HMAC-SHA1",
        chrono::Utc::now().timestamp(),
        &nonce(),
    )
}

/// `url` signed for `method` with the `ck`/`cs` key most tests use.
fn signed(method: &str, url: &str) -> String {
    signed_as(method, url, "ck", "cs")
}

/// A GET with the `ck`/`cs` key, OAuth 1.0a in the `Authorization` header
/// (so the store's `Link` headers carry only the request's own query):
/// (status, headers, JSON body).
async fn wc_get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let auth = oauth1_authorization_header(
        "GET",
        url,
        "ck",
        "cs",
        "HMAC-SHA256",
        chrono::Utc::now().timestamp(),
        &nonce(),
    );
    let r = client()
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}
