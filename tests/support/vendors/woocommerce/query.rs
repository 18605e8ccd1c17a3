//! WordPress REST argument handling for the list endpoints: validation
//! with WordPress's messages, `rest_parse_date()`, `WP_Date_Query` bounds,
//! and the pagination `Link` values WooCommerce builds.

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use shared::api::ApiResponse;

use super::php::{php_array, PhpValue};
use super::rest::wp_error_data;
use super::zone::SiteZone;

/// `wp_sprintf_l('%l', $items)`: "a", "a and b", "a, b, and c".
pub(super) fn wp_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// Collects REST arg validation failures like `WP_REST_Request::has_valid_params`.
#[derive(Default)]
struct ArgErrors(Vec<(String, String)>);

impl ArgErrors {
    fn push(&mut self, name: &str, reason: String) {
        self.0.push((name.to_string(), reason));
    }

    fn into_response(self) -> Option<ApiResponse> {
        if self.0.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        let params: Map<String, Value> = self
            .0
            .iter()
            .map(|(n, r)| (n.clone(), Value::String(r.clone())))
            .collect();
        Some(wp_error_data(
            400,
            "rest_invalid_param",
            &format!("Invalid parameter(s): {}", names.join(", ")),
            json!({ "status": 400, "params": params }),
        ))
    }
}

/// `rest_is_integer` + minimum/maximum checks, with WordPress's messages.
fn int_arg(
    q: &[(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    min: Option<i64>,
    max: Option<i64>,
) -> Option<i64> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    let Ok(n) = raw.trim().parse::<i64>() else {
        errors.push(name, format!("{name} is not of type integer."));
        return None;
    };
    match (min, max) {
        (Some(lo), Some(hi)) if n < lo || n > hi => {
            errors.push(
                name,
                format!("{name} must be between {lo} (inclusive) and {hi} (inclusive)"),
            );
            None
        }
        (Some(lo), None) if n < lo => {
            errors.push(
                name,
                format!("{name} must be greater than or equal to {lo}"),
            );
            None
        }
        _ => Some(n),
    }
}

fn enum_arg<'a>(
    q: &'a [(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    allowed: &[&str],
) -> Option<&'a str> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    if allowed.contains(&raw) {
        Some(raw)
    } else {
        errors.push(name, format!("{name} is not one of {}.", wp_list(allowed)));
        None
    }
}

/// `rest_parse_date()`'s RFC 3339 pattern
/// `^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}(?::\d{2})?)?$`;
/// returns the wall-clock time (fraction dropped) and the offset in seconds
/// if one was given.
pub(super) fn parse_rest_date(s: &str) -> Option<(NaiveDateTime, Option<i32>)> {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0, 4)
        && at(4, b"-")
        && digits(5, 7)
        && at(7, b"-")
        && digits(8, 10)
        && at(10, b"Tt ")
        && digits(11, 13)
        && at(13, b":")
        && digits(14, 16)
        && at(16, b":")
        && digits(17, 19))
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest.as_bytes() {
        [] => None,
        [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] if h1.is_ascii_digit() && h2.is_ascii_digit() => {
            let hours = i32::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = match tail {
                [] => 0,
                [b':', m1, m2] if m1.is_ascii_digit() && m2.is_ascii_digit() => {
                    i32::from((m1 - b'0') * 10 + (m2 - b'0'))
                }
                _ => return None,
            };
            let secs = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    let wall =
        NaiveDateTime::parse_from_str(&format!("{} {}", &s[..10], &s[11..19]), "%Y-%m-%d %H:%M:%S")
            .ok()?;
    Some((wall, offset))
}

/// `WP_Date_Query::build_mysql_datetime()` for a full date-time string:
/// `date_create($value, wp_timezone())` then formatted in the site zone, so
/// a value with an offset is converted to SITE-LOCAL time (DST included)
/// and a value without one is taken as it is, whichever column it is
/// compared with.
fn date_query_bound(
    q: &[(String, String)],
    errors: &mut ArgErrors,
    name: &str,
    zone: &SiteZone,
) -> Option<NaiveDateTime> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    match parse_rest_date(raw) {
        Some((wall, None)) => Some(wall),
        Some((wall, Some(offset))) => {
            Some(zone.local(wall - chrono::Duration::seconds(i64::from(offset))))
        }
        None => {
            errors.push(name, "Invalid date.".to_string());
            None
        }
    }
}

/// `rest_is_boolean` + `rest_sanitize_boolean`.
fn bool_arg(q: &[(String, String)], errors: &mut ArgErrors, name: &str) -> Option<bool> {
    let raw = q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())?;
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(name, format!("{name} is not of type boolean."));
            None
        }
    }
}

/// `wp_parse_id_list`: split on commas/spaces, `absint` each, unique.
fn id_list(q: &[(String, String)], name: &str) -> Vec<u64> {
    let raw = q
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str());
    let mut out: Vec<u64> = Vec::new();
    for token in raw.split([',', ' ']).filter(|t| !t.is_empty()) {
        let digits: String = token
            .trim_start_matches('-')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n = digits.parse().unwrap_or(0);
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

const ORDER_STATUSES: [&str; 10] = [
    "any",
    "trash",
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
];
const PRODUCT_STATUSES: [&str; 7] = [
    "any", "future", "trash", "draft", "pending", "private", "publish",
];
const POST_ORDERBY: [&str; 6] = ["date", "id", "include", "title", "slug", "modified"];
const PRODUCT_ORDERBY: [&str; 10] = [
    "date",
    "id",
    "include",
    "title",
    "slug",
    "modified",
    "menu_order",
    "price",
    "popularity",
    "rating",
];
const CUSTOMER_ORDERBY: [&str; 4] = ["id", "include", "name", "registered_date"];

/// Which post statuses a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StatusFilter {
    /// WP_Query `post_status = 'any'`: every status not
    /// `exclude_from_search`, i.e. everything but `trash` (and `auto-draft`).
    Any,
    /// No status condition at all (trash included).
    All,
    /// Exactly these statuses.
    Only(Vec<String>),
}

/// A validated list request.
pub(super) struct ListArgs {
    pub per_page: u64,
    pub page: u64,
    pub offset: Option<u64>,
    pub desc: bool,
    pub orderby: String,
    pub include: Vec<u64>,
    pub exclude: Vec<u64>,
    pub statuses: StatusFilter,
    pub use_gmt: bool,
    pub after: Option<NaiveDateTime>,
    pub before: Option<NaiveDateTime>,
    pub modified_after: Option<NaiveDateTime>,
    pub modified_before: Option<NaiveDateTime>,
}

/// Post statuses WordPress registers (`get_post_stati()`), as WP_Query
/// matches them.
const REGISTERED_STATUSES: [&str; 7] = [
    "publish",
    "future",
    "draft",
    "pending",
    "private",
    "trash",
    "auto-draft",
];

/// Validates in `get_collection_params()` order; arguments a controller does
/// not register are ignored (for customers that includes every date filter;
/// below WooCommerce 5.8, `modified_after`/`modified_before` too).
pub(super) fn list_args(
    resource: &str,
    raw_pairs: &[(String, String)],
    zone: &SiteZone,
    modified_args: bool,
) -> Result<ListArgs, ApiResponse> {
    let q = &super::php::dedup(raw_pairs);
    // `status` as PHP sees it: a string, or an array from `status[]=`.
    let status_var = php_array(raw_pairs)
        .into_iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v);
    let mut errors = ArgErrors::default();
    let customers = resource == "customers";
    let page = int_arg(q, &mut errors, "page", Some(1), None).unwrap_or(1);
    let per_page = int_arg(q, &mut errors, "per_page", Some(1), Some(100)).unwrap_or(10);
    let mut args = ListArgs {
        per_page: per_page as u64,
        page: page as u64,
        offset: None,
        desc: !customers,
        orderby: if customers { "name" } else { "date" }.to_string(),
        include: Vec::new(),
        exclude: Vec::new(),
        statuses: StatusFilter::Any,
        use_gmt: false,
        after: None,
        before: None,
        modified_after: None,
        modified_before: None,
    };
    if !customers {
        args.after = date_query_bound(q, &mut errors, "after", zone);
        args.before = date_query_bound(q, &mut errors, "before", zone);
        // WC_REST_CRUD_Controller::get_collection_params(), since 5.8
        // (woocommerce/woocommerce#30585); an older store ignores them.
        if modified_args {
            args.modified_after = date_query_bound(q, &mut errors, "modified_after", zone);
            args.modified_before = date_query_bound(q, &mut errors, "modified_before", zone);
        }
        args.use_gmt = bool_arg(q, &mut errors, "dates_are_gmt").unwrap_or(false);
    }
    args.exclude = id_list(q, "exclude");
    args.include = id_list(q, "include");
    args.offset = int_arg(q, &mut errors, "offset", None, None).map(|n| n.unsigned_abs());
    if let Some(order) = enum_arg(q, &mut errors, "order", &["asc", "desc"]) {
        args.desc = order == "desc";
    }
    let orderby: &[&str] = match resource {
        "customers" => &CUSTOMER_ORDERBY,
        "products" => &PRODUCT_ORDERBY,
        _ => &POST_ORDERBY,
    };
    if let Some(o) = enum_arg(q, &mut errors, "orderby", orderby) {
        args.orderby = o.to_string();
    }
    match resource {
        "orders" => {
            // v3 orders: `status` is `type: array` (default `any`): `status[]=a`
            // names, or one value that `wp_parse_list` splits on commas/spaces.
            let given: Option<Vec<String>> = match &status_var {
                Some(PhpValue::Arr(items)) => Some(
                    items
                        .iter()
                        .map(|(_, v)| v.as_str().unwrap_or("").to_string())
                        .collect(),
                ),
                Some(PhpValue::Str(raw)) => Some(
                    raw.split([',', ' '])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                ),
                None => None,
            };
            if let Some(given) = given {
                let mut statuses = Vec::new();
                for (i, s) in given.into_iter().enumerate() {
                    if ORDER_STATUSES.contains(&s.as_str()) {
                        statuses.push(s);
                    } else {
                        errors.push(
                            "status",
                            format!("status[{i}] is not one of {}.", wp_list(&ORDER_STATUSES)),
                        );
                        break;
                    }
                }
                // Version3 orders prepare_objects_query(): `any` short-circuits.
                if !statuses.is_empty() && !statuses.iter().any(|s| s == "any") {
                    args.statuses = StatusFilter::Only(statuses);
                }
            }
        }
        "products" => {
            // `status` is `type: string`: a PHP array (`status[]=`) fails it.
            if matches!(status_var, Some(PhpValue::Arr(_))) {
                errors.push("status", "status is not of type string.".to_string());
            } else if let Some(s) = enum_arg(q, &mut errors, "status", &PRODUCT_STATUSES) {
                if s != "any" {
                    args.statuses = StatusFilter::Only(vec![s.to_string()]);
                }
            }
        }
        "coupons" => {
            // Version3 coupons prepare_objects_query():
            // `$args['post_status'] = $request['status'] ?: 'all';` with no
            // registered `status` arg. `all` is no registered status, so
            // WP_Query adds no status condition: trash is listed by default.
            let raw = q
                .iter()
                .find(|(k, _)| k == "status")
                .map_or("", |(_, v)| v.as_str());
            let wanted: Vec<&str> = raw.split(',').map(str::trim).collect();
            args.statuses = if raw.is_empty() || raw == "0" {
                StatusFilter::All
            } else if wanted.contains(&"any") {
                StatusFilter::Any
            } else {
                let known: Vec<String> = wanted
                    .iter()
                    .filter(|s| REGISTERED_STATUSES.contains(s))
                    .map(|s| s.to_string())
                    .collect();
                if known.is_empty() {
                    StatusFilter::All
                } else {
                    StatusFilter::Only(known)
                }
            };
        }
        _ => {}
    }
    match errors.into_response() {
        Some(resp) => Err(resp),
        None => Ok(args),
    }
}

/// `add_query_arg( $request->get_query_params(), rest_url(...) )` then
/// `add_query_arg( 'page', N, $base )`: WooCommerce does NOT urlencode the
/// values (WC-CRUD `get_items`), and `add_query_arg` drops `=` from empty
/// values. Control and non-ASCII bytes, which cannot go in a header value,
/// are percent-encoded here.
pub(super) fn wp_page_link(base: &str, q: &[(String, String)], page: u64) -> String {
    let mut pairs: Vec<(String, String)> = q.to_vec();
    match pairs.iter_mut().find(|(k, _)| k == "page") {
        Some(slot) => slot.1 = page.to_string(),
        None => pairs.push(("page".to_string(), page.to_string())),
    }
    let raw = |s: &str| {
        s.bytes()
            .map(|b| {
                if (0x20..0x7f).contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                raw(k)
            } else {
                format!("{}={}", raw(k), raw(v))
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}
