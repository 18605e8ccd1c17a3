//! The OpenAPI description cannot drift from the code: every route the
//! routers serve is described, every described route is served, the served
//! document is the one in docs/, and real answers validate against its
//! schemas (JSON Schema, with the `jsonschema` crate).

use std::collections::BTreeSet;

use ce_tests::receiver::start_receiver;
use ce_tests::vendors::{one, woocommerce};
use ce_tests::{call, ingest, served_stack, Reply, Stack};
use chrono::{Duration, Timelike, Utc};
use serde_json::{json, Value};

const API: &str = "/elements/api-v2";

fn document() -> Value {
    serde_json::from_str(instances::openapi::DOCUMENT).expect("openapi.json is JSON")
}

#[test]
fn the_served_document_is_the_one_in_docs_and_is_openapi_3_1() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json exists");
    assert_eq!(
        docs,
        instances::openapi::DOCUMENT,
        "docs/openapi.json is a copy of functions/instances/openapi.json"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every $ref resolves.
    let text = instances::openapi::DOCUMENT;
    for part in text.split("\"$ref\": \"#/").skip(1) {
        let pointer = format!("/{}", &part[..part.find('"').unwrap()]);
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
}

/// A described path template (`/instances/{id}/events`) matches a concrete
/// path when each segment is equal or a parameter.
fn described(doc: &Value, method: &str, path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .any(|(template, ops)| {
            let t: Vec<&str> = template.trim_matches('/').split('/').collect();
            t.len() == segs.len()
                && t.iter()
                    .zip(&segs)
                    .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
                && ops.get(method.to_ascii_lowercase()).is_some()
        })
}

/// Served: anything but the routers' "no route" 404 and 405.
fn served(reply: &Reply) -> bool {
    let no_route = reply.status == 404
        && reply.body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no route for"));
    !(no_route || reply.status == 405)
}

async fn ask(s: &Stack, method: &str, path: &str) -> Reply {
    if path.starts_with("/events") {
        let mut req =
            woocommerce::delivery("order.updated", "http://x/", 1, "d", "s", &json!({"id": 1}))
                .to_api_request(&format!("{API}{path}"));
        req.method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let response = webhooks::handle(&s.webhooks, req).await;
        Reply {
            status: response.status,
            body: response.json_value().unwrap_or(Value::Null),
            response,
        }
    } else {
        call(
            &s.app,
            method,
            &format!("{API}{path}"),
            Some(&s.auth),
            Some("{}"),
        )
        .await
    }
}

#[tokio::test]
async fn every_served_route_is_described_and_every_described_route_is_served() {
    let s = served_stack().await;
    let doc = document();
    let methods = ["GET", "POST", "PATCH", "DELETE", "PUT"];
    // Paths built from the routers' vocabulary, with sample parameters.
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let second = ["123", "events"];
    let third = ["events", "evt_x", "123", "poll"];
    let fourth = ["evt_x", "poll", "recover", "retry", "deliveries", "123"];
    let fifth = ["retry", "deliveries", "poll", "evt_x"];
    paths.insert("/instances".into());
    paths.insert("/openapi.json".into());
    paths.insert("/nothing".into());
    for a in second {
        paths.insert(format!("/instances/{a}"));
        for b in third {
            paths.insert(format!("/instances/{a}/{b}"));
            for c in fourth {
                paths.insert(format!("/instances/{a}/{b}/{c}"));
                for d in fifth {
                    paths.insert(format!("/instances/{a}/{b}/{c}/{d}"));
                }
            }
        }
    }
    for p in [
        "/events",
        "/events/one",
        "/events/one/123",
        "/events/one/123/x",
    ] {
        paths.insert(p.into());
    }
    let mut undocumented = Vec::new();
    let mut served_count = 0;
    for path in &paths {
        for method in methods {
            let reply = ask(&s, method, path).await;
            assert!(
                reply.status < 500 || reply.status == 502 || reply.status == 503,
                "{method} {path}: {}",
                reply.status
            );
            if served(&reply) {
                served_count += 1;
                if !described(&doc, method, path) {
                    undocumented.push(format!("{method} {path} ({})", reply.status));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.json: {undocumented:#?}"
    );
    assert!(served_count >= 17, "{served_count}");
    // And every described operation is served.
    for (template, ops) in doc["paths"].as_object().unwrap() {
        let concrete = template
            .replace("{id}", "123")
            .replace("{eventId}", "evt_x")
            .replace("{elementKey}", "one")
            .replace("{instanceId}", "123");
        for method in ops.as_object().unwrap().keys() {
            let reply = ask(&s, &method.to_ascii_uppercase(), &concrete).await;
            assert!(
                served(&reply),
                "described but not served: {method} {template} ({})",
                reply.status
            );
        }
    }
}

/// A validator for one component schema of the document.
fn validator(name: &str) -> jsonschema::Validator {
    let doc = document();
    let defs = doc["components"]["schemas"]
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/$defs/{name}"),
        "$defs": serde_json::from_str::<Value>(&defs).unwrap(),
    });
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

fn conforms(name: &str, value: &Value) {
    let v = validator(name);
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{value}");
}

fn conforms_each(name: &str, value: &Value) {
    let items = value.as_array().expect("an array");
    assert!(!items.is_empty(), "{name}: nothing to check");
    for item in items {
        conforms(name, item);
    }
}

/// Many handler futures in one debug-build test: run on a roomier stack.
#[test]
fn answers_validate_against_the_documents_schemas() {
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(validate_answers())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn validate_answers() {
    let s = served_stack().await;
    let r = start_receiver(None, None).await;
    // Without authentication, the document itself.
    let open = call(&s.app, "GET", &format!("{API}/openapi.json"), None, None).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.body, document());

    let body = json!({"element": {"key": "one"}, "name": "schema", "configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": r.url,
        "one.webhook.username": "admin", "one.webhook.password": "pw"}});
    let created = call(
        &s.app,
        "POST",
        &format!("{API}/instances"),
        Some(&s.auth),
        Some(&body.to_string()),
    )
    .await;
    conforms("Instance", &created.body);
    let id = created.body["id"].clone();
    conforms_each(
        "Instance",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );
    conforms(
        "Instance",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/{id}"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );

    let d = one::delivery(&one::client_logged("schema-1"), "admin", "pw");
    let ingested = ingest(
        &s.webhooks,
        &format!("/events/one/{id}"),
        &d.headers,
        &d.body,
    )
    .await;
    conforms("IngestionResult", &ingested.body);
    let event_id = ingested.body["eventIds"][0].as_str().unwrap().to_string();
    dispatcher::attempt(&s.dispatcher, &event_id, Utc::now())
        .await
        .unwrap();
    let events = call(
        &s.app,
        "GET",
        &format!("{API}/instances/{id}/events"),
        Some(&s.auth),
        None,
    )
    .await;
    conforms_each("Event", &events.body);
    conforms_each(
        "Event",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/events"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );
    conforms(
        "Event",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/events/{event_id}"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );
    conforms(
        "Event",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/{id}/events/{event_id}"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );
    conforms_each(
        "DeliveryAttempt",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/{id}/events/{event_id}/deliveries"),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );
    let retried = call(
        &s.app,
        "POST",
        &format!("{API}/instances/{id}/events/{event_id}/retry"),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(retried.status, 202);
    conforms("Event", &retried.body);
    let recovered = call(
        &s.app,
        "POST",
        &format!("{API}/instances/{id}/events/recover"),
        Some(&s.auth),
        None,
    )
    .await;
    conforms("RecoverResult", &recovered.body);

    // A polling instance's report, and a WooCommerce webhook instance's
    // health on it.
    let store = woocommerce::start_store("ck_s", "cs_s").await;
    let hooks = json!({"element": {"key": "woocommercerest"}, "name": "hooks", "configuration": {
        "store.url": store.base_url, "oauth.api.key": "ck_s", "oauth.api.secret": "cs_s",
        "event.notification.enabled": true, "event.vendor.type": "webhook",
        "event.notification.callback.url": r.url}});
    let wc = s.create(hooks).await;
    let t = Utc::now().with_nanosecond(0).unwrap() - Duration::seconds(1);
    store.upsert("orders", 5, t.naive_utc(), t.naive_utc());
    let report = call(
        &s.app,
        "POST",
        &format!("{API}/instances/{}/events/poll", wc["id"]),
        Some(&s.auth),
        None,
    )
    .await;
    assert_eq!(report.status, 200, "{}", report.body);
    conforms("PollReport", &report.body);
    conforms(
        "Instance",
        &call(
            &s.app,
            "GET",
            &format!("{API}/instances/{}", wc["id"]),
            Some(&s.auth),
            None,
        )
        .await
        .body,
    );

    // Errors.
    for reply in [
        call(
            &s.app,
            "GET",
            &format!("{API}/instances/999"),
            Some(&s.auth),
            None,
        )
        .await,
        call(&s.app, "GET", &format!("{API}/instances"), None, None).await,
        call(
            &s.app,
            "POST",
            &format!("{API}/instances"),
            Some(&s.auth),
            Some("{\"element\":{\"key\":\"nope\"}}"),
        )
        .await,
    ] {
        assert!(reply.status >= 400);
        conforms("Error", &reply.body);
    }
}
