//! The console in a real browser (headless Debian chromium over WebDriver),
//! served by the stack as `make run` serves it, against the WooCommerce
//! simulator, a callback receiver and the dispatcher on its stream trigger.
//! Each main page is saved as a screenshot under docs/console/.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ce_tests::browser::{Browser, Element};
use ce_tests::receiver::start_receiver;
use ce_tests::vendors::woocommerce;
use ce_tests::{call, served_stack, Stack};
use chrono::Utc;
use serde_json::{json, Value};

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/console")
        .join(name)
}

/// The user and organization secrets from the stack's Authorization header.
fn secrets(s: &Stack) -> (String, String) {
    let (user, org) = s.auth.split_once(", ").unwrap();
    (
        user.trim_start_matches("User ").to_string(),
        org.trim_start_matches("Organization ").to_string(),
    )
}

/// Runs the dispatcher on the notifications table's stream, as `make run`
/// does, until the returned sender is dropped.
async fn dispatch_from_stream(s: &Stack) -> tokio::sync::watch::Sender<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sdk = shared::store::sdk_config_from_env().await;
    tokio::spawn(ce_local::triggers::run_stream(
        // The local runner's own reads (Lambda's event source mapping on AWS).
        s.store.client().clone(),
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        s.store.tables().notifications.clone(),
        Arc::new(s.dispatcher.clone()),
        stopped,
    ));
    stop
}

async fn sign_in(b: &Browser, s: &Stack) {
    let (user, org) = secrets(s);
    b.goto(&format!("{}/console/", s.base_url.as_deref().unwrap()))
        .await;
    b.wait_text("h1", "Sign in").await;
    b.type_into(&b.find("input[name=user]").await, &user).await;
    b.type_into(&b.find("input[name=org]").await, &org).await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_text("h1", "Instances").await;
}

async fn field_input(b: &Browser, name: &str) -> Element {
    b.find(&format!("input[name=\"{name}\"]")).await
}

/// Every input, select and textarea on the page has a label.
async fn assert_all_labelled(b: &Browser, page: &str) {
    let unlabelled = b
        .script(
            "return [...document.querySelectorAll('input,select,textarea')]
               .filter(e => e.type !== 'hidden' && !e.labels.length && !e.getAttribute('aria-label'))
               .map(e => e.name || e.id)",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
}

/// Clicks `button` until `css` shows `text` (the page reloads what the API says).
async fn click_until(b: &Browser, button: &str, css: &str, text: &str) {
    let started = std::time::Instant::now();
    loop {
        b.click(&b.find(button).await).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let shown = b
            .script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''",
                vec![json!(css)],
            )
            .await;
        if shown.as_str().unwrap_or_default().contains(text) {
            return;
        }
        if started.elapsed() > ce_tests::browser::WAIT {
            b.fail(&format!("`{css}` never showed `{text}`")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_creates_a_polling_instance_and_sees_its_event_delivered_and_retried() {
    let s = served_stack().await;
    let _dispatching = dispatch_from_stream(&s).await;
    let receiver = start_receiver(None, Some(b"console-signing-key")).await;
    let store = woocommerce::start_store("ck_console", "cs_console").await;
    let b = Browser::start().await;

    // Sign in (the sign-in page first, for its screenshot).
    b.goto(&format!("{}/console/", s.base_url.as_deref().unwrap()))
        .await;
    b.wait_text("h1", "Sign in").await;
    assert_all_labelled(&b, "sign-in").await;
    b.screenshot(&screenshot_path("sign-in.png")).await;
    sign_in(&b, &s).await;

    // Create a WooCommerce polling instance, choosing the resources by checkbox.
    b.click(&b.find("nav a[href=\"#/new\"]").await).await;
    b.wait_text("h1", "New instance").await;
    b.click(&b.find("a[href=\"#/new/woocommercerest\"]").await)
        .await;
    b.wait_text("h1", "New WooCommerce instance").await;
    assert_all_labelled(&b, "the WooCommerce form").await;
    b.type_into(&field_input(&b, "name").await, "My shop").await;
    b.type_into(&field_input(&b, "tags").await, "console, test")
        .await;
    b.type_into(&field_input(&b, "store.url").await, &store.base_url)
        .await;
    b.type_into(&field_input(&b, "oauth.api.key").await, "ck_console")
        .await;
    b.type_into(&field_input(&b, "oauth.api.secret").await, "cs_console")
        .await;
    b.type_into(
        &field_input(&b, "event.notification.callback.url").await,
        &receiver.url,
    )
    .await;
    b.type_into(
        &field_input(&b, "event.notification.signature.key").await,
        "console-signing-key",
    )
    .await;
    b.type_into(&field_input(&b, "event.poller.refresh_interval").await, "5")
        .await;
    // Every resource starts checked (the element's defaults); keep orders only.
    for r in ["products", "customers", "discounts"] {
        b.click(&b.find(&format!("input[name=resource][value={r}]")).await)
            .await;
    }
    b.screenshot(&screenshot_path("new-instance.png")).await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_text("h1", "My shop").await;
    b.wait_text(".result", "token is shown only now").await;
    let id = b.text(&b.find("#instance-id").await).await;

    // What the form sent: the Cloud Elements poller configuration of the checked resource.
    let got = call(
        &s.app,
        "GET",
        &format!("/elements/api-v2/instances/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(got.status, 200);
    let cfg = &got.body["configuration"];
    assert_eq!(cfg["event.vendor.type"], "polling");
    assert_eq!(got.body["eventPollerRefreshInterval"], 5);
    assert_eq!(got.body["tags"], json!(["console", "test"]));
    let poller = &cfg["event.poller.configuration"];
    let poller: Value = match poller {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(
        poller.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["orders"],
        "{poller}"
    );
    assert_eq!(poller["orders"]["url"], "/hubs/ecommerce/orders");
    assert_eq!(
        poller["orders"]["datesConfiguration"]["updatedAtField"],
        "date_modified_gmt"
    );

    // A change at the store; poll now; the delivered event appears.
    let now = Utc::now().naive_utc();
    store.upsert("orders", 727, now, now - chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.click(&b.find("#poll-now").await).await;
    b.wait_text("#action-result", "Polled").await;
    assert!(
        receiver.wait_for_requests(1, Duration::from_secs(20)).await,
        "the callback receiver got the event"
    );
    click_until(&b, "#show-events", "table.events tbody", "delivered").await;
    let row = b.text(&b.find("table.events tbody tr").await).await;
    assert!(row.contains("orders/727"), "{row}");
    b.wait_until(
        "the chart's bars",
        "return document.querySelectorAll('#charts svg rect').length >= 2",
    )
    .await;
    assert_all_labelled(&b, "the instance page").await;
    b.screenshot(&screenshot_path("instance.png")).await;

    // Filter by status: nothing failed, one delivered.
    b.script(
        "document.querySelector('select[name=status]').value = 'failed'",
        vec![],
    )
    .await;
    b.click(&b.find("#show-events").await).await;
    b.wait_text(
        "section[aria-labelledby=events-heading] p[role=status]",
        "No events match",
    )
    .await;
    b.script(
        "document.querySelector('select[name=status]').value = 'delivered'",
        vec![],
    )
    .await;
    b.click(&b.find("#show-events").await).await;
    b.wait_text("table.events tbody", "orders/727").await;

    // Recover since a time: nothing is stuck, and it says so.
    b.click(&b.find("#recover").await).await;
    b.wait_text("#action-result", "Recovered: 0 event(s) re-queued")
        .await;

    // The event: its normalized events, raw body, callback body and attempts.
    b.click(&b.find("table.events tbody tr a").await).await;
    b.wait_text("h1", "Event evt_").await;
    b.wait_until(
        "a delivery attempt answered 200",
        "return [...document.querySelectorAll('#attempts tbody tr')]
           .some(r => r.cells[2].innerText.trim() === '200')",
    )
    .await;
    b.wait_text("#normalized", "727").await;
    b.wait_text("#raw", "727").await;
    let callback = b.text(&b.find("#callback-body").await).await;
    let sent = &receiver.accepted()[0];
    let sent_id = sent.id().unwrap().to_string();
    assert!(callback.contains(&sent_id), "{callback}");
    assert!(sent.elements_signature_valid);
    // The callback body shown is the one that was sent, key for key.
    let shown: Value =
        serde_json::from_str(b.text(&b.find("#callback-body pre").await).await.trim()).unwrap();
    assert_eq!(shown, sent.json);
    b.screenshot(&screenshot_path("event.png")).await;

    // Retry it: a second attempt, delivered with the same webhook-id.
    b.click(&b.find("#retry").await).await;
    b.wait_text("#event-result", "Re-queued").await;
    assert!(receiver.wait_for_requests(2, Duration::from_secs(20)).await);
    // The attempts count (not a table cell: dates hold a "2" too), then both rows.
    click_until(&b, "#refresh", "#event-attempts", "2").await;
    b.wait_until(
        "two attempts, both 200",
        "return [...document.querySelectorAll('#attempts tbody tr')]
           .filter(r => r.cells[2].innerText.trim() === '200').length === 2",
    )
    .await;
    assert_eq!(receiver.accepted_ids().get(&sent_id), Some(&2));

    // The organization's event log lists it too.
    b.click(&b.find("nav a[href=\"#/events\"]").await).await;
    b.wait_text("h1", "Events").await;
    b.wait_text("table.events tbody", "orders/727").await;

    // The instance list shows it, valid, polling, events on.
    b.click(&b.find("nav a[href=\"#/instances\"]").await).await;
    let row = b.wait_text("table.instances tbody", "My shop").await;
    assert!(
        row.contains("WooCommerce") && row.contains("valid") && row.contains("events on"),
        "{row}"
    );
    b.screenshot(&screenshot_path("instances.png")).await;
    assert!(
        b.console_log().await.iter().all(|l| !l.contains("SEVERE")),
        "no JavaScript error: {:?}",
        b.console_log().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_400_is_shown_next_to_its_field_and_a_webhook_instance_is_copied_edited_and_deleted() {
    let s = served_stack().await;
    let b = Browser::start().await;

    // Wrong secrets are refused, and said so.
    b.goto(&format!("{}/console/", s.base_url.as_deref().unwrap()))
        .await;
    b.type_into(&b.find("input[name=user]").await, "wrong")
        .await;
    b.type_into(&b.find("input[name=org]").await, "wrong").await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_text(".form-error", "not accepted").await;
    // The secrets never reach the URL.
    sign_in(&b, &s).await;
    let (user, _) = secrets(&s);
    let url = b.script("return location.href", vec![]).await;
    assert!(!url.as_str().unwrap().contains(&user));

    // A WooCommerce form whose store URL is a placeholder copied from the docs.
    b.goto(&format!(
        "{}/console/#/new/woocommercerest",
        s.base_url.as_deref().unwrap()
    ))
    .await;
    b.wait_text("h1", "New WooCommerce instance").await;
    b.type_into(&field_input(&b, "name").await, "Broken").await;
    b.type_into(&field_input(&b, "store.url").await, "<STORE_URL>")
        .await;
    b.type_into(&field_input(&b, "oauth.api.key").await, "ck")
        .await;
    b.type_into(&field_input(&b, "oauth.api.secret").await, "cs")
        .await;
    b.type_into(
        &field_input(&b, "event.notification.callback.url").await,
        "https://mycoolapp.com/events",
    )
    .await;
    b.click(&b.find("form button[type=submit]").await).await;
    let error = b.find(".field-error").await;
    let message = b.text(&error).await;
    assert!(
        message.contains("store.url") || !message.is_empty(),
        "{message}"
    );
    // Next to the store URL input, which is marked invalid, described by it and focused.
    let placed = b
        .script(
            "const i = document.querySelector('input[name=\"store.url\"]');
             const e = document.querySelector('.field-error');
             return i.closest('.field').contains(e)
               && i.getAttribute('aria-invalid') === 'true'
               && i.getAttribute('aria-describedby').includes(e.id)
               && document.activeElement === i",
            vec![],
        )
        .await;
    assert_eq!(placed, json!(true), "the error is next to store.url");
    // And announced to screen readers.
    b.wait_until(
        "the announcement",
        "return document.getElementById('announce').textContent.startsWith('Error in Store URL')",
    )
    .await;
    b.screenshot(&screenshot_path("field-error.png")).await;

    // An ONe webhook instance: its ingestion URL, with a copy button.
    b.goto(&format!(
        "{}/console/#/new/one",
        s.base_url.as_deref().unwrap()
    ))
    .await;
    b.wait_text("h1", "New ONe instance").await;
    b.type_into(&field_input(&b, "name").await, "ONe shop")
        .await;
    b.type_into(
        &field_input(&b, "event.notification.callback.url").await,
        "https://mycoolapp.com/events",
    )
    .await;
    b.type_into(&field_input(&b, "one.webhook.username").await, "one-user")
        .await;
    b.type_into(&field_input(&b, "one.webhook.password").await, "one-pass")
        .await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_text("h1", "ONe shop").await;
    let id = b.text(&b.find("#instance-id").await).await;
    let url = b.property(&b.find("#webhook-url").await, "value").await;
    assert_eq!(
        url.as_str().unwrap(),
        s.url(&format!("/events/one/{id}")),
        "the ingestion URL"
    );
    assert_all_labelled(&b, "the webhook instance page").await;
    b.screenshot(&screenshot_path("webhook-instance.png")).await;

    // Keyboard only: Tab reaches the copy button, Enter presses it.
    b.script("document.getElementById('webhook-url').focus()", vec![])
        .await;
    b.keys("\u{E004}").await;
    b.keys("\u{E007}").await;
    b.wait_text(".copy button", "Copied").await;

    // Edit it (PATCH): the password shows as ******** and is kept.
    b.click(&b.find(&format!("a[href=\"#/instances/{id}/edit\"]")).await)
        .await;
    b.wait_text("h1", "Edit ONe shop").await;
    let password = field_input(&b, "one.webhook.password").await;
    assert_eq!(b.property(&password, "value").await, json!("********"));
    b.type_into(&field_input(&b, "name").await, "ONe shop renamed")
        .await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.wait_text("h1", "ONe shop renamed").await;
    let got = call(
        &s.app,
        "GET",
        &format!("/elements/api-v2/instances/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(got.body["name"], "ONe shop renamed");
    let record = s
        .app
        .store
        .get_instance(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let instance = record.open(&s.app.settings.secrets).unwrap();
    assert_eq!(instance.configuration["one.webhook.password"], "one-pass");

    // Delete it, after a confirmation.
    b.click(&b.find("button.danger").await).await;
    b.click(&b.find(".confirm button.danger").await).await;
    b.wait_text("h1", "Instances").await;
    let gone = call(
        &s.app,
        "GET",
        &format!("/elements/api-v2/instances/{id}"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(gone.status, 404);
}
