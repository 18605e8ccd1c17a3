use lambda_http::{run, service_fn, Error, Request};
use shared::api::lambda::{to_api_request, to_lambda_response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = webhooks::App::from_env().await?;
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(to_lambda_response(
            webhooks::handle(app, to_api_request(req)).await,
        ))
    }))
    .await
}
