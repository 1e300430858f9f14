//! Who is calling: the connection's address, or behind trusted reverse proxies the address
//! that `X-Forwarded-For` names (docs/operations.md, `trusted_proxies`).
//!
//! A proxy appends the address it received the request from, so the header's right end is
//! written by the proxies nearest to rollcall and its left end by whoever sent the request,
//! who can write anything there. The client is therefore the right-most address that is not
//! a trusted proxy; the header is read only when the connection itself comes from a trusted
//! proxy, so that nobody else can choose the address they are throttled as.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed: addresses and networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parse `10.0.0.0/8`, `192.0.2.10`, `::1` or `2001:db8::/32`, one item each.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies, String> {
        items
            .into_iter()
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "trusted proxy '{item}' is not an IP address or a network (10.0.0.0/8)"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` headers in the order received.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|header| header.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop that is not an address was written by the nearest proxy we still trust
            // or by the sender: stop at the last address we could vouch for.
            let Some(address) = parse_hop(hop) else {
                return client;
            };
            client = address;
            if !self.trusts(address) {
                return address;
            }
        }
        client
    }
}

/// One hop of `X-Forwarded-For`: `192.0.2.1`, `2001:db8::1`, or either with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_list_takes_addresses_and_networks() {
        // (items, parsed or the error's start)
        let table: [(&[&str], Result<usize, &str>); 6] = [
            (&[], Ok(0)),
            (&["127.0.0.1"], Ok(1)),
            (&["10.0.0.0/8", " ::1 ", "2001:db8::/32", ""], Ok(3)),
            (&["10.1.2.3/8"], Ok(1)),
            (&["proxy.example"], Err("trusted proxy 'proxy.example'")),
            (&["10.0.0.0/33"], Err("trusted proxy '10.0.0.0/33'")),
        ];
        for (items, expected) in table {
            let parsed = TrustedProxies::parse(items.iter().copied());
            match expected {
                Ok(n) => assert_eq!(parsed.unwrap().0.len(), n, "{items:?}"),
                Err(start) => assert!(parsed.unwrap_err().starts_with(start), "{items:?}"),
            }
        }
        let nets = TrustedProxies::parse(["10.1.2.3/8"]).unwrap();
        assert!(
            nets.trusts(ip("10.200.0.1")),
            "a network given by any of its addresses"
        );
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_address() {
        let trusted = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]).unwrap();
        // (peer, X-Forwarded-For headers, client)
        let table: [(&str, &[&str], &str); 16] = [
            // Not from a trusted proxy: the header is ignored.
            ("192.0.2.9", &["198.51.100.7"], "192.0.2.9"),
            ("::ffff:192.0.2.9", &["198.51.100.7"], "192.0.2.9"),
            // From a trusted proxy.
            ("127.0.0.1", &["198.51.100.7"], "198.51.100.7"),
            ("127.0.0.1", &[], "127.0.0.1"),
            ("127.0.0.1", &[""], "127.0.0.1"),
            ("::ffff:127.0.0.1", &["198.51.100.7"], "198.51.100.7"),
            // The sender wrote a left part of its own: the proxy's own entry wins.
            ("127.0.0.1", &["203.0.113.1, 198.51.100.7"], "198.51.100.7"),
            (
                "127.0.0.1",
                &["203.0.113.1", "198.51.100.7"],
                "198.51.100.7",
            ),
            // Through two trusted proxies.
            ("127.0.0.1", &["198.51.100.7, 10.1.2.3"], "198.51.100.7"),
            ("127.0.0.1", &["198.51.100.7", "10.1.2.3"], "198.51.100.7"),
            // Every hop trusted: the farthest one.
            ("127.0.0.1", &["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
            // Garbage stops the walk at the last address vouched for.
            ("127.0.0.1", &["198.51.100.7, unknown"], "127.0.0.1"),
            ("127.0.0.1", &["unknown, 10.1.2.3"], "10.1.2.3"),
            // Ports and IPv6.
            ("127.0.0.1", &["198.51.100.7:4711"], "198.51.100.7"),
            (
                "127.0.0.1",
                &["[2001:db9::1]:4711, 2001:db8::5"],
                "2001:db9::1",
            ),
            ("2001:db8::5", &["2001:db9::1"], "2001:db9::1"),
        ];
        for (peer, headers, client) in table {
            assert_eq!(
                trusted.client_address(ip(peer), headers.iter().copied()),
                ip(client),
                "{peer} {headers:?}"
            );
        }
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client_address(ip("127.0.0.1"), ["198.51.100.7"]),
            ip("127.0.0.1"),
            "no trusted proxies: never read"
        );
    }
}
