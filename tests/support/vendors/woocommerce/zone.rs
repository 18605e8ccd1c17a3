//! The site's time zone (WordPress `timezone_string` / `gmt_offset`) and the
//! site-local wall times WooCommerce derives from it.

use chrono::{NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// The zone a simulated store starts with: a DST zone that is not UTC, so
/// site-local `date_*` fields differ from their `_gmt` twins by 4 or 5 hours
/// depending on the date.
pub const DEFAULT_TIMEZONE: &str = "America/New_York";

/// A WordPress site's time setting: a named zone (`timezone_string`, with
/// DST) or a manual offset (`timezone_string` empty, `gmt_offset` = hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteZone {
    /// Settings → General → Timezone set to a city (`timezone_string`).
    Named(Tz),
    /// A manual "UTC+h" choice: `timezone_string` is `""`.
    FixedHours(i32),
}

impl Default for SiteZone {
    fn default() -> Self {
        SiteZone::named(DEFAULT_TIMEZONE).expect("a valid IANA zone")
    }
}

impl SiteZone {
    /// A named IANA zone, e.g. `America/New_York`; `None` if unknown.
    pub fn named(name: &str) -> Option<SiteZone> {
        name.parse::<Tz>().ok().map(SiteZone::Named)
    }

    /// UTC offset in seconds at the GMT instant `gmt`.
    pub fn offset_seconds(&self, gmt: NaiveDateTime) -> i32 {
        match self {
            SiteZone::Named(tz) => tz.offset_from_utc_datetime(&gmt).fix().local_minus_utc(),
            SiteZone::FixedHours(h) => h * 3600,
        }
    }

    /// The site-local wall time of a GMT instant: what
    /// `wc_rest_prepare_date_response( $date, false )` prints
    /// (includes/wc-rest-functions.php, `getOffsetTimestamp()`), and what the
    /// `post_date` / `post_modified` columns hold.
    pub fn local(&self, gmt: NaiveDateTime) -> NaiveDateTime {
        gmt + chrono::Duration::seconds(i64::from(self.offset_seconds(gmt)))
    }

    /// `get_option('timezone_string')`.
    pub fn timezone_string(&self) -> String {
        match self {
            SiteZone::Named(tz) => tz.name().to_string(),
            SiteZone::FixedHours(_) => String::new(),
        }
    }

    /// `get_option('gmt_offset')` as the REST index prints it at `now`:
    /// with a named zone `wp_timezone_override_offset()` (src/wp-includes/
    /// functions.php) returns the zone's current offset as a float rounded
    /// to 2 places (`-4.0` in a New York summer, `-5.0` in winter); a manual
    /// offset is the stored option, a string (`"2"`).
    pub fn gmt_offset_json(&self, now: NaiveDateTime) -> Value {
        match self {
            SiteZone::Named(_) => {
                let hours = f64::from(self.offset_seconds(now)) / 3600.0;
                json!((hours * 100.0).round() / 100.0)
            }
            SiteZone::FixedHours(h) => json!(h.to_string()),
        }
    }
}
