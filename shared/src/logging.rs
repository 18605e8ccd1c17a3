//! Log set-up for every function, and the spans that put the request,
//! instance and event ids on every line logged while they are open.
//!
//! Ids live in spans rather than in each `tracing::info!` call so that a line
//! logged deep inside a helper (a DynamoDB failure, a store call that was
//! refused) still says which request, instance and event it belongs to. The
//! JSON formatter writes the open spans' fields into every line (`spans`).
//! Secrets never enter a span or a line: only ids, names, statuses and counts.

use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the process-wide subscriber: JSON lines when Lambda's advanced
/// logging asks for JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`, set by the template),
/// text otherwise. The level comes from `AWS_LAMBDA_LOG_LEVEL`, then
/// `RUST_LOG`, then `info`.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let subscriber = if json {
        json_subscriber(std::io::stdout, &filter)
    } else {
        text_subscriber(std::io::stdout, &filter)
    };
    // A second call (tests, a host that set one already) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The production JSON format, writing to `writer`: one object per line with
/// the event's fields at the top level and every open span's fields.
pub fn json_subscriber<W>(writer: W, filter: &str) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Box::new(
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_target(true)
            .with_env_filter(env_filter(filter))
            .with_writer(writer)
            .finish(),
    )
}

fn text_subscriber<W>(writer: W, filter: &str) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Box::new(
        tracing_subscriber::fmt()
            .with_env_filter(env_filter(filter))
            .with_writer(writer)
            .finish(),
    )
}

fn env_filter(filter: &str) -> EnvFilter {
    // The SDK's own info lines (credential and endpoint resolution) are noise
    // in a function's log; its warnings and errors are kept.
    let directives = if filter.contains("aws_") {
        filter.to_string()
    } else {
        format!("{filter},aws_config=warn,aws_smithy_runtime=warn")
    };
    EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The span of one API request (management or webhook). `instance_id` and
/// `event_id` are recorded once the handler knows them.
pub fn request_span(request_id: &str, kind: &'static str) -> Span {
    tracing::info_span!(
        "request",
        request_id,
        kind,
        instance_id = Empty,
        event_id = Empty
    )
}

/// The span of work on one instance inside a request or a poll cycle.
pub fn instance_span(instance_id: u64) -> Span {
    tracing::info_span!("instance", instance_id)
}

/// The span of one delivery attempt of one event (notification).
pub fn delivery_span(event_id: &str) -> Span {
    tracing::info_span!("delivery", event_id, instance_id = Empty)
}

/// Records the instance a request or delivery turned out to be about.
pub fn record_instance(instance_id: u64) {
    Span::current().record("instance_id", instance_id);
}

/// Records the event a request turned out to be about.
pub fn record_event(event_id: &str) {
    Span::current().record("event_id", event_id);
}
