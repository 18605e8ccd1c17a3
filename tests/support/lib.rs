//! Test harness: the handlers against a real DynamoDB-compatible server.
//!
//! `make test` starts moto and exports `AWS_ENDPOINT_URL`; every test gets its
//! own freshly created tables (from template.yaml) under a unique prefix, so
//! tests run concurrently without seeing each other's state.

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;
use shared::api::{ApiRequest, ApiResponse};
use shared::crypto::SecretBox;
use shared::netguard::NetGuard;
use shared::settings::{Settings, DEFAULT_MAX_BODY_BYTES};
use shared::store::{NewAccount, Store};

pub mod seeds;

/// A DynamoDB client for the local server. Fails loudly, never skips, when
/// the server is missing.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: these tests need a DynamoDB-compatible server on loopback. \
         Run `make test`, which starts moto and sets it."
    );
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var(k).is_err() {
            std::env::set_var(k, v);
        }
    }
    shared::store::client_from_env().await
}

/// Fresh tables under a unique prefix.
pub async fn fresh_store() -> Store {
    let client = dynamodb_client().await;
    let prefix = format!("t{}-", shared::ids::new_request_id());
    let tables = ce_local::tables::create_tables(&client, &prefix)
        .await
        .expect("tables are created from template.yaml on the local server");
    Store::new(client, tables)
}

pub fn test_settings() -> Settings {
    Settings {
        secrets: SecretBox::from_key_bytes(&shared::ids::random_bytes::<32>()).unwrap(),
        // Production default: private addresses refused.
        guard: NetGuard::new(false),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}

pub struct Stack {
    pub app: instances::App,
    /// `Authorization` header of the first organization's user.
    pub auth: String,
    pub org_id: String,
}

pub async fn stack() -> Stack {
    let store = fresh_store().await;
    let (auth, org_id) = new_account(&store).await;
    Stack {
        app: instances::App::new(store, test_settings()),
        auth,
        org_id,
    }
}

/// Creates an organization with one user; returns its Authorization header
/// and organization id.
pub async fn new_account(store: &Store) -> (String, String) {
    let user = shared::ids::new_secret_token();
    let org = shared::ids::new_secret_token();
    let org_id = shared::ids::new_request_id();
    store
        .create_account(&NewAccount {
            org_id: org_id.clone(),
            org_name: "Test org".into(),
            org_secret_hash: shared::auth::org_secret_hash(&org),
            user_secret_hash: shared::auth::user_secret_hash(&user),
            user_name: "tester".into(),
        })
        .await
        .expect("account is created");
    (format!("User {user}, Organization {org}"), org_id)
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub response: ApiResponse,
}

/// Calls the instances handler as API Gateway would.
pub async fn call(
    app: &instances::App,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Reply {
    call_with(app, method, path, auth, body, Some("application/json")).await
}

pub async fn call_with(
    app: &instances::App,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(a) = auth {
        headers.insert("authorization", HeaderValue::from_str(a).unwrap());
    }
    if let (Some(ct), Some(_)) = (content_type, body) {
        headers.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path.to_string(), None),
    };
    let response = instances::handle(
        app,
        ApiRequest {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            path,
            query,
            headers,
            body: body.unwrap_or("").as_bytes().to_vec(),
            request_id: shared::ids::new_request_id(),
        },
    )
    .await;
    Reply {
        status: response.status,
        body: response.json_value().unwrap_or(Value::Null),
        response,
    }
}
