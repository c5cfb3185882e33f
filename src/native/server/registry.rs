//! A registry of sessions for graceful shutdown, for applications that run
//! tandem's sessions inside a server of their own (axum, hyper).

use std::sync::Arc;
use std::time::Duration;

use super::connections::Connections;

/// The sessions of an application that embeds tandem: each upgrade made
/// with [`WebSocketUpgrade::registry`](super::WebSocketUpgrade::registry)
/// takes its place here, and [`SessionRegistry::shutdown_gracefully`] ends
/// them all with 1001 Going Away, as tandem's own
/// [`RunningServer::shutdown_gracefully`](super::RunningServer::shutdown_gracefully)
/// does. Cloning it gives another handle to the same registry.
///
/// ```no_run
/// # async fn f() {
/// use std::time::Duration;
/// use tandem::server::SessionRegistry;
///
/// let registry = SessionRegistry::new();
/// // … every upgrade: `upgrade.registry(&registry).on_upgrade(handler)` …
/// // At shutdown, e.g. in axum's `with_graceful_shutdown` future:
/// let report = registry.shutdown_gracefully(Duration::from_secs(10)).await;
/// println!("{} sessions closed, {} dropped", report.closed, report.dropped);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SessionRegistry {
    connections: Arc<Connections>,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionRegistry {
    /// An empty registry.
    ///
    /// ```
    /// let registry = tandem::server::SessionRegistry::new();
    /// assert_eq!(registry.session_count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            connections: Arc::new(Connections::new()),
        }
    }

    /// How many sessions are open (or being upgraded) right now.
    ///
    /// ```
    /// let registry = tandem::server::SessionRegistry::new();
    /// assert_eq!(registry.session_count(), 0);
    /// ```
    pub fn session_count(&self) -> usize {
        self.connections.session_count()
    }

    /// Sends every session 1001 Going Away, waits up to `deadline` for
    /// their close handshakes, then drops the connections left (those
    /// sessions end with 1001 too). Upgrades from then on get 503.
    ///
    /// ```no_run
    /// # async fn f(registry: tandem::server::SessionRegistry) {
    /// let report = registry.shutdown_gracefully(std::time::Duration::from_secs(5)).await;
    /// assert_eq!(report.sessions, report.closed + report.dropped);
    /// # }
    /// ```
    pub async fn shutdown_gracefully(&self, deadline: Duration) -> ShutdownReport {
        ShutdownReport::new(self.connections.shutdown_gracefully(deadline).await)
    }

    /// The registry of a server's own connections (its tower service's).
    pub(super) fn of(connections: Arc<Connections>) -> Self {
        Self { connections }
    }

    pub(super) fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }
}

/// What a graceful shutdown did.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::time::Duration;
/// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
/// let report = server.shutdown_gracefully(Duration::from_secs(5)).await;
/// assert_eq!(report.sessions, report.closed + report.dropped);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions open when the shutdown began.
    pub sessions: usize,
    /// Sessions whose connection ended before the deadline.
    pub closed: usize,
    /// Sessions still open at the deadline, whose connections were dropped.
    pub dropped: usize,
}

impl ShutdownReport {
    /// From (sessions open, sessions dropped).
    pub(super) fn new((open, dropped): (usize, usize)) -> Self {
        Self {
            sessions: open,
            closed: open.saturating_sub(dropped),
            dropped,
        }
    }
}
