//! The server: Ktor's `routing { webSocket("/echo") { … } }` on tokio and hyper.
//!
//! A [`Server`] holds WebSocket routes, session options and static-file
//! folders; [`Server::bind`] starts it. HTTP/1.1 and the upgrade go through
//! hyper; after the upgrade the connection belongs to tandem's own driver.
//! With [`Server::tls_config`] it serves `https://` and `wss://` instead.
//!
//! ```no_run
//! use futures::StreamExt;
//! use tandem::server::{Route, Server};
//! use tandem::{CloseCode, CloseReason, Session};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::new()
//!     .web_socket("/echo", |mut session: Session| async move {
//!         while let Some(frame) = session.incoming().next().await {
//!             if session.send(frame).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//!     .web_socket(Route::new("/chat").protocol("chat"), |session: Session| async move {
//!         let _ = session.close(CloseReason::new(CloseCode::TryAgainLater, "closed for today")).await;
//!     })
//!     .static_files("/", "www")
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! println!("listening on {}", server.local_addr());
//! server.wait().await
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::static_files::StaticFiles;
use crate::extensions::{ExtensionFactory, Extensions};
use crate::options::WebSocketOptions;
use crate::session::Session;
use accept::accept_loop;
use connections::Connections;
use routing::{boxed_handler, WsRoute};

mod accept;
mod admission;
mod connections;
mod idle;
mod options;
mod origin;
mod registry;
mod respond;
mod routing;
mod service;
mod session_task;
mod upgrade;

pub use admission::{Admission, UpgradeRequest};
pub use options::ServerOptions;
pub use origin::OriginPolicy;
pub use registry::{SessionRegistry, ShutdownReport};
pub use respond::ResponseBody;
pub use routing::{HandlerOutput, Route};
pub use service::{ResponseFuture, ServerService};
pub use upgrade::WebSocketUpgrade;

/// The `Retry-After` of a 503 for a server that is full or shutting down,
/// in seconds.
const RETRY_AFTER_SECS: u32 = 5;
/// A WebSocket server under construction: routes, options, static files.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use tandem::server::Server;
/// let server = Server::new()
///     .web_socket("/hello", |session: tandem::Session| async move {
///         let _ = session.send("hello").await;
///     })
///     .bind("127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
pub struct Server {
    options: WebSocketOptions,
    server_options: ServerOptions,
    connections: Arc<Connections>,
    routes: Vec<WsRoute>,
    static_files: StaticFiles,
    extensions: Extensions,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.options)
            .field("server_options", &self.server_options)
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| r.route.path())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with no routes and default options.
    pub fn new() -> Self {
        Self {
            options: WebSocketOptions::default(),
            server_options: ServerOptions::default(),
            connections: Arc::new(Connections::new()),
            routes: Vec::new(),
            static_files: StaticFiles::default(),
            extensions: Extensions::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Serves TLS (`https://` and `wss://`) with `config`'s certificate,
    /// instead of plain TCP (Ktor's `sslConnector`). The TLS handshake is
    /// bounded by the handshake timeout, like the HTTP request after it.
    /// With the `tls` feature (on by default).
    ///
    /// ```no_run
    /// # async fn run(chain: Vec<tandem::rustls::pki_types::CertificateDer<'static>>,
    /// #              key: tandem::rustls::pki_types::PrivateKeyDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use tandem::rustls::{self, ServerConfig};
    /// use tandem::server::Server;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_no_client_auth()
    ///     .with_single_cert(chain, key)?;
    /// let server = Server::new()
    ///     .tls_config(Arc::new(config))
    ///     .web_socket("/echo", tandem::demo::echo)
    ///     .bind("0.0.0.0:8443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<crate::rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Session options for every route (Ktor's `install(WebSockets) { … }`).
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Limits and policies of the HTTP side: request head size, handshake
    /// timeout, connection cap, allowed origins (see [`ServerOptions`]).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use tandem::server::{Server, ServerOptions};
    /// let server = Server::new()
    ///     .server_options(ServerOptions { max_connections: Some(100), ..Default::default() })
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn server_options(mut self, options: ServerOptions) -> Self {
        self.server_options = options;
        self
    }

    /// The largest request head accepted, in bytes (default 16 KiB); a
    /// bigger one gets 431.
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_request_head(8 * 1024);
    /// ```
    pub fn max_request_head(mut self, bytes: usize) -> Self {
        self.server_options.max_request_head = bytes;
        self
    }

    /// How long a client may take to send its request head and complete the
    /// upgrade (default 10 s); slower clients are dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().handshake_timeout(Duration::from_secs(3));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.server_options.handshake_timeout = timeout;
        self
    }

    /// The longest a plain HTTP connection may wait on its client with no
    /// byte moving (default 30 s): a client that stops reading a response,
    /// or keeps a connection open and quiet, is dropped. WebSocket sessions
    /// are not subject to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().http_idle_timeout(Duration::from_secs(60));
    /// ```
    pub fn http_idle_timeout(mut self, timeout: Duration) -> Self {
        self.server_options.http_idle_timeout = timeout;
        self
    }

    /// The most connections open at once, HTTP and WebSocket alike
    /// (default 10 000; `None`: no cap). A connection over it is refused as
    /// it is accepted: a 503 with `Retry-After` on plain TCP, closed over
    /// TLS; open connections are untouched.
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_connections(Some(500));
    /// ```
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.server_options.max_connections = max;
        self
    }

    /// The most connections open at once from one client IP address
    /// (default `None`: no cap per address), refused as over
    /// [`Server::max_connections`].
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_connections_per_ip(Some(50));
    /// ```
    pub fn max_connections_per_ip(mut self, max: Option<usize>) -> Self {
        self.server_options.max_connections_per_ip = max;
        self
    }

    /// Accepts upgrades from browser pages of `origins` as well as from the
    /// server's own pages (others get 403; requests without `Origin` are
    /// accepted): [`OriginPolicy::SameHostOr`]. Replaces the policy set
    /// before.
    ///
    /// ```
    /// let server = tandem::server::Server::new()
    ///     .allowed_origins(["https://app.example", "http://localhost:3000"]);
    /// ```
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.server_options.origins =
            OriginPolicy::SameHostOr(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts upgrades from pages of any origin, `null` included
    /// ([`OriginPolicy::Any`]): only for sessions that do not rely on what a
    /// browser sends by itself (cookies, HTTP authentication), or pages
    /// served from elsewhere. Replaces the policy set before.
    ///
    /// ```
    /// let server = tandem::server::Server::new().allow_any_origin();
    /// ```
    pub fn allow_any_origin(mut self) -> Self {
        self.server_options.origins = OriginPolicy::Any;
        self
    }

    /// Serves WebSocket sessions at `route` with `handler` (Ktor's
    /// `webSocket(path) { … }`).
    ///
    /// The handler gets whole messages; pings are answered and the close
    /// handshake is handled for it. When it returns the session closes with
    /// 1000 (or 1011 for an `Err`); when it panics, with 1011, and the server
    /// keeps serving.
    pub fn web_socket<H, F>(self, route: impl Into<Route>, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.add(route.into(), false, handler)
    }

    /// Serves raw sessions at `route` (Ktor's `webSocketRaw`): the handler
    /// sees every frame as it arrived (ping, pong, close and fragments, with
    /// their `fin` and RSV bits) and nothing is answered for it.
    pub fn web_socket_raw<H, F>(self, route: impl Into<Route>, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.add(route.into(), true, handler)
    }

    fn add<H, F>(mut self, route: Route, raw: bool, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.routes.push(WsRoute {
            route,
            raw,
            handler: boxed_handler(handler),
        });
        self
    }

    /// Negotiates an extension with clients that offer it (Ktor's
    /// `extensions { install(…) }`), e.g. a custom [`ExtensionFactory`].
    /// Extensions are agreed in the order the client lists its offers.
    ///
    /// # Panics
    ///
    /// When the extension claims an RSV bit that one added before claims, or
    /// is added twice.
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
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new()
    ///     .extension(MyExtension)
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn extension(mut self, factory: impl ExtensionFactory) -> Self {
        self.extensions.add(Arc::new(factory));
        self
    }

    /// Serves the files under `dir` at URL prefix `prefix` (GET and HEAD;
    /// a folder serves its `index.html`), streamed from disk, with byte
    /// ranges, `304 Not Modified` for a cached copy that is still current,
    /// and `FILE.br` or `FILE.gz` sent in place of `FILE` to clients that
    /// accept it. Paths that leave `dir`, also through a symbolic link, and
    /// hidden paths (a segment that starts with `.`) get 404. Every file
    /// response has `X-Content-Type-Options: nosniff` and
    /// `Cache-Control: no-cache` (revalidated before each use).
    ///
    /// ```
    /// let server = tandem::server::Server::new()
    ///     .static_files("/pkg", "pkg")
    ///     .static_files("/", "www");
    /// ```
    pub fn static_files(mut self, prefix: &str, dir: impl Into<PathBuf>) -> Self {
        self.static_files.add(prefix, dir.into());
        self
    }

    /// This server's WebSocket routes and static files as a tower
    /// [`Service`](tower_service::Service), to serve from a router or server
    /// of the application's own instead of [`Server::bind`]; see
    /// [`ServerService`].
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use tandem::server::Server;
    ///
    /// let tandem = Server::new().web_socket("/echo", tandem::demo::echo).into_service();
    /// let sessions = tandem.registry();
    /// // ws://HOST/ws/echo: axum passes /echo to tandem.
    /// let app = axum::Router::new().nest_service("/ws", tandem);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, app).await
    /// # }
    /// ```
    pub fn into_service(self) -> ServerService {
        ServerService::new(self)
    }

    /// Binds `addr` and starts serving in the background.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:8080").await?;
    /// server.wait().await
    /// # }
    /// ```
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<RunningServer> {
        self.serve(TcpListener::bind(addr).await?)
    }

    /// Starts serving in the background on a listener bound elsewhere: one
    /// a supervisor passed in (systemd's socket activation, through
    /// `std::net::TcpListener` and [`TcpListener::from_std`]), one with
    /// socket options of the application's own, or one whose port the
    /// application had to know before the server was built. Connections
    /// already waiting in its backlog are served. Call it from within a
    /// tokio runtime: like `tokio::spawn`, it panics outside one.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// println!("listening on {}", listener.local_addr()?);
    /// let server = tandem::server::Server::new()
    ///     .web_socket("/echo", tandem::demo::echo)
    ///     .serve(listener)?;
    /// server.wait().await
    /// # }
    /// ```
    pub fn serve(self, listener: TcpListener) -> std::io::Result<RunningServer> {
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let app = Arc::new(self);
        info!(%local_addr, "tandem server listening");
        let connections = app.connections.clone();
        let task = tokio::spawn(accept_loop(listener, app, stopped));
        Ok(RunningServer {
            local_addr,
            stop,
            task,
            connections,
        })
    }
}

impl Server {
    /// Serves one connection that did not come from a listener (an
    /// in-memory stream of [`tandem::testing`](crate::testing)), counted
    /// against the caps as an accepted socket is.
    pub(crate) fn serve_io<S>(
        self: &Arc<Self>,
        stream: S,
        peer: SocketAddr,
    ) -> Result<impl Future<Output = ()> + Send + 'static, &'static str>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let slot = self
            .connections
            .try_admit(peer.ip(), &self.server_options)?;
        Ok(accept::serve_connection(stream, peer, self.clone(), slot))
    }
}

/// A server that is running; dropping this handle does not stop it (the
/// server then serves until the process ends).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
/// let port = server.local_addr().port();
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    connections: Arc<Connections>,
}

impl RunningServer {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections; sessions already open run on (see
    /// [`RunningServer::shutdown_gracefully`] to end them too).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// How many WebSocket sessions are open (or being upgraded) right now.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// assert_eq!(server.session_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn session_count(&self) -> usize {
        self.connections.session_count()
    }

    /// How many connections are open right now, of every kind: TLS
    /// handshakes, plain HTTP, upgrades and WebSocket sessions (what
    /// [`ServerOptions::max_connections`] caps).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// assert_eq!(server.connection_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Stops the server gracefully: stops accepting connections, sends every
    /// session a Close with 1001 Going Away, waits up to `deadline` for their
    /// close handshakes (and for HTTP requests in flight), then drops the
    /// connections that are left. Upgrades that arrive meanwhile get 503.
    ///
    /// Handlers see the session end with the peer's answer to the 1001
    /// (1001 itself from a well-behaved peer), and sessions dropped at the
    /// deadline end with 1001 too. Handlers are not cancelled: each runs on
    /// until it returns.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// let report = server.shutdown_gracefully(Duration::from_secs(5)).await;
    /// println!("{} closed, {} dropped", report.closed, report.dropped);
    /// # Ok(()) }
    /// ```
    pub async fn shutdown_gracefully(self, deadline: Duration) -> ShutdownReport {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        ShutdownReport::new(self.connections.shutdown_gracefully(deadline).await)
    }

    /// Runs until the server stops (it stops only on [`RunningServer::shutdown`]).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)
    }
}
