//! Resource payloads as the v3 REST API returns them (and as `order.*`,
//! `product.*`, `customer.*`, `coupon.*` deliveries carry them), from the
//! WooCommerce REST API v3 docs examples, trimmed.
//!
//! Dates: every `date_x_gmt` is UTC and every `date_x` is the same instant
//! as site-local wall time, both `Y-m-d\TH:i:s` without an offset
//! (`wc_rest_prepare_date_response()` in includes/wc-rest-functions.php;
//! orders v2 controller `get_formatted_item_data()`). The free helpers use
//! the default zone ([`DEFAULT_TIMEZONE`](super::DEFAULT_TIMEZONE)); [`localize`] re-derives the
//! local fields for another zone.

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::wc_date;
use super::zone::SiteZone;

/// Site-local time for a GMT `Y-m-d\TH:i:s` stamp in the default site zone
/// ([`DEFAULT_TIMEZONE`](super::DEFAULT_TIMEZONE), with DST), as `wc_rest_prepare_date_response(
/// $date, false )` prints it; unparsable input is returned as is.
fn site_local(gmt: &str) -> String {
    NaiveDateTime::parse_from_str(gmt, "%Y-%m-%dT%H:%M:%S")
        .map(|t| wc_date(&SiteZone::default().local(t)))
        .unwrap_or_else(|_| gmt.to_string())
}

/// Merges JSON objects (keeps `json!` literals under the macro recursion limit).
fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut out = Map::new();
    for part in parts {
        if let Value::Object(map) = part {
            out.extend(map);
        }
    }
    Value::Object(out)
}

fn links(resource: &str, id: u64) -> Value {
    json!({
        "self": [{ "href": format!("https://example.com/wp-json/wc/v3/{resource}/{id}") }],
        "collection": [{ "href": format!("https://example.com/wp-json/wc/v3/{resource}") }]
    })
}

/// An order as `GET /wc/v3/orders/{id}` returns it, i.e. the `order.*`
/// payload (§1.5); from the v3 "Create an order" response example (order
/// 727), with the billing name changed to "Zoë" so escaping matters.
///
/// Dates are `Y-m-d\TH:i:s` with no zone (§1.8); `*_gmt` are the inputs.
pub fn order_payload(
    id: u64,
    status: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    merge([
        json!({
            "id": id,
            "parent_id": 0,
            "number": id.to_string(),
            "order_key": "wc_order_58d2d042d1d",
            "created_via": "rest-api",
            "version": "3.0.0",
            "status": status,
            "currency": "USD",
            "date_created": site_local(date_created_gmt),
            "date_created_gmt": date_created_gmt,
            "date_modified": site_local(date_modified_gmt),
            "date_modified_gmt": date_modified_gmt,
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "10.00",
            "shipping_tax": "0.00",
            "cart_tax": "1.35",
            "total": "29.35",
            "total_tax": "1.35",
            "prices_include_tax": false,
            "customer_id": 0,
            "customer_ip_address": "",
            "customer_user_agent": "",
            "customer_note": "",
        }),
        json!({
            "billing": {
                "first_name": "Zoë",
                "last_name": "Doe",
                "company": "",
                "address_1": "969 Market",
                "address_2": "",
                "city": "San Francisco",
                "state": "CA",
                "postcode": "94103",
                "country": "US",
                "email": "zoe.doe@example.com",
                "phone": "(555) 555-5555"
            },
            "shipping": {
                "first_name": "Zoë",
                "last_name": "Doe",
                "company": "",
                "address_1": "969 Market",
                "address_2": "",
                "city": "San Francisco",
                "state": "CA",
                "postcode": "94103",
                "country": "US"
            },
            "payment_method": "bacs",
            "payment_method_title": "Direct Bank Transfer",
            "transaction_id": "",
            "date_paid": site_local(date_modified_gmt),
            "date_paid_gmt": date_modified_gmt,
            "date_completed": null,
            "date_completed_gmt": null,
            "cart_hash": "",
            "meta_data": [
                { "id": 13106, "key": "_download_permissions_granted", "value": "yes" }
            ],
        }),
        json!({
            "line_items": [
                {
                    "id": 315,
                    "name": "Woo Single #1",
                    "product_id": 93,
                    "variation_id": 0,
                    "quantity": 2,
                    "tax_class": "",
                    "subtotal": "6.00",
                    "subtotal_tax": "0.45",
                    "total": "6.00",
                    "total_tax": "0.45",
                    "taxes": [{ "id": 75, "total": "0.45", "subtotal": "0.45" }],
                    "meta_data": [],
                    "sku": "",
                    "price": 3
                }
            ],
            "tax_lines": [
                {
                    "id": 318,
                    "rate_code": "US-CA-STATE TAX",
                    "rate_id": 75,
                    "label": "State Tax",
                    "compound": false,
                    "tax_total": "1.35",
                    "shipping_tax_total": "0.00",
                    "meta_data": []
                }
            ],
            "shipping_lines": [
                {
                    "id": 317,
                    "method_title": "Flat Rate",
                    "method_id": "flat_rate",
                    "total": "10.00",
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": []
                }
            ],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "_links": links("orders", id)
        }),
    ])
}

/// An order like [`order_payload`] (order 727, `processing`, the docs'
/// 2017-03-22 dates) with `n_items` line items in WooCommerce's shape
/// (`get_order_item_data()` of the orders v2 controller: taxes, meta_data,
/// sku, price, image, parent_name) and totals that add up. About 500 bytes
/// of JSON per item: `n_items = 600` gives a body over 256 KiB.
pub fn order_payload_with_line_items(id: u64, n_items: usize) -> Value {
    let mut order = order_payload(
        id,
        "processing",
        "2017-03-22T19:28:02",
        "2017-03-22T19:28:08",
    );
    let mut items = Vec::with_capacity(n_items);
    let mut subtotal_cents: u64 = 0;
    let mut tax_cents: u64 = 0;
    for i in 0..n_items as u64 {
        let quantity = 1 + i % 3;
        let price_cents = 999 + (i % 7) * 250;
        let line_cents = price_cents * quantity;
        let line_tax = line_cents * 75 / 1000;
        subtotal_cents += line_cents;
        tax_cents += line_tax;
        let money = |c: u64| format!("{}.{:02}", c / 100, c % 100);
        let product_id = 1000 + i;
        items.push(json!({
            "id": 5000 + i,
            "name": format!("Woo Single #{product_id} - Größe M"),
            "product_id": product_id,
            "variation_id": 0,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": money(line_cents),
            "subtotal_tax": money(line_tax),
            "total": money(line_cents),
            "total_tax": money(line_tax),
            "taxes": [{ "id": 75, "total": money(line_tax), "subtotal": money(line_tax) }],
            "meta_data": [
                { "id": 9000 + i, "key": "pa_size", "value": "m", "display_key": "Size", "display_value": "M" }
            ],
            "sku": format!("WOO-{product_id}"),
            "price": (price_cents as f64) / 100.0,
            "image": {
                "id": 700 + i % 50,
                "src": format!("https://example.com/wp-content/uploads/2017/03/product-{product_id}.jpg")
            },
            "parent_name": null
        }));
    }
    let money = |c: u64| format!("{}.{:02}", c / 100, c % 100);
    let shipping_cents = 1000;
    order["line_items"] = Value::Array(items);
    order["cart_tax"] = json!(money(tax_cents));
    order["total_tax"] = json!(money(tax_cents));
    order["total"] = json!(money(subtotal_cents + tax_cents + shipping_cents));
    order["tax_lines"][0]["tax_total"] = json!(money(tax_cents));
    order
}

/// Rewrites every `date_x` that has a `date_x_gmt` twin holding a date
/// (recursively, line items and images included) to the site-local time of
/// that GMT instant in `zone`, as the store would have printed it.
pub fn localize(payload: &mut Value, zone: &SiteZone) {
    match payload {
        Value::Object(map) => {
            let pairs: Vec<(String, String)> = map
                .iter()
                .filter_map(|(k, v)| {
                    let local_key = k.strip_suffix("_gmt")?;
                    let gmt =
                        NaiveDateTime::parse_from_str(v.as_str()?, "%Y-%m-%dT%H:%M:%S").ok()?;
                    Some((local_key.to_string(), wc_date(&zone.local(gmt))))
                })
                .collect();
            for (k, local) in pairs {
                map.insert(k, Value::String(local));
            }
            for v in map.values_mut() {
                localize(v, zone);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| localize(v, zone)),
        _ => {}
    }
}

/// A product as `GET /wc/v3/products/{id}` returns it (`product.*` payload,
/// §1.5); from the v3 "Retrieve a product" example (product 794), trimmed.
///
/// `price_html` and `permalink` carry `/` so the `\/` escaping matters.
pub fn product_payload(
    id: u64,
    name: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    let slug = name.to_ascii_lowercase().replace(' ', "-");
    merge([
        json!({
            "id": id,
            "name": name,
            "slug": slug,
            "permalink": format!("https://example.com/product/{slug}/"),
            "date_created": site_local(date_created_gmt),
            "date_created_gmt": date_created_gmt,
            "date_modified": site_local(date_modified_gmt),
            "date_modified_gmt": date_modified_gmt,
            "type": "simple",
            "status": "publish",
            "featured": false,
            "catalog_visibility": "visible",
            "description": "<p>Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac turpis egestas.</p>\n",
            "short_description": "<p>Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac turpis egestas.</p>\n",
            "sku": "",
            "price": "21.99",
            "regular_price": "21.99",
            "sale_price": "",
            "date_on_sale_from": null,
            "date_on_sale_from_gmt": null,
            "date_on_sale_to": null,
            "date_on_sale_to_gmt": null,
            "price_html": "<span class=\"woocommerce-Price-amount amount\"><span class=\"woocommerce-Price-currencySymbol\">&#36;</span>21.99</span>",
            "on_sale": false,
            "purchasable": true,
            "total_sales": 0,
            "virtual": false,
            "downloadable": false,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "external_url": "",
            "button_text": "",
        }),
        json!({
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": false,
            "stock_quantity": null,
            "stock_status": "instock",
            "backorders": "no",
            "backorders_allowed": false,
            "backordered": false,
            "sold_individually": false,
            "weight": "",
            "dimensions": { "length": "", "width": "", "height": "" },
            "shipping_required": true,
            "shipping_taxable": true,
            "shipping_class": "",
            "shipping_class_id": 0,
            "reviews_allowed": true,
            "average_rating": "0.00",
            "rating_count": 0,
            "related_ids": [53, 40, 56, 479, 99],
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": 0,
            "purchase_note": "",
            "categories": [
                { "id": 9, "name": "Clothing", "slug": "clothing" },
                { "id": 14, "name": "T-shirts", "slug": "t-shirts" }
            ],
            "tags": [],
            "images": [
                {
                    "id": 792,
                    "date_created": "2017-03-23T14:01:13",
                    "date_created_gmt": "2017-03-23T20:01:13",
                    "date_modified": "2017-03-23T14:01:13",
                    "date_modified_gmt": "2017-03-23T20:01:13",
                    "src": "https://example.com/wp-content/uploads/2017/03/T_2_front-4.jpg",
                    "name": "",
                    "alt": ""
                }
            ],
            "attributes": [],
            "default_attributes": [],
            "variations": [],
            "grouped_products": [],
            "menu_order": 0,
            "meta_data": [],
            "_links": links("products", id)
        }),
    ])
}

/// A customer as `GET /wc/v3/customers/{id}` returns it (`customer.*`
/// payload, §1.5); from the v3 "List all customers" example (João Silva).
pub fn customer_payload(
    id: u64,
    email: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    json!({
        "id": id,
        "date_created": site_local(date_created_gmt),
        "date_created_gmt": date_created_gmt,
        "date_modified": site_local(date_modified_gmt),
        "date_modified_gmt": date_modified_gmt,
        "email": email,
        "first_name": "João",
        "last_name": "Silva",
        "role": "customer",
        "username": "joao.silva",
        "billing": {
            "first_name": "João",
            "last_name": "Silva",
            "company": "",
            "address_1": "Av. Brasil, 432",
            "address_2": "",
            "city": "Rio de Janeiro",
            "state": "RJ",
            "postcode": "12345-000",
            "country": "BR",
            "email": email,
            "phone": "(55) 5555-5555"
        },
        "shipping": {
            "first_name": "João",
            "last_name": "Silva",
            "company": "",
            "address_1": "Av. Brasil, 432",
            "address_2": "",
            "city": "Rio de Janeiro",
            "state": "RJ",
            "postcode": "12345-000",
            "country": "BR"
        },
        "is_paying_customer": false,
        "avatar_url": "https://secure.gravatar.com/avatar/be7b5febff88a2d947c3289e90cdf017?s=96",
        "meta_data": [],
        "_links": links("customers", id)
    })
}

/// A coupon as `GET /wc/v3/coupons/{id}` returns it (`coupon.*` payload,
/// §1.5); from the v3 "Create a coupon" example (coupon 719, `10off`).
pub fn coupon_payload(
    id: u64,
    code: &str,
    date_created_gmt: &str,
    date_modified_gmt: &str,
) -> Value {
    json!({
        "id": id,
        "code": code,
        "amount": "10.00",
        "status": "publish",
        "date_created": site_local(date_created_gmt),
        "date_created_gmt": date_created_gmt,
        "date_modified": site_local(date_modified_gmt),
        "date_modified_gmt": date_modified_gmt,
        "discount_type": "percent",
        "description": "",
        "date_expires": null,
        "date_expires_gmt": null,
        "usage_count": 0,
        "individual_use": true,
        "product_ids": [],
        "excluded_product_ids": [],
        "usage_limit": null,
        "usage_limit_per_user": null,
        "limit_usage_to_x_items": null,
        "free_shipping": false,
        "product_categories": [],
        "excluded_product_categories": [],
        "exclude_sale_items": true,
        "minimum_amount": "100.00",
        "maximum_amount": "0.00",
        "email_restrictions": [],
        "used_by": [],
        "meta_data": [],
        "_links": links("coupons", id)
    })
}

/// The payload of every `*.deleted` topic: exactly `{"id": N}` (§1.5).
pub fn deleted_payload(id: u64) -> Value {
    json!({ "id": id })
}

/// The payload of `action.*` topics: `{"action": hook, "arg": arg}` (§1.5).
pub fn action_payload(hook: &str, arg: Value) -> Value {
    json!({ "action": hook, "arg": arg })
}
