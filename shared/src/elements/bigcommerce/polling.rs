//! BigCommerce list endpoints for polling (docs/vendors/polling.md §2–§3).
//!
//! - Legacy API accounts (`username`, `password`, `store.url` ending in
//!   `/api/v2`): the v2 endpoints with HTTP Basic, `min_date_modified` in
//!   RFC 2822 and page numbers (v2 orders by id, so objects changed during the
//!   scan keep their page). These accounts also have an hourly quota,
//!   `X-BC-ApiLimit-Remaining` ("the number of API requests remaining for the
//!   current period (rolling one hour)", `bigcommerce/docs:docs/start/about/index.mdx`):
//!   when it falls to [`LEGACY_QUOTA_RESERVE`], the cycle stops after the page
//!   in hand, cursor kept, and the next cycle resumes.
//! - OAuth stores (`api.bigcommerce.com/stores/{hash}`, `X-Auth-Token`):
//!   orders stay on `/v2/orders`; products and customers use the current
//!   `/v3/catalog/products` and `/v3/customers` (`date_modified:min` in
//!   ISO 8601, sorted by modification date, `meta.pagination`), since the v2
//!   ones are deprecated. v3 sorts by date, so pages are keyset: each page
//!   starts again from the last modified time seen.
//! - Orders are read twice per cycle: the default listing hides archived
//!   (deleted) orders, so a second pass asks `is_deleted=true` and reports them
//!   as DELETED (the order field `is_deleted`, "Indicates whether the order is
//!   deleted/archived", `bigcommerce/docs:reference/orders.v2.oas2.yml`; the
//!   query parameter "If the order was deleted or archived." was documented
//!   until commit 5bfc83e2).

use serde_json::Value;

use super::{ACCESS_TOKEN_KEY, API_URL_KEY, DEFAULT_API_URL, STORE_HASH_KEY};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{field_path, optional_str, required_str, Configuration};
use crate::elements::HubResource;
use crate::error::ApiError;
use crate::polling::{
    PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest, PollResponse,
};
use crate::request_auth::RequestAuth;

/// BigCommerce's maximum `limit`.
pub const POLL_PAGE_SIZE: usize = 250;
/// Calls of the legacy hourly quota left to the merchant's other tools: at or
/// below this, a cycle stops after the page in hand.
pub const LEGACY_QUOTA_RESERVE: i64 = 100;
/// Query parameters the poller sets itself on v2 listings.
const RESERVED_V2: &[&str] = &["min_date_modified", "limit", "page", "is_deleted"];
/// On v3 listings: the client's v2-style date filter (the Cloud Elements
/// bodies send `min_date_modified`) is the poller's own `date_modified:min`.
const RESERVED_V3: &[&str] = &[
    "min_date_modified",
    "date_modified:min",
    "sort",
    "direction",
    "limit",
    "page",
];
pub const ISO_8601: &str = "yyyy-MM-dd'T'HH:mm:ssXXX";

/// Which API family serves a resource for this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    /// A legacy v2 account on the store's own domain.
    LegacyV2,
    /// An OAuth store, v2 endpoint (orders).
    OAuthV2,
    /// An OAuth store, v3 endpoint.
    OAuthV3,
}

pub(super) fn is_oauth(cfg: &Configuration) -> bool {
    !cfg.contains_key("store.url")
}

pub(super) fn api_for(cfg: &Configuration, resource: &HubResource) -> Api {
    match (is_oauth(cfg), resource.name) {
        (false, _) => Api::LegacyV2,
        (true, "orders") => Api::OAuthV2,
        (true, _) => Api::OAuthV3,
    }
}

fn oauth_path(resource: &HubResource) -> &'static str {
    match resource.name {
        "products" => "/v3/catalog/products",
        "customers" => "/v3/customers",
        _ => "/v2/orders",
    }
}

/// v3 dates are ISO 8601 (`2018-08-15T14:48:31+00:00`), v2 ones RFC 2822: a
/// v3 resource is read with the ISO format whatever the body configured, so
/// the Cloud Elements bodies (RFC 2822) keep working when it moves to v3.
pub(super) fn dates_for(
    cfg: &Configuration,
    resource: &HubResource,
    configured: &DatesConfiguration,
) -> DatesConfiguration {
    if api_for(cfg, resource) != Api::OAuthV3 {
        return configured.clone();
    }
    DatesConfiguration {
        updated_format: Some(ISO_8601.into()),
        created_format: Some(ISO_8601.into()),
        updated_timezone: None,
        created_timezone: None,
        ..configured.clone()
    }
}

pub(super) fn poll_request(q: &PollQuery) -> Result<PollRequest, ApiError> {
    let api = api_for(q.cfg, q.resource);
    let (path, auth, mut headers) = match api {
        Api::LegacyV2 => (
            format!(
                "{}{}",
                required_str(q.cfg, "store.url")?.trim_end_matches('/'),
                q.resource.vendor_path
            ),
            RequestAuth::Basic {
                user: required_str(q.cfg, "username")?,
                password: required_str(q.cfg, "password")?,
            },
            Vec::new(),
        ),
        Api::OAuthV2 | Api::OAuthV3 => {
            let base =
                optional_str(q.cfg, API_URL_KEY)?.unwrap_or_else(|| DEFAULT_API_URL.to_string());
            let hash = required_str(q.cfg, STORE_HASH_KEY)?;
            (
                format!(
                    "{}/stores/{hash}{}",
                    base.trim_end_matches('/'),
                    oauth_path(q.resource)
                ),
                RequestAuth::None,
                vec![(
                    "X-Auth-Token".to_string(),
                    required_str(q.cfg, ACCESS_TOKEN_KEY)?,
                )],
            )
        }
    };
    headers.push(("Accept".into(), "application/json".into()));
    let mut url = url::Url::parse(&path).map_err(|e| {
        ApiError::field(
            field_path(if api == Api::LegacyV2 {
                "store.url"
            } else {
                API_URL_KEY
            }),
            format!("is not a URL: {e}"),
        )
    })?;
    {
        let mut params = url.query_pairs_mut();
        match api {
            Api::LegacyV2 | Api::OAuthV2 => {
                params
                    .append_pair(
                        "min_date_modified",
                        &q.since.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
                    )
                    .append_pair("limit", &POLL_PAGE_SIZE.to_string())
                    .append_pair("page", &q.position.page_number().to_string());
                if q.pass == 1 {
                    params.append_pair("is_deleted", "true");
                }
                for (k, v) in crate::elements::passthrough(q.extra_params, RESERVED_V2) {
                    params.append_pair(k, v);
                }
            }
            Api::OAuthV3 => {
                let (from, page) = match q.position {
                    PagePosition::After { modified, page } => (*modified, *page),
                    _ => (q.since, 1),
                };
                params.append_pair(
                    "date_modified:min",
                    &from.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                );
                if q.resource.name == "customers" {
                    params.append_pair("sort", "date_modified:asc");
                } else {
                    params
                        .append_pair("sort", "date_modified")
                        .append_pair("direction", "asc");
                }
                params
                    .append_pair("limit", &POLL_PAGE_SIZE.to_string())
                    .append_pair("page", &page.to_string());
                for (k, v) in crate::elements::passthrough(q.extra_params, RESERVED_V3) {
                    params.append_pair(k, v);
                }
            }
        }
    }
    Ok(PollRequest {
        url: url.to_string(),
        auth,
        headers,
    })
}

/// A v2 page is a JSON array (204 when empty); a v3 page is
/// `{"data": [...], "meta": {"pagination": {current_page, total_pages, …}}}`.
/// Quota headers turn into a pause (`X-Rate-Limit-Requests-Left: 0`) or a
/// stop (`X-BC-ApiLimit-Remaining` at the reserve).
pub(super) fn read_poll_page(r: &PollResponse) -> Result<PollPage, PollFailure> {
    let v3 = (200..300).contains(&r.status)
        && r.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut page = if v3 {
        read_v3_page(r.body)?
    } else {
        crate::elements::read_json_array_page(r, "BigCommerce")?
    };
    if crate::polling::header_ms(r.headers, "x-rate-limit-requests-left") == Some(0) {
        page.pause = crate::polling::header_ms(r.headers, "x-rate-limit-time-reset-ms")
            .map(chrono::Duration::milliseconds);
    }
    if let Some(left) = crate::polling::header_ms(r.headers, "x-bc-apilimit-remaining") {
        if left <= LEGACY_QUOTA_RESERVE {
            page.stop = Some(format!(
                "BigCommerce hourly API quota low ({left} calls left); the next cycle resumes"
            ));
        }
    }
    Ok(page)
}

fn read_v3_page(body: &[u8]) -> Result<PollPage, PollFailure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        PollFailure::Transient(format!("BigCommerce answered a page that is not JSON: {e}"))
    })?;
    let items = value
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            PollFailure::Transient("BigCommerce answered a v3 page without a data array".into())
        })?;
    let pagination = value.pointer("/meta/pagination");
    let number = |name: &str| pagination.and_then(|p| p.get(name)).and_then(Value::as_u64);
    let more = match (number("current_page"), number("total_pages")) {
        (Some(current), Some(total)) => Some(current < total),
        _ => None,
    };
    let mut page = PollPage::of(items);
    page.more = more;
    Ok(page)
}

pub(super) fn next_position(q: &PollQuery, seen: &PageSeen) -> Option<PagePosition> {
    if api_for(q.cfg, q.resource) != Api::OAuthV3 {
        return (seen.len >= POLL_PAGE_SIZE).then(|| q.position.next_page());
    }
    if !seen.more.unwrap_or(seen.len >= POLL_PAGE_SIZE) {
        return None;
    }
    let (from, page) = match q.position {
        PagePosition::After { modified, page } => (Some(*modified), *page),
        _ => (None, 1),
    };
    match seen.last_modified {
        // Sorted by modified: everything after is newer than this poll.
        Some(last) if last > q.until => None,
        // A whole page of one second: the next page of that second.
        Some(last) if Some(last) == from => Some(PagePosition::After {
            modified: last,
            page: page + 1,
        }),
        Some(last) => Some(PagePosition::After {
            modified: last,
            page: 1,
        }),
        None => Some(PagePosition::After {
            modified: from.unwrap_or(q.since),
            page: page + 1,
        }),
    }
}

/// Orders are listed a second time for archived ones.
pub(super) fn poll_passes(resource: &HubResource) -> usize {
    if resource.name == "orders" {
        2
    } else {
        1
    }
}

pub(super) fn is_deleted_in_listing(object: &Value) -> bool {
    object.get("is_deleted").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn response<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> PollResponse<'a> {
        PollResponse {
            status: 200,
            headers,
            body,
        }
    }

    #[test]
    fn a_v3_page_says_whether_more_follow() {
        let headers = HeaderMap::new();
        let body = br#"{"data":[{"id":1}],"meta":{"pagination":{"total":300,"count":1,"per_page":250,"current_page":1,"total_pages":2}}}"#;
        let page = read_poll_page(&response(&headers, body)).unwrap();
        assert_eq!((page.items.len(), page.more), (1, Some(true)));
        let last = br#"{"data":[],"meta":{"pagination":{"current_page":2,"total_pages":2}}}"#;
        assert_eq!(
            read_poll_page(&response(&headers, last)).unwrap().more,
            Some(false)
        );
    }

    #[test]
    fn a_low_legacy_quota_stops_the_cycle() {
        let mut headers = HeaderMap::new();
        headers.insert("x-bc-apilimit-remaining", "100".parse().unwrap());
        let page = read_poll_page(&response(&headers, b"[]")).unwrap();
        assert!(page.stop.is_some());
        headers.insert("x-bc-apilimit-remaining", "101".parse().unwrap());
        assert!(read_poll_page(&response(&headers, b"[]"))
            .unwrap()
            .stop
            .is_none());
    }

    #[test]
    fn archived_orders_are_deleted() {
        assert!(is_deleted_in_listing(
            &serde_json::json!({"is_deleted": true})
        ));
        assert!(!is_deleted_in_listing(
            &serde_json::json!({"is_deleted": false})
        ));
    }
}
