//! The client: Ktor's `client.webSocket(url) { … }`, one builder for both
//! targets. Natively the connection is a TCP stream driven by a task on the
//! tokio runtime; in the browser it is the browser's `WebSocket`.

use std::sync::Arc;

use crate::error::Error;
use crate::extensions::{ExtensionFactory, Extensions};
use crate::options::WebSocketOptions;
use crate::proxy::{Proxy, ProxyChoice};
use crate::reconnect::{Reconnect, Reconnecting};
use crate::session::Session;

/// Connects to `url` (`ws://host[:port]/path`, or `wss://` for TLS) with
/// default options.
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

/// Connects with options, subprotocols, extra headers and extensions; the
/// same type and methods on every target.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// use tandem::{ClientBuilder, WebSocketOptions};
///
/// let session = ClientBuilder::new("ws://127.0.0.1:8080/chat")
///     .protocol("chat")
///     .options(WebSocketOptions { ping_period: Some(Duration::from_secs(20)), ..Default::default() })
///     .connect()
///     .await?;
/// assert_eq!(session.protocol(), Some("chat"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) url: String,
    pub(crate) options: WebSocketOptions,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) extensions: Extensions,
    pub(crate) proxy: ProxyChoice,
    #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
    pub(crate) tls: Option<Arc<crate::rustls::ClientConfig>>,
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
            extensions: Extensions::default(),
            proxy: ProxyChoice::FromEnv,
            #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
            tls: None,
        }
    }

    /// Session options (limits, keepalive, queues). In the browser only the
    /// size limits, the queue bounds and `timeout` (which bounds the opening
    /// handshake) apply; as a browser cannot be told to stop reading, a
    /// message that finds the incoming queue full ends the session with 1008
    /// there.
    ///
    /// A client always masks: `masking: Some(false)` makes
    /// [`connect`](ClientBuilder::connect) fail with
    /// [`Error::InvalidOptions`] on every target.
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
    /// Each must be an RFC 7230 token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``: no spaces, commas or line breaks) and offered
    /// once; otherwise [`connect`](ClientBuilder::connect) fails with
    /// [`Error::Handshake`] before anything is sent, on every target.
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/chat").protocol("chat");
    /// ```
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a header to the upgrade request. Natively only: browsers do not
    /// let scripts set WebSocket headers, and in the browser
    /// [`connect`](ClientBuilder::connect) fails with
    /// [`Error::Unsupported`] if any is set. Natively, a name or value that
    /// is not a valid HTTP header (a value with CR or LF in it, say) makes
    /// `connect` fail with [`Error::Handshake`] before anything is sent.
    /// An `Authorization` header set here replaces the one a URL's
    /// `user:password@` would give.
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo")
    ///     .header("Authorization", "Bearer secret");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Offers an extension to the server, e.g.
    /// [`PerMessageDeflate`](crate::extensions) natively; if the server's
    /// answer cannot be accepted the connection fails with 1010. Natively
    /// only: the browser negotiates its own (permessage-deflate included),
    /// and in the browser [`connect`](ClientBuilder::connect) fails with
    /// [`Error::Unsupported`] if any is set.
    ///
    /// # Panics
    ///
    /// When the extension claims an RSV bit that one added before claims,
    /// or is added twice: a configuration error.
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

    /// Connects through `proxy`, whatever the environment says: an HTTP
    /// proxy opens a tunnel with `CONNECT host:port`, and TLS (for
    /// `wss://`, checked against the server's name) and the WebSocket
    /// handshake run inside it. The options' `timeout` bounds the whole,
    /// proxy included. In the browser it is ignored: the browser goes
    /// through the proxy of its own settings.
    ///
    /// Without this or [`no_proxy`](ClientBuilder::no_proxy), the native
    /// client goes through the proxy that the environment names, as curl
    /// does: `https_proxy` for `wss://`, `http_proxy` for `ws://`, else
    /// `all_proxy` (each in lower case, or else upper case; upper-case
    /// `HTTP_PROXY` is not read in a CGI program, where a request can set
    /// it), unless `no_proxy` lists the server: names that match it or end
    /// in `.` + it (`example.com` and `.example.com` alike), IP addresses
    /// and CIDR ranges (`10.0.0.0/8`), each optionally with `:port`, or
    /// `*` for every server. `localhost` and `127.0.0.1` are not left out
    /// unless listed.
    ///
    /// Through a proxy, [`connect`](ClientBuilder::connect) also fails with
    /// [`Error::ProxyAuthenticationRequired`] when the proxy wants
    /// credentials (or other ones), with [`Error::ProxyRefused`] and its
    /// status when it will not open the tunnel, and with [`Error::Io`]
    /// naming the proxy when it cannot be reached. With the `socks`
    /// feature, `socks5://` and `socks5h://` proxies work the same way, in
    /// [`Proxy::new`] and in the environment.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tandem::Error> {
    /// use tandem::{ClientBuilder, Proxy};
    ///
    /// let session = ClientBuilder::new("wss://echo.example/ws")
    ///     .proxy(Proxy::new("http://proxy.internal:3128")?.basic_auth("alice", "s3cret"))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxyChoice::Given(proxy);
        self
    }

    /// Connects directly, whatever the proxy environment variables say (see
    /// [`proxy`](ClientBuilder::proxy)). In the browser it is ignored, as a
    /// proxy is.
    ///
    /// ```
    /// let builder = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo").no_proxy();
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// The TLS configuration for a `wss://` URL: other root certificates, a
    /// client certificate, ALPN. Without it the native client trusts the
    /// Mozilla root certificates (webpki-roots). Natively, with the `tls`
    /// feature (on by default); the browser brings its own TLS.
    ///
    /// ```no_run
    /// # async fn run(my_ca_der: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use tandem::rustls::{self, ClientConfig, RootCertStore};
    ///
    /// let mut roots = RootCertStore::empty();
    /// roots.add(my_ca_der.into())?;
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let session = tandem::ClientBuilder::new("wss://internal.example:8443/echo")
    ///     .tls_config(Arc::new(config))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
    pub fn tls_config(mut self, config: Arc<crate::rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Opens the connection and completes the opening handshake, bounded by
    /// the options' `timeout` ([`Error::Io`] of kind `TimedOut` past it).
    ///
    /// Before contacting the server, it fails with [`Error::InvalidOptions`]
    /// for `masking: Some(false)` and with [`Error::Handshake`] for a
    /// subprotocol or (natively) a header that cannot go in the request.
    /// Natively, a URL's `user:password@` is sent percent-decoded as
    /// `Authorization: Basic …`, never in `Host`.
    ///
    /// Natively it fails with [`Error::InvalidUrl`] (the server's URL, or
    /// a proxy's from the environment), the proxy errors of
    /// [`proxy`](ClientBuilder::proxy), [`Error::Io`] when the
    /// server cannot be reached, when it hangs up before answering (kind
    /// `UnexpectedEof`) or, for `wss://`, when the TLS handshake fails
    /// (kind `InvalidData` for a certificate that does not verify),
    /// [`Error::HandshakeRefused`] with the status (and `Retry-After`)
    /// when the server says no, or [`Error::Handshake`] when its answer
    /// breaks RFC 6455. In the browser, a connection that fails before
    /// opening fails with [`Error::Io`] of kind `ConnectionRefused`:
    /// browsers report no reason and no HTTP status, so a server that is
    /// down, an upgrade refused with an HTTP error and a server that agrees
    /// on none of the offered subprotocols all look the same.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tandem::Error> {
    /// let session = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo").connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Session, Error> {
        check_client_options(&self.options)?;
        crate::backend::connect(self).await
    }

    /// A stream of sessions that reconnects, with exponential backoff and
    /// jitter, each time a session ends in a way that is retried (a server
    /// restarting, the network dropping): Python's
    /// `async for websocket in connect(...)`. Each attempt connects as
    /// [`connect`](ClientBuilder::connect) would; to change the request
    /// between attempts, use [`Reconnecting::new`](crate::reconnect::Reconnecting::new).
    /// See [`reconnect`](crate::reconnect) for the policy's defaults and
    /// what is final.
    ///
    /// ```no_run
    /// # async fn run() {
    /// use std::time::Duration;
    /// use tandem::reconnect::Reconnect;
    ///
    /// let mut sessions = tandem::ClientBuilder::new("ws://127.0.0.1:8080/feed")
    ///     .reconnect(Reconnect::default().max_delay(Duration::from_secs(10)));
    /// while let Some(mut session) = sessions.next().await {
    ///     while let Some(frame) = session.receive().await {
    ///         println!("{:?}", frame.read_text());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn reconnect(self, policy: Reconnect) -> Reconnecting {
        Reconnecting::new(policy, move |_previous: Option<&Error>| {
            self.clone().connect()
        })
    }
}

/// Refuses options that would make the client break RFC 6455: on every
/// target alike, although the browser masks whatever it is told.
pub(crate) fn check_client_options(options: &WebSocketOptions) -> Result<(), Error> {
    if options.masking == Some(false) {
        return Err(Error::InvalidOptions(
            "masking: Some(false) on a client; RFC 6455 §5.1 makes a client mask every \
             frame (a server fails the connection otherwise), and only a server may choose \
             not to: leave it None"
                .into(),
        ));
    }
    Ok(())
}
