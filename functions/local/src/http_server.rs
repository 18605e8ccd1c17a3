//! A small HTTP/1.1 server that stands in for API Gateway: it turns each
//! request into an [`ApiRequest`] and hands it to the same handler Lambda runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use shared::api::{ApiRequest, ApiResponse};
use shared::error::ApiError;
use tokio::net::TcpListener;

/// API Gateway's own payload limit; handlers enforce their smaller limits.
pub const GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

pub type BoxFuture = Pin<Box<dyn Future<Output = ApiResponse> + Send>>;
pub type Handler = Arc<dyn Fn(ApiRequest) -> BoxFuture + Send + Sync>;

/// Serves until `shutdown` completes.
pub async fn serve(listener: TcpListener, handler: Handler, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(respond(handler, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn respond(handler: Handler, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = shared::ids::new_request_id();
    let (parts, body) = req.into_parts();
    let api_response = match Limited::new(body, GATEWAY_MAX_BODY).collect().await {
        Ok(collected) => {
            handler(ApiRequest {
                method: parts.method,
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                body: collected.to_bytes().to_vec(),
                request_id,
            })
            .await
        }
        Err(_) => ApiResponse::error(
            &ApiError::PayloadTooLarge {
                limit: GATEWAY_MAX_BODY,
            },
            &request_id,
        ),
    };
    let mut builder = Response::builder().status(api_response.status);
    for (k, v) in &api_response.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Full::new(Bytes::from(api_response.body)))
        .unwrap_or_else(|_| {
            Response::new(Full::new(Bytes::from_static(
                b"{\"message\":\"internal error\"}",
            )))
        })
}
