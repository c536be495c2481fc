//! Outbound HTTP to addresses that are not opendew's own (issue #34): the
//! notification webhook now, subscribers' endpoints with the SMN topics.
//! A host is resolved once per connection by [`PolicyResolver`], which
//! hands the HTTP client only the addresses the [`OutboundPolicy`] allows,
//! so the address checked is the address connected to (no DNS rebinding
//! between a check and the connect); a URL naming an address directly is
//! checked by [`OutboundPolicy::check_url`]. In production loopback,
//! private, shared, link-local, metadata, unspecified and multicast
//! addresses are refused unless the operator allows a range
//! (`--outbound-allow-cidr`); `opendew dev` allows loopback so that local
//! receivers work.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;

/// Why an address is refused, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared), fc00::/7.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// A cloud metadata service (169.254.169.254, fd00:ec2::254, 100.100.100.200).
    Metadata,
    /// 0.0.0.0/8, ::, broadcast, multicast, reserved.
    NotRoutable,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::Metadata => "a cloud metadata address",
            Self::NotRoutable => "an address that is not routable",
        })
    }
}

/// The class of `ip` when it is not a public unicast address.
pub fn classify(ip: IpAddr) -> Option<Refused> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped and NAT64 addresses are their IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                return classify_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(Refused::Metadata)
            } else if v6.is_loopback() {
                Some(Refused::Loopback)
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some(Refused::NotRoutable)
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some(Refused::Private)
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some(Refused::LinkLocal)
            } else {
                None
            }
        }
    }
}

fn classify_v4(v4: Ipv4Addr) -> Option<Refused> {
    let [a, b, ..] = v4.octets();
    if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some(Refused::Metadata)
    } else if v4.is_loopback() {
        Some(Refused::Loopback)
    } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(Refused::Private)
    } else if v4.is_link_local() {
        Some(Refused::LinkLocal)
    } else if a == 0 || a >= 224 || v4.is_broadcast() {
        Some(Refused::NotRoutable)
    } else {
        None
    }
}

/// Which addresses outbound calls may reach.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Ranges the operator allows although their class is refused.
    pub allowed: Vec<IpNet>,
    /// Loopback allowed (`opendew dev`).
    pub allow_loopback: bool,
}

impl OutboundPolicy {
    /// Whether `ip` may be reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match classify(ip) {
            None => Ok(()),
            Some(_) if self.allowed.iter().any(|net| net.contains(&ip)) => Ok(()),
            Some(Refused::Loopback) if self.allow_loopback => Ok(()),
            Some(class) => Err(class),
        }
    }

    /// Checks a URL whose host is an address (the resolver never sees
    /// those); a host name is checked when it is resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check(IpAddr::V6(v6)),
            _ => Ok(()),
        }
    }
}

/// The HTTP client's resolver: the system's answer, less the addresses the
/// policy refuses (none left: the connection fails, naming the class).
#[derive(Debug, Clone)]
pub struct PolicyResolver(pub Arc<OutboundPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert(class);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.map_or("no address".to_owned(), |class| format!("{class} (refused)"));
                return Err(Box::<dyn std::error::Error + Send + Sync>::from(format!(
                    "{} resolves to {why}",
                    name.as_str()
                )));
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_refused_class_is_refused_and_public_addresses_pass() {
        let production = OutboundPolicy::default();
        for (addr, class) in [
            ("127.0.0.1", Refused::Loopback),
            ("::1", Refused::Loopback),
            ("10.1.2.3", Refused::Private),
            ("172.20.0.1", Refused::Private),
            ("192.168.1.1", Refused::Private),
            ("100.64.0.1", Refused::Private),
            ("fd12::1", Refused::Private),
            ("169.254.1.1", Refused::LinkLocal),
            ("fe80::1", Refused::LinkLocal),
            ("169.254.169.254", Refused::Metadata),
            ("fd00:ec2::254", Refused::Metadata),
            ("100.100.100.200", Refused::Metadata),
            ("0.0.0.0", Refused::NotRoutable),
            ("::", Refused::NotRoutable),
            ("255.255.255.255", Refused::NotRoutable),
            ("224.0.0.1", Refused::NotRoutable),
            ("::ffff:10.0.0.1", Refused::Private),
            ("::ffff:169.254.169.254", Refused::Metadata),
            ("64:ff9b::7f00:1", Refused::Loopback),
        ] {
            assert_eq!(production.check(ip(addr)), Err(class), "{addr}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "100.128.0.1", "172.32.0.1"] {
            assert_eq!(production.check(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn the_operator_allows_ranges_and_dev_allows_loopback() {
        let allowed = OutboundPolicy { allowed: vec!["10.8.0.0/16".parse().unwrap()], allow_loopback: false };
        assert_eq!(allowed.check(ip("10.8.1.1")), Ok(()));
        assert_eq!(allowed.check(ip("10.9.1.1")), Err(Refused::Private));
        let dev = OutboundPolicy { allow_loopback: true, ..OutboundPolicy::default() };
        assert_eq!(dev.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(dev.check(ip("169.254.169.254")), Err(Refused::Metadata), "never the metadata service");
        let url = reqwest::Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        assert_eq!(dev.check_url(&url), Err(Refused::Metadata));
        assert_eq!(dev.check_url(&reqwest::Url::parse("http://[::1]:8080/").unwrap()), Ok(()));
    }

    /// A host name resolves through the policy: `localhost` is refused in
    /// production, and the client never connects.
    #[tokio::test]
    async fn names_are_checked_when_resolved() {
        use reqwest::dns::Resolve;
        let production = PolicyResolver(Arc::new(OutboundPolicy::default()));
        let refused = production.resolve("localhost".parse().unwrap()).await;
        let message = refused.err().expect("localhost is refused").to_string();
        assert!(message.contains("loopback"), "{message}");
        let dev = PolicyResolver(Arc::new(OutboundPolicy { allow_loopback: true, ..OutboundPolicy::default() }));
        let addrs: Vec<SocketAddr> = dev.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
