//! What polling needs beyond the HTTP loop (functions/poller): the Cloud
//! Elements `where` clause and its date macros, the page-by-page query each
//! element builds (in its own file), and turning vendor objects into changes.

pub mod changes;
pub mod macros;
pub mod where_clause;

use chrono::{DateTime, Duration, Utc};
use http::HeaderMap;
use serde_json::Value;

use crate::config::poller::PollResource;
use crate::config::values::Configuration;
use crate::elements::HubResource;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PagePosition {
    #[default]
    First,
    /// Classic page numbers (1-based), for APIs whose order is stable while
    /// objects change (BigCommerce orders by id).
    Page(u32),
    /// Keyset pagination on the modified time: objects modified after this
    /// instant (inclusive of the instant), then the page within that query.
    After { modified: DateTime<Utc>, page: u32 },
}

impl PagePosition {
    /// The 1-based page number in a page-numbered listing (`First` is 1).
    pub fn page_number(&self) -> u32 {
        match self {
            Self::Page(n) => *n,
            _ => 1,
        }
    }

    /// The page after this one in a page-numbered listing.
    pub fn next_page(&self) -> Self {
        Self::Page(self.page_number() + 1)
    }
}

/// One page query of one resource.
pub struct PollQuery<'a> {
    pub cfg: &'a Configuration,
    pub resource: &'a HubResource,
    pub poll: &'a PollResource,
    /// Lower bound: the cursor minus the overlap.
    pub since: DateTime<Utc>,
    /// Upper bound, frozen when the poll started.
    pub until: DateTime<Utc>,
    pub position: &'a PagePosition,
    /// Which of the element's listings of this resource (0 for the main
    /// one; WooCommerce lists trashed objects in a second one).
    pub pass: usize,
    /// Query parameters from the client's `where` clause, macros expanded.
    pub extra_params: &'a [(String, String)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub url: String,
    pub auth: crate::request_auth::RequestAuth,
    pub headers: Vec<(String, String)>,
}

pub struct PollResponse<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A page the store returned.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPage {
    pub items: Vec<Value>,
    /// The store asks us to slow down before the next call.
    pub pause: Option<Duration>,
    /// Whether the store says more pages follow (`Link: rel="next"`,
    /// `X-WP-TotalPages`); `None` when it does not say.
    pub more: Option<bool>,
    /// The store asks us to stop this cycle after this page (BigCommerce's
    /// hourly quota is nearly used up): the cursor stays, the next cycle
    /// resumes.
    pub stop: Option<String>,
}

impl PollPage {
    pub fn of(items: Vec<Value>) -> Self {
        Self {
            items,
            pause: None,
            more: None,
            stop: None,
        }
    }
}

/// What the poller saw on a page, for choosing the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSeen {
    /// Objects on the page, readable or not.
    pub len: usize,
    /// The store's own word on whether more pages follow.
    pub more: Option<bool>,
    /// The newest modified time on the page.
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollFailure {
    /// 429: wait this long, then ask again.
    #[error("rate limited; retry in {0}")]
    RateLimited(Duration),
    /// The store refused the credentials: the instance is invalid until fixed.
    #[error("the store refused the credentials: {0}")]
    Unauthorized(String),
    /// The store cannot be polled as configured (a version without the
    /// filters polling needs): the instance is invalid until fixed.
    #[error("{0}")]
    Unsupported(String),
    /// 5xx, timeouts, unreadable pages: try again next cycle.
    #[error("{0}")]
    Transient(String),
}

/// The largest numeric hint a store's header may give: a day, in whatever
/// unit the header counts (milliseconds or seconds). Larger values are read
/// as this, so no later arithmetic on them can overflow.
pub const MAX_HEADER_HINT: i64 = 86_400_000;

/// A store's `X-Rate-Limit-*`-style hint: wait before the next call. The
/// value comes from a remote server and is clamped to [0, `MAX_HEADER_HINT`]:
/// a negative number reads as 0 (the caller imposes its own floor, so it
/// cannot become a hot loop) and any run of digits too long for an i64 as the
/// maximum. Anything that is not an integer is `None`.
pub fn header_ms(headers: &HeaderMap, name: &str) -> Option<i64> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if negative {
        return Some(0);
    }
    Some(
        digits
            .parse::<i64>()
            .unwrap_or(i64::MAX)
            .min(MAX_HEADER_HINT),
    )
}

#[cfg(test)]
mod header_tests {
    use super::*;

    fn hint(value: &str) -> Option<i64> {
        let mut h = HeaderMap::new();
        h.insert("x-hint", value.parse().unwrap());
        header_ms(&h, "x-hint")
    }

    #[test]
    fn hostile_hints_are_clamped() {
        assert_eq!(hint("1500"), Some(1500));
        assert_eq!(hint("-5"), Some(0));
        assert_eq!(hint("-9223372036854775808"), Some(0));
        assert_eq!(hint("9223372036854775807"), Some(MAX_HEADER_HINT));
        assert_eq!(hint("99999999999999999999999"), Some(MAX_HEADER_HINT));
        assert_eq!(hint("soon"), None);
        assert_eq!(hint("-"), None);
    }
}
