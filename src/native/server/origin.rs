//! [`OriginPolicy`]: which browser pages may open a WebSocket session,
//! against cross-site WebSocket hijacking.
//!
//! A browser sends cookies with an upgrade from any page, and lets that
//! page read the session; unlike `fetch`, no CORS check stands in the way.
//! A session that trusts the cookie would then serve a page of another
//! site as the user. The `Origin` header, which browsers set and pages
//! cannot forge, names the page's site: by default only the server's own
//! pages may open a session, as in gorilla/websocket's `CheckOrigin`.

/// Which browser origins may open a WebSocket session (the `origins` field
/// of [`ServerOptions`](super::ServerOptions)).
///
/// A request without an `Origin` header does not come from a browser page
/// (a native client, a command-line tool) and is accepted under every
/// policy; the policy is about pages that a browser may have loaded from
/// another site. An upgrade the policy refuses gets 403 and never reaches
/// a handler.
///
/// ```
/// use tandem::server::OriginPolicy;
///
/// let own_pages = OriginPolicy::default();
/// assert!(own_pages.allows(Some("https://chat.example"), Some("chat.example")));
/// assert!(!own_pages.allows(Some("https://evil.example"), Some("chat.example")));
/// assert!(own_pages.allows(None, Some("chat.example")));
///
/// let with_app = OriginPolicy::SameHostOr(vec!["https://app.example".into()]);
/// assert!(with_app.allows(Some("https://app.example"), Some("api.example")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// The default: an `Origin` whose host and port are those the request
    /// was sent to (its `Host` header) is accepted, and so is one of the
    /// listed origins (compared without regard to ASCII case, e.g.
    /// `"https://chat.example"`); any other, and `Origin: null` (sandboxed
    /// frames, local files), is refused.
    ///
    /// Host names compare without regard to case. An origin without a port
    /// has its scheme's default one (80 for `http`, 443 for `https`); a
    /// `Host` without a port matches an origin on its scheme's default
    /// port, so a server behind a TLS terminator still knows its own
    /// `https://` pages. Behind a proxy that rewrites `Host`, forward the
    /// original one (nginx: `proxy_set_header Host $host;`) or list the
    /// public origin here.
    SameHostOr(Vec<String>),
    /// Every origin, `null` included: for servers whose sessions do not
    /// rely on what a browser sends by itself (cookies, HTTP
    /// authentication, client certificates), or whose pages are served
    /// from elsewhere, e.g. a development server on another port.
    Any,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy::SameHostOr(Vec::new())
    }
}

impl OriginPolicy {
    /// Whether an upgrade whose `Origin` and `Host` headers have these
    /// values may proceed (`None` for a header that is missing).
    ///
    /// ```
    /// use tandem::server::OriginPolicy;
    ///
    /// let policy = OriginPolicy::default();
    /// assert!(policy.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
    /// assert!(policy.allows(Some("HTTP://Chat.Example"), Some("chat.example:80")));
    /// assert!(!policy.allows(Some("http://127.0.0.1:3000"), Some("127.0.0.1:8080")));
    /// assert!(!policy.allows(Some("null"), Some("127.0.0.1:8080")));
    /// assert!(OriginPolicy::Any.allows(Some("null"), Some("127.0.0.1:8080")));
    /// ```
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let (listed, origin) = match (self, origin) {
            (OriginPolicy::Any, _) | (_, None) => return true,
            (OriginPolicy::SameHostOr(listed), Some(origin)) => (listed, origin.trim()),
        };
        let bare = origin.trim_end_matches('/');
        if listed
            .iter()
            .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(bare))
        {
            return true;
        }
        host.is_some_and(|host| same_host(origin, host.trim()))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port
/// as a `Host` header value (`host[:port]`).
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = if ["http", "ws"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        80
    } else if ["https", "wss"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        443
    } else {
        return false;
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (Some((origin_host, origin_port)), Some((host, port))) =
        (split_authority(authority), split_authority(host))
    else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(host)
        && origin_port.unwrap_or(default_port) == port.unwrap_or(default_port)
}

/// `host[:port]` (the host in brackets for IPv6) as its host and port;
/// `None` for anything else (a path, user information, a bad port).
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_host_and_port_is_allowed_whatever_the_case() {
        let policy = OriginPolicy::default();
        for (origin, host) in [
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://Chat.Example", "chat.example"),
            ("https://chat.example", "CHAT.EXAMPLE"),
            ("https://chat.example/", "chat.example"),
            ("http://chat.example", "chat.example:80"),
            ("http://chat.example:80", "chat.example"),
            ("https://chat.example", "chat.example:443"),
            ("wss://chat.example:443", "chat.example"),
            ("http://[::1]:8080", "[::1]:8080"),
            ("http://[::1]", "[::1]:80"),
        ] {
            assert!(
                policy.allows(Some(origin), Some(host)),
                "{origin} on {host}"
            );
        }
    }

    #[test]
    fn another_host_port_or_a_malformed_origin_is_refused() {
        let policy = OriginPolicy::default();
        for (origin, host) in [
            ("http://evil.example", "chat.example"),
            ("http://chat.example.evil.example", "chat.example"),
            ("http://chat.example:8080", "chat.example"),
            ("https://chat.example", "chat.example:80"),
            ("http://chat.example", "chat.example:8080"),
            ("http://127.0.0.1:3000", "127.0.0.1:8080"),
            ("http://[::1]:3000", "[::1]:8080"),
            ("null", "chat.example"),
            ("chat.example", "chat.example"),
            ("file://chat.example", "chat.example"),
            ("http://user@chat.example", "chat.example"),
            ("http://chat.example/path", "chat.example"),
            ("http://chat.example:", "chat.example"),
            ("http://chat.example:99999", "chat.example"),
            ("http://", ""),
        ] {
            assert!(
                !policy.allows(Some(origin), Some(host)),
                "{origin} on {host}"
            );
        }
        assert!(!policy.allows(Some("http://chat.example"), None));
    }

    #[test]
    fn listed_origins_and_requests_without_one_are_allowed() {
        let policy = OriginPolicy::SameHostOr(vec!["https://app.example/".into()]);
        assert!(policy.allows(Some("HTTPS://APP.example"), Some("api.example")));
        assert!(policy.allows(None, Some("api.example")));
        assert!(policy.allows(None, None));
        assert!(!policy.allows(Some("https://other.example"), Some("api.example")));
    }
}
