//! The v3 collections a poller reads (`/wp-json/wc/v3/{orders,products,
//! customers,coupons}`): controllable catalog state, trash, hidden objects,
//! and `WC_REST_CRUD_Controller::get_items()` (customers:
//! `WC_REST_Customers_V1_Controller::get_items()`).

use std::sync::Mutex;

use chrono::{NaiveDateTime, Timelike};
use http::Method;
use serde_json::{json, Value};
use shared::api::{ApiRequest, ApiResponse};

use super::auth::Auth;
use super::payloads::{coupon_payload, customer_payload, localize, order_payload, product_payload};
use super::php::{dedup, query_pairs};
use super::query::{list_args, wp_page_link, StatusFilter};
use super::rest::{cannot, no_route, wp_error, wp_json};
use super::zone::SiteZone;
use super::{lock, store_now, version_at_least, wc_date, StoreState, WooStore};

/// Resources with a simulated v3 collection at `/wp-json/wc/v3/{resource}`.
pub const CATALOG_RESOURCES: [&str; 4] = ["orders", "products", "customers", "coupons"];

/// A catalog object as the store holds it (dates at one-second resolution,
/// like the MySQL `DATETIME` columns).
#[derive(Debug, Clone)]
pub(super) struct CatalogItem {
    id: u64,
    created_gmt: NaiveDateTime,
    modified_gmt: NaiveDateTime,
    /// `processing` for orders, `publish` for products and coupons, `trash`
    /// once deleted; unused for customers (deleted customers are removed).
    status: String,
    /// Bytes of plugin meta the object carries (see [`WooStore::set_meta_bytes`]).
    pub(super) meta_bytes: usize,
}

#[derive(Debug, Clone)]
pub(super) enum CatalogOp {
    Upsert {
        resource: &'static str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    },
    Delete {
        resource: &'static str,
        id: u64,
    },
}

pub(super) fn catalog_resource(resource: &str) -> &'static str {
    CATALOG_RESOURCES
        .into_iter()
        .find(|r| *r == resource)
        .unwrap_or_else(|| panic!("unknown WooCommerce resource {resource:?}"))
}

fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

fn apply_op(s: &mut StoreState, op: CatalogOp) {
    match op {
        CatalogOp::Upsert {
            resource,
            id,
            modified_gmt,
            created_gmt,
        } => {
            let status = match resource {
                "orders" => "processing",
                "customers" => "",
                _ => "publish",
            };
            let items = s.catalog.entry(resource).or_default();
            let meta_bytes = items.get(&id).map_or(0, |i| i.meta_bytes);
            items.insert(
                id,
                CatalogItem {
                    id,
                    created_gmt: whole_seconds(created_gmt),
                    modified_gmt: whole_seconds(modified_gmt),
                    status: status.to_string(),
                    meta_bytes,
                },
            );
        }
        CatalogOp::Delete { resource, id } => {
            let now = whole_seconds(store_now(s));
            let items = s.catalog.entry(resource).or_default();
            if resource == "customers" {
                // WP users have no trash.
                items.remove(&id);
            } else if let Some(item) = items.get_mut(&id) {
                // `wp_trash_post()` → `wp_update_post()` → `wp_insert_post()`
                // sets `post_modified = current_time( 'mysql' )` on update:
                // trashing bumps the modified date.
                item.status = "trash".to_string();
                item.modified_gmt = now;
            }
        }
    }
}

pub(super) fn run_scheduled(s: &mut StoreState, answered: usize) {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.scheduled)
        .into_iter()
        .partition(|(after, _)| *after <= answered);
    s.scheduled = later;
    for (_, op) in due {
        apply_op(s, op);
    }
}

impl WooStore {
    /// `{base_url}/wp-json/wc/v3/{resource}`.
    pub fn catalog_url(&self, resource: &str) -> String {
        format!(
            "{}/wp-json/wc/v3/{}",
            self.base_url,
            catalog_resource(resource)
        )
    }

    /// Creates or modifies an object of `resource` (`orders`, `products`,
    /// `customers` or `coupons`); times are GMT and kept to the second. An
    /// upsert of a trashed object restores it (status back to the default).
    pub fn upsert(
        &self,
        resource: &str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    ) {
        apply_op(
            &mut lock(&self.state),
            CatalogOp::Upsert {
                resource: catalog_resource(resource),
                id,
                modified_gmt,
                created_gmt,
            },
        );
    }

    /// Deletes an object the way the store's UI does: orders, products and
    /// coupons move to the trash (status `trash`, `date_modified` set to the
    /// store's now — see [`freeze_clock`](Self::freeze_clock)); orders and
    /// products then leave `status=any` lists, coupons do not (their v3
    /// default is no status filter). Customers are removed.
    pub fn delete(&self, resource: &str, id: u64) {
        apply_op(
            &mut lock(&self.state),
            CatalogOp::Delete {
                resource: catalog_resource(resource),
                id,
            },
        );
    }

    /// Objects of `resource` that are not trashed.
    pub fn object_count(&self, resource: &str) -> usize {
        lock(&self.state)
            .catalog
            .get(catalog_resource(resource))
            .map_or(0, |m| m.values().filter(|i| i.status != "trash").count())
    }

    /// `date_modified_gmt` of an object, if it exists.
    pub fn modified_gmt(&self, resource: &str, id: u64) -> Option<NaiveDateTime> {
        lock(&self.state)
            .catalog
            .get(catalog_resource(resource))
            .and_then(|m| m.get(&id))
            .map(|i| i.modified_gmt)
    }

    /// Makes an object unreadable to the API key's user, as
    /// `wc_rest_check_post_permissions( $post_type, 'read', $id )` failing
    /// would (a capability plugin, a private post of another author): it
    /// stays in the query, so `X-WP-Total`, `X-WP-TotalPages` and
    /// `Link: rel="next"` still count it, but `get_items()` drops it from the
    /// page body ("short page"), and `GET /{resource}/{id}` answers 403
    /// `woocommerce_rest_cannot_view`. Not a default.
    pub fn hide_from_api(&self, resource: &str, id: u64) {
        lock(&self.state)
            .hidden
            .insert((catalog_resource(resource), id));
    }

    /// GET requests to a catalog collection so far (whatever their outcome,
    /// injected failures included).
    pub fn list_calls(&self) -> usize {
        lock(&self.state).list_calls
    }

    /// Applies [`upsert`](Self::upsert) right after list call number
    /// `after_calls` (1-based, counted by [`list_calls`](Self::list_calls)) is
    /// answered, i.e. between two pages of a scan; at once if already past.
    pub fn schedule_upsert_after_calls(
        &self,
        after_calls: usize,
        resource: &str,
        id: u64,
        modified_gmt: NaiveDateTime,
        created_gmt: NaiveDateTime,
    ) {
        self.schedule(
            after_calls,
            CatalogOp::Upsert {
                resource: catalog_resource(resource),
                id,
                modified_gmt,
                created_gmt,
            },
        );
    }

    /// Like [`schedule_upsert_after_calls`](Self::schedule_upsert_after_calls)
    /// for [`delete`](Self::delete).
    pub fn schedule_delete_after_calls(&self, after_calls: usize, resource: &str, id: u64) {
        self.schedule(
            after_calls,
            CatalogOp::Delete {
                resource: catalog_resource(resource),
                id,
            },
        );
    }

    fn schedule(&self, after_calls: usize, op: CatalogOp) {
        let mut s = lock(&self.state);
        s.scheduled.push((after_calls, op));
        let answered = s.list_calls;
        run_scheduled(&mut s, answered);
    }
}

/// `/wc/v3/{resource}` → (resource, None); `/wc/v3/{resource}/{id}` → (resource, Some(id)).
pub(super) fn catalog_route(route: &str) -> Option<(&'static str, Option<u64>)> {
    let rest = route.trim_end_matches('/').strip_prefix("/wc/v3/")?;
    let (name, id) = match rest.split_once('/') {
        Some((name, id)) => (name, Some(id)),
        None => (rest, None),
    };
    let resource = CATALOG_RESOURCES.into_iter().find(|r| *r == name)?;
    match id {
        None => Some((resource, None)),
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            id.parse().ok().map(|n| (resource, Some(n)))
        }
        Some(_) => None,
    }
}

/// The title/slug WordPress sorts by (approximations for orders).
fn post_title(resource: &str, item: &CatalogItem, zone: &SiteZone) -> String {
    match resource {
        "products" => format!("Product {}", item.id),
        "coupons" => format!("coupon{}", item.id),
        _ => format!(
            "Order &ndash; {}",
            zone.local(item.created_gmt).format("%B %d, %Y @ %I:%M %p")
        ),
    }
}

fn catalog_json(base_url: &str, resource: &str, item: &CatalogItem, zone: &SiteZone) -> Value {
    let created = wc_date(&item.created_gmt);
    let modified = wc_date(&item.modified_gmt);
    let mut v = match resource {
        "orders" => order_payload(item.id, &item.status, &created, &modified),
        "products" => product_payload(
            item.id,
            &format!("Product {}", item.id),
            &created,
            &modified,
        ),
        "customers" => customer_payload(
            item.id,
            &format!("customer{}@example.com", item.id),
            &created,
            &modified,
        ),
        _ => coupon_payload(item.id, &format!("coupon{}", item.id), &created, &modified),
    };
    if resource == "products" || resource == "coupons" {
        v["status"] = json!(item.status);
    }
    if item.meta_bytes > 0 {
        // Page builders and plugins keep their data in post meta, which the
        // v3 controllers return in `meta_data` (`WC_Data::get_meta_data`,
        // e.g. Elementor's `_elementor_data`): objects of tens or hundreds
        // of KB are common.
        v["meta_data"] = json!([{
            "id": 9000 + item.id,
            "key": "_elementor_data",
            "value": "x".repeat(item.meta_bytes),
        }]);
    }
    localize(&mut v, zone);
    v["_links"] = json!({
        "self": [{ "href": format!("{base_url}/wp-json/wc/v3/{resource}/{}", item.id) }],
        "collection": [{ "href": format!("{base_url}/wp-json/wc/v3/{resource}") }]
    });
    v
}

fn cannot_view_object() -> ApiResponse {
    // `rest_authorization_required_code()`: 403 for a logged-in user.
    wp_error(
        403,
        "woocommerce_rest_cannot_view",
        "Sorry, you cannot view this resource.",
    )
}

pub(super) fn catalog_request(
    state: &Mutex<StoreState>,
    req: &ApiRequest,
    auth: Auth,
    resource: &'static str,
    item: Option<u64>,
) -> ApiResponse {
    if req.method != Method::GET {
        // Writes to the catalog are not simulated (use `upsert`/`delete`).
        return no_route();
    }
    let Some(id) = item else {
        return catalog_list(state, req, auth, resource);
    };
    if let Auth::Anonymous = auth {
        return cannot(&req.method, true);
    }
    let s = lock(state);
    if s.hidden.contains(&(resource, id)) {
        return cannot_view_object();
    }
    match s.catalog.get(resource).and_then(|m| m.get(&id)) {
        Some(item) => wp_json(200, &catalog_json(&s.base_url, resource, item, &s.zone)),
        None if resource == "customers" => {
            wp_error(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        }
        None => {
            let post_type = match resource {
                "orders" => "shop_order",
                "coupons" => "shop_coupon",
                _ => "product",
            };
            wp_error(
                404,
                &format!("woocommerce_rest_{post_type}_invalid_id"),
                "Invalid ID.",
            )
        }
    }
}

/// `WC_REST_CRUD_Controller::get_items()` (orders, products, coupons) and
/// `WC_REST_Customers_V1_Controller::get_items()` (customers).
fn catalog_list(
    state: &Mutex<StoreState>,
    req: &ApiRequest,
    auth: Auth,
    resource: &'static str,
) -> ApiResponse {
    let raw = query_pairs(req.query.as_deref());
    let q = dedup(&raw);
    let s = lock(state);
    let zone = s.zone;
    // Arg validation runs before the permission callback (WP_REST_Server::dispatch).
    let args = match list_args(resource, &raw, &zone, version_at_least(&s.version, 5, 8)) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Auth::Anonymous = auth {
        return cannot(&req.method, false);
    }
    let customers = resource == "customers";
    // WP_Date_Query columns: `post_modified_gmt` with dates_are_gmt, else the
    // site-local `post_modified` (which repeats an hour when DST ends).
    let column = |t: NaiveDateTime| if args.use_gmt { t } else { zone.local(t) };
    let mut items: Vec<&CatalogItem> = s
        .catalog
        .get(resource)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    items.retain(|i| {
        let status_ok = customers
            || match &args.statuses {
                StatusFilter::Any => i.status != "trash",
                StatusFilter::All => true,
                StatusFilter::Only(wanted) => wanted.contains(&i.status),
            };
        // WP_Date_Query: `column > after`, `column < before` (no `inclusive`).
        status_ok
            && (args.include.is_empty() || args.include.contains(&i.id))
            && !args.exclude.contains(&i.id)
            && args.after.is_none_or(|b| column(i.created_gmt) > b)
            && args.before.is_none_or(|b| column(i.created_gmt) < b)
            && args
                .modified_after
                .is_none_or(|b| column(i.modified_gmt) > b)
            && args
                .modified_before
                .is_none_or(|b| column(i.modified_gmt) < b)
    });
    let position = |id: u64| args.include.iter().position(|x| *x == id);
    items.sort_by(|a, b| {
        let ord = match args.orderby.as_str() {
            "id" => a.id.cmp(&b.id),
            // WP_Query orders by the site-local `post_modified` column
            // ("modified ID"): across a DST fall-back that is not GMT order.
            "modified" => {
                (zone.local(a.modified_gmt), a.id).cmp(&(zone.local(b.modified_gmt), b.id))
            }
            "include" if !args.include.is_empty() => position(a.id).cmp(&position(b.id)),
            "title" | "slug" | "menu_order" if !customers => {
                let ta = post_title(resource, a, &zone);
                let tb = post_title(resource, b, &zone);
                (ta.to_lowercase(), a.id).cmp(&(tb.to_lowercase(), b.id))
            }
            // Customers: every simulated display_name is the same.
            "name" => a.id.cmp(&b.id),
            "price" | "popularity" | "rating" => a.id.cmp(&b.id),
            "registered_date" => (a.created_gmt, a.id).cmp(&(b.created_gmt, b.id)),
            // date (`post_date`, site-local), and `include` without ids.
            _ => (zone.local(a.created_gmt), a.id).cmp(&(zone.local(b.created_gmt), b.id)),
        };
        if args.desc {
            ord.reverse()
        } else {
            ord
        }
    });
    let total = items.len() as u64;
    let start = args.offset.unwrap_or((args.page - 1) * args.per_page);
    // Customers derive the page from the offset; posts report `paged`.
    let page = if customers {
        start / args.per_page + 1
    } else {
        args.page
    };
    // `if ( ! wc_rest_check_post_permissions( ... ) ) { continue; }`: hidden
    // objects use up their place on the page but are not in the body.
    let body: Vec<Value> = items
        .iter()
        .skip(start as usize)
        .take(args.per_page as usize)
        .filter(|i| !s.hidden.contains(&(resource, i.id)))
        .map(|i| catalog_json(&s.base_url, resource, i, &zone))
        .collect();
    let max_pages = total.div_ceil(args.per_page);
    let mut resp = wp_json(200, &Value::Array(body));
    resp.headers.push(("X-WP-Total".into(), total.to_string()));
    resp.headers
        .push(("X-WP-TotalPages".into(), max_pages.to_string()));
    let base = format!("{}/wp-json/wc/v3/{resource}", s.base_url);
    let mut links = Vec::new();
    if page > 1 {
        let prev = (page - 1).min(max_pages);
        links.push(format!("<{}>; rel=\"prev\"", wp_page_link(&base, &q, prev)));
    }
    if max_pages > page {
        links.push(format!(
            "<{}>; rel=\"next\"",
            wp_page_link(&base, &q, page + 1)
        ));
    }
    if !links.is_empty() {
        // WP_REST_Response::link_header appends to one `Link` header with ", ".
        resp.headers.push(("Link".into(), links.join(", ")));
    }
    resp
}
