//! The instances function: the Cloud Elements-compatible management API for
//! connector instances (`/elements/api-v2/instances…`).
//!
//! [`handle`] is a plain async function over an [`App`], so tests and the
//! local runner call exactly what Lambda calls.

pub mod openapi;
pub mod quotas;
pub mod rebind;
mod routes;
pub mod schedules;

use http::Method;
use shared::api::{ApiRequest, ApiResponse};
use shared::error::ApiError;
use shared::settings::Settings;
use shared::store::Store;

/// Everything a request needs, built once per container at init.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub settings: Settings,
    /// The per-interval poll rules; `None` where no poller is deployed.
    pub schedules: Option<schedules::PollSchedules>,
    /// Runs "poll now" in this function, with the poller's own code.
    pub poller: poller::App,
    /// BigCommerce's OAuth token endpoint host (`BIGCOMMERCE_LOGIN_URL`,
    /// default `https://login.bigcommerce.com`), where `providerData` codes
    /// are exchanged.
    pub bigcommerce_login_url: String,
    /// Per-organization quotas.
    pub quotas: quotas::Quotas,
    /// Notifications one recover call reads at most (`RECOVER_PAGE_ITEMS`).
    pub recover_page: usize,
}

/// The default of [`App::recover_page`]: well within API Gateway's 29 s.
pub const DEFAULT_RECOVER_PAGE: usize = 2_000;

impl App {
    pub fn new(store: Store, settings: Settings) -> Self {
        let poller = poller::App::new(
            store.clone(),
            settings.clone(),
            poller::PollConfig::default(),
            poller::Continuation::Inline,
        );
        Self {
            store,
            settings,
            schedules: None,
            poller,
            bigcommerce_login_url: std::env::var("BIGCOMMERCE_LOGIN_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| shared::elements::bigcommerce::DEFAULT_LOGIN_URL.to_string()),
            quotas: quotas::Quotas::default(),
            recover_page: DEFAULT_RECOVER_PAGE,
        }
    }

    pub fn with_schedules(mut self, schedules: schedules::PollSchedules) -> Self {
        self.schedules = Some(schedules);
        self
    }

    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (sdk, settings, store) = shared::settings::function_context().await?;
        let mut app = Self::new(store, settings);
        app.schedules = schedules::PollSchedules::from_env(&sdk);
        app.quotas = quotas::Quotas::from_env()?;
        if let Ok(v) = std::env::var("RECOVER_PAGE_ITEMS") {
            app.recover_page = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("RECOVER_PAGE_ITEMS must be a positive integer, got {v:?}")
                })?;
        }
        Ok(app)
    }
}

pub async fn handle(app: &App, req: ApiRequest) -> ApiResponse {
    shared::api::respond(&req, "management", route(app, &req)).await
}

async fn route(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let segments = req.segments();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let not_found = || ApiError::NotFound(format!("no route for {} {}", req.method, req.path));
    if req.api_path().is_none() {
        return Err(not_found());
    }
    // The API's description is public, like Cloud Elements' docs.
    if segs.as_slice() == [openapi::PATH] && req.method == Method::GET {
        // Served as embedded: already JSON (tests/openapi.rs checks it).
        return Ok(ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: openapi::DOCUMENT.as_bytes().to_vec(),
        });
    }
    // Authenticate before anything else, so an unauthenticated caller learns
    // nothing, not even which routes exist.
    let account = shared::auth::authenticate(&app.store, req.header("authorization")).await?;
    match (segs.as_slice(), &req.method) {
        (["instances"], &Method::POST) => routes::create(app, &account, req).await,
        (["instances"], &Method::GET) => routes::list(app, &account, req).await,
        (["instances", "events"], &Method::GET) => {
            routes::list_org_events(app, &account, req).await
        }
        (["instances", "events", event_id], &Method::GET) => {
            shared::logging::record_event(event_id);
            routes::get_event(app, &account, req, event_id).await
        }
        (["instances", id, "events"], &Method::GET) => {
            routes::list_events(app, &account, req, id).await
        }
        (["instances", id, "events", "poll"], &Method::POST) => {
            routes::poll_now(app, &account, req, id).await
        }
        (["instances", id, "events", "recover"], &Method::POST) => {
            routes::recover_events(app, &account, req, id).await
        }
        (["instances", id, "events", event_id], &Method::GET) => {
            shared::logging::record_event(event_id);
            routes::get_instance_event(app, &account, req, id, event_id).await
        }
        (["instances", id, "events", event_id, "retry"], &Method::POST) => {
            shared::logging::record_event(event_id);
            routes::retry_event(app, &account, req, id, event_id).await
        }
        (["instances", id, "events", event_id, "deliveries"], &Method::GET) => {
            shared::logging::record_event(event_id);
            routes::list_deliveries(app, &account, req, id, event_id).await
        }
        (["instances", id], &Method::GET) => routes::get(app, &account, req, id).await,
        (["instances", id], &Method::PATCH) => routes::patch(app, &account, req, id).await,
        (["instances", id], &Method::DELETE) => routes::delete(app, &account, req, id).await,
        (["instances"], _) | (["instances", _], _) | (["instances", _, "events"], _) => Err(
            ApiError::MethodNotAllowed(format!("{} is not supported on {}", req.method, req.path)),
        ),
        _ => Err(not_found()),
    }
}
