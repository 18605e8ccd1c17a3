use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|req: Request| async move {
        let if_none_match = req
            .headers()
            .get("if-none-match")
            .and_then(|v| v.to_str().ok());
        let reply = console::serve(req.method().as_str(), req.uri().path(), if_none_match);
        let mut builder = Response::builder().status(reply.status);
        for (name, value) in reply.headers() {
            builder = builder.header(name, value);
        }
        // Every asset is UTF-8 text, which API Gateway passes through as is.
        let body = Body::Text(String::from_utf8_lossy(reply.body).into_owned());
        Ok::<_, Error>(builder.body(body)?)
    }))
    .await
}
