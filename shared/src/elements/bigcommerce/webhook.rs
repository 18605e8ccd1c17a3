//! BigCommerce callbacks → events: every documented scope mapped explicitly,
//! and the key that collapses only true re-sends.
//!
//! Source: `bigcommerce/docs:docs/integrations/webhooks/events/index.mdx`
//! (the scope list and each payload's `data`). A subscription to
//! `store/customer/*` or `store/order/*` also delivers the four-segment
//! scopes below, whose `data.id` is *not* the customer or the order:
//! - `store/customer/address/*`: `data.id` is the address, the customer is
//!   `data.address.customer_id`. The event is an UPDATED of the customer; the
//!   address id and the scope are kept in `vendorDetail`.
//! - `store/order/{message,refund}/created`: `data.id` is the order; UPDATED.
//! - `store/order/transaction/*`: `data.order_id` (a string) is the order,
//!   `data.transaction_id` the provider's transaction; UPDATED.
//! - `store/order/archived`: the order is archived, i.e. deleted; DELETED.
//!
//! A scope this table does not name becomes UNKNOWN under objectType
//! `events`, with the scope and `data` kept: never a guessed object.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::events::{body_digest, Event, EventType};
use crate::webhook::{epoch_seconds_at, text_at, WebhookContent, WebhookRequest};

/// Where a scope's object is and what happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    object_type: &'static str,
    /// Dotted path of the object id in the body.
    id_path: &'static str,
    event_type: EventType,
    /// Dotted path of a sub-object id worth keeping (`vendorDetail`).
    detail: Option<(&'static str, &'static str)>,
}

const fn m(object_type: &'static str, id_path: &'static str, event_type: EventType) -> Mapping {
    Mapping {
        object_type,
        id_path,
        event_type,
        detail: None,
    }
}

const fn with_detail(mut mapping: Mapping, name: &'static str, path: &'static str) -> Mapping {
    mapping.detail = Some((name, path));
    mapping
}

use EventType::{Created, Deleted, Updated};

/// Every scope of the events page whose object is one a client knows.
fn mapping(scope: &str) -> Option<Mapping> {
    Some(match scope {
        "store/order/created" => m("orders", "data.id", Created),
        "store/order/updated" | "store/order/statusUpdated" => m("orders", "data.id", Updated),
        "store/order/archived" => m("orders", "data.id", Deleted),
        "store/order/message/created" => with_detail(
            m("orders", "data.id", Updated),
            "messageId",
            "data.message.order_message_id",
        ),
        "store/order/refund/created" => with_detail(
            m("orders", "data.id", Updated),
            "refundId",
            "data.refund.refund_id",
        ),
        "store/order/transaction/created" | "store/order/transaction/updated" => with_detail(
            m("orders", "data.order_id", Updated),
            "transactionId",
            "data.transaction_id",
        ),
        "store/product/created" => m("products", "data.id", Created),
        "store/product/updated"
        | "store/product/inventory/updated"
        | "store/product/inventory/order/updated" => m("products", "data.id", Updated),
        "store/product/deleted" => m("products", "data.id", Deleted),
        "store/customer/created" => m("customers", "data.id", Created),
        "store/customer/updated" | "store/customer/payment/instrument/default/updated" => {
            m("customers", "data.id", Updated)
        }
        "store/customer/deleted" => m("customers", "data.id", Deleted),
        "store/customer/address/created"
        | "store/customer/address/updated"
        | "store/customer/address/deleted" => with_detail(
            m("customers", "data.address.customer_id", Updated),
            "addressId",
            "data.id",
        ),
        "store/cart/created" => m("carts", "data.id", Created),
        "store/cart/updated"
        | "store/cart/couponApplied"
        | "store/cart/abandoned"
        | "store/cart/converted" => m("carts", "data.id", Updated),
        "store/cart/deleted" => m("carts", "data.id", Deleted),
        "store/cart/lineItem/created"
        | "store/cart/lineItem/updated"
        | "store/cart/lineItem/deleted" => {
            with_detail(m("carts", "data.cartId", Updated), "lineItemId", "data.id")
        }
        "store/category/created" => m("categories", "data.id", Created),
        "store/category/updated" => m("categories", "data.id", Updated),
        "store/category/deleted" => m("categories", "data.id", Deleted),
        "store/shipment/created" => m("shipments", "data.id", Created),
        "store/shipment/updated" => m("shipments", "data.id", Updated),
        "store/shipment/deleted" => m("shipments", "data.id", Deleted),
        "store/sku/created" => m("skus", "data.id", Created),
        "store/sku/updated"
        | "store/sku/inventory/updated"
        | "store/sku/inventory/order/updated" => m("skus", "data.id", Updated),
        "store/sku/deleted" => m("skus", "data.id", Deleted),
        "store/subscriber/created" => m("subscribers", "data.id", Created),
        "store/subscriber/updated" => m("subscribers", "data.id", Updated),
        "store/subscriber/deleted" => m("subscribers", "data.id", Deleted),
        _ => return None,
    })
}

/// The dedupe key of a callback. BigCommerce's Standard Webhooks `webhook-id`
/// is the same on every retry of one message: preferred. Without it, the
/// payload `hash` is the same for every delivery whose `data` is the same
/// (two updates of one product carry one hash), so the scope and
/// `created_at` go with it.
pub(super) fn dedupe_key(req: &WebhookRequest, body: &Map<String, Value>) -> String {
    if let Some(id) = req.header("webhook-id").filter(|id| !id.is_empty()) {
        return format!("bc-webhook:{id}");
    }
    match text_at(body, "hash") {
        Some(hash) => format!(
            "bc-hash:{hash}:{}:{}",
            text_at(body, "scope").unwrap_or_default(),
            text_at(body, "created_at").unwrap_or_default()
        ),
        None => format!("bc-body:{}", body_digest(req.body)),
    }
}

pub(super) fn parse(
    element_key: &str,
    req: &WebhookRequest,
    now: DateTime<Utc>,
) -> Result<WebhookContent, ApiError> {
    let body = req.json_object()?;
    let scope = text_at(&body, "scope")
        .ok_or_else(|| ApiError::BadRequest("BigCommerce webhook has no scope".into()))?;
    let event_date = epoch_seconds_at(&body, "created_at").unwrap_or(now);
    let dedupe_key = dedupe_key(req, &body);
    let mapped = mapping(&scope).and_then(|mapping| {
        let id = text_at(&body, mapping.id_path)?;
        Some((mapping, id))
    });
    let event = match mapped {
        Some((mapping, object_id)) => {
            let event = Event::new(
                element_key,
                mapping.object_type,
                object_id,
                mapping.event_type,
                event_date,
            )
            .with_vendor_event_type(scope.clone());
            match mapping.detail {
                Some((name, path)) => {
                    let mut detail = Map::new();
                    detail.insert("scope".into(), json!(scope));
                    if let Some(value) = text_at(&body, path) {
                        detail.insert(name.into(), json!(value));
                    }
                    event.with_vendor_detail(Value::Object(detail))
                }
                None => event,
            }
        }
        // An unknown scope, or a known one without the id where the docs
        // put it: reported as it came, about no object we could name.
        None => Event::new(
            element_key,
            "events",
            text_at(&body, "hash").unwrap_or_else(|| body_digest(req.body)),
            EventType::Unknown,
            event_date,
        )
        .with_vendor_event_type(scope.clone())
        .with_vendor_detail(json!({
            "scope": scope,
            "data": body.get("data").cloned().unwrap_or(Value::Null),
        })),
    };
    Ok(WebhookContent::Events {
        dedupe_key,
        events: vec![event],
        versions: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn parse_body(body: Value) -> Event {
        let bytes = body.to_string().into_bytes();
        let headers = HeaderMap::new();
        let req = WebhookRequest {
            headers: &headers,
            body: &bytes,
        };
        match parse("bigcommerce", &req, Utc::now()).unwrap() {
            WebhookContent::Events { mut events, .. } => events.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn address_events_are_updates_of_their_customer() {
        let e = parse_body(
            json!({"scope": "store/customer/address/deleted", "hash": "h",
            "data": {"type": "customer", "id": 60, "address": {"customer_id": 32}}}),
        );
        assert_eq!(
            (e.object_type.as_str(), e.object_id.as_str()),
            ("customers", "32")
        );
        assert_eq!(e.event_type, EventType::Updated);
        assert_eq!(
            e.vendor_detail,
            Some(json!({"scope": "store/customer/address/deleted", "addressId": "60"}))
        );
    }

    #[test]
    fn order_sub_scopes_update_the_order_and_archived_deletes_it() {
        let refund = parse_body(json!({"scope": "store/order/refund/created",
            "data": {"type": "order", "id": 250, "refund": {"refund_id": 3}}}));
        assert_eq!(
            (refund.object_id.as_str(), refund.event_type),
            ("250", Updated)
        );
        let tx = parse_body(json!({"scope": "store/order/transaction/created",
            "data": {"type": "transaction", "order_id": "250", "transaction_id": "176342342"}}));
        assert_eq!(
            (tx.object_type.as_str(), tx.object_id.as_str()),
            ("orders", "250")
        );
        let archived = parse_body(json!({"scope": "store/order/archived",
            "data": {"type": "order", "id": 250}}));
        assert_eq!(archived.event_type, Deleted);
    }

    #[test]
    fn unknown_scopes_name_no_object() {
        let e = parse_body(
            json!({"scope": "store/brand/metafield/created", "hash": "abc",
            "data": {"type": "metafield", "id": 9}}),
        );
        assert_eq!(
            (e.object_type.as_str(), e.object_id.as_str()),
            ("events", "abc")
        );
        assert_eq!(e.event_type, EventType::Unknown);
        assert_eq!(e.vendor_detail.unwrap()["data"]["id"], 9);
    }
}
