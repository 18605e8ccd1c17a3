//! A client's callback endpoint on loopback: records every request the
//! production code delivers, verifies its signatures, and answers as the test
//! scripts it (status codes, `Retry-After`, redirects, slow or no answers).
//!
//! The callback contract checked here:
//! - `POST` with a JSON body
//!   `{"message":{"eventId","instanceId","instance_id","elementKey","events":[...],"raw":{...}}}`;
//! - `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(key, body)>` when
//!   the instance has a signature key, and `Elements-Webhook-Id: <id>`;
//! - the Standard Webhooks headers `webhook-id`, `webhook-timestamp` (unix
//!   seconds) and `webhook-signature` (space-separated `v1,<base64>` entries)
//!   over `{webhook-id}.{webhook-timestamp}.{body}`, keyed like a Standard
//!   Webhooks library: the secret `whsec_<base64(key)>`, prefix stripped and
//!   base64-decoded (spec:
//!   <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).
//!
//! Verification is implemented here with `hmac`, `sha2` and `base64`,
//! independently of the production signing code; comparisons are
//! constant-time (`Mac::verify_slice`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ce_local::http_server::{serve, BoxFuture, Handler};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use shared::api::{ApiRequest, ApiResponse};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from now, either way (Standard Webhooks).
pub const TIMESTAMP_TOLERANCE_SECS: u64 = 5 * 60;

/// How long [`Behaviour::Hang`] holds a request (unless the receiver is dropped).
pub const HANG_FOR: Duration = Duration::from_secs(10 * 60);

/// The path of [`Receiver::url`]; any other path is answered the same way.
pub const CALLBACK_PATH: &str = "/callback";

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer this status with the JSON body `{}`.
    Status(u16),
    /// Answer this status with a `Retry-After` header (seconds or HTTP-date).
    RetryAfter(u16, String),
    /// Sleep, then answer this status.
    Slow(Duration, u16),
    /// Answer this (3xx) status with a `Location` header.
    Redirect(u16, String),
    /// Never answer (hold the request for [`HANG_FOR`]); the client must time
    /// out. Dropping the [`Receiver`] releases held requests.
    Hang,
    /// Answer this status with these headers and this JSON body (e.g. a
    /// store's 429 with hostile `X-Rate-Limit-*` values, or a page `[]`).
    Respond(u16, Vec<(String, String)>, Value),
}

impl Behaviour {
    /// The status this behaviour answers; 0 for [`Behaviour::Hang`].
    pub fn status(&self) -> u16 {
        match self {
            Behaviour::Status(s)
            | Behaviour::RetryAfter(s, _)
            | Behaviour::Slow(_, s)
            | Behaviour::Redirect(s, _)
            | Behaviour::Respond(s, _, _) => *s,
            Behaviour::Hang => 0,
        }
    }

    fn check(&self) {
        if !matches!(self, Behaviour::Hang) {
            assert!(
                http::StatusCode::from_u16(self.status()).is_ok(),
                "{self:?}: not an HTTP status code"
            );
        }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request path, e.g. `/callback`.
    pub path: String,
    /// Every header (names lowercase, as received; repeated names repeated).
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The body as JSON; `Value::Null` when it is not JSON.
    pub json: Value,
    /// `webhook-id`.
    pub webhook_id: Option<String>,
    /// `Elements-Webhook-Id`.
    pub elements_webhook_id: Option<String>,
    /// `webhook-timestamp`, when it is an integer.
    pub timestamp: Option<i64>,
    /// The Standard Webhooks signature verifies with the configured secret and
    /// the timestamp is within [`TIMESTAMP_TOLERANCE_SECS`] of the time of
    /// arrival. False when no secret is configured or a header is missing.
    pub standard_signature_valid: bool,
    /// `Elements-Webhook-Signature` verifies with the configured key. False
    /// when no key is configured or the header is missing.
    pub elements_signature_valid: bool,
    /// The status answered (recorded before answering); 0 for `Hang`.
    pub answered: u16,
    pub received_at: Instant,
}

impl Received {
    /// The first header with this name, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The id [`Receiver::accepted_ids`] counts: `webhook-id`, else
    /// `Elements-Webhook-Id`.
    pub fn id(&self) -> Option<&str> {
        self.webhook_id
            .as_deref()
            .or(self.elements_webhook_id.as_deref())
    }
}

struct State {
    script: VecDeque<Behaviour>,
    default: Behaviour,
    received: Vec<Received>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

struct Keys {
    standard_secret: Option<String>,
    elements_key: Option<Vec<u8>>,
}

/// A running callback endpoint; stops serving when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/callback`.
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    release: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Requests held by `Hang` end now (their connections are closed).
        self.release.send_replace(true);
        self.server.abort();
    }
}

/// Starts a receiver on `127.0.0.1`, verifying Standard Webhooks signatures
/// with `standard_webhooks_secret` (`whsec_...`) and `Elements-Webhook-Signature`
/// with `elements_key`. Answers `200 {}` until scripted otherwise.
pub async fn start_receiver(
    standard_webhooks_secret: Option<&str>,
    elements_key: Option<&[u8]>,
) -> Receiver {
    if let Some(secret) = standard_webhooks_secret {
        assert!(
            standard_webhooks_key(secret).is_some(),
            "Standard Webhooks secret {secret:?} is not `whsec_<base64>`"
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let state = Arc::new(Mutex::new(State {
        script: VecDeque::new(),
        default: Behaviour::Status(200),
        received: Vec::new(),
    }));
    let keys = Arc::new(Keys {
        standard_secret: standard_webhooks_secret.map(str::to_string),
        elements_key: elements_key.map(<[u8]>::to_vec),
    });
    let (release, released) = watch::channel(false);
    let handler_state = state.clone();
    let handler: Handler = Arc::new(move |req: ApiRequest| -> BoxFuture {
        let state = handler_state.clone();
        let keys = keys.clone();
        let released = released.clone();
        Box::pin(async move { handle(&state, &keys, released, req).await })
    });
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, handler, async move {
        let _ = rx.await;
    }));
    Receiver {
        url: format!("http://{addr}{CALLBACK_PATH}"),
        state,
        shutdown: Some(tx),
        release,
        server,
    }
}

impl Receiver {
    /// Answers for the next requests, in order (appended to any still
    /// pending); after them, the default.
    pub fn script(&self, behaviours: Vec<Behaviour>) {
        behaviours.iter().for_each(Behaviour::check);
        lock(&self.state).script.extend(behaviours);
    }

    /// The answer once the script is used up; initially `Status(200)`.
    pub fn set_default(&self, b: Behaviour) {
        b.check();
        lock(&self.state).default = b;
    }

    /// Every request, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// The requests answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        lock(&self.state)
            .received
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .cloned()
            .collect()
    }

    /// How many times each id was accepted (answered 2xx). The id is
    /// `webhook-id`, else `Elements-Webhook-Id`; requests with neither are
    /// not counted.
    pub fn accepted_ids(&self) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        for r in self.accepted() {
            if let Some(id) = r.id() {
                *ids.entry(id.to_string()).or_insert(0) += 1;
            }
        }
        ids
    }

    /// Polls until at least `n` requests were received; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if lock(&self.state).received.len() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(
    state: &Mutex<State>,
    keys: &Keys,
    mut released: watch::Receiver<bool>,
    req: ApiRequest,
) -> ApiResponse {
    let received_at = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let header = |name: &str| req.header(name).map(str::to_string);
    let webhook_id = header("webhook-id");
    let timestamp = req
        .header("webhook-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok());
    let standard_signature_valid = match (
        keys.standard_secret.as_deref(),
        webhook_id.as_deref(),
        timestamp,
        req.header("webhook-signature"),
    ) {
        (Some(secret), Some(id), Some(ts), Some(sig)) => {
            verify_standard_webhooks(secret, id, ts, sig, &req.body, now)
        }
        _ => false,
    };
    let elements_signature_valid = match (
        keys.elements_key.as_deref(),
        req.header("elements-webhook-signature"),
    ) {
        (Some(key), Some(sig)) => verify_elements_signature(key, sig, &req.body),
        _ => false,
    };
    let behaviour = {
        let mut state = lock(state);
        let behaviour = match state.script.pop_front() {
            Some(b) => b,
            None => state.default.clone(),
        };
        state.received.push(Received {
            method: req.method.to_string(),
            path: req.path.clone(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: req.body.clone(),
            json: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
            webhook_id,
            elements_webhook_id: header("elements-webhook-id"),
            timestamp,
            standard_signature_valid,
            elements_signature_valid,
            answered: behaviour.status(),
            received_at,
        });
        behaviour
    };
    let empty = || ApiResponse::json(behaviour.status(), &serde_json::json!({}));
    match &behaviour {
        Behaviour::Status(_) => empty(),
        Behaviour::RetryAfter(_, after) => empty().with_header("retry-after", after.as_str()),
        Behaviour::Redirect(_, location) => empty().with_header("location", location.as_str()),
        Behaviour::Slow(delay, _) => {
            tokio::time::sleep(*delay).await;
            empty()
        }
        Behaviour::Respond(status, headers, body) => headers
            .iter()
            .fold(ApiResponse::json(*status, body), |resp, (name, value)| {
                resp.with_header(name, value.as_str())
            }),
        Behaviour::Hang => {
            tokio::select! {
                _ = tokio::time::sleep(HANG_FOR) => {}
                _ = released.wait_for(|r| *r) => {}
            }
            // Only reached after HANG_FOR or once the receiver is dropped:
            // answer and close the connection so nothing waits any longer.
            ApiResponse::json(503, &serde_json::json!({})).with_header("connection", "close")
        }
    }
}

/// The HMAC key of a Standard Webhooks secret: `whsec_` stripped (when
/// present, as the official libraries do), the rest base64-decoded.
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
}

/// Standard Webhooks verification: the timestamp within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now`, and any `v1,<base64>` entry of the
/// space-separated `sig_header` equal to base64(HMAC-SHA256(key,
/// `{id}.{ts}.{body}`)). Entries of other versions are ignored.
pub fn verify_standard_webhooks(
    secret: &str,
    id: &str,
    ts: i64,
    sig_header: &str,
    body: &[u8],
    now: i64,
) -> bool {
    let Some(key) = standard_webhooks_key(secret) else {
        return false;
    };
    if now.abs_diff(ts) > TIMESTAMP_TOLERANCE_SECS {
        return false;
    }
    let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    sig_header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok())
}

/// `Elements-Webhook-Signature` verification: the header is
/// `sha256=<base64(HMAC-SHA256(key, body))>`.
pub fn verify_elements_signature(key: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(sig) = header
        .strip_prefix("sha256=")
        .and_then(|s| STANDARD.decode(s.trim()).ok())
    else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The official Standard Webhooks test vector (the spec and its libraries).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const KEY: &[u8] = b"sig-key";
    // python3 -c 'import base64; print("whsec_" + base64.b64encode(b"sig-key").decode())'
    const KEY_SECRET: &str = "whsec_c2lnLWtleQ==";
    const BODY: &[u8] = br#"{"message":{"eventId":"evt_1","instanceId":"42","instance_id":"42","elementKey":"woocommerce","events":[{"objectType":"order","eventType":"UPDATED","objectId":"7"}],"raw":{"id":7}}}"#;
    // python3: base64.b64encode(hmac.new(b"sig-key", BODY, hashlib.sha256).digest())
    const BODY_ELEMENTS_SIG: &str = "sha256=4CAa4TsXW9bt9HEQh6XpI3sVGEqjhSUphOJbwHI3ISU=";
    const BODY_TS: i64 = 1700000000;
    // python3: base64.b64encode(hmac.new(b"sig-key", b"evt_1.1700000000." + BODY, hashlib.sha256).digest())
    const BODY_STANDARD_SIG: &str = "v1,tgi6/si56OmIHXus5Y/J3mMLQtblxAXVviDFZp03qo0=";

    fn client(timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .unwrap()
    }

    /// A `v1,` signature for the current time in a live request; the HMAC
    /// itself is checked against the constants above in
    /// `hand_computed_signatures_verify`.
    fn sign_v1(key: &[u8], id: &str, ts: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    async fn post(
        client: &reqwest::Client,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> reqwest::Response {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.send().await.unwrap()
    }

    #[test]
    fn official_standard_webhooks_vector() {
        let ok = |secret: &str, id: &str, ts: i64, sig: &str, body: &[u8], now: i64| {
            verify_standard_webhooks(secret, id, ts, sig, body, now)
        };
        let (s, id, ts, sig, body) = (VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_SIG, VECTOR_BODY);
        assert!(ok(s, id, ts, sig, body, ts));
        // The secret without its prefix, as the libraries accept it.
        assert!(ok(&s["whsec_".len()..], id, ts, sig, body, ts));
        // Tolerance: 5 minutes either way.
        assert!(ok(s, id, ts, sig, body, ts + 300));
        assert!(ok(s, id, ts, sig, body, ts - 300));
        assert!(!ok(s, id, ts, sig, body, ts + 301));
        assert!(!ok(s, id, ts, sig, body, ts - 301));
        // A list of signatures: any v1 match; other versions ignored.
        let good = &sig["v1,".len()..];
        assert!(ok(
            s,
            id,
            ts,
            &format!("v1,AAAA v1a,{good} {sig}"),
            body,
            ts
        ));
        assert!(!ok(s, id, ts, &format!("v2,{good}"), body, ts));
        assert!(!ok(s, id, ts, good, body, ts));
        // Anything else changed.
        assert!(!ok(s, "msg_other", ts, sig, body, ts));
        assert!(!ok(s, id, ts + 1, sig, body, ts));
        assert!(!ok(s, id, ts, sig, br#"{"test": 2432232315}"#, ts));
        assert!(!ok("whsec_c2lnLWtleQ==", id, ts, sig, body, ts));
        assert!(!ok("whsec_not base64!", id, ts, sig, body, ts));
        assert!(!ok(s, id, ts, "v1,not base64!", body, ts));
    }

    #[test]
    fn hand_computed_signatures_verify() {
        assert_eq!(standard_webhooks_key(KEY_SECRET).as_deref(), Some(KEY));
        assert!(verify_standard_webhooks(
            KEY_SECRET,
            "evt_1",
            BODY_TS,
            BODY_STANDARD_SIG,
            BODY,
            BODY_TS
        ));
        assert_eq!(sign_v1(KEY, "evt_1", BODY_TS, BODY), BODY_STANDARD_SIG);
        assert!(verify_elements_signature(KEY, BODY_ELEMENTS_SIG, BODY));
        assert!(!verify_elements_signature(
            b"other-key",
            BODY_ELEMENTS_SIG,
            BODY
        ));
        assert!(!verify_elements_signature(KEY, BODY_ELEMENTS_SIG, b"{}"));
        assert!(!verify_elements_signature(
            KEY,
            &BODY_ELEMENTS_SIG["sha256=".len()..],
            BODY
        ));
    }

    #[tokio::test]
    async fn records_and_verifies_callbacks() {
        let receiver = start_receiver(Some(KEY_SECRET), Some(KEY)).await;
        assert!(receiver.url.starts_with("http://127.0.0.1:"));
        assert!(receiver.url.ends_with("/callback"));
        let client = client(Duration::from_secs(10));
        let now = chrono::Utc::now().timestamp();

        // Signed correctly, now.
        let response = post(
            &client,
            &receiver.url,
            &[
                ("Elements-Webhook-Signature", BODY_ELEMENTS_SIG.into()),
                ("Elements-Webhook-Id", "evt_1".into()),
                ("webhook-id", "evt_1".into()),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", sign_v1(KEY, "evt_1", now, BODY)),
            ],
            BODY,
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "{}");

        // A correct signature of a timestamp too old.
        post(
            &client,
            &receiver.url,
            &[
                ("Elements-Webhook-Signature", BODY_ELEMENTS_SIG.into()),
                ("webhook-id", "evt_1".into()),
                ("webhook-timestamp", BODY_TS.to_string()),
                ("webhook-signature", BODY_STANDARD_SIG.into()),
            ],
            BODY,
        )
        .await;

        // Wrong signatures: another key, another body.
        post(
            &client,
            &receiver.url,
            &[
                ("Elements-Webhook-Signature", BODY_ELEMENTS_SIG.into()),
                ("webhook-id", "evt_2".into()),
                ("webhook-timestamp", now.to_string()),
                (
                    "webhook-signature",
                    sign_v1(b"other-key", "evt_2", now, b"{}"),
                ),
            ],
            b"{}",
        )
        .await;

        // Unsigned.
        post(&client, &receiver.url, &[], BODY).await;

        let got = receiver.received();
        assert_eq!(got.len(), 4);
        let first = &got[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/callback");
        assert_eq!(first.body, BODY);
        assert_eq!(first.json["message"]["eventId"], "evt_1");
        assert_eq!(first.json["message"]["raw"]["id"], 7);
        assert_eq!(first.webhook_id.as_deref(), Some("evt_1"));
        assert_eq!(first.elements_webhook_id.as_deref(), Some("evt_1"));
        assert_eq!(first.timestamp, Some(now));
        assert_eq!(first.header("Content-Type"), Some("application/json"));
        assert!(first.standard_signature_valid);
        assert!(first.elements_signature_valid);
        assert_eq!(first.answered, 200);

        assert_eq!(got[1].timestamp, Some(BODY_TS));
        assert!(!got[1].standard_signature_valid, "stale timestamp");
        assert!(got[1].elements_signature_valid);
        assert_eq!(got[1].elements_webhook_id, None);

        assert!(!got[2].standard_signature_valid);
        assert!(!got[2].elements_signature_valid);

        assert!(!got[3].standard_signature_valid);
        assert!(!got[3].elements_signature_valid);
        assert_eq!(
            (got[3].webhook_id.as_deref(), got[3].timestamp),
            (None, None)
        );
        assert!(got.windows(2).all(|w| w[0].received_at <= w[1].received_at));

        let ids = receiver.accepted_ids();
        assert_eq!(ids.get("evt_1"), Some(&2));
        assert_eq!(ids.get("evt_2"), Some(&1));
        assert_eq!(ids.len(), 2);

        // No keys configured: nothing verifies.
        let bare = start_receiver(None, None).await;
        post(
            &client,
            &bare.url,
            &[
                ("Elements-Webhook-Signature", BODY_ELEMENTS_SIG.into()),
                ("webhook-id", "evt_1".into()),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", sign_v1(KEY, "evt_1", now, BODY)),
            ],
            BODY,
        )
        .await;
        let got = bare.received();
        assert!(!got[0].standard_signature_valid);
        assert!(!got[0].elements_signature_valid);
    }

    #[tokio::test]
    async fn answers_as_scripted() {
        let receiver = start_receiver(None, None).await;
        receiver.script(vec![
            Behaviour::Status(500),
            Behaviour::RetryAfter(429, "7".into()),
            Behaviour::Redirect(307, "http://127.0.0.1:9/elsewhere".into()),
        ]);
        let client = client(Duration::from_secs(10));
        let send = |id: &str| {
            let url = receiver.url.clone();
            let client = client.clone();
            let id = id.to_string();
            async move { post(&client, &url, &[("webhook-id", id)], BODY).await }
        };

        let r = send("a").await;
        assert_eq!(r.status(), 500);
        assert_eq!(r.text().await.unwrap(), "{}");
        let r = send("a").await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let r = send("b").await;
        assert_eq!(r.status(), 307);
        assert_eq!(r.headers()["location"], "http://127.0.0.1:9/elsewhere");
        // The script is used up: the default.
        assert_eq!(send("a").await.status(), 200);
        receiver.set_default(Behaviour::Status(204));
        assert_eq!(send("c").await.status(), 204);
        // Any path is answered.
        let other = receiver.url.replace("/callback", "/some/other/path");
        assert_eq!(post(&client, &other, &[], b"not json").await.status(), 204);

        let answered: Vec<u16> = receiver.received().iter().map(|r| r.answered).collect();
        assert_eq!(answered, [500, 429, 307, 200, 204, 204]);
        let last = receiver.received().pop().unwrap();
        assert_eq!(last.path, "/some/other/path");
        assert_eq!(last.json, Value::Null);
        assert_eq!(receiver.accepted().len(), 3);
        assert_eq!(
            receiver.accepted_ids(),
            BTreeMap::from([("a".to_string(), 1), ("c".to_string(), 1)])
        );
    }

    #[tokio::test]
    async fn slow_answers_are_recorded_before_answering() {
        let receiver = start_receiver(None, None).await;
        assert!(
            !receiver
                .wait_for_requests(1, Duration::from_millis(50))
                .await
        );
        receiver.script(vec![Behaviour::Slow(Duration::from_millis(400), 202)]);
        let client = client(Duration::from_secs(10));
        let url = receiver.url.clone();
        let started = Instant::now();
        let request = tokio::spawn(async move { post(&client, &url, &[], BODY).await.status() });
        assert!(receiver.wait_for_requests(1, Duration::from_secs(5)).await);
        assert!(!request.is_finished());
        assert_eq!(receiver.received()[0].answered, 202);
        assert_eq!(request.await.unwrap(), 202);
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn hang_times_the_client_out_and_drop_releases_it() {
        let receiver = start_receiver(None, None).await;
        receiver.script(vec![Behaviour::Hang, Behaviour::Hang]);

        let err = client(Duration::from_millis(200))
            .post(&receiver.url)
            .body(BODY.to_vec())
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(receiver.received()[0].answered, 0);
        assert!(receiver.accepted().is_empty());

        // A patient client is released when the receiver goes away.
        let url = receiver.url.clone();
        let patient = tokio::spawn(async move {
            client(Duration::from_secs(60))
                .post(&url)
                .body(BODY.to_vec())
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        assert!(receiver.wait_for_requests(2, Duration::from_secs(5)).await);
        drop(receiver);
        let outcome = tokio::time::timeout(Duration::from_secs(5), patient)
            .await
            .expect("dropping the receiver ends a hung request")
            .unwrap();
        assert_eq!(outcome.ok(), Some(503), "released with 503");
    }
}
