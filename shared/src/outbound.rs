//! HTTP clients for calls to URLs a user supplied (store APIs, callbacks):
//! the host is resolved and checked by the network guard, and the connection
//! is pinned to the checked address so DNS rebinding cannot redirect it.
//! Redirects are not followed: a redirect could lead anywhere. No proxy is
//! used either (`no_proxy`): an operator's `HTTPS_PROXY` would otherwise
//! resolve and connect on our behalf, past the guard.

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
        .no_proxy()
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

/// A DNS resolver that refuses names resolving to addresses the network
/// guard forbids. The connection is made to exactly the addresses checked
/// here, so DNS rebinding between check and connect is impossible, and one
/// client (with its connection pool) can serve every callback URL.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    guard: NetGuard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(GuardError::Unresolvable {
                        host: host.clone(),
                        reason: e.to_string(),
                    })
                })?
                .collect();
            for addr in &addrs {
                guard
                    .check_resolved(&host, addr.ip())
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

/// One client for many user-supplied URLs: guarded resolution, no redirects.
/// Literal-IP URLs skip DNS, so callers also run [`NetGuard::check_url`].
pub fn guarded_client(
    guard: NetGuard,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(USER_AGENT)
        .dns_resolver(std::sync::Arc::new(GuardedResolver { guard }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_guarded_client_refuses_names_resolving_to_loopback() {
        let client = guarded_client(NetGuard::new(false), Duration::from_secs(2)).unwrap();
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("RefusedName"), "{text}");
        assert!(
            !text.contains("127.0.0.1") && !text.contains("::1") && !text.contains("loopback"),
            "the resolved address is not echoed: {text}"
        );
    }

    /// An operator's proxy variable must not route user-supplied URLs
    /// through a proxy, which would resolve and connect past the guard.
    #[tokio::test]
    async fn the_outbound_clients_ignore_proxy_variables() {
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_url = format!("http://{}/", target.local_addr().unwrap());
        let vars = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];
        for v in vars {
            std::env::set_var(v, &proxy_url);
        }
        let guarded = guarded_client(NetGuard::new(true), Duration::from_secs(2)).unwrap();
        let url = url::Url::parse(&target_url).unwrap();
        let pinned = pinned_client(&NetGuard::new(true), &url, Duration::from_secs(2))
            .await
            .unwrap();
        for v in vars {
            std::env::remove_var(v);
        }
        for client in [guarded, pinned] {
            let request = tokio::spawn(client.get(target_url.as_str()).send());
            let reached = tokio::select! {
                _ = proxy.accept() => "proxy",
                _ = target.accept() => "target",
            };
            request.abort();
            assert_eq!(reached, "target");
        }
    }
}
