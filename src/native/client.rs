//! The native client: Ktor's `client.webSocket(url) { … }` on tokio.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::driver::Driver;
use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::extensions::{ExtensionFactory, ExtensionHeader, Extensions, Negotiated};
use crate::link::Link;
use crate::options::WebSocketOptions;
use crate::protocol::{handshake, Config, Protocol, Role};
use crate::session::{Handshake, Session};

/// The most bytes of a refusal's body kept for [`Error::HandshakeRefused`].
const MAX_REFUSAL_BODY: usize = 1024;

/// Connects to `url` (`ws://host[:port]/path`) with default options.
///
/// Natively this needs a tokio runtime: the connection is driven by a task
/// spawned on it. In the browser it opens a `WebSocket`.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// let session = tandem::connect("ws://127.0.0.1:8080/echo").await?;
/// session.send("hello").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Session, Error> {
    ClientBuilder::new(url).connect().await
}

/// Connects with options, subprotocols and extra headers.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// use tandem::{ClientBuilder, WebSocketOptions};
///
/// let session = ClientBuilder::new("ws://127.0.0.1:8080/chat")
///     .protocol("chat")
///     .header("Authorization", "Bearer secret")
///     .options(WebSocketOptions { ping_period: Some(Duration::from_secs(20)), ..Default::default() })
///     .connect()
///     .await?;
/// assert_eq!(session.protocol(), Some("chat"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    options: WebSocketOptions,
    protocols: Vec<String>,
    headers: HeaderMap,
    invalid_header: Option<String>,
    extensions: Extensions,
}

impl ClientBuilder {
    /// A builder for a connection to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: WebSocketOptions::default(),
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            invalid_header: None,
            extensions: Extensions::default(),
        }
    }

    /// Session options (limits, keepalive, queues).
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Offers a subprotocol; call again to offer more, in preference order.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a header to the upgrade request (native only: browsers do not let
    /// scripts set WebSocket headers, and `connect` fails there if any is set).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.invalid_header = Some(name.to_owned()),
        }
        self
    }

    /// Offers an extension to the server, e.g.
    /// a custom [`ExtensionFactory`]; if the
    /// server's answer cannot be accepted the connection fails with 1010.
    /// Natively only: in the browser, the browser negotiates its own.
    ///
    /// # Panics
    ///
    /// When the extension claims an RSV bit that one added before claims.
    ///
    /// ```no_run
    /// # #[derive(Debug)] struct MyExtension;
    /// # impl tandem::extensions::ExtensionFactory for MyExtension {
    /// #     fn name(&self) -> &str { "x-my" }
    /// #     fn rsv(&self) -> tandem::Rsv { tandem::Rsv::NONE }
    /// #     fn offers(&self) -> Vec<tandem::extensions::ExtensionHeader> { vec![] }
    /// #     fn accept(&self, _: &tandem::extensions::ExtensionHeader) -> Option<(tandem::extensions::ExtensionHeader, Box<dyn tandem::extensions::Extension>)> { None }
    /// #     fn confirm(&self, _: &tandem::extensions::ExtensionHeader) -> Result<Box<dyn tandem::extensions::Extension>, String> { Err("no".into()) }
    /// # }
    /// # async fn run() -> Result<(), tandem::Error> {
    /// let session = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo")
    ///     .extension(MyExtension)
    ///     .connect()
    ///     .await?;
    /// println!("{:?}", session.extensions());
    /// # Ok(()) }
    /// ```
    pub fn extension(mut self, factory: impl ExtensionFactory) -> Self {
        self.extensions.add(Arc::new(factory));
        self
    }

    /// Opens the connection and completes the opening handshake.
    ///
    /// Fails with [`Error::InvalidUrl`], [`Error::Io`] when the server cannot
    /// be reached, [`Error::HandshakeRefused`] with the status when the
    /// server says no, or [`Error::Handshake`] when its answer breaks RFC 6455.
    /// The whole handshake is bounded by the options' `timeout`.
    pub async fn connect(self) -> Result<Session, Error> {
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, self.connect_inner()).await {
            Ok(result) => result,
            Err(_) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("opening handshake took longer than {timeout:?}"),
            ))),
        }
    }

    async fn connect_inner(self) -> Result<Session, Error> {
        if let Some(name) = &self.invalid_header {
            return Err(Error::Handshake(format!("invalid header {name:?}")));
        }
        let target = Target::parse(&self.url)?;
        let mut stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        stream.set_nodelay(true)?;

        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let key = handshake::generate_key(random);
        let mut request_headers = self.headers.clone();
        if let Some(offer) = self.extensions.offer() {
            let offer = HeaderValue::from_str(&offer)
                .map_err(|_| Error::Handshake(format!("invalid extension offer {offer:?}")))?;
            request_headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
        }
        let request = handshake::client_request(
            &target.host_header,
            &target.path_and_query,
            &key,
            &self.protocols,
            &request_headers,
        );
        stream.write_all(&request).await?;

        let (status, headers, mut rest) = read_response_head(&mut stream).await?;
        if status != 101 {
            let body = read_refusal_body(&mut stream, &headers, rest).await;
            return Err(Error::HandshakeRefused { status, body });
        }
        let protocol = handshake::check_response(status, &headers, &key, &self.protocols)?;
        debug!(url = %self.url, ?protocol, "connected");

        let mut config = Config::new(Role::Client, &self.options);
        rand::rng().fill_bytes(&mut config.mask_seed);
        let now = std::time::Instant::now();
        let (answers, extensions) = match self.confirm_extensions(&headers) {
            Ok(negotiated) => negotiated,
            Err(why) => {
                // RFC 6455 §9.1: fail the connection, with 1010 (RFC 6455 §7.4.1).
                let mut engine = Protocol::new(Role::Client, config, now);
                let reason =
                    CloseReason::new(CloseCode::NoExtension, "unacceptable extension answer");
                if engine.close(reason, now).is_ok() {
                    let _ = stream.write_all(&engine.output_bytes()).await;
                }
                return Err(Error::Handshake(format!("{why} (closed with 1010)")));
            }
        };
        let mut engine = Protocol::new(Role::Client, config, now).with_extensions(extensions);
        engine.receive_data(&rest);
        rest.clear();
        let link = Arc::new(Link::new(
            self.options.incoming_queue,
            self.options.outgoing_queue,
        ));
        tokio::spawn(Driver::new(stream, engine, link.clone()));
        Ok(Session::new(
            link,
            Handshake {
                protocol,
                extensions: answers,
                request: None,
            },
        ))
    }
}

impl ClientBuilder {
    /// Checks the server's `Sec-WebSocket-Extensions` answer against our offers.
    fn confirm_extensions(&self, headers: &HeaderMap) -> Result<Negotiated, String> {
        let answered: Vec<&str> = headers
            .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(|v| {
                v.to_str()
                    .map_err(|_| "a non-ASCII extension answer".to_string())
            })
            .collect::<Result<_, _>>()?;
        let answers =
            ExtensionHeader::parse_list(&answered.join(",")).map_err(|e| e.to_string())?;
        self.extensions.confirm(answers)
    }
}

/// Where a `ws://` URL points.
#[derive(Debug)]
struct Target {
    host: String,
    host_header: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => return Err(Error::Unsupported("wss:// (TLS) in the native client")),
            _ => return Err(invalid("the scheme must be ws://")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        Ok(Self {
            host: host.to_owned(),
            host_header: authority.as_str().to_owned(),
            port,
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }
}

/// Reads the response head; returns the status, headers and any bytes after it.
async fn read_response_head(stream: &mut TcpStream) -> Result<(u16, HeaderMap, BytesMut), Error> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(Error::Handshake(
                "the server closed the connection during the handshake".into(),
            ));
        }
        if let Some(head) = handshake::parse_response_head(&buf)? {
            buf.advance(head.len);
            return Ok((head.status, head.headers, buf));
        }
    }
}

/// Reads up to 1 KiB of a refusal's body, briefly, for the error message.
async fn read_refusal_body(
    stream: &mut TcpStream,
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
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/"));
        let t = Target::parse("ws://[::1]:8080/x").unwrap();
        assert_eq!(
            (t.host.as_str(), t.host_header.as_str()),
            ("::1", "[::1]:8080")
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(matches!(
            Target::parse("http://x/"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("wss://x/"),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            Target::parse("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
    }
}
