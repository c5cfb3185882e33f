//! The native client: Ktor's `client.webSocket(url) { … }` on tokio, over
//! TCP for `ws://` and TLS for `wss://`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::driver::Driver;
use crate::authority::{self, Credentials};
use crate::client::ClientBuilder;
use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::extensions::{ExtensionHeader, Extensions, Negotiated};
use crate::link::Link;
use crate::protocol::{handshake, Config, Protocol, Role};
use crate::session::{Handshake, Session};

/// The most bytes of a refusal's body kept for [`Error::HandshakeRefused`].
const MAX_REFUSAL_BODY: usize = 1024;

/// Opens the connection that `builder` describes, bounded by its `timeout`
/// (see [`ClientBuilder::connect`]).
pub(crate) async fn connect(builder: ClientBuilder) -> Result<Session, Error> {
    let timeout = builder.options.timeout;
    bounded(timeout, connect_inner(builder)).await
}

/// `handshake`, failing with `TimedOut` after `timeout`.
async fn bounded(
    timeout: Duration,
    handshake: impl std::future::Future<Output = Result<Session, Error>>,
) -> Result<Session, Error> {
    match tokio::time::timeout(timeout, handshake).await {
        Ok(result) => result,
        Err(_) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("opening handshake took longer than {timeout:?}"),
        ))),
    }
}
/// The opening handshake that `builder` describes over `stream`, a
/// connection made elsewhere (an in-memory one, for `tandem::testing`),
/// bounded by the builder's `timeout`.
pub(crate) async fn connect_over<S>(stream: S, builder: ClientBuilder) -> Result<Session, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = builder.options.timeout;
    bounded(timeout, async {
        let target = Target::parse(&builder.url)?;
        let (key, request) = prepare(&builder, &target)?;
        open(stream, BytesMut::new(), builder, &target, &key, &request).await
    })
    .await
}

/// A fresh key and the upgrade request for `target`.
fn prepare(builder: &ClientBuilder, target: &Target) -> Result<(String, Vec<u8>), Error> {
    let mut random = [0u8; 16];
    rand::rng().fill_bytes(&mut random);
    let key = handshake::generate_key(random);
    let request = upgrade_request(builder, target, &key)?;
    Ok((key, request))
}

async fn connect_inner(builder: ClientBuilder) -> Result<Session, Error> {
    // Everything that can be wrong with the request is found before the
    // server is contacted: a refused request sends nothing.
    let target = Target::parse(&builder.url)?;
    if target.tls && cfg!(not(feature = "tls")) {
        return Err(Error::Unsupported("wss:// without tandem's `tls` feature"));
    }
    let (key, request) = prepare(&builder, &target)?;

    let (tcp, early) =
        super::proxy::connect(&builder.proxy, &target.host, target.port, target.tls).await?;
    tcp.set_nodelay(true)?;
    #[cfg(feature = "tls")]
    if target.tls {
        // Inside a proxy's tunnel too, the certificate is checked against
        // the server's name; `proxy::connect` gives no early bytes here.
        let tls = super::tls::connect(tcp, &target.host, builder.tls.clone()).await?;
        return open(tls, early, builder, &target, &key, &request).await;
    }
    open(tcp, early, builder, &target, &key, &request).await
}

/// The upgrade request for `target`: the caller's headers (each a valid
/// HTTP header), Basic credentials from the URL unless the caller set
/// `Authorization`, and the extension offers.
fn upgrade_request(builder: &ClientBuilder, target: &Target, key: &str) -> Result<Vec<u8>, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in &builder.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Handshake(format!("header name {name:?} is not an HTTP token")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            Error::Handshake(format!(
                "header {name}: {value:?} is not a valid header value \
                 (CR, LF and other control characters are not allowed)"
            ))
        })?;
        headers.append(name, value);
    }
    if let Some(credentials) = &target.credentials {
        if !headers.contains_key(http::header::AUTHORIZATION) {
            headers.insert(http::header::AUTHORIZATION, credentials.clone());
        }
    }
    if let Some(offer) = builder.extensions.offer() {
        let offer = HeaderValue::from_str(&offer)
            .map_err(|_| Error::Handshake(format!("invalid extension offer {offer:?}")))?;
        headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
    }
    handshake::client_request(
        &target.host_header,
        &target.path_and_query,
        key,
        &builder.protocols,
        &headers,
    )
}

/// The opening handshake over `stream`, then the session on it. `early`
/// holds bytes of the server's already read from `stream` (by a proxy's
/// tunnel), for the answer to be read from.
async fn open<S>(
    mut stream: S,
    early: BytesMut,
    builder: ClientBuilder,
    target: &Target,
    key: &str,
    request: &[u8],
) -> Result<Session, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    stream.write_all(request).await?;

    let (status, headers, mut rest) = read_response_head(&mut stream, early).await?;
    if status != 101 {
        let body = read_refusal_body(&mut stream, &headers, rest).await;
        let retry_after = handshake::retry_after(&headers);
        return Err(Error::HandshakeRefused {
            status,
            body,
            retry_after,
        });
    }
    let protocol = handshake::check_response(status, &headers, key, &builder.protocols)?;
    // Not the URL, which may hold a password.
    debug!(host = %target.host_header, path = %target.path_and_query, ?protocol, "connected");

    let mut config = Config::new(Role::Client, &builder.options);
    rand::rng().fill_bytes(&mut config.mask_seed);
    let now = super::driver::now();
    let (answers, extensions) = match confirm_extensions(&builder.extensions, &headers) {
        Ok(negotiated) => negotiated,
        Err(why) => {
            // RFC 6455 §9.1: fail the connection, with 1010 (RFC 6455 §7.4.1).
            let mut engine = Protocol::new(Role::Client, config, now);
            let reason = CloseReason::new(CloseCode::NoExtension, "unacceptable extension answer");
            if engine.close(reason, now).is_ok() {
                let _ = stream.write_all(&engine.output_bytes()).await;
            }
            return Err(Error::Handshake(format!("{why} (closed with 1010)")));
        }
    };
    let mut engine = Protocol::new(Role::Client, config, now).with_extensions(extensions);
    engine.receive_data(&rest);
    rest.clear();
    let link = Arc::new(Link::new(&builder.options));
    tokio::spawn(Driver::new(stream, engine, link.clone()));
    Ok(Session::new(
        link,
        Handshake {
            protocol: protocol.map(Into::into),
            extensions: answers.into(),
            request: None,
            state: Default::default(),
        },
    ))
}

/// Checks the server's `Sec-WebSocket-Extensions` answer against our offers.
fn confirm_extensions(extensions: &Extensions, headers: &HeaderMap) -> Result<Negotiated, String> {
    let answered: Vec<&str> = headers
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|v| {
            v.to_str()
                .map_err(|_| "a non-ASCII extension answer".to_string())
        })
        .collect::<Result<_, _>>()?;
    let answers = ExtensionHeader::parse_list(&answered.join(",")).map_err(|e| e.to_string())?;
    extensions.confirm(answers)
}

/// Where a `ws://` or `wss://` URL points.
#[derive(Debug)]
struct Target {
    tls: bool,
    host: String,
    /// `host[:port]` as in the URL, without the user info.
    host_header: String,
    port: u16,
    path_and_query: String,
    /// `Basic …` from the URL's `user:password@`, percent-decoded.
    credentials: Option<HeaderValue>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: authority::redact(url),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(invalid("the scheme must be ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let (user_info, host_and_port) = match authority.as_str().rsplit_once('@') {
            Some((user_info, host_and_port)) => (Some(user_info), host_and_port),
            None => (None, authority.as_str()),
        };
        let credentials = user_info
            .filter(|info| !info.is_empty())
            .map(|info| Credentials::from_user_info(info)?.basic())
            .transpose()
            .map_err(|why| invalid(&why))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port =
            authority::port(authority.as_str(), if tls { 443 } else { 80 }).map_err(invalid)?;
        Ok(Self {
            tls,
            host: host.to_owned(),
            host_header: host_and_port.to_owned(),
            port,
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            credentials,
        })
    }
}

/// Reads the response head, after the bytes of it in `buf`; returns the
/// status, headers and any bytes after it.
async fn read_response_head(
    stream: &mut (impl AsyncRead + Unpin),
    mut buf: BytesMut,
) -> Result<(u16, HeaderMap, BytesMut), Error> {
    loop {
        if let Some(head) = handshake::parse_response_head(&buf)? {
            buf.advance(head.len);
            return Ok((head.status, head.headers, buf));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            // The transport ended, as a reset would: nothing the server
            // said breaks RFC 6455, and trying again may well succeed.
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the handshake",
            )));
        }
    }
}

/// Reads up to 1 KiB of a refusal's body, briefly, for the error message.
async fn read_refusal_body(
    stream: &mut (impl AsyncRead + Unpin),
    headers: &HeaderMap,
    mut body: BytesMut,
) -> String {
    let expected = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REFUSAL_BODY);
    let read_more = async {
        while body.len() < expected {
            match stream.read_buf(&mut body).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read_more).await;
    body.truncate(MAX_REFUSAL_BODY);
    String::from_utf8_lossy(&body).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = Target::parse("ws://127.0.0.1:9001/runCase?case=1&agent=tandem").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9001));
        assert_eq!(t.path_and_query, "/runCase?case=1&agent=tandem");
        let t = Target::parse("ws://example.com").unwrap();
        assert_eq!((t.tls, t.port, t.path_and_query.as_str()), (false, 80, "/"));
        let t = Target::parse("wss://example.com/chat").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path_and_query.as_str()),
            (true, 443, "/chat")
        );
        let t = Target::parse("ws://[::1]:8080/x").unwrap();
        assert_eq!(
            (t.host.as_str(), t.host_header.as_str()),
            ("::1", "[::1]:8080")
        );
    }

    #[test]
    fn user_info_becomes_basic_credentials_and_leaves_host() {
        let t = Target::parse("ws://al%69ce:s%3Ac%20ret@example.com:8080/x").unwrap();
        assert_eq!(t.host_header, "example.com:8080");
        // base64("alice:s:c ret")
        assert_eq!(t.credentials.unwrap(), "Basic YWxpY2U6czpjIHJldA==");
        let t = Target::parse("wss://bob@[::1]/").unwrap();
        assert_eq!(t.host_header, "[::1]");
        assert_eq!(t.credentials.unwrap(), "Basic Ym9iOg=="); // "bob:"
        assert!(Target::parse("ws://example.com/")
            .unwrap()
            .credentials
            .is_none());
        for bad in [
            "ws://a%3Ab:c@h/",
            "ws://a:%zz@h/",
            "ws://a:%4@h/",
            "ws://a:%+f@h/",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            Target::parse("http://x/"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
    }
}
