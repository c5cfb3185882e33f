//! tandem, as its README and `server` docs show: a route and an `async`
//! handler over a `Session`.

use tandem::extensions::PerMessageDeflate;
use tandem::hub::{Hub, SlowMemberPolicy};
use tandem::server::Server;
use tandem::Session;
use tokio::net::TcpListener;

/// Sends every message back, as in the `tandem::server` example; with
/// `deflate`, permessage-deflate at its documented defaults.
pub async fn echo(listener: TcpListener, deflate: bool) -> std::io::Result<()> {
    let mut server = Server::new();
    if deflate {
        server = server.extension(PerMessageDeflate::new());
    }
    let server = server.web_socket("/", |mut session: Session| async move {
        while let Some(frame) = session.receive().await {
            if session.send(frame).await.is_err() {
                break;
            }
        }
    });
    serve(listener, server).await
}

/// A chat room on tandem's `Hub`, as its documentation shows, with the
/// default slow-member policy: every text goes to every member (encoded
/// once, its bytes shared by all of them).
pub async fn chat(listener: TcpListener) -> std::io::Result<()> {
    let hub = Hub::new(SlowMemberPolicy::default());
    let server = Server::new().web_socket("/", move |mut session: Session| {
        let hub = hub.clone();
        async move {
            let _member = hub.join(session.outgoing());
            while let Some(frame) = session.receive().await {
                // A received text can always be sent on.
                if hub.broadcast(frame).await.is_err() {
                    break;
                }
            }
        }
    });
    serve(listener, server).await
}

/// Runs `server` on the address the harness bound (tandem binds its own
/// listener, so the harness's is closed first).
async fn serve(listener: TcpListener, server: Server) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    drop(listener);
    server.bind(addr).await?.wait().await
}
