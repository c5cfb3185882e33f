//! SOCKS5 proxies (RFC 1928), with username/password credentials (RFC
//! 1929), on tokio-socks: `socks5://` resolves the server's name here,
//! `socks5h://` sends the name for the proxy to resolve.

use std::io;

use tokio::net::TcpStream;
use tokio_socks::tcp::Socks5Stream;
use tokio_socks::TargetAddr;

use super::{at_proxy, invalid_proxy};
use crate::error::Error;
use crate::proxy::{Proxy, Scheme};

/// A TCP stream through the SOCKS5 proxy `proxy` to `host:port`. SOCKS5
/// answers with a reply of known length, so nothing of the server's is
/// read with it.
pub(super) async fn tunnel(proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream, Error> {
    let credentials = match &proxy.credentials {
        Some(credentials) => {
            let text = |bytes: &[u8]| {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| invalid_proxy(proxy, "SOCKS5 credentials must be UTF-8 here"))
            };
            Some((text(&credentials.user)?, text(&credentials.password)?))
        }
        None => None,
    };
    let target = match (proxy.scheme, host.parse::<std::net::IpAddr>()) {
        (_, Ok(ip)) => TargetAddr::Ip((ip, port).into()),
        (Scheme::Socks5h, Err(_)) => TargetAddr::Domain(host.into(), port),
        (_, Err(_)) => {
            let mut addresses = tokio::net::lookup_host((host, port)).await?;
            let address = addresses.next().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host:?} has no address (socks5h:// lets the proxy resolve it)"),
                )
            })?;
            TargetAddr::Ip(address)
        }
    };
    let tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| at_proxy(proxy, e))?;
    let stream = match &credentials {
        Some((user, password)) => {
            Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await
        }
        None => Socks5Stream::connect_with_socket(tcp, target).await,
    };
    stream
        .map(Socks5Stream::into_inner)
        .map_err(|error| refused(proxy, error))
}

/// What a SOCKS5 failure means for the caller: credentials to give, or an
/// I/O error naming the proxy, of the kind its reply says.
fn refused(proxy: &Proxy, error: tokio_socks::Error) -> Error {
    use tokio_socks::Error as Socks;
    let kind = match error {
        Socks::Io(error) => return at_proxy(proxy, error),
        Socks::NoAcceptableAuthMethods | Socks::PasswordAuthFailure(_) => {
            return Error::ProxyAuthenticationRequired {
                proxy: proxy.address(),
            }
        }
        Socks::InvalidAuthValues(why) => {
            return invalid_proxy(proxy, format!("SOCKS5 credentials: {why}"))
        }
        Socks::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        Socks::HostUnreachable => io::ErrorKind::HostUnreachable,
        Socks::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
        Socks::ConnectionNotAllowedByRuleset => io::ErrorKind::PermissionDenied,
        Socks::TtlExpired => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::InvalidData,
    };
    at_proxy(proxy, io::Error::new(kind, error.to_string()))
}
