//! Webhook data that is not a JSON body: Cloud Elements accepted form-encoded
//! POSTs and GETs with the data in the query string. Both are read as a JSON
//! object of their fields (each value a string), which every element's parser
//! and the callback's `raw` then take like any JSON body.

use http::Method;
use serde_json::{Map, Value};
use shared::api::ApiRequest;

/// The request's data as a JSON object, when it is a form or a query string;
/// `None` when the body is to be read as it is.
pub fn json_body(req: &ApiRequest) -> Option<Vec<u8>> {
    let pairs: Vec<(String, String)> = if req.method == Method::GET {
        let query = req.query.as_deref().unwrap_or("");
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    } else if is_form(req) {
        url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect()
    } else {
        return None;
    };
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k, Value::String(v));
    }
    serde_json::to_vec(&Value::Object(map)).ok()
}

fn is_form(req: &ApiRequest) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, query: Option<&str>, ct: Option<&str>, body: &[u8]) -> ApiRequest {
        let mut headers = http::HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        }
        ApiRequest {
            method,
            path: "/elements/api-v2/events/one".into(),
            query: query.map(str::to_string),
            headers,
            body: body.to_vec(),
            request_id: "t".into(),
        }
    }

    #[test]
    fn forms_and_queries_become_json_objects() {
        let form = req(
            Method::POST,
            None,
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            b"event=Cart+opened&cartId=c%2D1",
        );
        let v: Value = serde_json::from_slice(&json_body(&form).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "Cart opened", "cartId": "c-1"})
        );
        let get = req(
            Method::GET,
            Some("event=Client%20logged&customerId=9"),
            None,
            b"",
        );
        let v: Value = serde_json::from_slice(&json_body(&get).unwrap()).unwrap();
        assert_eq!(v["customerId"], "9");
        assert!(json_body(&req(Method::POST, None, Some("application/json"), b"{}")).is_none());
    }
}
