//! The proxy a native client goes through: an HTTP proxy that opens a
//! tunnel with `CONNECT`, or a SOCKS5 one (the `socks` feature). The type
//! exists on every target so that code which sets one needs no `#[cfg]`;
//! the browser uses its own proxy settings and ignores it.
//!
//! Unless told otherwise ([`ClientBuilder::proxy`](crate::ClientBuilder::proxy),
//! [`ClientBuilder::no_proxy`](crate::ClientBuilder::no_proxy)), the native
//! client reads the environment variables that curl, Python's `websockets`
//! and most HTTP clients read: `https_proxy` for `wss://`, `http_proxy` for
//! `ws://`, then `all_proxy`, each in lower case or else upper case, and
//! `no_proxy` for the hosts to reach directly.

use std::fmt;

use crate::authority::{self, Credentials};
use crate::error::Error;

/// An HTTP (`CONNECT`) or SOCKS5 proxy for the native client, from its URL.
///
/// The native client opens a TCP connection to the proxy, asks it for a
/// tunnel to the server, and then speaks TLS (for `wss://`, with the
/// server's name) and WebSocket inside the tunnel, as if connected
/// directly. In the browser a `Proxy` is accepted and ignored: the
/// browser goes through the proxy of its own settings.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use tandem::{ClientBuilder, Proxy};
///
/// let session = ClientBuilder::new("wss://echo.example/ws")
///     .proxy(Proxy::new("http://alice:s3cret@proxy.internal:3128")?)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// Its `Debug` output never shows the password:
///
/// ```
/// let proxy = tandem::Proxy::new("http://alice:s3cret@proxy.internal:3128")?;
/// assert_eq!(format!("{proxy:?}"), r#"Proxy("http://alice:***@proxy.internal:3128")"#);
/// # Ok::<(), tandem::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub(crate) scheme: Scheme,
    /// Without the brackets of an IPv6 address.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

/// How the client asks a proxy for a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `http://`: `CONNECT host:port HTTP/1.1`.
    Http,
    /// `socks5://`: the client resolves the server's name.
    Socks5,
    /// `socks5h://`: the proxy resolves it.
    Socks5h,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }
}

/// Where a client's connection goes: what [`ClientBuilder::proxy`] and
/// [`ClientBuilder::no_proxy`] chose, or the environment by default.
///
/// [`ClientBuilder::proxy`]: crate::ClientBuilder::proxy
/// [`ClientBuilder::no_proxy`]: crate::ClientBuilder::no_proxy
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ProxyChoice {
    /// The proxy the environment names for the URL, if any.
    #[default]
    FromEnv,
    /// No proxy, whatever the environment says.
    Direct,
    /// This proxy, for every URL.
    Given(Proxy),
}

impl Proxy {
    /// The proxy at `url`: `http://[user[:password]@]host[:port]` (port 80
    /// by default; a URL without a scheme is taken as `http://`, as curl
    /// does), or with the `socks` feature `socks5://` (the client resolves
    /// the server's name) or `socks5h://` (the proxy does), port 1080 by
    /// default. A path after the address is ignored.
    ///
    /// A user name and password in the URL are percent-decoded and sent as
    /// `Proxy-Authorization: Basic …` (or as SOCKS5 credentials); a
    /// password with `@`, `:` or `%` in it must be percent-encoded, or given
    /// with [`basic_auth`](Proxy::basic_auth).
    ///
    /// Fails with [`Error::InvalidUrl`], the password blanked out of it,
    /// for a URL that is not one, an `https://` proxy (TLS to the proxy
    /// itself is not supported) or another scheme. A SOCKS5 URL parses
    /// without the `socks` feature too, and connecting through it then fails
    /// with [`Error::Unsupported`].
    ///
    /// ```
    /// use tandem::Proxy;
    ///
    /// let proxy = Proxy::new("proxy.internal:3128")?;
    /// assert_eq!(format!("{proxy:?}"), r#"Proxy("http://proxy.internal:3128")"#);
    /// assert!(Proxy::new("ftp://proxy.internal").is_err());
    /// # Ok::<(), tandem::Error>(())
    /// ```
    pub fn new(url: &str) -> Result<Proxy, Error> {
        let url = url.trim();
        let invalid = |reason: &str| Error::InvalidUrl {
            url: authority::redact(url),
            reason: reason.to_owned(),
        };
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: http::Uri = with_scheme
            .parse()
            .map_err(|_| invalid("not a proxy URL (http://host:port)"))?;
        let (scheme, default_port) = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref()
        {
            Some("http") => (Scheme::Http, 80),
            Some("socks5") => (Scheme::Socks5, 1080),
            Some("socks5h") => (Scheme::Socks5h, 1080),
            Some("https") => {
                return Err(invalid(
                    "https:// proxies (TLS to the proxy itself) are not supported; \
                     give the proxy's http:// address (wss:// stays encrypted end to end \
                     inside the tunnel)",
                ))
            }
            _ => return Err(invalid(
                "the scheme must be http:// (or socks5:// or socks5h:// with the `socks` feature)",
            )),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let credentials = match authority.as_str().rsplit_once('@') {
            Some((user_info, _)) if !user_info.is_empty() => {
                Some(Credentials::from_user_info(user_info).map_err(|why| invalid(&why))?)
            }
            _ => None,
        };
        let port = authority::port(authority.as_str(), default_port).map_err(invalid)?;
        Ok(Proxy {
            scheme,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// Sends `user` and `password` to the proxy, as they are (not
    /// percent-decoded), instead of any in the URL: as
    /// `Proxy-Authorization: Basic …` to an HTTP proxy, or as SOCKS5
    /// username/password credentials (RFC 1929). For an HTTP proxy the user
    /// name cannot contain `:` (RFC 7617): connecting then fails with
    /// [`Error::InvalidUrl`] before anything is sent.
    ///
    /// ```
    /// let proxy = tandem::Proxy::new("http://proxy.internal:3128")?.basic_auth("alice", "p@ss:w%rd");
    /// assert_eq!(format!("{proxy:?}"), r#"Proxy("http://alice:***@proxy.internal:3128")"#);
    /// # Ok::<(), tandem::Error>(())
    /// ```
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        self.credentials = Some(Credentials {
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
        });
        self
    }

    /// `scheme://host:port`, without the credentials: what errors and logs
    /// name the proxy by.
    pub(crate) fn address(&self) -> String {
        format!("{}://{}", self.scheme.name(), self.host_and_port())
    }

    /// `host:port`, an IPv6 address in brackets.
    fn host_and_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL with the user name and `***` for the password.
    pub(crate) fn redacted_url(&self) -> String {
        let user = match &self.credentials {
            Some(credentials) => format!("{}:***@", String::from_utf8_lossy(&credentials.user)),
            None => String::new(),
        };
        format!("{}://{user}{}", self.scheme.name(), self.host_and_port())
    }
}

/// The URL with the user name and `***` for the password.
impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxy").field(&self.redacted_url()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_their_defaults() {
        let p = Proxy::new("http://proxy.internal:3128/").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.port),
            (Scheme::Http, "proxy.internal", 3128)
        );
        assert_eq!(Proxy::new("proxy.internal").unwrap().port, 80);
        assert_eq!(
            Proxy::new(" HTTP://proxy.internal ").unwrap().scheme,
            Scheme::Http
        );
        let p = Proxy::new("socks5h://[::1]").unwrap();
        assert_eq!(
            (p.scheme, p.host.as_str(), p.port),
            (Scheme::Socks5h, "::1", 1080)
        );
        assert_eq!(p.address(), "socks5h://[::1]:1080");
        assert_eq!(
            Proxy::new("socks5://10.0.0.1:9050").unwrap().scheme,
            Scheme::Socks5
        );
    }

    #[test]
    fn credentials_come_from_the_user_info() {
        let p = Proxy::new("http://al%69ce:p%40ss@proxy:8080").unwrap();
        let c = p.credentials.unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"alice"[..], &b"p@ss"[..])
        );
        assert!(Proxy::new("http://proxy:8080")
            .unwrap()
            .credentials
            .is_none());
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for bad in [
            "https://alice:hunter2@proxy:443",
            "ftp://alice:hunter2@proxy",
            "http://alice:hunter2%zz@proxy",
            "http://alice:hunter2@",
            "http://alice:hunter2@proxy:notaport",
        ] {
            match Proxy::new(bad) {
                Err(error @ Error::InvalidUrl { .. }) => {
                    let shown = format!("{error} {error:?}");
                    assert!(!shown.contains("hunter2"), "{shown}");
                    assert!(shown.contains("alice:***@"), "{shown}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
