//! The HTTP shapes every API handler speaks, independent of how the request
//! arrived: API Gateway through `lambda_http` (see [`lambda`]), or the local
//! runner's HTTP server. Handlers are plain async functions over these.

use http::{HeaderMap, Method};
use serde_json::Value;
use tracing::Instrument;

use crate::error::ApiError;

/// Where the Cloud Elements-compatible API lives under any stage or prefix.
pub const API_PREFIX: &str = "/elements/api-v2";

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: String,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path below `/elements/api-v2`, wherever the API is mounted
    /// (an API Gateway stage, a custom domain base path, or none).
    pub fn api_path(&self) -> Option<&str> {
        let at = self.path.find(API_PREFIX)?;
        let rest = &self.path[at + API_PREFIX.len()..];
        Some(rest.trim_end_matches('/'))
    }

    /// Path segments below the API prefix, percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.api_path()
            .unwrap_or("")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                url::form_urlencoded::parse(format!("x={s}").replace('+', "%2B").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as JSON, enforcing size (413), media type (415) and syntax (400).
    pub fn json_body(&self, limit: usize) -> Result<Value, ApiError> {
        if self.body.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        if let Some(content_type) = self.header("content-type") {
            let media = content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !(media == "application/json" || media.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Type must be application/json, got '{media}'"
                )));
            }
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "request body is empty; a JSON object is expected".into(),
            ));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn error(err: &ApiError, request_id: &str) -> Self {
        Self::json(err.status(), &err.to_body(request_id)).with_header("x-request-id", request_id)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json_value(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Runs a handler inside the request's span (see `crate::logging`) and
/// through the common ending: an error becomes its JSON body (internal
/// details logged, not returned), and every request is logged with method,
/// path, status and time only, since bodies and headers may hold secrets.
pub async fn respond<F>(req: &ApiRequest, kind: &'static str, handler: F) -> ApiResponse
where
    F: std::future::Future<Output = Result<ApiResponse, ApiError>>,
{
    let span = crate::logging::request_span(&req.request_id, kind);
    ending(req, kind, handler).instrument(span).await
}

async fn ending<F>(req: &ApiRequest, kind: &'static str, handler: F) -> ApiResponse
where
    F: std::future::Future<Output = Result<ApiResponse, ApiError>>,
{
    let started = std::time::Instant::now();
    let response = match handler.await {
        Ok(resp) => resp,
        Err(err) => {
            if let ApiError::Internal(detail) = &err {
                tracing::error!(error = %detail, "internal error");
            }
            ApiResponse::error(&err, &req.request_id)
        }
    };
    tracing::info!(
        method = %req.method,
        path = %req.path,
        status = response.status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        kind,
        "request"
    );
    response
}

/// Conversion from and to `lambda_http`, for the functions' `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda {
    use super::{ApiRequest, ApiResponse};
    use lambda_http::{Body, Request, RequestExt, Response};

    pub fn to_api_request(req: Request) -> ApiRequest {
        let request_id = req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_else(crate::ids::new_request_id);
        let (parts, body) = req.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        ApiRequest {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
            request_id,
        }
    }

    pub fn to_lambda_response(resp: ApiResponse) -> Response<Body> {
        let mut builder = Response::builder().status(resp.status);
        for (k, v) in &resp.headers {
            builder = builder.header(k, v);
        }
        let body = match String::from_utf8(resp.body) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        };
        builder.body(body).unwrap_or_else(|_| {
            Response::new(Body::Text("{\"message\":\"internal error\"}".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, ct: Option<&str>, body: &str) -> ApiRequest {
        let mut headers = HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert("content-type", ct.parse().unwrap());
        }
        ApiRequest {
            method: Method::POST,
            path: path.into(),
            query: Some("pageSize=5&nextPage=a%2Bb".into()),
            headers,
            body: body.as_bytes().to_vec(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn finds_the_api_path_under_any_stage() {
        let r = req("/Prod/elements/api-v2/instances/12/", None, "");
        assert_eq!(r.api_path(), Some("/instances/12"));
        assert_eq!(r.segments(), vec!["instances", "12"]);
        assert_eq!(req("/other", None, "").api_path(), None);
        assert_eq!(r.query_param("nextPage").as_deref(), Some("a+b"));
    }

    #[test]
    fn json_body_checks_size_type_and_syntax() {
        assert_eq!(
            req("/", None, "{}").json_body(10).unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            req("/", None, "{\"a\": 1}")
                .json_body(3)
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(
            req("/", Some("text/plain"), "{}")
                .json_body(10)
                .unwrap_err()
                .status(),
            415
        );
        assert!(req("/", Some("application/json; charset=utf-8"), "{}")
            .json_body(10)
            .is_ok());
        assert_eq!(
            req("/", None, "{bad").json_body(10).unwrap_err().status(),
            400
        );
        assert_eq!(
            req("/", None, "  ").json_body(10).unwrap_err().status(),
            400
        );
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(
            req("/", None, &deep)
                .json_body(10_000)
                .unwrap_err()
                .status(),
            400
        );
    }
}
