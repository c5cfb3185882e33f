//! Reaching the server through a proxy: which proxy, if any
//! ([`env`]: the builder's choice, else the environment variables), and the
//! tunnel through it ([`connect`]: HTTP `CONNECT`; `socks`: SOCKS5, with
//! the `socks` feature). What comes out is a TCP stream that leads to the
//! server, for TLS and the WebSocket handshake to run on as if direct.

mod connect;
mod env;
#[cfg(feature = "socks")]
mod socks;

use std::borrow::Cow;
use std::io;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tracing::debug;

use crate::error::Error;
use crate::proxy::{Proxy, ProxyChoice, Scheme};

/// A TCP stream to `host:port` (a name, or an IP address without
/// brackets): direct, or a tunnel through the proxy that `choice` picks for
/// a `ws://` (`tls` false) or `wss://` URL. With it, any bytes the proxy
/// passed on after its answer: the server's, for the handshake to read.
///
/// Everything that can be wrong with the proxy settings (a proxy URL in
/// the environment that is not one, credentials that cannot be sent) is
/// found before anything is sent.
pub(crate) async fn connect(
    choice: &ProxyChoice,
    host: &str,
    port: u16,
    tls: bool,
) -> Result<(TcpStream, BytesMut), Error> {
    let proxy = match choice {
        ProxyChoice::Direct => None,
        ProxyChoice::Given(proxy) => Some(Cow::Borrowed(proxy)),
        ProxyChoice::FromEnv => {
            env::proxy_for(|name| std::env::var(name).ok(), host, port, tls)?.map(Cow::Owned)
        }
    };
    let Some(proxy) = proxy else {
        return Ok((TcpStream::connect((host, port)).await?, BytesMut::new()));
    };
    let server = authority(host, port);
    // The address, never the password.
    debug!(proxy = %proxy.address(), %server, "connecting through a proxy");
    match proxy.scheme {
        Scheme::Http => {
            let (tcp, early) = connect::tunnel(&proxy, &server).await?;
            if tls && !early.is_empty() {
                // A TLS server speaks only when spoken to: these bytes are
                // the proxy's, and the TLS handshake would fail on them.
                return Err(at_proxy(
                    &proxy,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} bytes followed its 200 answer, before the TLS handshake began",
                            early.len()
                        ),
                    ),
                ));
            }
            Ok((tcp, early))
        }
        #[cfg(feature = "socks")]
        Scheme::Socks5 | Scheme::Socks5h => {
            Ok((socks::tunnel(&proxy, host, port).await?, BytesMut::new()))
        }
        #[cfg(not(feature = "socks"))]
        Scheme::Socks5 | Scheme::Socks5h => Err(Error::Unsupported(
            "a socks5:// proxy without tandem's `socks` feature",
        )),
    }
}

/// `host:port` as a request target or `Host` names it: an IPv6 address in
/// brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `error`, of the same kind, saying which proxy it came from.
fn at_proxy(proxy: &Proxy, error: io::Error) -> Error {
    Error::Io(io::Error::new(
        error.kind(),
        format!("the proxy at {}: {error}", proxy.address()),
    ))
}

/// [`Error::InvalidUrl`] for `proxy`, its password blanked out.
fn invalid_proxy(proxy: &Proxy, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: proxy.redacted_url(),
        reason: reason.into(),
    }
}
