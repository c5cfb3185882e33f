//! Tests of WebSocket handlers without a socket: Ktor's `testApplication`.
//!
//! A [`TestServer`] runs a [`Server`]'s routes (hooks, options, extensions
//! and all) over in-memory streams: [`TestServer::connect`] gives a client
//! [`Session`] talking to the route's handler, with no port, no network and
//! no real time. Under `tokio::time::pause()` nothing waits for the clock,
//! so ping, timeout and slow-member tests run at once.
//!
//! A complete test of the echo demo:
//!
//! ```
//! use tandem::server::Server;
//! use tandem::testing::TestServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tandem::Error> {
//! let server = TestServer::new(Server::new().web_socket("/echo", tandem::demo::echo));
//! let mut session = server.connect("/echo").await?;
//! assert_eq!(session.receive().await.unwrap().read_text(), Some("Please enter your name"));
//! session.send("Ktor").await?;
//! assert_eq!(session.receive().await.unwrap().read_text(), Some("Hi, Ktor!"));
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use crate::client::ClientBuilder;
use crate::error::Error;
use crate::native::server::Server;
use crate::session::Session;

/// How many bytes each direction of an in-memory connection buffers.
const PIPE: usize = 64 * 1024;

/// A [`Server`]'s routes, served over in-memory connections; see
/// [the module](self).
#[derive(Debug, Clone)]
pub struct TestServer {
    server: Arc<Server>,
}

impl TestServer {
    /// Serves `server`'s routes to [`TestServer::connect`] (nothing is
    /// bound).
    ///
    /// ```
    /// let server = tandem::testing::TestServer::new(tandem::server::Server::new());
    /// ```
    pub fn new(server: Server) -> Self {
        Self {
            server: Arc::new(server),
        }
    }

    /// Opens a session on `path_and_query` (e.g. `/chat?room=1`), as
    /// [`tandem::connect`](crate::connect) would over the network.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tandem::server::Server;
    /// let server = tandem::testing::TestServer::new(Server::new());
    /// // No route: the handshake is refused with 404, as over TCP.
    /// assert!(matches!(
    ///     server.connect("/nowhere").await,
    ///     Err(tandem::Error::HandshakeRefused { status: 404, .. })
    /// ));
    /// # }
    /// ```
    pub async fn connect(&self, path_and_query: &str) -> Result<Session, Error> {
        self.connect_with(ClientBuilder::new(self.url(path_and_query)))
            .await
    }

    /// Opens a session as `client` describes it (headers, subprotocols,
    /// options, extensions); only its URL's path and query are used.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tandem::Error> {
    /// use tandem::server::{Route, Server};
    /// use tandem::testing::TestServer;
    ///
    /// let server = TestServer::new(
    ///     Server::new().web_socket(Route::new("/chat").protocol("chat"), tandem::demo::echo),
    /// );
    /// let session = server
    ///     .connect_with(tandem::ClientBuilder::new(server.url("/chat")).protocol("chat"))
    ///     .await?;
    /// assert_eq!(session.protocol(), Some("chat"));
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(&self, client: ClientBuilder) -> Result<Session, Error> {
        crate::client::check_client_options(&client.options)?;
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let serve = self
            .server
            .serve_io(theirs, peer)
            .map_err(|why| Error::HandshakeRefused {
                status: 503,
                body: why.to_owned(),
                retry_after: None,
            })?;
        tokio::spawn(serve);
        crate::backend::connect_over(ours, client).await
    }

    /// The URL a client of this server uses for `path_and_query`
    /// (`ws://localhost/…`), for a [`ClientBuilder`].
    ///
    /// ```
    /// let server = tandem::testing::TestServer::new(tandem::server::Server::new());
    /// assert_eq!(server.url("/chat"), "ws://localhost/chat");
    /// ```
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://localhost{path_and_query}")
    }
}
