//! A server whose sessions a test puts in rooms itself: the handler hands
//! each session's outgoing side to the test and reads until it ends.

use tokio::sync::mpsc;

use super::within;
use tandem::server::Server;
use tandem::testing::TestServer;
use tandem::{Outgoing, Session};

/// A [`TestServer`] at `/member` that hands each session's outgoing handle
/// to the test.
pub struct Members {
    server: TestServer,
    handed: mpsc::UnboundedReceiver<Outgoing>,
}

impl Members {
    pub fn new() -> Self {
        let (tx, handed) = mpsc::unbounded_channel();
        let server = TestServer::new(Server::new().web_socket(
            "/member",
            move |mut session: Session| {
                let _ = tx.send(session.outgoing());
                async move { while session.receive().await.is_some() {} }
            },
        ));
        Self { server, handed }
    }

    /// A client session, and the server side's outgoing handle of it.
    pub async fn connect(&mut self) -> (Session, Outgoing) {
        let client = self.server.connect("/member").await.unwrap();
        let outgoing = within("the handler", self.handed.recv()).await.unwrap();
        (client, outgoing)
    }
}
