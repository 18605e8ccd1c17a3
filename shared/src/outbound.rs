//! HTTP clients for calls to URLs a user supplied (store APIs, callbacks):
//! the host is resolved and checked by the network guard, and the connection
//! is pinned to the checked address so DNS rebinding cannot redirect it.
//! Redirects are not followed: a redirect could lead anywhere.

use std::time::Duration;

use crate::netguard::{GuardError, NetGuard};

pub const USER_AGENT: &str = concat!("connector-events/", env!("CARGO_PKG_VERSION"));

pub async fn pinned_client(
    guard: &NetGuard,
    url: &url::Url,
    timeout: Duration,
) -> Result<reqwest::Client, GuardError> {
    let addr = guard.resolve(url).await?;
    let host = url.host_str().ok_or(GuardError::NoHost)?;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(USER_AGENT)
        .resolve(host.trim_start_matches('[').trim_end_matches(']'), addr)
        .build()
        .map_err(|e| GuardError::Unresolvable {
            host: host.to_string(),
            reason: e.to_string(),
        })
}
