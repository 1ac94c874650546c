//! The client's address. Behind a reverse proxy every connection comes from the proxy, so the
//! address the proxy saw is taken from the one header careq was told the proxy writes
//! (`CAREQ_CLIENT_IP_HEADER`: `X-Forwarded-For`, or `Forwarded` of RFC 7239) — but only when
//! the connection comes from a proxy careq was told to trust (`CAREQ_TRUSTED_PROXIES`), and then
//! only the hops trusted proxies appended: reading from the right, the first address that is not
//! itself a trusted proxy. Anything left of it was written by the client and proves nothing, and
//! so is the other header, which the proxy passes on untouched unless told to strip it.
use std::net::IpAddr;

use http::HeaderMap;

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={max}"))?,
        };
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The header a trusted proxy records the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ClientIpHeader {
    pub fn name(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::Forwarded => "forwarded",
        }
    }
}

/// The hops a request went through as the chosen header records them, nearest last; `None` for
/// a hop whose address is not given (`for=unknown`, an obfuscated name, garbage).
fn forwarded_chain(headers: &HeaderMap, which: ClientIpHeader) -> Vec<Option<IpAddr>> {
    let mut chain = Vec::new();
    // Several header lines are one list, in order (RFC 9110 §5.3).
    for value in headers.get_all(which.name()) {
        let Ok(value) = value.to_str() else {
            chain.push(None);
            continue;
        };
        for element in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            chain.push(match which {
                ClientIpHeader::XForwardedFor => node_ip(element),
                // `for=192.0.2.1;proto=https`, `for="[2001:db8::1]:4711"`.
                ClientIpHeader::Forwarded => element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| node_ip(v.trim().trim_matches('"')))
                        .flatten()
                }),
            });
        }
    }
    chain
}

/// An address from a `for=` node or an X-Forwarded-For entry (ports and brackets dropped).
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// The client's address: the socket peer, unless that peer is a trusted proxy; then, reading
/// the chosen header from the right, the first address that is not a trusted proxy (or the
/// leftmost if all are). A hop without an address stops the walk at the proxy that wrote it:
/// what lies left of it cannot be told from what the client wrote, so the proxy's own address
/// stands for the client.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    which: ClientIpHeader,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return peer;
    }
    let mut nearest_trusted = peer;
    for hop in forwarded_chain(headers, which).into_iter().rev() {
        match hop {
            None => return nearest_trusted,
            Some(ip) if is_trusted(ip) => nearest_trusted = ip,
            Some(ip) => return ip,
        }
    }
    nearest_trusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy.local").is_err());
    }

    const XFF: ClientIpHeader = ClientIpHeader::XForwardedFor;
    const FWD: ClientIpHeader = ClientIpHeader::Forwarded;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_then_the_rightmost_untrusted_hop_wins() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = ip("10.0.0.5");
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.9")]);
        assert_eq!(resolve(peer, &h, &trusted, XFF), ip("198.51.100.7"));
        let stranger = ip("203.0.113.1");
        assert_eq!(resolve(stranger, &h, &trusted, XFF), stranger);
        assert_eq!(resolve(peer, &h, &[], XFF), peer);
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=https, for="[2001:db8::7]:4711""#,
        )]);
        assert_eq!(resolve(peer, &h, &trusted, FWD), ip("2001:db8::7"));
        assert_eq!(resolve(peer, &HeaderMap::new(), &trusted, XFF), peer);
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.9")]);
        assert_eq!(resolve(peer, &h, &trusted, XFF), ip("10.0.0.7"));
    }

    #[test]
    fn only_the_chosen_header_is_read_whatever_the_other_says() {
        let trusted = [Cidr::parse("127.0.0.1").unwrap()];
        let peer = ip("127.0.0.1");
        let h = headers(&[
            ("forwarded", "for=198.51.100.9"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(resolve(peer, &h, &trusted, XFF), ip("203.0.113.5"));
        assert_eq!(resolve(peer, &h, &trusted, FWD), ip("198.51.100.9"));
        // The chosen header absent: the proxy itself, never the other header.
        let only_forwarded = headers(&[("forwarded", "for=198.51.100.9")]);
        assert_eq!(resolve(peer, &only_forwarded, &trusted, XFF), peer);
        let only_xff = headers(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(resolve(peer, &only_xff, &trusted, FWD), peer);
    }

    #[test]
    fn a_hop_without_an_address_stops_the_walk_at_the_proxy_that_wrote_it() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let peer = ip("10.0.0.5");
        for (which, name, value) in [
            (XFF, "x-forwarded-for", "198.51.100.1, unknown"),
            (
                XFF,
                "x-forwarded-for",
                "198.51.100.1, not an address, 10.0.0.9",
            ),
            (FWD, "forwarded", "for=198.51.100.1, for=unknown"),
            (
                FWD,
                "forwarded",
                "for=198.51.100.1, for=_hidden;proto=https",
            ),
            (FWD, "forwarded", "for=198.51.100.1, proto=https"),
        ] {
            let h = headers(&[(name, value)]);
            let expected = if value.ends_with("10.0.0.9") {
                ip("10.0.0.9")
            } else {
                peer
            };
            assert_eq!(resolve(peer, &h, &trusted, which), expected, "{value}");
        }
        // Several header lines are one list, the last line nearest.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(resolve(peer, &h, &trusted, XFF), ip("203.0.113.8"));
    }
}
