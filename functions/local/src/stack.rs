//! The API Gateway routes of the local stack: which function serves a path.
//! The same split is declared in template.yaml's HttpApi events.

use std::sync::Arc;

use shared::api::{ApiRequest, ApiResponse};

use crate::http_server::Handler;

/// The API functions, each built once as in its own Lambda container.
pub struct Functions {
    pub instances: instances::App,
    pub webhooks: webhooks::App,
}

/// `/elements/api-v2/events/…` is vendor ingestion; the rest is management.
pub fn is_ingestion(req: &ApiRequest) -> bool {
    req.segments().first().map(String::as_str) == Some("events")
}

/// `/console/…` is the console's static files, served by its own function.
pub fn is_console(req: &ApiRequest) -> bool {
    console::is_console_path(&req.path)
}

pub async fn route(functions: &Functions, req: ApiRequest) -> ApiResponse {
    if is_console(&req) {
        return console_response(&req);
    }
    if is_ingestion(&req) {
        webhooks::handle(&functions.webhooks, req).await
    } else {
        instances::handle(&functions.instances, req).await
    }
}

pub fn handler(functions: Arc<Functions>) -> Handler {
    Arc::new(move |req| {
        let functions = functions.clone();
        Box::pin(async move { route(&functions, req).await })
    })
}

/// The console function's answer, as its Lambda gives it to API Gateway.
fn console_response(req: &ApiRequest) -> ApiResponse {
    let reply = console::serve(req.method.as_str(), &req.path, req.header("if-none-match"));
    let headers = reply
        .headers()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    ApiResponse {
        status: reply.status,
        headers,
        body: reply.body.to_vec(),
    }
}
