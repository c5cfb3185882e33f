//! tandem, as its README and `server` docs show: a route and an `async`
//! handler over a `Session`.

use std::sync::Arc;

use tandem::extensions::PerMessageDeflate;
use tandem::hub::{Hub, SlowMemberPolicy};
use tandem::rooms::{RedisBackplane, Rooms};
use tandem::rustls::ServerConfig;
use tandem::server::Server;
use tandem::Session;
use tokio::net::TcpListener;

/// Sends every message back, as in the `tandem::server` example; with
/// `deflate`, permessage-deflate at its documented defaults; with `tls`,
/// over TLS (`Server::tls_config`, as its documentation shows).
pub async fn echo(
    listener: TcpListener,
    deflate: bool,
    tls: Option<Arc<ServerConfig>>,
) -> std::io::Result<()> {
    let mut server = Server::new();
    if deflate {
        server = server.extension(PerMessageDeflate::new());
    }
    if let Some(config) = tls {
        server = server.tls_config(config);
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

/// The room every session of the `rooms` mode joins.
const ROOM: &str = "bench";

/// The rooms of the `rooms` mode: with `redis` (a `redis://` URL) on a
/// Redis stream shared by every instance on that Redis (`RedisBackplane`
/// at its defaults), without it on the in-process `LocalBackplane`.
pub async fn rooms_on(redis: Option<String>) -> std::io::Result<Rooms> {
    Ok(match redis {
        Some(url) => Rooms::with_backplane(
            RedisBackplane::builder(url)
                .connect()
                .await
                .map_err(std::io::Error::other)?,
        ),
        None => Rooms::new(),
    })
}

/// The chat on tandem's `Rooms`, as the README's "Rooms across instances"
/// shows: every session joins the room `bench`, and every text it sends is
/// published to that room; the room's task in each instance reads the
/// room's log and fans each message out to that instance's members.
pub async fn rooms(listener: TcpListener, rooms: Rooms) -> std::io::Result<()> {
    let server = Server::new().web_socket("/", move |mut session: Session| {
        let rooms = rooms.clone();
        async move {
            let Ok(_membership) = rooms.join(ROOM, session.outgoing()).await else {
                return;
            };
            while let Some(frame) = session.receive().await {
                if rooms.publish(ROOM, frame).await.is_err() {
                    break;
                }
            }
        }
    });
    serve(listener, server).await
}

/// Runs `server` on the listener the harness bound, which may already hold
/// connections: the harness connects as soon as it is announced.
async fn serve(listener: TcpListener, server: Server) -> std::io::Result<()> {
    server.serve(listener)?.wait().await
}
