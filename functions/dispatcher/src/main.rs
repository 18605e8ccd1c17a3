use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = dispatcher::App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(dispatcher::handle_event(app, &event.payload).await)
    }))
    .await
}
