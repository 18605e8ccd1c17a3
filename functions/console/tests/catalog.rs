//! The console builds its forms from `assets/elements.json`. These checks keep
//! that file in step with the service's own element catalog
//! (`shared/src/elements/`), so a form can never offer what the API refuses
//! or miss what it requires.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use shared::config;
use shared::elements::{self, Element};
use shared::netguard::NetGuard;

fn catalog() -> Vec<Value> {
    let v: Value = serde_json::from_str(console::elements_json()).expect("elements.json is JSON");
    v["elements"].as_array().expect("an elements array").clone()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn element(e: &Value) -> &'static dyn Element {
    let key = e["key"].as_str().unwrap();
    elements::find(key).unwrap_or_else(|| panic!("elements.json lists unknown element {key}"))
}

/// Every form field, with the mode it is shown in (None: always).
fn fields(e: &Value) -> Vec<(Value, Option<&'static str>)> {
    let mut all: Vec<(Value, Option<&'static str>)> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f.clone(), None))
        .collect();
    all.extend(
        e["webhookFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f.clone(), Some("webhook"))),
    );
    all
}

#[test]
fn the_console_offers_every_element_with_its_modes() {
    let listed: BTreeSet<String> = catalog()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    let known: BTreeSet<String> = elements::known_keys()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, known);
    for e in catalog() {
        let modes: BTreeSet<String> = element(&e)
            .modes()
            .iter()
            .map(|m| m.as_str().to_string())
            .collect();
        assert_eq!(strings(&e["modes"]), modes, "{}", e["key"]);
    }
}

#[test]
fn secrets_are_password_inputs_and_nothing_else_is() {
    for e in catalog() {
        let el = element(&e);
        let secret_keys: BTreeSet<String> =
            elements::all_secret_keys(el).map(str::to_string).collect();
        let own: BTreeSet<String> = el.secret_keys().iter().map(|s| s.to_string()).collect();
        assert_eq!(strings(&e["secrets"]), own, "{}", e["key"]);
        for (f, _) in fields(&e) {
            let key = f["key"].as_str().unwrap();
            assert_eq!(
                f["secret"].as_bool().unwrap_or(false),
                secret_keys.contains(key),
                "{}: {key} must be a password input exactly when the service treats it as a secret",
                e["key"]
            );
        }
    }
}

/// A body as the form sends it: the required fields filled, events on.
fn form_body(e: &Value, mode: &str, skip: Option<&str>) -> Value {
    let mut cfg = Map::new();
    for (f, only) in fields(e) {
        let key = f["key"].as_str().unwrap();
        if f["required"] == true && only.is_none_or(|m| m == mode) && Some(key) != skip {
            let value = match f["type"].as_str() {
                Some("url") => "https://shop.example.com".to_string(),
                _ if key.ends_with(".id") => "1003".to_string(),
                _ => format!("value-{key}"),
            };
            cfg.insert(key.to_string(), json!(value));
        }
    }
    cfg.insert("event.notification.enabled".into(), json!(true));
    cfg.insert(
        "event.notification.callback.url".into(),
        json!("https://mycoolapp.com/events"),
    );
    if e["modes"].as_array().unwrap().len() > 1 {
        cfg.insert("event.vendor.type".into(), json!(mode));
    }
    json!({"element": {"key": e["key"]}, "name": "console", "configuration": cfg})
}

fn validate(body: &Value) -> Result<(), shared::error::ApiError> {
    let mut parsed = config::parse_instance_body(body)?;
    config::validate_configuration(
        parsed.element,
        &mut parsed.configuration,
        &NetGuard::new(true),
    )
    .map(|_| ())
}

#[test]
fn the_required_fields_are_what_the_service_requires() {
    for e in catalog() {
        for mode in strings(&e["modes"]) {
            if e["key"] == "bigcommerce" {
                // Either username, password and store URL, or the OAuth pair;
                // and for webhooks either of two secrets: no single field is
                // required, so none is marked (the API's 400 says which).
                continue;
            }
            validate(&form_body(&e, &mode, None)).unwrap_or_else(|err| {
                panic!(
                    "{} {mode}: the form's required fields are not enough: {err:?}",
                    e["key"]
                )
            });
            for (f, only) in fields(&e) {
                let key = f["key"].as_str().unwrap();
                if f["required"] == true && only.is_none_or(|m| m == mode) {
                    let err = validate(&form_body(&e, &mode, Some(key)))
                        .expect_err(&format!("{} {mode}: {key} is marked required", e["key"]));
                    assert_eq!(err.status(), 400);
                }
            }
        }
    }
}

#[test]
fn checked_resources_build_the_elements_default_poller_configuration() {
    for e in catalog() {
        let el = element(&e);
        match el.default_poller_configuration() {
            None => assert!(e["poller"].is_null(), "{} does not poll", e["key"]),
            Some(default) => {
                let p = &e["poller"];
                let names: Vec<&str> = el.hub_resources().iter().map(|r| r.name).collect();
                assert_eq!(
                    strings(&p["resources"]),
                    names.iter().map(|s| s.to_string()).collect()
                );
                // What forms.js pollerConfiguration() builds with every box checked.
                let mut built = Map::new();
                for r in p["resources"].as_array().unwrap() {
                    let r = r.as_str().unwrap();
                    built.insert(r.into(), json!({
                        "url": format!("/hubs/ecommerce/{r}"),
                        "idField": "id",
                        "datesConfiguration": {
                            "updatedAtField": p["updatedAtField"], "updatedAtFormat": p["format"],
                            "createdAtField": p["createdAtField"], "createdAtFormat": p["format"],
                        }
                    }));
                }
                assert_eq!(Value::Object(built), default, "{}", e["key"]);
            }
        }
    }
}

#[test]
fn bigcommerce_takes_its_basic_credentials_from_the_form() {
    let e = catalog()
        .into_iter()
        .find(|e| e["key"] == "bigcommerce")
        .unwrap();
    let mut body = form_body(&e, "polling", None);
    for (k, v) in [
        ("store.url", "https://store-abc.mybigcommerce.com/api/v2"),
        ("username", "u"),
        ("password", "p"),
    ] {
        body["configuration"][k] = json!(v);
    }
    validate(&body).unwrap();
    let keys: BTreeSet<String> = fields(&e)
        .iter()
        .map(|(f, _)| f["key"].as_str().unwrap().to_string())
        .collect();
    assert!(["store.url", "username", "password"]
        .iter()
        .all(|k| keys.contains(*k)));
}
