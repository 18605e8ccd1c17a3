//! SSRF guard for every outbound URL a user supplied (callback URLs, store URLs).
//!
//! Refuses loopback, private (RFC 1918), link-local, CGNAT, IPv6 ULA and
//! link-local, multicast, unspecified and the cloud metadata addresses, unless
//! the operator allows private networks (`ALLOW_PRIVATE_NETWORK`, which the
//! local stack sets so it can call receivers on 127.0.0.1).
//!
//! At instance creation only literal addresses, ports and well-known local
//! names are checked ([`NetGuard::check_url`]); names are resolved and checked
//! at connection time ([`NetGuard::resolve`]), whose answer the caller pins for
//! the connection so DNS rebinding cannot slip past.
//!
//! A name refused after resolution is reported without the address or its
//! class ([`GuardError::RefusedName`]): error bodies and delivery logs are seen
//! by tenants, and echoing what an internal name resolves to would make the
//! service a DNS oracle inside the VPC. The operator's log has the details.
//!
//! **Port policy**: 80, 443 and every port from 1024 up are allowed; the
//! other well-known ports (1–1023: SSH, SMTP, DNS, LDAP, …) are refused, so
//! the service cannot be used to reach or probe third parties' system
//! services. Unless the operator allows private networks (then any port).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, Default)]
pub struct NetGuard {
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("host {host} resolves to {addr}, a {class} address, which is not allowed")]
    Refused {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
    /// A name whose resolved address is refused; neither the address nor
    /// its class is said (see the module docs).
    #[error("host {0} resolves to an address that is not allowed")]
    RefusedName(String),
    #[error("port {0} is not allowed: use 80, 443 or a port from 1024 up")]
    Port(u16),
    #[error("host {0} is a local name, which is not allowed")]
    LocalName(String),
    #[error("host {host} could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("URL has no host")]
    NoHost,
}

impl NetGuard {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// The checks possible without DNS: literal IPs and local names.
    pub fn check_url(&self, url: &url::Url) -> Result<(), GuardError> {
        if self.allow_private {
            return Ok(());
        }
        if let Some(port) = url.port_or_known_default() {
            if !port_allowed(port) {
                return Err(GuardError::Port(port));
            }
        }
        match url.host() {
            None => Err(GuardError::NoHost),
            Some(url::Host::Ipv4(v4)) => self.check_ip(&v4.to_string(), IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_ip(&v6.to_string(), IpAddr::V6(v6)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if is_local_name(&name) {
                    Err(GuardError::LocalName(name))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Same check as a 400 naming `field`.
    pub fn check_field(&self, field: &str, url: &url::Url) -> Result<(), ApiError> {
        self.check_url(url)
            .map_err(|e| ApiError::field(field, format!("refused by the network guard: {e}")))
    }

    pub fn check_ip(&self, host: &str, addr: IpAddr) -> Result<(), GuardError> {
        if self.allow_private {
            return Ok(());
        }
        match classify(addr) {
            None => Ok(()),
            Some(class) => Err(GuardError::Refused {
                host: host.to_string(),
                addr,
                class,
            }),
        }
    }

    /// The check of an address a name resolved to: refused without saying
    /// which address (logged for the operator).
    pub fn check_resolved(&self, host: &str, addr: IpAddr) -> Result<(), GuardError> {
        self.check_ip(host, addr).map_err(|e| {
            tracing::warn!(host, error = %e, "network guard refused a resolved address");
            GuardError::RefusedName(host.to_string())
        })
    }

    /// Resolves the URL's host and returns the first allowed address to pin
    /// the connection to. Every resolved address must pass: a name that mixes
    /// public and private answers is refused whole.
    pub async fn resolve(&self, url: &url::Url) -> Result<SocketAddr, GuardError> {
        self.check_url(url)?;
        let host = url.host_str().ok_or(GuardError::NoHost)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| GuardError::Unresolvable {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        for addr in &addrs {
            self.check_resolved(host, addr.ip())?;
        }
        addrs
            .into_iter()
            .next()
            .ok_or_else(|| GuardError::Unresolvable {
                host: host.to_string(),
                reason: "no addresses".to_string(),
            })
    }
}

/// The port policy (module docs).
pub fn port_allowed(port: u16) -> bool {
    port == 80 || port == 443 || port >= 1024
}

fn is_local_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || name == "metadata"
}

/// Why an address is not routable on the public internet, or `None`.
pub fn classify(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        return Some("cloud metadata");
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xC0) == 64 {
        Some("carrier-grade NAT")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignment")
    } else if o[0] == 198 && (o[1] & 0xFE) == 18 {
        Some("benchmarking")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some("cloud metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible `::a.b.c.d` (deprecated, RFC 4291 §2.5.5.1): some
        // stacks still route it to the embedded IPv4 address.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return classify_v4(v4).or(Some("IPv4-compatible"));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): never global.
        return Some("local-use NAT64");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64: the embedded IPv4 address is what gets reached.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return classify_v4(v4);
    }
    if s[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in bits 16..48.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return classify_v4(v4);
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique local (ULA)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        NetGuard::new(false)
            .check_url(&url::Url::parse(url).unwrap())
            .is_err()
    }

    #[test]
    fn refuses_private_loopback_link_local_cgnat_and_metadata() {
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:101::1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://metadata.google.internal/",
            "http://2130706433/",
            "http://[::127.0.0.1]/",
            "http://[::a9fe:a9fe]/",
            "http://[::10.0.0.1]/",
            "http://[::8.8.8.8]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[64:ff9b:1:ffff::1]/",
            "https://mycoolapp.com:22/",
            "http://93.184.216.34:25/",
        ] {
            assert!(refused(url), "{url} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses_and_names() {
        for url in [
            "https://mycoolapp.com/events",
            "http://93.184.216.34/",
            "http://[2606:4700::1]/",
            "https://mycoolapp.com:8443/events",
            "http://mycoolapp.com:80/",
        ] {
            assert!(!refused(url), "{url} should be allowed");
        }
    }

    #[test]
    fn the_operator_may_allow_private_networks() {
        let guard = NetGuard::new(true);
        assert!(guard
            .check_url(&url::Url::parse("http://127.0.0.1:9/").unwrap())
            .is_ok());
    }

    #[tokio::test]
    async fn resolution_checks_the_resolved_address() {
        let guard = NetGuard::new(false);
        let url = url::Url::parse("http://127.0.0.1:1/").unwrap();
        assert_eq!(guard.resolve(&url).await, Err(GuardError::Port(1)));
        let url = url::Url::parse("http://127.0.0.1:1025/").unwrap();
        assert!(matches!(
            guard.resolve(&url).await,
            Err(GuardError::Refused { .. })
        ));
        // A name: refused without the address or its class.
        let name = url::Url::parse("http://localhost:1025/").unwrap();
        let err = guard.resolve(&name).await.unwrap_err();
        assert_eq!(err, GuardError::LocalName("localhost".into()));
        let open = NetGuard::new(true);
        assert_eq!(open.resolve(&url).await.unwrap().port(), 1025);
    }
}
