//! `ce-local`: the whole stack on this machine (see README "Quick start").

use std::process::ExitCode;
use std::sync::Arc;

use ce_local::{http_server, moto::MotoServer, queues, stack, tables, triggers};
use shared::crypto::SecretBox;
use shared::settings::Settings;
use shared::store::{NewAccount, Store};
use tokio::net::TcpListener;

const DEFAULT_USER_SECRET: &str = "dev-user-secret";
const DEFAULT_ORG_SECRET: &str = "dev-org-secret";
/// Local poll rules: the prefix they are created and found under, and the
/// poller "ARN" they target (the local runner is the poller's trigger).
const LOCAL_RULE_PREFIX: &str = "local-";
const LOCAL_POLLER_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:local-poller";

#[tokio::main]
async fn main() -> ExitCode {
    // If whatever started us (make, a shell) is killed, shut down as on
    // SIGTERM so moto is never left behind.
    #[cfg(target_os = "linux")]
    // SAFETY: a plain prctl call with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    // The functions' own log set-up: text, or JSON with AWS_LAMBDA_LOG_FORMAT=JSON.
    shared::logging::init();
    let mut moto = None;
    let result = run(&mut moto).await;
    if let Some(server) = moto.as_mut() {
        eprintln!("ce-local: stopping moto_server on port {}", server.port);
        server.stop().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ce-local: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_or(name: &str, default: &str) -> (String, bool) {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => (v, false),
        _ => (default.to_string(), true),
    }
}

async fn run(moto: &mut Option<MotoServer>) -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env_or("PORT", "3000")
        .0
        .parse()
        .map_err(|_| "PORT must be a port number")?;
    // Bind first: a busy port is the most common start-up failure, and it
    // should be reported before anything else is started.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("port {port} is already in use; stop whatever listens there or run with PORT=<another port>")
        } else {
            format!("cannot listen on 127.0.0.1:{port}: {e}")
        }
    })?;

    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        eprintln!("ce-local: AWS credentials are not set; using local dummy values (test/test)");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    if std::env::var("AWS_REGION").is_err() {
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(existing) => {
            eprintln!(
                "ce-local: using the DynamoDB-compatible server at {existing} (AWS_ENDPOINT_URL)"
            );
            existing
        }
        Err(_) => {
            eprintln!("ce-local: starting moto_server on loopback…");
            let server = MotoServer::start().await?;
            let endpoint = server.endpoint();
            *moto = Some(server);
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            endpoint
        }
    };

    let client = shared::store::client_from_env().await;
    eprintln!("ce-local: creating tables from template.yaml…");
    let tables = tables::create_tables(&client, "local-").await?;
    let store = Store::new(client, tables);

    let (user_secret, user_default) = env_or("CE_USER_SECRET", DEFAULT_USER_SECRET);
    let (org_secret, org_default) = env_or("CE_ORG_SECRET", DEFAULT_ORG_SECRET);
    if user_default || org_default {
        eprintln!("ce-local: CE_USER_SECRET/CE_ORG_SECRET not set; using the development defaults");
    }
    store
        .ensure_account(&NewAccount {
            org_id: "dev".into(),
            org_name: "Development".into(),
            org_secret_hash: shared::auth::org_secret_hash(&org_secret),
            user_secret_hash: shared::auth::user_secret_hash(&user_secret),
            user_name: "developer".into(),
        })
        .await
        .map_err(|e| {
            format!(
                "creating the development account: {e} (does another account use these secrets?)"
            )
        })?;

    if std::env::var("CE_ENCRYPTION_KEY").is_err() {
        eprintln!("ce-local: CE_ENCRYPTION_KEY not set; using a random key for this run");
        std::env::set_var("CE_ENCRYPTION_KEY", SecretBox::generate_key_base64());
    }
    // Local receivers and store simulators live on 127.0.0.1.
    std::env::set_var("ALLOW_PRIVATE_NETWORK", "true");
    if std::env::var("PUBLIC_BASE_URL").is_err() {
        std::env::set_var("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"));
    }
    let settings = Settings::load(&shared::store::sdk_config_from_env().await).await?;
    // Poll rules go to the local EventBridge server; this runner fires them.
    let sdk = shared::store::sdk_config_from_env().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let schedules = instances::schedules::PollSchedules::new(
        events.clone(),
        LOCAL_RULE_PREFIX,
        LOCAL_POLLER_ARN,
    );
    // Verified webhooks go here when the table cannot take them; the sweep
    // drains it.
    let spool = queues::create_spool(&sdk, "local-").await?;
    let functions = Arc::new(stack::Functions {
        instances: instances::App::new(store.clone(), settings.clone())
            .with_schedules(schedules.clone()),
        webhooks: webhooks::App::new(store.clone(), settings.clone()).with_spool(spool.clone()),
    });
    let handler = stack::handler(functions);

    // The dispatcher on its AWS triggers: the notifications stream and the
    // one-minute retry sweep.
    let dispatcher = Arc::new(
        dispatcher::App::new(
            store.clone(),
            settings.clone(),
            dispatcher::DispatchConfig::default(),
        )
        .with_spool(spool),
    );
    let (stop_triggers, stop) = tokio::sync::watch::channel(false);
    let stream_task = tokio::spawn(triggers::run_stream(
        store.client().clone(),
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        store.tables().notifications.clone(),
        dispatcher.clone(),
        stop.clone(),
    ));
    let sweep_task = tokio::spawn(triggers::run_sweep(dispatcher, stop.clone()));
    let poller = Arc::new(poller::App::new(
        store.clone(),
        settings.clone(),
        poller::PollConfig::default(),
        poller::Continuation::Inline,
    ));
    let rules_task = tokio::spawn(triggers::run_poll_rules(
        events,
        schedules.rule_prefix(),
        poller,
        stop,
    ));
    println!(
        "connector-events local stack ready: http://127.0.0.1:{port}/elements/api-v2 \
         (Authorization: User {user_secret}, Organization {org_secret}; DynamoDB at {endpoint}, tables 'local-*')"
    );
    println!("console: http://127.0.0.1:{port}/console/ (sign in with the same two secrets)");
    http_server::serve(listener, handler, shutdown_signal()).await;
    eprintln!("ce-local: shutting down");
    let _ = stop_triggers.send(true);
    let _ = tokio::join!(stream_task, sweep_task, rules_task);
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("can install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
