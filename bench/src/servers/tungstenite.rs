//! tokio-tungstenite, as its `echo-server` and `server` (chat) examples show.
//!
//! Over TLS (`--tls`), the accepted `TcpStream` is wrapped in tokio-rustls's
//! `TlsAcceptor` and the TLS stream given to `accept_async`: that is how
//! tokio-tungstenite serves wss:// (its `rustls-tls-*` features are for its
//! client's connector only; `accept_async` takes any async stream).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{future, pin_mut, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::Message;

/// `examples/echo-server.rs`: split, filter data messages, forward; with
/// `tls`, each connection's TLS handshake first.
pub async fn echo(listener: TcpListener, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        match &tls {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        accept_connection(stream).await;
                    }
                });
            }
            None => {
                tokio::spawn(accept_connection(stream));
            }
        }
    }
    Ok(())
}

async fn accept_connection<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws_stream.split();
    // We should not forward messages other than text or binary.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

type Tx = UnboundedSender<Message>;
type PeerMap = Arc<Mutex<HashMap<SocketAddr, Tx>>>;

/// `examples/server.rs`: a task per connection, fed by an unbounded channel;
/// the sender is included here so that every server delivers to everyone.
pub async fn chat(listener: TcpListener) -> std::io::Result<()> {
    let state = PeerMap::new(Mutex::new(HashMap::new()));
    while let Ok((stream, addr)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(handle_connection(state.clone(), stream, addr));
    }
    Ok(())
}

async fn handle_connection(peer_map: PeerMap, raw_stream: TcpStream, addr: SocketAddr) {
    let Ok(ws_stream) = tokio_tungstenite::accept_async(raw_stream).await else {
        return;
    };
    let (tx, rx) = unbounded();
    peer_map.lock().unwrap().insert(addr, tx);

    let (outgoing, incoming) = ws_stream.split();

    let broadcast_incoming = incoming.try_for_each(|msg| {
        if msg.is_text() || msg.is_binary() {
            let peers = peer_map.lock().unwrap();
            for recp in peers.values() {
                let _ = recp.unbounded_send(msg.clone());
            }
        }
        future::ok(())
    });

    let receive_from_others = rx.map(Ok).forward(outgoing);

    pin_mut!(broadcast_incoming, receive_from_others);
    future::select(broadcast_incoming, receive_from_others).await;

    peer_map.lock().unwrap().remove(&addr);
}
