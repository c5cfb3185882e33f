//! The proxy environment variables, read as curl reads them: which proxy
//! serves a URL (`https_proxy`, `http_proxy`, `all_proxy`) and which
//! servers are reached directly (`no_proxy`).
//!
//! Lookups go through a closure, so that the rules are tested here without
//! touching the process's environment.

use std::net::IpAddr;

use tracing::debug;

use crate::error::Error;
use crate::proxy::Proxy;

/// The proxy the environment names for `host:port`, for `wss://` when `tls`
/// and for `ws://` otherwise; `None` when it names none or `no_proxy` lists
/// the server. `lookup` reads one variable.
///
/// Lower case wins over upper case (curl's rule); an empty variable counts
/// as unset. Upper-case `HTTP_PROXY` is not read when `REQUEST_METHOD` is
/// set: in a CGI program a request's `Proxy:` header arrives as
/// `HTTP_PROXY` ("httpoxy"), and Go's and Python's libraries skip it too.
pub(super) fn proxy_for(
    lookup: impl Fn(&str) -> Option<String>,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<Option<Proxy>, Error> {
    let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let cgi = get("REQUEST_METHOD").is_some();
    let names: &[&str] = match (tls, cgi) {
        (true, _) => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        (false, false) => &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
        (false, true) => &["http_proxy", "all_proxy", "ALL_PROXY"],
    };
    let Some((name, url)) = names.iter().find_map(|name| Some((*name, get(name)?))) else {
        return Ok(None);
    };
    if let Some(no_proxy) = get("no_proxy").or_else(|| get("NO_PROXY")) {
        if bypasses(&no_proxy, host, port) {
            debug!(
                server = host,
                port, "no_proxy lists the server: connecting directly"
            );
            return Ok(None);
        }
    }
    let proxy = Proxy::new(&url).map_err(|error| match error {
        Error::InvalidUrl { url, reason } => Error::InvalidUrl {
            url,
            reason: format!("{reason} (the value of the environment variable {name})"),
        },
        other => other,
    })?;
    debug!(variable = name, proxy = %proxy.address(), "proxy from the environment");
    Ok(Some(proxy))
}

/// Whether the `no_proxy` list `list` names `host:port`: `*`; a name that
/// is the host or a parent domain of it, with or without a leading `.` or
/// `*.`; an IP address equal to the host's; a CIDR range holding it. Any
/// of them with `:port` (an IPv6 address in brackets) names that port
/// alone. Names are compared without case or a final dot, and never
/// resolved: `localhost` does not match `127.0.0.1`.
fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, entry_port) = split_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
            if let Some((network, bits)) = pattern.split_once('/') {
                return match (host_ip, network.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Some(ip), Ok(network), Ok(bits)) => in_range(ip, network, bits),
                    _ => false,
                };
            }
            if let Ok(ip) = pattern.parse::<IpAddr>() {
                return host_ip == Some(ip);
            }
            let domain = pattern
                .strip_prefix("*.")
                .or_else(|| pattern.strip_prefix('.'))
                .unwrap_or(&pattern);
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// An entry's host and its port, if it names one: `name:port`,
/// `[v6]:port`; a bare IPv6 address (`::1`) has none.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, after)) => (ip, after.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.split_once(':') {
        Some((name, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// Whether `ip` is in `network/bits`; never across IPv4 and IPv6.
fn in_range(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let host_bits = u32::from(width - bits);
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    // Only the address's own width counts for an IPv4 range.
    let mask = mask & (u128::MAX >> (128 - u32::from(width)));
    ip & mask == network & mask
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn chosen(vars: &[(&str, &str)], host: &str, port: u16, tls: bool) -> Option<String> {
        proxy_for(env(vars), host, port, tls)
            .unwrap()
            .map(|p| p.address())
    }

    #[test]
    fn each_scheme_reads_its_variable_then_all_proxy() {
        let vars = [
            ("http_proxy", "http://plain:1"),
            ("https_proxy", "http://secure:2"),
            ("all_proxy", "http://any:3"),
        ];
        assert_eq!(
            chosen(&vars, "h", 80, false).as_deref(),
            Some("http://plain:1")
        );
        assert_eq!(
            chosen(&vars, "h", 443, true).as_deref(),
            Some("http://secure:2")
        );
        let vars = [("ALL_PROXY", "http://any:3")];
        assert_eq!(
            chosen(&vars, "h", 443, true).as_deref(),
            Some("http://any:3")
        );
        assert_eq!(chosen(&[], "h", 443, true), None);
        // ws:// never goes through https_proxy, nor wss:// through http_proxy.
        assert_eq!(
            chosen(&[("https_proxy", "http://s:2")], "h", 80, false),
            None
        );
        assert_eq!(
            chosen(&[("http_proxy", "http://p:1")], "h", 443, true),
            None
        );
    }

    #[test]
    fn lower_case_wins_and_empty_counts_as_unset() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
        ];
        assert_eq!(
            chosen(&vars, "h", 80, false).as_deref(),
            Some("http://lower:1")
        );
        let vars = [("http_proxy", " "), ("HTTP_PROXY", "http://upper:2")];
        assert_eq!(
            chosen(&vars, "h", 80, false).as_deref(),
            Some("http://upper:2")
        );
        let vars = [
            ("https_proxy", "http://p:1"),
            ("no_proxy", "other.example"),
            ("NO_PROXY", "h"),
        ];
        assert_eq!(chosen(&vars, "h", 443, true).as_deref(), Some("http://p:1"));
    }

    #[test]
    fn upper_case_http_proxy_is_not_read_in_a_cgi_program() {
        let vars = [
            ("HTTP_PROXY", "http://from-a-request:1"),
            ("REQUEST_METHOD", "GET"),
        ];
        assert_eq!(chosen(&vars, "h", 80, false), None);
        let vars = [("http_proxy", "http://mine:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(
            chosen(&vars, "h", 80, false).as_deref(),
            Some("http://mine:1")
        );
    }

    #[test]
    fn no_proxy_leaves_the_listed_servers_out() {
        let vars = [
            ("http_proxy", "http://p:1"),
            ("NO_PROXY", "example.com, 10.0.0.0/8"),
        ];
        assert_eq!(chosen(&vars, "api.example.com", 80, false), None);
        assert_eq!(chosen(&vars, "10.1.2.3", 80, false), None);
        assert!(chosen(&vars, "example.org", 80, false).is_some());
        // Loopback is not left out unless listed.
        assert!(chosen(&vars, "127.0.0.1", 80, false).is_some());
        assert!(chosen(&vars, "localhost", 80, false).is_some());
    }

    #[test]
    fn a_proxy_url_that_is_not_one_names_its_variable_and_hides_the_password() {
        let vars = [("https_proxy", "ftp://alice:hunter2@p")];
        match proxy_for(env(&vars), "h", 443, true) {
            Err(error @ Error::InvalidUrl { .. }) => {
                let shown = error.to_string();
                assert!(
                    shown.contains("https_proxy") && !shown.contains("hunter2"),
                    "{shown}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_match_themselves_and_their_subdomains() {
        for list in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com.",
        ] {
            assert!(bypasses(list, "example.com", 80), "{list}");
            assert!(bypasses(list, "a.b.Example.com.", 80), "{list}");
            assert!(!bypasses(list, "notexample.com", 80), "{list}");
            assert!(!bypasses(list, "example.com.evil", 80), "{list}");
        }
        assert!(bypasses("*", "anything", 1));
        assert!(bypasses(" a.test ,, b.test ", "b.test", 1));
        assert!(!bypasses("", "a.test", 1));
        assert!(!bypasses("localhost", "127.0.0.1", 1));
    }

    #[test]
    fn addresses_match_exactly_or_by_range() {
        assert!(bypasses("127.0.0.1", "127.0.0.1", 80));
        assert!(!bypasses("127.0.0.1", "127.0.0.2", 80));
        assert!(bypasses("::1", "::1", 80));
        assert!(bypasses("0:0::1", "::1", 80));
        assert!(bypasses("[::1]", "::1", 80));
        assert!(bypasses("192.168.0.0/16", "192.168.4.5", 80));
        assert!(!bypasses("192.168.0.0/16", "192.169.0.1", 80));
        assert!(bypasses("0.0.0.0/0", "8.8.8.8", 80));
        assert!(bypasses("fd00::/8", "fd12::1", 80));
        assert!(!bypasses("fd00::/8", "fe80::1", 80));
        assert!(!bypasses("10.0.0.0/8", "::ffff:10.0.0.1", 80));
        assert!(!bypasses("10.0.0.0/33", "10.0.0.1", 80));
        // A name is never resolved to match an address range.
        assert!(!bypasses("127.0.0.0/8", "localhost", 80));
    }

    #[test]
    fn a_port_narrows_an_entry_to_that_port() {
        assert!(bypasses("example.com:8080", "example.com", 8080));
        assert!(!bypasses("example.com:8080", "example.com", 80));
        assert!(bypasses("127.0.0.1:9001", "127.0.0.1", 9001));
        assert!(!bypasses("127.0.0.1:9001", "127.0.0.1", 9002));
        assert!(bypasses("[::1]:9001", "::1", 9001));
        assert!(!bypasses("[::1]:9001", "::1", 9002));
    }
}
