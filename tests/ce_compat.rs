//! What a client written against Cloud Elements reads (its API test suite,
//! "churros": `src/test/platform/events/`): CE's event record and status
//! words, the organization's event log, one event under its instance, a
//! poller's callback found by `message.raw.objectType`, `date` beside
//! `eventDate`, and instance tokens that must match the instance.

use ce_tests::receiver::{start_receiver, Receiver};
use ce_tests::vendors::{one, woocommerce};
use ce_tests::{call, ingest, new_account, served_stack, Stack};
use chrono::{Duration, Timelike, Utc};
use dispatcher::{attempt, Outcome};
use serde_json::{json, Value};

const INSTANCES: &str = "/elements/api-v2/instances";
const KEY: &str = "ce-signing-key";

async fn receiver() -> Receiver {
    start_receiver(None, Some(KEY.as_bytes())).await
}

async fn one_instance(s: &Stack, auth: &str, callback: &str) -> Value {
    let body = json!({"element": {"key": "one"}, "name": "ce", "configuration": {
        "event.notification.enabled": true,
        "event.notification.callback.url": callback,
        "event.notification.signature.key": KEY,
        "one.webhook.username": "admin", "one.webhook.password": "pw"}});
    let reply = call(
        &s.app,
        "POST",
        INSTANCES,
        Some(auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn one_event(s: &Stack, instance: &Value, customer: &str) -> String {
    let d = one::delivery(&one::client_logged(customer), "admin", "pw");
    let reply = ingest(
        &s.webhooks,
        &format!("/events/one/{}", instance["id"]),
        &d.headers,
        &d.body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["eventIds"][0].as_str().unwrap().to_string()
}

async fn get(s: &Stack, auth: &str, path: &str) -> (u16, Value) {
    let reply = call(&s.app, "GET", path, Some(auth), None).await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn the_event_record_speaks_cloud_elements() {
    let s = served_stack().await;
    let r = receiver().await;
    let inst = one_instance(&s, &s.auth, &r.url).await;
    let delivered = one_event(&s, &inst, "c-1").await;
    let waiting = one_event(&s, &inst, "c-2").await;
    assert_eq!(
        attempt(&s.dispatcher, &delivered, Utc::now())
            .await
            .unwrap(),
        Outcome::Delivered
    );

    let (status, list) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", inst["id"])).await;
    assert_eq!(status, 200);
    let by_id = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap()
    };
    let e = by_id(&delivered);
    assert!(e["id"].is_string() && e["eventDate"].is_string());
    assert_eq!(e["status"], "NOTIFIED");
    assert_eq!(e["deliveryStatus"], "delivered");
    let provider = e["providerData"]
        .as_str()
        .expect("providerData is the raw data as a string");
    assert_eq!(
        serde_json::from_str::<Value>(provider).unwrap()["event"],
        "Client logged"
    );
    let notified = e["notifiedData"].as_array().unwrap();
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0]["message"]["eventId"], delivered.as_str());
    assert_eq!(
        r.received()[0].json,
        notified[0],
        "exactly what the callback got"
    );
    let w = by_id(&waiting);
    assert_eq!(w["status"], "RECEIVED");
    assert_eq!(w["notifiedData"], json!([]));

    // `?status=` in either vocabulary.
    for (filter, expected) in [
        ("NOTIFIED", vec![delivered.clone()]),
        ("delivered", vec![delivered.clone()]),
        ("RECEIVED", vec![waiting.clone()]),
        ("pending", vec![waiting.clone()]),
        ("DISPATCHED", vec![]),
        ("CONSUMED", vec![]),
    ] {
        let (status, body) = get(
            &s,
            &s.auth,
            &format!("{INSTANCES}/{}/events?status={filter}", inst["id"]),
        )
        .await;
        assert_eq!(status, 200, "{filter}: {body}");
        let ids: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "{filter}");
    }
    let (status, body) = get(
        &s,
        &s.auth,
        &format!("{INSTANCES}/{}/events?status=DONE", inst["id"]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "status");

    // One event under its instance; the same id under another instance is 404.
    let (status, one) = get(
        &s,
        &s.auth,
        &format!("{INSTANCES}/{}/events/{delivered}", inst["id"]),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["status"], "NOTIFIED");
    let other = one_instance(&s, &s.auth, &r.url).await;
    let (status, _) = get(
        &s,
        &s.auth,
        &format!("{INSTANCES}/{}/events/{delivered}", other["id"]),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_organizations_event_log_spans_its_instances_and_no_other() {
    let s = served_stack().await;
    let r = receiver().await;
    let a = one_instance(&s, &s.auth, &r.url).await;
    let b = one_instance(&s, &s.auth, &r.url).await;
    let mut ids = Vec::new();
    for (i, inst) in [&a, &b, &a].into_iter().enumerate() {
        ids.push(one_event(&s, inst, &format!("c-{i}")).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Another organization's event stays out of this log, and is a 404.
    let (other_auth, _) = new_account(&s.store).await;
    let foreign = one_instance(&s, &other_auth, &r.url).await;
    let foreign_event = one_event(&s, &foreign, "c-x").await;

    let (status, first) = get(&s, &s.auth, "/elements/api-v2/instances/events?pageSize=2").await;
    assert_eq!(status, 200, "{first}");
    let page1: Vec<String> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page1, [ids[2].clone(), ids[1].clone()], "newest first");
    let next = call(
        &s.app,
        "GET",
        "/elements/api-v2/instances/events?pageSize=2",
        Some(&s.auth),
        None,
    )
    .await
    .response
    .header("elements-next-page-token")
    .map(str::to_string)
    .expect("a next page");
    let (_, second) = get(
        &s,
        &s.auth,
        &format!("/elements/api-v2/instances/events?pageSize=2&nextPage={next}"),
    )
    .await;
    let page2: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(page2, [ids[0].as_str()]);

    // A time window on the creation time.
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let (_, none) = get(
        &s,
        &s.auth,
        &format!(
            "/elements/api-v2/instances/events?since={}",
            future.replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(none, json!([]));
    let (status, bad) = get(
        &s,
        &s.auth,
        "/elements/api-v2/instances/events?since=yesterday",
    )
    .await;
    assert_eq!((status, bad["field"].clone()), (400, json!("since")));

    let (status, _) = get(
        &s,
        &s.auth,
        &format!("/elements/api-v2/instances/events/{foreign_event}"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &s,
        &s.auth,
        &format!("{INSTANCES}/{}/events/{foreign_event}", foreign["id"]),
    )
    .await;
    assert_eq!(status, 404);
    let (_, theirs) = get(&s, &other_auth, "/elements/api-v2/instances/events").await;
    assert_eq!(theirs.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_pollers_callback_is_found_by_raw_object_type_with_date_beside_event_date() {
    let s = served_stack().await;
    let r = receiver().await;
    let store = woocommerce::start_store("ck_ce", "cs_ce").await;
    let body = json!({"element": {"key": "woocommercerest"}, "name": "ce poll", "configuration": {
        "store.url": store.base_url, "oauth.api.key": "ck_ce", "oauth.api.secret": "cs_ce",
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": r.url, "event.notification.signature.key": KEY,
        "event.poller.configuration": {"orders": {"url": "/hubs/ecommerce/orders", "idField": "id", "datesConfiguration": {}}}}});
    let inst = s.create(body).await;
    let t = Utc::now().with_nanosecond(0).unwrap() + Duration::seconds(1);
    store.upsert("orders", 41, t.naive_utc(), t.naive_utc());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let poll = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{}/events/poll", inst["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(poll.body["notifications"], 1, "{}", poll.body);
    let (_, list) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", inst["id"])).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        attempt(&s.dispatcher, &id, Utc::now()).await.unwrap(),
        Outcome::Delivered
    );
    let got = r.received();
    let msg = &got[0].json["message"];
    assert_eq!(msg["raw"]["objectType"], "orders");
    assert_eq!(msg["raw"]["instance_id"], inst["id"]);
    assert_eq!(msg["raw"]["eventId"], id.as_str());
    assert_eq!(msg["raw"]["orders"][0]["id"], 41);
    let event = &msg["events"][0];
    assert!(event["date"].is_string());
    assert_eq!(event["date"], event["eventDate"]);
}

#[tokio::test]
async fn an_element_token_must_belong_to_the_instance_addressed() {
    let s = served_stack().await;
    let r = receiver().await;
    let a = one_instance(&s, &s.auth, &r.url).await;
    let b = one_instance(&s, &s.auth, &r.url).await;
    let token_a = a["token"].as_str().unwrap();
    let with = |token: &str| format!("{}, Element {token}", s.auth);

    let (status, _) = get(&s, &with(token_a), &format!("{INSTANCES}/{}", a["id"])).await;
    assert_eq!(status, 200, "its own token");
    let (status, body) = get(&s, &with(token_a), &format!("{INSTANCES}/{}", b["id"])).await;
    assert_eq!(status, 401, "another instance's token: {body}");
    let (status, _) = get(
        &s,
        &with("not-a-token"),
        &format!("{INSTANCES}/{}/events", a["id"]),
    )
    .await;
    assert_eq!(status, 401);
    let event = one_event(&s, &b, "c-1").await;
    let (status, _) = get(
        &s,
        &with(token_a),
        &format!("/elements/api-v2/instances/events/{event}"),
    )
    .await;
    assert_eq!(status, 401, "an event of another instance");
    let (status, _) = get(&s, &with(token_a), "/elements/api-v2/instances/events").await;
    assert_eq!(status, 401, "the organization's log is not one instance's");
    // Without a token, the User and Organization secrets reach every instance.
    let (status, _) = get(&s, &s.auth, &format!("{INSTANCES}/{}", b["id"])).await;
    assert_eq!(status, 200);
}

/// Cloud Elements' ways to address a webhook: the `Element-Instances`
/// header on `/events/{elementKey}`, a form-encoded body, and a GET with the
/// data in the query string; each verified and deduplicated as before.
#[tokio::test]
async fn webhooks_are_routed_by_header_and_read_from_forms_and_queries() {
    let s = served_stack().await;
    let r = receiver().await;
    let a = one_instance(&s, &s.auth, &r.url).await;
    let b = one_instance(&s, &s.auth, &r.url).await;
    let basic = one::basic_auth("admin", "pw");
    let http = reqwest::Client::new();

    // The header names both instances; each verifies and gets the event.
    let body = serde_json::to_vec(&one::client_logged("hdr-1")).unwrap();
    let resp = http
        .post(s.url("/events/one"))
        .header("Authorization", &basic)
        .header("Content-Type", "application/json")
        .header("Element-Instances", format!("{}, {}", a["id"], b["id"]))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 2, "{answer}");
    // Wrong credentials for the addressed instances: 401, nothing stored.
    let resp = http
        .post(s.url("/events/one"))
        .header("Authorization", one::basic_auth("admin", "nope"))
        .header("Element-Instances", a["id"].to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .post(s.url("/events/one"))
        .header("Authorization", &basic)
        .header("Element-Instances", "x, y")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A form-encoded POST to the instance's URL.
    let resp = http
        .post(s.url(&format!("/events/one/{}", a["id"])))
        .header("Authorization", &basic)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("event=Cart+opened&cartId=cart-7&customerId=c-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");

    // A GET with the data in the query string.
    let resp = http
        .get(s.url(&format!(
            "/events/one/{}?event=Cart%20opened&cartId=cart-8&customerId=c-9",
            a["id"]
        )))
        .header("Authorization", &basic)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (_, list) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", a["id"])).await;
    let mut carts: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["events"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["objectType"].as_str().unwrap().to_string(),
                e["objectId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    carts.sort();
    assert_eq!(
        carts,
        [
            ("carts".to_string(), "cart-7".to_string()),
            ("carts".to_string(), "cart-8".to_string()),
            ("customers".to_string(), "hdr-1".to_string())
        ],
        "{list}"
    );
    // The form's fields are the raw data, as JSON.
    let form_event = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["events"][0]["objectId"] == "cart-7")
        .unwrap();
    assert_eq!(form_event["raw"]["cartId"], "cart-7");
    let (_, list_b) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", b["id"])).await;
    assert_eq!(list_b.as_array().unwrap().len(), 1);
}

/// Cloud Elements' `event.notification.instance.finder`: a webhook to
/// `/events/{elementKey}` reaches the instances whose configured value
/// matches the payload's, each verified with its own credentials.
#[tokio::test]
async fn an_instance_finder_routes_a_webhook_without_an_instance_id() {
    let s = served_stack().await;
    let r = receiver().await;
    let make = |account: &str| {
        json!({"element": {"key": "one"}, "name": "finder", "configuration": {
            "event.notification.enabled": true, "event.notification.callback.url": r.url,
            "one.webhook.username": "admin", "one.webhook.password": "pw",
            "one.account": account,
            "event.notification.instance.finder": "one.account|accountId"}})
    };
    let seven = s.create(make("acct-7")).await;
    let eight = s.create(make("acct-8")).await;
    let http = reqwest::Client::new();
    let send = |body: Value| {
        http.post(s.url("/events/one"))
            .header("Authorization", one::basic_auth("admin", "pw"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let resp = send(json!({"event": "Cart opened", "cartId": "f-1", "accountId": "acct-7"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, seven_events) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", seven["id"])).await;
    let (_, eight_events) = get(&s, &s.auth, &format!("{INSTANCES}/{}/events", eight["id"])).await;
    assert_eq!(seven_events.as_array().unwrap().len(), 1);
    assert!(eight_events.as_array().unwrap().is_empty());
    // No instance matches: 404, nothing stored.
    let resp = send(json!({"event": "Cart opened", "cartId": "f-2", "accountId": "acct-9"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A finder naming a key the configuration lacks is refused, named.
    let mut bad = make("acct-1");
    bad["configuration"]["event.notification.instance.finder"] = json!("one.nothing|accountId");
    let reply = call(
        &s.app,
        "POST",
        INSTANCES,
        Some(&s.auth),
        Some(&bad.to_string()),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body["field"],
        "configuration.event.notification.instance.finder"
    );
}

/// Retention follows the event's life, not only its creation: a replay on
/// day 29, or an event queued or failed late, gets a fresh 30 days, so it is
/// never deleted mid-schedule (issue 14, expiry).
#[tokio::test]
async fn a_replay_gives_the_event_a_fresh_retention() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let s = served_stack().await;
    let r = receiver().await;
    let inst = one_instance(&s, &s.auth, &r.url).await;
    let id = one_event(&s, &inst, "keep-1").await;
    let table = s.store.tables().notifications.clone();
    let expires = || async {
        let out = s
            .store
            .client()
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.unwrap()["expires_at"]
            .as_n()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    // Day 29: one day of retention left.
    let tomorrow = (Utc::now() + Duration::days(1)).timestamp();
    s.store
        .client()
        .update_item()
        .table_name(&table)
        .key("id", AttributeValue::S(id.clone()))
        .update_expression("SET expires_at = :e")
        .expression_attribute_values(":e", AttributeValue::N(tomorrow.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(expires().await, tomorrow);
    let retried = call(
        &s.app,
        "POST",
        &format!("{INSTANCES}/{}/events/{id}/retry", inst["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    let fresh = (Utc::now() + Duration::days(29)).timestamp();
    assert!(expires().await >= fresh, "a replay restarts the 30 days");
}
