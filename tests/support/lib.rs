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
use shared::settings::{Settings, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_WEBHOOK_BODY_BYTES};
use shared::store::{NewAccount, Store};

pub mod browser;
pub mod iam;
pub mod outage;
pub mod receiver;
pub mod seeds;
pub mod vendors;

/// A DynamoDB client for the local server. Fails loudly, never skips, when
/// the server is missing.
/// Logs from the code under test, when `RUST_LOG` asks for them.
fn init_logging() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    init_logging();
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

/// The public base URL tests hand out in webhook URLs.
pub const PUBLIC_BASE_URL: &str = "https://events.example.test";

pub fn test_settings() -> Settings {
    Settings {
        secrets: SecretBox::from_key_bytes(&shared::ids::random_bytes::<32>()).unwrap(),
        // Production default: private addresses refused.
        guard: NetGuard::new(false),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_webhook_body_bytes: DEFAULT_MAX_WEBHOOK_BODY_BYTES,
        public_base_url: Some(PUBLIC_BASE_URL.into()),
    }
}

pub struct Stack {
    /// Each function runs with its own IAM user (template.yaml's policy, see
    /// [`iam`]): a call its policy does not allow fails the test.
    pub app: instances::App,
    pub webhooks: webhooks::App,
    pub dispatcher: dispatcher::App,
    pub poller: poller::App,
    /// The local EventBridge server, where the instances function keeps the
    /// poll rules (under a prefix unique to this stack).
    pub events: aws_sdk_eventbridge::Client,
    pub rule_prefix: String,
    /// `Authorization` header of the first organization's user.
    pub auth: String,
    pub org_id: String,
    /// Where the stack is served over HTTP, for [`served_stack`].
    pub base_url: Option<String>,
    _server: Option<tokio::sync::oneshot::Sender<()>>,
    /// The same tables with the admin's keys: for a test's own set-up and
    /// checks, which no function makes.
    pub store: Store,
    /// What moto refused the functions; checked when the stack is dropped.
    pub denials: iam::Denials,
    _iam: iam::DenialCheck,
}

impl Stack {
    /// The ingestion URL of a path below `/elements/api-v2`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/elements/api-v2{path}",
            self.base_url.as_deref().expect("served_stack")
        )
    }
}

/// The dispatcher's settings in tests: short attempts, and no waiting inside
/// an attempt for the 5 s retry (tests move time forward through `sweep`).
pub fn test_dispatch_config() -> dispatcher::DispatchConfig {
    dispatcher::DispatchConfig {
        attempt_timeout: std::time::Duration::from_secs(2),
        inline_retry_max: std::time::Duration::ZERO,
        ..Default::default()
    }
}

pub const TEST_POLLER_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:test-poller";

async fn assemble(store: Store, settings: Settings, auth: String, org_id: String) -> Stack {
    assemble_as(iam::users().clone(), store, settings, auth, org_id).await
}

/// The four functions over `store`'s tables, each with its user of `users`.
async fn assemble_as(
    users: iam::Users,
    store: Store,
    settings: Settings,
    auth: String,
    org_id: String,
) -> Stack {
    let sdk = shared::store::sdk_config_from_env().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let rule_prefix = format!("t{}-", &shared::ids::new_request_id()[..12]);
    let denials = iam::Denials::new(users.clone());
    let store_as = |function: &str| {
        let client =
            iam::dynamodb_client_as(store.base_client(), users.function(function), &denials);
        Store::new(client, store.tables().clone())
    };
    let schedules = instances::schedules::PollSchedules::new(
        iam::eventbridge_client_as(&sdk, users.function("InstancesFunction"), &denials),
        &rule_prefix,
        TEST_POLLER_ARN,
    );
    // The ingestion spool, straight to the local server (never through an
    // outage proxy in front of DynamoDB); each function sends and receives
    // with its own user.
    ce_local::queues::create_spool(&sdk, &rule_prefix)
        .await
        .expect("the spool queue is created on the local server");
    let spool_url = aws_sdk_sqs::Client::new(&sdk)
        .get_queue_url()
        .queue_name(format!("{rule_prefix}ingest-spool"))
        .send()
        .await
        .expect("the spool queue exists")
        .queue_url
        .expect("a queue URL");
    let spool_as = |function: &str| {
        shared::spool::Spool::new(
            iam::sqs_client_as(&sdk, users.function(function), &denials),
            spool_url.clone(),
        )
    };
    Stack {
        app: instances::App::new(store_as("InstancesFunction"), settings.clone())
            .with_schedules(schedules),
        webhooks: webhooks::App::new(store_as("WebhooksFunction"), settings.clone())
            .with_spool(spool_as("WebhooksFunction")),
        dispatcher: dispatcher::App::new(
            store_as("DispatcherFunction"),
            settings.clone(),
            test_dispatch_config(),
        )
        .with_spool(spool_as("DispatcherFunction")),
        poller: poller::App::new(
            store_as("PollerFunction"),
            settings,
            test_poll_config(),
            poller::Continuation::Inline,
        ),
        events,
        rule_prefix,
        auth,
        org_id,
        base_url: None,
        _server: None,
        store,
        _iam: iam::DenialCheck(denials.clone()),
        denials,
    }
}

/// A stack whose functions run as the users of another template (see
/// [`iam::users_for_template`]); its refusals are the test's to inspect.
pub async fn stack_as(users: iam::Users) -> Stack {
    let store = fresh_store().await;
    let (auth, org_id) = new_account(&store).await;
    assemble_as(users, store, test_settings(), auth, org_id).await
}

/// The poller's settings in tests: rate limits are waited out only briefly.
pub fn test_poll_config() -> poller::PollConfig {
    poller::PollConfig {
        max_throttle_wait: chrono::Duration::seconds(10),
        request_timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    }
}

/// The functions called directly, with the production network guard.
pub async fn stack() -> Stack {
    let store = fresh_store().await;
    let (auth, org_id) = new_account(&store).await;
    assemble(store, test_settings(), auth, org_id).await
}

/// The functions also served over HTTP on loopback, as `make run` serves
/// them, so simulated stores can deliver to them. Private addresses are
/// allowed, since every simulator lives on 127.0.0.1.
pub async fn served_stack() -> Stack {
    served_stack_on(fresh_store().await).await
}

/// A served stack whose DynamoDB calls go to `endpoint` (an outage proxy in
/// front of the test server), with tables created through it.
pub async fn served_stack_via(endpoint: &str) -> Stack {
    let direct = dynamodb_client().await;
    let config = direct.config().to_builder().endpoint_url(endpoint).build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let prefix = format!("t{}-", shared::ids::new_request_id());
    let tables = ce_local::tables::create_tables(&client, &prefix)
        .await
        .expect("tables are created through the proxy");
    served_stack_on(Store::new(client, tables)).await
}

async fn served_stack_on(store: Store) -> Stack {
    let (auth, org_id) = new_account(&store).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = test_settings();
    settings.guard = NetGuard::new(true);
    settings.public_base_url = Some(base_url.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stack = assemble(store, settings, auth, org_id).await;
    let functions = std::sync::Arc::new(ce_local::stack::Functions {
        instances: stack.app.clone(),
        webhooks: stack.webhooks.clone(),
    });
    tokio::spawn(ce_local::http_server::serve(
        listener,
        ce_local::stack::handler(functions),
        async move {
            let _ = stopped.await;
        },
    ));
    stack.base_url = Some(base_url);
    stack._server = Some(stop);
    stack
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

/// Calls the webhooks handler directly with a vendor's request.
pub async fn ingest(
    app: &webhooks::App,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let response = webhooks::handle(
        app,
        ApiRequest {
            method: Method::POST,
            path: format!("/elements/api-v2{path}"),
            query: None,
            headers: map,
            body: body.to_vec(),
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

/// The same tables behind a client aimed at a port where nothing listens:
/// a state store that is down.
/// Records the DynamoDB operation of every request a client sends
/// (`X-Amz-Target`, e.g. `DynamoDB_20120810.Query`).
#[derive(Debug, Clone, Default)]
pub struct OperationLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl OperationLog {
    /// The operations so far, without the API version prefix.
    pub fn operations(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl aws_sdk_dynamodb::config::Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        self.0.lock().unwrap().push(operation);
        Ok(())
    }
}

/// The same tables through a client that logs every operation it sends.
pub fn logged_store(store: &Store) -> (Store, OperationLog) {
    let log = OperationLog::default();
    let config = store
        .client()
        .config()
        .to_builder()
        .interceptor(log.clone())
        .build();
    (
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            store.tables().clone(),
        ),
        log,
    )
}

pub fn unreachable_store(store: &Store) -> Store {
    let config = store
        .client()
        .config()
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    Store::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        store.tables().clone(),
    )
}

impl Stack {
    /// Creates an instance as the stack's organization; asserts the 200.
    pub async fn create(&self, body: Value) -> Value {
        let reply = call(
            &self.app,
            "POST",
            "/elements/api-v2/instances",
            Some(&self.auth),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }
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
