//! The browser client: Ktor's `client.webSocket(url) { … }` on the
//! browser's `WebSocket`, with the same signatures as the native client.

use std::io;
use std::sync::Arc;

use futures::future::{select, Either};
use tracing::debug;
use web_sys::{BinaryType, WebSocket};

use super::driver::Socket;
use super::timer::sleep;
use crate::error::Error;
use crate::extensions::{ExtensionFactory, ExtensionHeader};
use crate::link::Link;
use crate::options::WebSocketOptions;
use crate::session::{Handshake, Session};

/// Connects to `url` (`ws://` or `wss://`; in a browser also a URL relative
/// to the page, as `new WebSocket()` takes it) with default options.
///
/// Natively this needs a tokio runtime; in the browser it opens a
/// `WebSocket` and needs nothing else.
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

/// Connects with options, subprotocols and (natively) extra headers.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use tandem::{ClientBuilder, WebSocketOptions};
///
/// let session = ClientBuilder::new("ws://127.0.0.1:8080/chat")
///     .protocol("chat")
///     .options(WebSocketOptions { max_message_size: Some(1 << 20), ..Default::default() })
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
    headers: Vec<(String, String)>,
    extensions: Vec<String>,
}

impl ClientBuilder {
    /// A builder for a connection to `url`.
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo");
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: WebSocketOptions::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// Session options. In the browser only the size limits, the outgoing
    /// queue and `timeout` (which bounds the opening handshake) apply; the
    /// incoming queue is unbounded there, as a browser cannot be told to
    /// stop reading.
    ///
    /// ```
    /// use tandem::{ClientBuilder, WebSocketOptions};
    /// let builder = ClientBuilder::new("ws://127.0.0.1:8080/echo")
    ///     .options(WebSocketOptions { max_message_size: Some(1 << 16), ..Default::default() });
    /// ```
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Offers a subprotocol; call again to offer more, in preference order.
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/chat").protocol("chat");
    /// ```
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a header to the upgrade request (native only: browsers do not let
    /// scripts set WebSocket headers, and in the browser
    /// [`connect`](ClientBuilder::connect) fails with
    /// [`Error::Unsupported`] if any is set).
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo")
    ///     .header("Authorization", "Bearer secret");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Offers an extension (native only: the browser negotiates its own,
    /// permessage-deflate included, and in the browser
    /// [`connect`](ClientBuilder::connect) fails with
    /// [`Error::Unsupported`] if any is set).
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
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo").extension(MyExtension);
    /// ```
    pub fn extension(mut self, factory: impl ExtensionFactory) -> Self {
        self.extensions.push(factory.name().to_owned());
        self
    }

    /// Opens the connection and waits for the browser's `open` event.
    ///
    /// Fails with [`Error::Unsupported`] if a header was set, with
    /// [`Error::Handshake`] for a subprotocol that is not a valid token or is
    /// offered twice, with [`Error::InvalidUrl`] when the browser refuses the
    /// URL (not `ws:`/`wss:`/`http:`/`https:`, a fragment, a blocked port or
    /// mixed content), and with [`Error::Io`] of kind `TimedOut` when the
    /// opening handshake takes longer than the options' `timeout`.
    ///
    /// A connection that fails before opening fails with [`Error::Io`] of
    /// kind `ConnectionRefused`: browsers report no reason and no HTTP
    /// status, so a server that is down, an upgrade refused with an HTTP
    /// error and a server that agrees on none of the offered subprotocols
    /// all look the same.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tandem::Error> {
    /// let session = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo").connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Session, Error> {
        if !self.headers.is_empty() {
            return Err(Error::Unsupported(
                "setting WebSocket request headers from a browser",
            ));
        }
        if !self.extensions.is_empty() {
            return Err(Error::Unsupported(
                "configuring WebSocket extensions from a browser (it negotiates its own)",
            ));
        }
        check_protocols(&self.protocols)?;
        let ws = open(&self.url, &self.protocols)?;
        ws.set_binary_type(BinaryType::Arraybuffer);

        let link = Arc::new(Link::new(
            self.options.incoming_queue,
            self.options.outgoing_queue,
        ));
        // The browser hands over whole messages: one limit covers both.
        let max_message = match (self.options.max_frame_size, self.options.max_message_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let socket = Socket::attach(ws, link.clone(), max_message);

        let timeout = self.options.timeout;
        let opened = {
            let opened = std::pin::pin!(socket.opened());
            let timer = std::pin::pin!(sleep(timeout));
            match select(opened, timer).await {
                Either::Left((opened, _)) => Some(opened),
                Either::Right(((), _)) => None,
            }
        };
        match opened {
            Some(true) => {}
            // Dropping `socket` detaches the handlers (and closes it if still connecting).
            Some(false) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!(
                        "the browser could not open {}: the server is unreachable or \
                         refused the upgrade (browsers report no reason)",
                        self.url
                    ),
                )))
            }
            None => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("opening handshake took longer than {timeout:?}"),
                )))
            }
        }

        let ws = socket.ws();
        let protocol = Some(ws.protocol()).filter(|p| !p.is_empty());
        let extensions = parse_extensions(&ws.extensions());
        debug!(url = %self.url, ?protocol, "connected");
        socket.spawn_driver();
        Ok(Session::new(
            link,
            Handshake {
                protocol,
                extensions,
                request: None,
            },
        ))
    }
}

/// `new WebSocket(url, protocols)`; the browser's exception becomes
/// [`Error::InvalidUrl`].
fn open(url: &str, protocols: &[String]) -> Result<WebSocket, Error> {
    let ws = if protocols.is_empty() {
        WebSocket::new(url)
    } else {
        let list: js_sys::Array = protocols
            .iter()
            .map(|p| wasm_bindgen::JsValue::from_str(p))
            .collect();
        WebSocket::new_with_str_sequence(url, &list)
    };
    ws.map_err(|exception| Error::InvalidUrl {
        url: url.to_owned(),
        reason: js_sys::Error::from(exception)
            .message()
            .as_string()
            .unwrap_or_else(|| "refused by the browser".into()),
    })
}

/// Subprotocols must be distinct RFC 7230 tokens (the browser throws otherwise).
fn check_protocols(protocols: &[String]) -> Result<(), Error> {
    for (i, protocol) in protocols.iter().enumerate() {
        let is_token = !protocol.is_empty()
            && protocol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !is_token {
            return Err(Error::Handshake(format!(
                "subprotocol {protocol:?} is not a valid token"
            )));
        }
        if protocols[..i].contains(protocol) {
            return Err(Error::Handshake(format!(
                "subprotocol {protocol:?} is offered twice"
            )));
        }
    }
    Ok(())
}

/// The extensions of a `Sec-WebSocket-Extensions` value, as
/// `WebSocket.extensions` gives it: `name; key=value; flag, other`.
pub(crate) fn parse_extensions(header: &str) -> Vec<ExtensionHeader> {
    header
        .split(',')
        .filter_map(|extension| {
            let mut parts = extension.split(';').map(str::trim);
            let name = parts.next().filter(|name| !name.is_empty())?;
            let params = parts
                .filter(|param| !param.is_empty())
                .map(|param| match param.split_once('=') {
                    Some((key, value)) => (
                        key.trim().to_owned(),
                        Some(value.trim().trim_matches('"').to_owned()),
                    ),
                    None => (param.to_owned(), None),
                })
                .collect();
            Some(ExtensionHeader::new_with(name, params))
        })
        .collect()
}
