//! The instances API, through its handler, against the local DynamoDB server.

use aws_sdk_dynamodb::types::AttributeValue;
use ce_tests::{call, call_with, fresh_store, new_account, seeds, stack, test_settings};
use serde_json::{json, Value};
use shared::store::StoreError;

const BASE: &str = "/elements/api-v2/instances";

fn woo_polling() -> Value {
    seeds::filled("000_openconnectors_woocommerce_1.json")
}

async fn create(app: &instances::App, auth: &str, body: &Value) -> Value {
    let reply = call(app, "POST", BASE, Some(auth), Some(&body.to_string())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn create_get_list_patch_and_delete() {
    let s = stack().await;
    let created = create(&s.app, &s.auth, &woo_polling()).await;
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["name"], "My store");
    assert_eq!(created["tags"], json!(["Docs"]));
    assert_eq!(created["eventPollerRefreshInterval"], 15);

    let got = call(&s.app, "GET", &format!("{BASE}/{id}"), Some(&s.auth), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["id"], id);
    assert!(
        got.body.get("token").is_none(),
        "the token is shown only at creation"
    );

    let listed = call(&s.app, "GET", BASE, Some(&s.auth), None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["id"], id);

    let patch = json!({"name": "Renamed", "tags": ["a", "b"], "configuration": {"event.poller.refresh_interval": 5}});
    let patched = call(
        &s.app,
        "PATCH",
        &format!("{BASE}/{id}"),
        Some(&s.auth),
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "Renamed");
    assert_eq!(patched.body["tags"], json!(["a", "b"]));
    assert_eq!(patched.body["eventPollerRefreshInterval"], 5);
    // Untouched keys survive the merge.
    assert_eq!(
        patched.body["configuration"]["store.url"],
        "https://shop.example.com"
    );
    let reread = call(&s.app, "GET", &format!("{BASE}/{id}"), Some(&s.auth), None).await;
    assert_eq!(reread.body["eventPollerRefreshInterval"], 5);

    let deleted = call(
        &s.app,
        "DELETE",
        &format!("{BASE}/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    let gone = call(&s.app, "GET", &format!("{BASE}/{id}"), Some(&s.auth), None).await;
    assert_eq!(gone.status, 404);
    let again = call(
        &s.app,
        "DELETE",
        &format!("{BASE}/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(again.status, 404, "deleting twice is a 404, not a 500");
    let listed = call(&s.app, "GET", BASE, Some(&s.auth), None).await;
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn organizations_never_see_each_others_instances() {
    let s = stack().await;
    let (other_auth, _) = new_account(&s.store).await;
    let created = create(&s.app, &s.auth, &woo_polling()).await;
    let path = format!("{BASE}/{}", created["id"]);

    assert_eq!(
        call(&s.app, "GET", &path, Some(&other_auth), None)
            .await
            .status,
        404
    );
    let patch = json!({"name": "hijacked"}).to_string();
    assert_eq!(
        call(&s.app, "PATCH", &path, Some(&other_auth), Some(&patch))
            .await
            .status,
        404
    );
    assert_eq!(
        call(&s.app, "DELETE", &path, Some(&other_auth), None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&s.app, "GET", BASE, Some(&other_auth), None)
            .await
            .body,
        json!([])
    );

    // The owner still has it, unchanged.
    let own = call(&s.app, "GET", &path, Some(&s.auth), None).await;
    assert_eq!(
        (own.status, own.body["name"].clone()),
        (200, json!("My store"))
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401() {
    let s = stack().await;
    let (user, org) = {
        let parts: Vec<&str> = s.auth.split(", ").collect();
        (
            parts[0].trim_start_matches("User ").to_string(),
            parts[1].trim_start_matches("Organization ").to_string(),
        )
    };
    for auth in [
        None,
        Some("".to_string()),
        Some(format!("User {user}")),
        Some(format!("User {user}, Organization wrong")),
        Some(format!("User wrong, Organization {org}")),
        Some("Bearer abc".to_string()),
    ] {
        let reply = call(&s.app, "GET", BASE, auth.as_deref(), None).await;
        assert_eq!(reply.status, 401, "{auth:?}");
        assert!(reply.body["message"].as_str().is_some());
        assert!(
            !reply.body.to_string().contains(&org),
            "a secret was echoed"
        );
    }
    let with_element = format!("User {user}, Organization {org}, Element sometoken");
    assert_eq!(
        call(&s.app, "GET", BASE, Some(&with_element), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_problem() {
    let s = stack().await;
    let post = |body: String| {
        let app = &s.app;
        let auth = s.auth.clone();
        async move { call(app, "POST", BASE, Some(&auth), Some(&body)).await }
    };
    let malformed = post("{\"element\": ".into()).await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.body["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let mut unknown = woo_polling();
    unknown["element"]["key"] = json!("shopify");
    let reply = post(unknown.to_string()).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (400, json!("element.key"))
    );
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("woocommercerest"));

    let mut no_store = woo_polling();
    no_store["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("store.url");
    let reply = post(no_store.to_string()).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (400, json!("configuration.store.url"))
    );

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "event.vendor.type",
            json!("carrier-pigeon"),
            "configuration.event.vendor.type",
        ),
        (
            "event.poller.refresh_interval",
            json!("0"),
            "configuration.event.poller.refresh_interval",
        ),
        (
            "event.poller.refresh_interval",
            json!(-5),
            "configuration.event.poller.refresh_interval",
        ),
        (
            "event.poller.refresh_interval",
            json!("every hour"),
            "configuration.event.poller.refresh_interval",
        ),
        (
            "event.poller.configuration",
            json!(42),
            "configuration.event.poller.configuration",
        ),
        (
            "event.notification.callback.url",
            json!("mycoolapp.com/events"),
            "configuration.event.notification.callback.url",
        ),
        (
            "event.notification.callback.url",
            json!("ftp://mycoolapp.com"),
            "configuration.event.notification.callback.url",
        ),
        (
            "event.notification.callback.url",
            json!("http://169.254.169.254/latest"),
            "configuration.event.notification.callback.url",
        ),
        (
            "event.notification.callback.url",
            json!("http://127.0.0.1:8080/cb"),
            "configuration.event.notification.callback.url",
        ),
        (
            "store.url",
            json!("http://10.0.0.5/"),
            "configuration.store.url",
        ),
        (
            "event.notification.enabled",
            json!("perhaps"),
            "configuration.event.notification.enabled",
        ),
        (
            "oauth.api.key",
            json!({"nested": true}),
            "configuration.oauth.api.key",
        ),
    ];
    for (key, value, field) in cases {
        let mut body = woo_polling();
        body["configuration"][key] = value.clone();
        let reply = post(body.to_string()).await;
        assert_eq!(reply.status, 400, "{key}={value}: {}", reply.body);
        assert_eq!(reply.body["field"], field, "{key}={value}: {}", reply.body);
    }

    // Ecwid takes webhooks only; polling names the field.
    let mut ecwid = seeds::filled("003_openconnectors_ecwid_1.json");
    ecwid["configuration"]["event.vendor.type"] = json!("polling");
    let reply = post(ecwid.to_string()).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (400, json!("configuration.event.vendor.type"))
    );
    // "webhooks" is accepted as "webhook".
    ecwid["configuration"]["event.vendor.type"] = json!("webhooks");
    assert_eq!(post(ecwid.to_string()).await.status, 200);
    // BigCommerce webhooks need a way to verify the sender.
    let mut big = seeds::filled("002_openconnectors_bigcommerce_2.json");
    big["configuration"]["event.vendor.type"] = json!("webhook");
    big["configuration"]["bigcommerce.store.hash"] = json!("abc123");
    big["configuration"]["oauth.access.token"] = json!("token-from-the-install");
    let reply = post(big.to_string()).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (
            400,
            json!("configuration.bigcommerce.webhook.header.secret")
        )
    );
    // ONe webhooks need their Basic credentials.
    let one = json!({"element": {"key": "one"}, "name": "ONe", "configuration": {
        "event.notification.enabled": true,
        "event.notification.callback.url": "https://mycoolapp.com/events",
        "one.webhook.username": "admin"}});
    let reply = post(one.to_string()).await;
    assert_eq!(
        (reply.status, reply.body["field"].clone()),
        (400, json!("configuration.one.webhook.password"))
    );
    // Unknown top-level fields are ignored, as Cloud Elements did.
    let mut extra = woo_polling();
    extra["providerData"] = json!({"x": 1});
    extra["disabled"] = json!(false);
    assert_eq!(post(extra.to_string()).await.status, 200);
    // Wrong top-level shapes.
    for (body, field) in [
        (json!([1, 2]), Value::Null),
        (
            json!({"element": "woocommercerest", "configuration": {}}),
            json!("element"),
        ),
        (
            json!({"element": {"key": "one"}, "configuration": "x"}),
            json!("configuration"),
        ),
        (
            json!({"element": {"key": "one"}, "configuration": {}, "tags": "t"}),
            json!("tags"),
        ),
    ] {
        let reply = post(body.to_string()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(
            reply.body.get("field").cloned().unwrap_or(Value::Null),
            field,
            "{body}"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_and_other_media_types_415() {
    let s = stack().await;
    let mut body = woo_polling();
    body["padding"] = json!("x".repeat(shared::settings::DEFAULT_MAX_BODY_BYTES));
    let reply = call(&s.app, "POST", BASE, Some(&s.auth), Some(&body.to_string())).await;
    assert_eq!(reply.status, 413);
    let reply = call_with(
        &s.app,
        "POST",
        BASE,
        Some(&s.auth),
        Some("element=x"),
        Some("application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn unknown_routes_are_404_and_unsupported_methods_405() {
    let s = stack().await;
    assert_eq!(
        call(
            &s.app,
            "GET",
            "/elements/api-v2/nothing",
            Some(&s.auth),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &s.app,
            "PUT",
            &format!("{BASE}/1"),
            Some(&s.auth),
            Some("{}")
        )
        .await
        .status,
        405
    );
    assert_eq!(
        call(
            &s.app,
            "GET",
            &format!("{BASE}/not-a-number"),
            Some(&s.auth),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn secrets_are_encrypted_in_dynamodb_and_redacted_in_responses() {
    let s = stack().await;
    let mut body = woo_polling();
    body["configuration"]["oauth.api.secret"] = json!("cs_PLAINTEXT_MUST_NOT_BE_STORED");
    body["configuration"]["event.notification.signature.key"] = json!("SIGKEY_MUST_NOT_BE_STORED");
    let created = create(&s.app, &s.auth, &body).await;
    assert_eq!(created["configuration"]["oauth.api.secret"], "********");
    assert_eq!(
        created["configuration"]["event.notification.signature.key"],
        "********"
    );

    let item = s
        .app
        .store
        .client()
        .get_item()
        .table_name(&s.app.store.tables().instances)
        .key("id", AttributeValue::S(created["id"].to_string()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the instance item exists");
    let raw = format!("{item:?}");
    assert!(
        !raw.contains("PLAINTEXT_MUST_NOT_BE_STORED"),
        "plaintext secret in DynamoDB"
    );
    assert!(
        !raw.contains("SIGKEY_MUST_NOT_BE_STORED"),
        "plaintext signature key in DynamoDB"
    );
    let token = created["token"].as_str().unwrap();
    assert!(!raw.contains(token), "plaintext instance token in DynamoDB");
    assert!(
        raw.contains("v2:"),
        "sealed secrets are stored, naming their key"
    );

    // The sealed secrets open with the key and hold the real values.
    let record = s
        .app
        .store
        .get_instance(created["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap();
    let opened = record.open(&s.app.settings.secrets).unwrap();
    assert_eq!(
        opened.configuration["oauth.api.secret"],
        "cs_PLAINTEXT_MUST_NOT_BE_STORED"
    );
    // Another key cannot open them.
    assert!(record.open(&test_settings().secrets).is_err());
}

#[tokio::test]
async fn patch_merges_then_revalidates_and_writes_nothing_when_invalid() {
    let s = stack().await;
    let created = create(&s.app, &s.auth, &woo_polling()).await;
    let path = format!("{BASE}/{}", created["id"]);
    let before = call(&s.app, "GET", &path, Some(&s.auth), None).await.body;

    for (patch, field) in [
        (
            json!({"configuration": {"event.poller.refresh_interval": "0"}}),
            "configuration.event.poller.refresh_interval",
        ),
        (
            json!({"configuration": {"store.url": null}}),
            "configuration.store.url",
        ),
        (json!({"element": {"key": "bigcommerce"}}), "element.key"),
        (json!({"name": ""}), "name"),
    ] {
        let reply = call(
            &s.app,
            "PATCH",
            &path,
            Some(&s.auth),
            Some(&patch.to_string()),
        )
        .await;
        assert_eq!(reply.status, 400, "{patch}: {}", reply.body);
        assert_eq!(reply.body["field"], field, "{patch}");
    }
    let after = call(&s.app, "GET", &path, Some(&s.auth), None).await.body;
    assert_eq!(before, after, "a rejected PATCH changed the instance");

    // Echoing the redaction mask back keeps the stored secret.
    let echo =
        json!({"configuration": {"oauth.api.secret": "********", "oauth.api.key": "ck_new"}});
    let reply = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&echo.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record = s
        .app
        .store
        .get_instance(created["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap();
    let opened = record.open(&s.app.settings.secrets).unwrap();
    assert_eq!(
        opened.configuration["oauth.api.secret"],
        seeds::fill_value("woocommercerest", "oauth.api.secret")
    );
    assert_eq!(opened.configuration["oauth.api.key"], "ck_new");
    assert_eq!(record.version, 2);
}

#[tokio::test]
async fn a_write_based_on_a_stale_version_is_refused() {
    let s = stack().await;
    let created = create(&s.app, &s.auth, &woo_polling()).await;
    let id = created["id"].as_u64().unwrap();
    let record = s.app.store.get_instance(id).await.unwrap().unwrap();
    let mut first = record.clone();
    first.version = 2;
    s.app.store.replace_instance(&first, 1).await.unwrap();
    let mut second = record.clone();
    second.version = 2;
    second.name = "lost update".into();
    assert_eq!(
        s.app.store.replace_instance(&second, 1).await,
        Err(StoreError::ConditionFailed)
    );
    // Nor may another organization overwrite it, whatever the version.
    let mut foreign = record;
    foreign.org_id = "someone-else".into();
    foreign.version = 3;
    assert_eq!(
        s.app.store.replace_instance(&foreign, 2).await,
        Err(StoreError::ConditionFailed)
    );
    assert_eq!(
        s.app.store.get_instance(id).await.unwrap().unwrap().name,
        "My store"
    );
}

#[tokio::test]
async fn listing_is_paged_and_every_instance_appears_once() {
    let s = stack().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            create(&s.app, &s.auth, &woo_polling()).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            Some(token) => format!("{BASE}?pageSize=2&nextPage={token}"),
            None => format!("{BASE}?pageSize=2"),
        };
        let reply = call(&s.app, "GET", &path, Some(&s.auth), None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = reply.body.as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|i| i["id"].as_u64().unwrap()));
        pages += 1;
        next = reply
            .response
            .header("elements-next-page-token")
            .map(str::to_string);
        if next.is_none() || pages > 10 {
            break;
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected, "every instance exactly once across pages");
    assert!(pages >= 3);

    for (query, field) in [
        ("pageSize=0", "pageSize"),
        ("pageSize=abc", "pageSize"),
        ("nextPage=%%%", "nextPage"),
    ] {
        let reply = call(
            &s.app,
            "GET",
            &format!("{BASE}?{query}"),
            Some(&s.auth),
            None,
        )
        .await;
        assert_eq!(
            (reply.status, reply.body["field"].clone()),
            (400, json!(field)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_state_store_is_a_503_never_a_500() {
    // A client aimed at a port where nothing listens.
    let healthy = fresh_store().await;
    let dead = ce_tests::unreachable_store(&healthy);
    let app = instances::App::new(dead, test_settings());
    let reply = call(&app, "GET", BASE, Some("User u, Organization o"), None).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body["requestId"].as_str().is_some());
}

#[tokio::test]
async fn the_dev_account_can_be_ensured_twice_but_not_hijacked() {
    let store = fresh_store().await;
    let account = shared::store::NewAccount {
        org_id: "dev".into(),
        org_name: "Development".into(),
        org_secret_hash: shared::auth::org_secret_hash("o"),
        user_secret_hash: shared::auth::user_secret_hash("u"),
        user_name: "developer".into(),
    };
    store.ensure_account(&account).await.unwrap();
    store.ensure_account(&account).await.unwrap();
    assert_eq!(
        store.create_account(&account).await,
        Err(StoreError::ConditionFailed)
    );
    let mut other_org = account.clone();
    other_org.org_secret_hash = shared::auth::org_secret_hash("different");
    assert_eq!(
        store.ensure_account(&other_org).await,
        Err(StoreError::ConditionFailed)
    );
    let found = store
        .find_user(&shared::auth::user_secret_hash("u"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.org_id, "dev");
}

#[tokio::test]
async fn an_account_made_by_the_admin_command_authenticates_and_stores_no_secret() {
    let s = stack().await;
    let created = ce_local::admin::create_account(&s.store, "Acme", "ops@acme.test")
        .await
        .unwrap();
    let reply = call(
        &s.app,
        "GET",
        BASE,
        Some(&created.authorization_header()),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let scan = s
        .store
        .client()
        .scan()
        .table_name(&s.store.tables().accounts)
        .send()
        .await
        .unwrap();
    let raw = format!("{:?}", scan.items());
    assert!(!raw.contains(&created.user_secret) && !raw.contains(&created.org_secret));
    assert!(raw.contains(&shared::auth::user_secret_hash(&created.user_secret)));
}

#[tokio::test]
async fn the_encryption_key_can_come_from_an_ssm_secure_string() {
    let _ = ce_tests::dynamodb_client().await; // checks AWS_ENDPOINT_URL, sets dummy credentials
    let sdk = shared::store::sdk_config_from_env().await;
    let name = format!("/connector-events/test/{}", shared::ids::new_request_id());
    let key = shared::crypto::SecretBox::generate_key_base64();
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .value(&key)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let source = shared::settings::KeySource::SsmParameter(name);
    assert_eq!(source.resolve(&sdk).await.unwrap(), key);
    let sealed = shared::settings::Settings::with_key(&source.resolve(&sdk).await.unwrap())
        .unwrap()
        .secrets
        .seal(b"x", "c");
    let direct = shared::crypto::SecretBox::from_base64_key(&key).unwrap();
    assert_eq!(direct.open(&sealed, "c").unwrap(), b"x");
    let missing = shared::settings::KeySource::SsmParameter("/does/not/exist".into());
    assert!(matches!(
        missing.resolve(&sdk).await,
        Err(shared::settings::SettingsError::Parameter { .. })
    ));
}

/// Issue 15, point 4: changing where secrets go needs the secrets again. A
/// PATCH of only `store.url` would otherwise send the stored password to the
/// new host; a PATCH of only the callback URL would sign for a new host with
/// the stored key.
#[tokio::test]
async fn a_new_store_or_callback_url_needs_its_secrets_sent_again() {
    use ce_tests::vendors::bigcommerce;
    let s = ce_tests::served_stack().await;
    let home = bigcommerce::start_store("bc-user", "bc-token").await;
    let elsewhere = bigcommerce::start_store("bc-user", "bc-token").await;
    let mut body = seeds::filled("002_openconnectors_bigcommerce_2.json");
    let cfg = body["configuration"].as_object_mut().unwrap();
    for k in ["oauth.api.key", "oauth.api.secret", "oauth.callback.url"] {
        cfg.remove(k);
    }
    cfg.insert("username".into(), json!("bc-user"));
    cfg.insert("password".into(), json!("bc-token"));
    cfg.insert("event.notification.signature.key".into(), json!("k1"));
    cfg.insert(
        "store.url".into(),
        json!(format!("{}/api/v2", home.base_url)),
    );
    let created = s.create(body).await;
    let path = format!("/elements/api-v2/instances/{}", created["id"]);
    let patch = |v: Value| v.to_string();
    let new_url = format!("{}/api/v2", elsewhere.base_url);

    for attempt in [
        json!({"configuration": {"store.url": new_url}}),
        json!({"configuration": {"store.url": new_url, "password": "********"}}),
    ] {
        let refused = call(&s.app, "PATCH", &path, Some(&s.auth), Some(&patch(attempt))).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(
            refused.body["field"], "configuration.password",
            "{}",
            refused.body
        );
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .contains("changing configuration.store.url requires"),
            "{}",
            refused.body
        );
    }
    assert_eq!(elsewhere.requests(), 0, "nothing was sent to the new host");
    let shown = call(&s.app, "GET", &path, Some(&s.auth), None).await;
    assert_eq!(
        shown.body["configuration"]["store.url"],
        json!(format!("{}/api/v2", home.base_url))
    );
    let moved = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            json!({"configuration": {"store.url": new_url, "password": "bc-token"}}),
        )),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    // The callback URL, with a signature key set.
    let refused = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(
            json!({"configuration": {"event.notification.callback.url": "https://elsewhere.example/cb"}}),
        )),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.body["field"],
        "configuration.event.notification.signature.key"
    );
    let moved = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(json!({"configuration": {
            "event.notification.callback.url": "https://elsewhere.example/cb",
            "event.notification.signature.key": "a-new-key"}}))),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    // Other changes need nothing again.
    let renamed = call(
        &s.app,
        "PATCH",
        &path,
        Some(&s.auth),
        Some(&patch(json!({"name": "renamed"}))),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
}

/// Issue 15, point 5: the guard's residuals. IPv4-compatible addresses,
/// the local-use NAT64 prefix and well-known ports other than 80 and 443 are
/// refused at creation, naming the field.
#[tokio::test]
async fn ipv4_compatible_local_nat64_and_system_ports_are_refused() {
    let s = stack().await;
    for callback in [
        "http://[::127.0.0.1]/cb",
        "http://[::a9fe:a9fe]/latest/meta-data",
        "http://[64:ff9b:1::a00:1]/cb",
        "https://mycoolapp.com:22/cb",
        "http://93.184.216.34:25/cb",
    ] {
        let body = json!({"element": {"key": "one"}, "name": "guarded", "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": callback,
            "one.webhook.username": "admin", "one.webhook.password": "pw"}});
        let reply = call(
            &s.app,
            "POST",
            "/elements/api-v2/instances",
            Some(&s.auth),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(reply.status, 400, "{callback}: {}", reply.body);
        assert_eq!(
            reply.body["field"], "configuration.event.notification.callback.url",
            "{callback}: {}",
            reply.body
        );
    }
    let allowed = json!({"element": {"key": "one"}, "name": "guarded", "configuration": {
        "event.notification.enabled": true,
        "event.notification.callback.url": "https://mycoolapp.com:8443/cb",
        "one.webhook.username": "admin", "one.webhook.password": "pw"}});
    let reply = call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&allowed.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Issue 15, point 3: per-organization quotas on instances and distinct poll
/// intervals (each one an EventBridge rule, 300 per bus), and a bound on
/// `event.poller.refresh_interval`. Each refused with a 4xx naming it; other
/// organizations are not affected.
#[tokio::test]
async fn organization_quotas_are_enforced_and_named() {
    let mut s = stack().await;
    s.app.quotas = instances::quotas::Quotas {
        max_instances: 3,
        max_poll_intervals: 2,
        max_refresh_minutes: 60,
    };
    let body = |minutes: &str| {
        let mut b = seeds::filled("002_openconnectors_bigcommerce_2.json");
        b["configuration"]["bigcommerce.store.hash"] = json!("abc123");
        b["configuration"]["oauth.access.token"] = json!("token");
        b["configuration"]["event.poller.refresh_interval"] = json!(minutes);
        b.to_string()
    };
    let create = |auth: String, b: String| {
        let app = s.app.clone();
        async move {
            call(
                &app,
                "POST",
                "/elements/api-v2/instances",
                Some(&auth),
                Some(&b),
            )
            .await
        }
    };
    let too_long = create(s.auth.clone(), body("61")).await;
    assert_eq!(too_long.status, 400, "{}", too_long.body);
    assert_eq!(
        too_long.body["field"],
        "configuration.event.poller.refresh_interval"
    );
    assert!(too_long.body["message"]
        .as_str()
        .unwrap()
        .contains("MAX_REFRESH_INTERVAL_MINUTES"));

    let first = create(s.auth.clone(), body("15")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = create(s.auth.clone(), body("30")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let third_interval = create(s.auth.clone(), body("45")).await;
    assert_eq!(third_interval.status, 409, "{}", third_interval.body);
    assert!(
        third_interval.body["message"]
            .as_str()
            .unwrap()
            .contains("ORG_MAX_POLL_INTERVALS"),
        "{}",
        third_interval.body
    );
    let same_interval = create(s.auth.clone(), body("15")).await;
    assert_eq!(same_interval.status, 200, "{}", same_interval.body);
    let fourth = create(s.auth.clone(), body("15")).await;
    assert_eq!(fourth.status, 409, "{}", fourth.body);
    assert!(
        fourth.body["message"]
            .as_str()
            .unwrap()
            .contains("ORG_MAX_INSTANCES"),
        "{}",
        fourth.body
    );

    // A PATCH that frees its own interval may take another one.
    let path = format!("/elements/api-v2/instances/{}", second.body["id"]);
    let patch = json!({"configuration": {"event.poller.refresh_interval": "45"}}).to_string();
    let moved = call(&s.app, "PATCH", &path, Some(&s.auth), Some(&patch)).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    // One that would make a third distinct interval may not.
    let path = format!("/elements/api-v2/instances/{}", first.body["id"]);
    let patch = json!({"configuration": {"event.poller.refresh_interval": "60"}}).to_string();
    let refused = call(&s.app, "PATCH", &path, Some(&s.auth), Some(&patch)).await;
    assert_eq!(refused.status, 409, "{}", refused.body);

    // Another organization has its own quotas.
    let (other, _) = new_account(&s.store).await;
    let theirs = create(other, body("20")).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
}

/// Issue 15, point 8: key rotation. Sealed values name their key; the
/// setting lists the new key first and the old one after it; `ce-admin
/// reseal` moves every instance to the new key, after which the old key can
/// go and every instance still opens.
#[tokio::test]
async fn keys_rotate_and_reseal_moves_every_instance_to_the_new_key() {
    use shared::crypto::SecretBox;
    let s = stack().await;
    let app_with = |keys: &str| {
        let mut settings = test_settings();
        settings.secrets = SecretBox::from_base64_key(keys).unwrap();
        instances::App::new(s.app.store.clone(), settings)
    };
    let (old_key, new_key) = (
        SecretBox::generate_key_base64(),
        SecretBox::generate_key_base64(),
    );
    let before = app_with(&old_key);
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = json!({"element": {"key": "one"}, "name": format!("rotating {i}"), "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": "https://mycoolapp.com/events",
            "event.notification.signature.key": format!("sig-{i}"),
            "one.webhook.username": "admin", "one.webhook.password": format!("pw-{i}")}});
        let reply = call(
            &before,
            "POST",
            BASE,
            Some(&s.auth),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        ids.push(reply.body["id"].as_u64().unwrap());
    }
    let old_id = before.settings.secrets.sealing_key_id().to_string();
    assert!(sealed_of(&s, ids[0])
        .await
        .starts_with(&format!("v2:{old_id}:")));

    // Deploy 1: the new key first, the old one still opens everything.
    let during = app_with(&format!("{new_key},{old_key}"));
    let shown = call(
        &during,
        "GET",
        &format!("{BASE}/{}", ids[0]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let report = ce_local::admin::reseal_all(&s.store, &during.settings.secrets)
        .await
        .unwrap();
    assert_eq!((report.instances, report.resealed), (3, 3), "{report:?}");
    assert!(report.unreadable.is_empty());
    let again = ce_local::admin::reseal_all(&s.store, &during.settings.secrets)
        .await
        .unwrap();
    assert_eq!((again.resealed, again.current), (0, 3), "{again:?}");

    // Deploy 2: only the new key. Every instance opens, secrets intact.
    let after = app_with(&new_key);
    for (i, id) in ids.iter().enumerate() {
        let sealed = sealed_of(&s, *id).await;
        assert!(
            sealed.starts_with(&format!("v2:{}:", after.settings.secrets.sealing_key_id())),
            "{sealed}"
        );
        let rec = s.app.store.get_instance(*id).await.unwrap().unwrap();
        let opened = rec.open(&after.settings.secrets).unwrap();
        assert_eq!(
            opened.configuration["one.webhook.password"],
            format!("pw-{i}")
        );
        let shown = call(&after, "GET", &format!("{BASE}/{id}"), Some(&s.auth), None).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
    }
}

async fn sealed_of(s: &ce_tests::Stack, id: u64) -> String {
    s.app
        .store
        .get_instance(id)
        .await
        .unwrap()
        .unwrap()
        .sealed_secrets
}
