//! Per-organization quotas: one tenant cannot exhaust what every tenant
//! shares.
//!
//! | quota | default | env var | refused with |
//! |---|---|---|---|
//! | instances per organization | 500 | `ORG_MAX_INSTANCES` | 409 naming `ORG_MAX_INSTANCES` |
//! | distinct poll intervals per organization | 5 | `ORG_MAX_POLL_INTERVALS` | 409 naming `ORG_MAX_POLL_INTERVALS` |
//! | largest `event.poller.refresh_interval` (minutes) | 1440 | `MAX_REFRESH_INTERVAL_MINUTES` | 400 naming the field |
//!
//! Each distinct interval is one EventBridge rule, and a bus holds 300: the
//! interval quota keeps one organization from taking them all (the store
//! squatting case of issue 15 is bounded by the instance quota: an Ecwid
//! store's webhook reads at most that many instances of one organization).
//! Counts come from the organization's index; two creations racing may
//! both pass at the last free place, so a quota can be passed by at most the
//! number of concurrent requests of that organization.

use shared::error::ApiError;

use crate::App;

pub const INTERVAL_FIELD: &str = "configuration.event.poller.refresh_interval";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub max_instances: usize,
    pub max_poll_intervals: usize,
    pub max_refresh_minutes: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_instances: 500,
            max_poll_intervals: 5,
            max_refresh_minutes: 1_440,
        }
    }
}

impl Quotas {
    /// The defaults, overridden by the environment; a bad value is an error
    /// at start-up, never a silent default.
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str, default: usize| -> Result<usize, String> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} must be a positive integer, got {v:?}")),
                _ => Ok(default),
            }
        };
        let d = Self::default();
        Ok(Self {
            max_instances: read("ORG_MAX_INSTANCES", d.max_instances)?,
            max_poll_intervals: read("ORG_MAX_POLL_INTERVALS", d.max_poll_intervals)?,
            max_refresh_minutes: u32::try_from(read(
                "MAX_REFRESH_INTERVAL_MINUTES",
                d.max_refresh_minutes as usize,
            )?)
            .map_err(|_| "MAX_REFRESH_INTERVAL_MINUTES is too large".to_string())?,
        })
    }
}

/// Checks a new instance (`changing: None`) or a PATCH of `changing` that
/// will poll every `interval` minutes.
pub async fn check(
    app: &App,
    org_id: &str,
    changing: Option<u64>,
    interval: Option<u32>,
) -> Result<(), ApiError> {
    let q = &app.quotas;
    if let Some(minutes) = interval {
        if minutes > q.max_refresh_minutes {
            return Err(ApiError::field(
                INTERVAL_FIELD,
                format!(
                    "must be at most {} minutes (MAX_REFRESH_INTERVAL_MINUTES)",
                    q.max_refresh_minutes
                ),
            ));
        }
    }
    let usage = app.store.org_usage(org_id, q.max_instances).await?;
    if changing.is_none() && usage.instances.len() >= q.max_instances {
        return Err(ApiError::Conflict(format!(
            "the organization has reached its quota of {} instances (ORG_MAX_INSTANCES); delete one first",
            q.max_instances
        )));
    }
    if let Some(minutes) = interval {
        let mut intervals = usage.intervals_except(changing);
        if !intervals.contains(&minutes) {
            intervals.insert(minutes);
            if intervals.len() > q.max_poll_intervals {
                let used: Vec<String> = usage
                    .intervals_except(changing)
                    .iter()
                    .map(u32::to_string)
                    .collect();
                return Err(ApiError::Conflict(format!(
                    "{INTERVAL_FIELD}: the organization has reached its quota of {} distinct poll intervals (ORG_MAX_POLL_INTERVALS); use one it already polls at: {} minutes",
                    q.max_poll_intervals,
                    used.join(", ")
                )));
            }
        }
    }
    Ok(())
}
