//! Polling WooCommerce's v3 list endpoints (docs/vendors/polling.md §1).
//!
//! Orders, products and coupons: keyset pagination on the modified time
//! (`orderby=modified&order=asc`, `modified_after` exclusive, GMT), so an
//! object changed during the scan moves to the end instead of shifting a
//! page. Customers have no modified filter: a full scan by id, filtered on
//! `date_modified_gmt` by the poller.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{parse_wc_gmt, POLL_PAGE_SIZE, RESERVED_PARAMS};
use crate::config::poller::DatesConfiguration;
use crate::config::values::{field_path, required_str};
use crate::elements::HubResource;
use crate::error::ApiError;
use crate::polling::PollResponse;
use crate::polling::{PagePosition, PageSeen, PollFailure, PollPage, PollQuery, PollRequest};
use crate::request_auth::RequestAuth;

/// Resources WooCommerce moves to the trash (`wp_trash_post`): the default
/// `status=any` hides trashed objects, so each poll also lists
/// `status=trash` through the same window. Coupons need no second listing:
/// their default status (`all`, `WC_REST_Coupons_Controller::
/// prepare_objects_query`) is no registered status, so trashed coupons are
/// already listed.
const TRASHING: &[&str] = &["orders", "products"];

pub(super) fn passes(resource: &HubResource) -> usize {
    if TRASHING.contains(&resource.name) {
        2
    } else {
        1
    }
}

pub(super) fn auth(cfg: &crate::config::values::Configuration) -> Result<RequestAuth, ApiError> {
    Ok(RequestAuth::woocommerce(
        &required_str(cfg, "store.url")?,
        required_str(cfg, "oauth.api.key")?,
        required_str(cfg, "oauth.api.secret")?,
    ))
}

pub(super) fn request(q: &PollQuery) -> Result<PollRequest, ApiError> {
    let store_url = required_str(q.cfg, "store.url")?;
    let mut url = url::Url::parse(&format!(
        "{}{}",
        store_url.trim_end_matches('/'),
        q.resource.vendor_path
    ))
    .map_err(|e| ApiError::field(field_path("store.url"), format!("is not a URL: {e}")))?;
    {
        let mut params = url.query_pairs_mut();
        params.append_pair("per_page", &POLL_PAGE_SIZE.to_string());
        if q.resource.name == "customers" {
            params
                .append_pair("orderby", "id")
                .append_pair("order", "asc")
                .append_pair("page", &q.position.page_number().to_string());
        } else {
            let (after, page) = match q.position {
                // One second back: `modified_after` is exclusive and the
                // dates have whole seconds, so siblings of the last object
                // seen come again (and are recognized as seen).
                PagePosition::After { modified, page } => {
                    (*modified - chrono::Duration::seconds(1), *page)
                }
                _ => (q.since, 1),
            };
            params
                .append_pair("orderby", "modified")
                .append_pair("order", "asc")
                .append_pair("dates_are_gmt", "true")
                .append_pair(
                    "modified_after",
                    &after.format("%Y-%m-%dT%H:%M:%S").to_string(),
                )
                .append_pair("page", &page.to_string());
            if q.pass == 1 {
                params.append_pair("status", "trash");
            }
        }
        for (k, v) in crate::elements::passthrough(q.extra_params, RESERVED_PARAMS) {
            params.append_pair(k, v);
        }
    }
    Ok(PollRequest {
        url: url.to_string(),
        auth: auth(q.cfg)?,
        headers: Vec::new(),
    })
}

/// The WordPress REST error codes that mean the credentials (or their
/// permissions) are wrong (`WC_REST_Authentication`, the controllers'
/// permission checks). Anything else, an HTML page from a firewall or host
/// above all, is transient.
fn is_auth_error(code: &str) -> bool {
    code.starts_with("woocommerce_rest_authentication")
        || code.starts_with("woocommerce_rest_cannot_")
        || code == "rest_forbidden"
}

fn wp_error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("code")?
        .as_str()
        .map(str::to_string)
}

pub(super) fn read_page(r: &PollResponse) -> Result<PollPage, PollFailure> {
    if matches!(r.status, 401 | 403) {
        return match wp_error_code(r.body) {
            Some(code) if is_auth_error(&code) => Err(PollFailure::Unauthorized(format!(
                "WooCommerce answered {} {code}",
                r.status
            ))),
            // A firewall, a CDN or the host answering for the store.
            Some(code) => Err(PollFailure::Transient(format!(
                "WooCommerce answered {} {code}; retried next cycle",
                r.status
            ))),
            None => Err(PollFailure::Transient(format!(
                "the store's host answered {} with a page that is not WooCommerce's; retried next cycle",
                r.status
            ))),
        };
    }
    let mut page = crate::elements::read_json_array_page(r, "WooCommerce")?;
    page.more = more_pages(r.headers);
    Ok(page)
}

/// `Link: <…>; rel="next"` is set while the query has pages left
/// (`WC_REST_CRUD_Controller::get_items`); a page may hold fewer objects than
/// `per_page` (objects the key may not read are skipped after the query)
/// and still have a next one.
fn more_pages(headers: &http::HeaderMap) -> Option<bool> {
    let link = headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let said_something = !link.is_empty() || headers.contains_key("x-wp-totalpages");
    said_something.then(|| link.contains("rel=\"next\""))
}

pub(super) fn next_position(q: &PollQuery, seen: &PageSeen) -> Option<PagePosition> {
    let more = seen.more.unwrap_or(seen.len >= POLL_PAGE_SIZE);
    if !more {
        return None;
    }
    if q.resource.name == "customers" {
        return Some(q.position.next_page());
    }
    let Some(last) = seen.last_modified else {
        // A page with nothing readable on it but more to come: the next
        // page of the same query.
        return Some(match q.position {
            PagePosition::After { modified, page } => PagePosition::After {
                modified: *modified,
                page: page + 1,
            },
            _ => PagePosition::After {
                modified: q.since + chrono::Duration::seconds(1),
                page: 2,
            },
        });
    };
    if last > q.until {
        // Ordered by modified: everything after is newer than this poll.
        return None;
    }
    Some(match q.position {
        // A whole page of one second: page on within that second.
        PagePosition::After { modified, page } if *modified == last => PagePosition::After {
            modified: last,
            page: page + 1,
        },
        _ => PagePosition::After {
            modified: last,
            page: 1,
        },
    })
}

/// WooCommerce before 5.8 does not know `modified_after` and ignores it
/// (WordPress passes only registered args to the controller): the list then
/// starts at the oldest object whatever the window. Paging that would read
/// the whole store every cycle, so the instance is reported unsupported.
pub(super) fn check_page(q: &PollQuery, items: &[Value]) -> Result<(), PollFailure> {
    if q.resource.name == "customers" {
        return Ok(());
    }
    let after = match q.position {
        PagePosition::After { modified, .. } => *modified - chrono::Duration::seconds(1),
        _ => q.since,
    };
    let before_window = items.iter().find_map(|item| {
        let modified = item
            .get("date_modified_gmt")?
            .as_str()
            .and_then(parse_wc_gmt)?;
        (modified < after).then_some(modified)
    });
    match before_window {
        Some(modified) => Err(PollFailure::Unsupported(format!(
            "the store ignored modified_after ({} listed for modified_after={}): WooCommerce 5.8 or later is needed to poll",
            fmt(modified),
            fmt(after)
        ))),
        None => Ok(()),
    }
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `date_created`/`date_modified` are the site's wall time with no offset
/// (`wc_rest_prepare_date_response($date, false)`); their `_gmt` twins are
/// UTC. A configuration naming the plain field (the Cloud Elements seed
/// bodies do) is read from the twin, which is exact in any zone and across
/// daylight-saving changes; the configured format still applies, as the
/// twin has the same form.
pub(super) fn dates_to_read(configured: &DatesConfiguration) -> DatesConfiguration {
    let twin = |field: &Option<String>| {
        field.as_deref().map(|f| match f {
            "date_modified" | "date_created" | "date_paid" | "date_completed" => {
                format!("{f}_gmt")
            }
            other => other.to_string(),
        })
    };
    let zone = |field: &Option<String>, zone: &Option<String>| match field.as_deref() {
        Some(f) if f.ends_with("_gmt") => Some("UTC".to_string()),
        _ => zone.clone(),
    };
    let updated_field = twin(&configured.updated_field);
    let created_field = twin(&configured.created_field);
    DatesConfiguration {
        updated_timezone: zone(&updated_field, &configured.updated_timezone),
        created_timezone: zone(&created_field, &configured.created_timezone),
        updated_field,
        created_field,
        updated_format: configured.updated_format.clone(),
        created_format: configured.created_format.clone(),
    }
}

/// A listed object in the trash is a deletion.
pub(super) fn is_trashed(object: &Value) -> bool {
    object.get("status").and_then(Value::as_str) == Some("trash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dates_are_read_from_their_gmt_twins() {
        let seed = DatesConfiguration {
            updated_field: Some("date_modified".into()),
            updated_format: Some("yyyy-MM-dd'T'HH:mm:ss'".into()),
            created_field: Some("date_created".into()),
            created_format: Some("yyyy-MM-dd'T'HH:mm:ss'".into()),
            ..Default::default()
        };
        let read = dates_to_read(&seed);
        assert_eq!(read.updated_field.as_deref(), Some("date_modified_gmt"));
        assert_eq!(read.created_field.as_deref(), Some("date_created_gmt"));
        assert_eq!(read.updated_timezone.as_deref(), Some("UTC"));
        let custom = DatesConfiguration {
            updated_field: Some("meta.changed".into()),
            updated_timezone: Some("GMT+02:00".into()),
            ..Default::default()
        };
        assert_eq!(dates_to_read(&custom), custom);
    }

    #[test]
    fn link_next_says_more_pages_follow() {
        let mut h = http::HeaderMap::new();
        assert_eq!(more_pages(&h), None);
        h.insert("x-wp-totalpages", "3".parse().unwrap());
        h.insert(
            "link",
            "<http://s/wp-json/wc/v3/orders?page=1>; rel=\"prev\", <http://s/wp-json/wc/v3/orders?page=3>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(more_pages(&h), Some(true));
        h.insert("link", "<http://s/x?page=2>; rel=\"prev\"".parse().unwrap());
        assert_eq!(more_pages(&h), Some(false));
    }

    #[test]
    fn only_woocommerce_auth_codes_mean_bad_credentials() {
        assert!(is_auth_error("woocommerce_rest_authentication_error"));
        assert!(is_auth_error("woocommerce_rest_cannot_view"));
        assert!(!is_auth_error("rest_no_route"));
        let headers = http::HeaderMap::new();
        let html = PollResponse {
            status: 403,
            headers: &headers,
            body: b"<html><body>Access denied | Cloudflare</body></html>",
        };
        assert!(matches!(read_page(&html), Err(PollFailure::Transient(_))));
        let auth = PollResponse {
            status: 401,
            headers: &headers,
            body: br#"{"code":"woocommerce_rest_authentication_error","message":"Invalid signature - provided signature does not match.","data":{"status":401}}"#,
        };
        assert!(matches!(
            read_page(&auth),
            Err(PollFailure::Unauthorized(_))
        ));
    }
}
