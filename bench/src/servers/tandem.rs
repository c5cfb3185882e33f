//! tandem, as its README and `server` docs show: a route and an `async`
//! handler over a `Session`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tandem::extensions::PerMessageDeflate;
use tandem::server::Server;
use tandem::{Outgoing, Session};
use tokio::net::TcpListener;

/// Sends every message back, as in the `tandem::server` example; with
/// `deflate`, permessage-deflate at its documented defaults.
pub async fn echo(listener: TcpListener, deflate: bool) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    drop(listener);
    let mut server = Server::new();
    if deflate {
        server = server.extension(PerMessageDeflate::new());
    }
    server
        .web_socket("/", |mut session: Session| async move {
            while let Some(frame) = session.receive().await {
                if session.send(frame).await.is_err() {
                    break;
                }
            }
        })
        .bind(addr)
        .await?
        .wait()
        .await
}

/// A chat room: each member's `Outgoing` handle in a map; every text goes to
/// every member with `try_send` (one `Frame`, its payload shared).
pub async fn chat(listener: TcpListener) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    drop(listener);
    let members: Arc<Mutex<HashMap<u64, Outgoing>>> = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    Server::new()
        .web_socket("/", move |mut session: Session| {
            let members = members.clone();
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            async move {
                members.lock().unwrap().insert(id, session.outgoing());
                while let Some(frame) = session.receive().await {
                    for member in members.lock().unwrap().values() {
                        let _ = member.try_send(frame.clone());
                    }
                }
                members.lock().unwrap().remove(&id);
            }
        })
        .bind(addr)
        .await?
        .wait()
        .await
}
