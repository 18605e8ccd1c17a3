//! `ce-admin`: account administration.
//!
//! `ce-admin create-account --org-name NAME --user-name NAME [--table-prefix P]`
//! creates an organization and its first user and prints their secrets once.
//!
//! `ce-admin reseal [--table-prefix P]` re-seals every instance's secrets
//! under the first key of `CE_ENCRYPTION_KEY` (or the SSM parameter named by
//! `CE_ENCRYPTION_KEY_PARAMETER`), a comma-separated list whose other keys
//! still open old values. Key rotation runbook: docs/deploy.md.
//! Tables come from `ACCOUNTS_TABLE`/`INSTANCES_TABLE` (AWS) or, with
//! `--table-prefix local-`, from the local stack's naming.

use std::process::ExitCode;

use shared::store::{Store, Tables};

const USAGE: &str =
    "usage: ce-admin create-account --org-name NAME --user-name NAME [--table-prefix PREFIX]
       ce-admin reseal [--table-prefix PREFIX]";

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ce-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let mut iter = args.into_iter();
    match iter.next().as_deref() {
        Some("create-account") => {}
        Some("reseal") => {
            let tables = match (iter.next().as_deref(), iter.next()) {
                (None, _) => Tables::from_env().map_err(|e| e.to_string())?,
                (Some("--table-prefix"), Some(p)) => Tables::with_prefix(&p),
                _ => return Err(USAGE.into()),
            };
            return reseal(tables).await;
        }
        Some("init-local") => {
            let prefix = match (iter.next().as_deref(), iter.next()) {
                (None, _) => "local-".to_string(),
                (Some("--table-prefix"), Some(p)) => p,
                _ => return Err(USAGE.into()),
            };
            return init_local(&prefix).await;
        }
        _ => return Err(USAGE.into()),
    }
    let (mut org_name, mut user_name, mut prefix) = (None, None, None);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--org-name" => org_name = Some(value),
            "--user-name" => user_name = Some(value),
            "--table-prefix" => prefix = Some(value),
            _ => return Err(USAGE.into()),
        }
    }
    let org_name = org_name.filter(|s| !s.trim().is_empty()).ok_or(USAGE)?;
    let user_name = user_name.filter(|s| !s.trim().is_empty()).ok_or(USAGE)?;
    let tables = match prefix {
        Some(p) => Tables::with_prefix(&p),
        None => Tables::from_env().map_err(|e| e.to_string())?,
    };
    let store = Store::new(shared::store::client_from_env().await, tables);
    let created = ce_local::admin::create_account(&store, &org_name, &user_name)
        .await
        .map_err(|e| format!("creating the account: {e}"))?;
    println!("organization id:     {}", created.org_id);
    println!("organization secret: {}", created.org_secret);
    println!("user secret:         {}", created.user_secret);
    println!("Authorization: {}", created.authorization_header());
    eprintln!("These secrets are stored only as hashes and are shown this once.");
    Ok(())
}

/// What `cargo lambda watch` needs on a local server: the tables and the
/// development account (`CE_USER_SECRET`/`CE_ORG_SECRET`, or the defaults).
async fn init_local(prefix: &str) -> Result<(), String> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err("init-local writes to a local server: set AWS_ENDPOINT_URL".into());
    }
    let client = shared::store::client_from_env().await;
    let tables = ce_local::tables::create_tables(&client, prefix)
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::new(client, tables.clone());
    let user = std::env::var("CE_USER_SECRET").unwrap_or_else(|_| "dev-user-secret".into());
    let org = std::env::var("CE_ORG_SECRET").unwrap_or_else(|_| "dev-org-secret".into());
    store
        .ensure_account(&shared::store::NewAccount {
            org_id: "dev".into(),
            org_name: "Development".into(),
            org_secret_hash: shared::auth::org_secret_hash(&org),
            user_secret_hash: shared::auth::user_secret_hash(&user),
            user_name: "developer".into(),
        })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "INSTANCES_TABLE={},ACCOUNTS_TABLE={},NOTIFICATIONS_TABLE={},DELIVERIES_TABLE={},POLL_STATE_TABLE={}",
        tables.instances, tables.accounts, tables.notifications, tables.deliveries, tables.poll_state
    );
    Ok(())
}

/// Re-seals every instance under the sealing key; prints what it did. Fails
/// (non-zero exit) while any instance opens with none of the keys.
async fn reseal(tables: Tables) -> Result<(), String> {
    let sdk = shared::store::sdk_config_from_env().await;
    let settings = shared::settings::Settings::load(&sdk)
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), tables);
    let report = ce_local::admin::reseal_all(&store, &settings.secrets)
        .await
        .map_err(|e| format!("re-sealing: {e}"))?;
    println!(
        "sealing key {}: {} instances, {} re-sealed, {} already current, {} changed meanwhile (sealed by their PATCH)",
        settings.secrets.sealing_key_id(),
        report.instances,
        report.resealed,
        report.current,
        report.changed
    );
    if !report.unreadable.is_empty() {
        return Err(format!(
            "{} instances open with none of the configured keys: {:?}",
            report.unreadable.len(),
            report.unreadable
        ));
    }
    Ok(())
}
