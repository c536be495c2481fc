//! Who is on the other end: the connection's peer, or, behind a proxy the
//! operator trusts, the client the proxy names in `X-Forwarded-For`; and the
//! address prefixes that bounds and queues are shared by.

use std::net::IpAddr;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// The given networks.
    pub fn new(networks: Vec<ipnet::IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&canonical(ip)))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted
    /// proxy; then the right-most address in `X-Forwarded-For` that is not
    /// a trusted proxy (what the nearest untrusted hop claimed; anything to
    /// its left was written by the client and proves nothing). A header
    /// that does not parse leaves the peer.
    pub fn client(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return canonical(peer);
        }
        let mut client = canonical(peer);
        // Several headers count as one list, in order.
        let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        let hops: Vec<&str> = hops.collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else { return client };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// `ip`, with an IPv4-mapped IPv6 address read as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The network `ip` is counted in: the address itself for IPv4, its /64
/// for IPv6 (one host gets a /64, and every address in it costs nothing).
pub fn host(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// The queue `ip` waits in for password hashing: its /24 for IPv4, its /48
/// for IPv6, so that a flood from many addresses of one network shares one
/// lane.
pub fn lane(ip: IpAddr) -> u64 {
    match canonical(ip) {
        IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
        IpAddr::V6(v6) => (1 << 63) | (u128::from(v6) >> 80) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        // The client wrote the left entry itself; the proxy appended the peer.
        let headers = forwarded("1.2.3.4, 203.0.113.9");
        assert_eq!(trusted.client(proxy, &headers), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(trusted.client(stranger, &headers), stranger, "an untrusted peer's header is ignored");
        // Two trusted hops: the first untrusted address from the right.
        let headers = forwarded("203.0.113.9, 10.9.9.9");
        assert_eq!(trusted.client(proxy, &headers), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(trusted.client(proxy, &forwarded("garbage")), proxy);
        assert_eq!(TrustedProxies::default().client(proxy, &forwarded("1.1.1.1")), proxy);
    }

    #[test]
    fn hosts_and_lanes_group_addresses() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(host(a), host(b), "one IPv6 /64 is one host");
        assert_eq!(lane("192.0.2.1".parse().unwrap()), lane("192.0.2.200".parse().unwrap()));
        assert_ne!(lane("192.0.2.1".parse().unwrap()), lane("192.0.3.1".parse().unwrap()));
        assert_eq!(canonical("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_ne!(lane(a), lane("192.0.2.1".parse().unwrap()));
    }
}
