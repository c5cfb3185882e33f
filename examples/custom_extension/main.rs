//! A custom WebSocket extension, negotiated end to end.
//!
//! ```text
//! cargo run --example custom_extension
//! ```
//!
//! Starts a server that supports `x-xor` (see `xor.rs`), connects a client
//! that offers it, and shows what both ends agreed on and that messages
//! still round-trip while the bytes on the wire are XORed.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

mod xor;

use tandem::server::Server;
use tandem::{ClientBuilder, Session};
use xor::Xor;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new()
        .extension(Xor { key: 1 })
        .web_socket("/echo", |mut session: Session| async move {
            let agreed: Vec<String> = session.extensions().iter().map(|e| e.to_string()).collect();
            let _ = session.send(format!("server agreed on {agreed:?}")).await;
            while let Some(frame) = session.receive().await {
                if session.send(frame).await.is_err() {
                    break;
                }
            }
        })
        .bind("127.0.0.1:0")
        .await?;

    let url = format!("ws://{}/echo", server.local_addr());
    let mut session = ClientBuilder::new(url)
        .extension(Xor { key: 42 })
        .connect()
        .await?;
    println!(
        "client agreed on {:?}",
        session
            .extensions()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    session.send("hello through x-xor").await?;
    for _ in 0..2 {
        if let Some(frame) = session.receive().await {
            println!("received: {}", frame.read_text().unwrap_or("(binary)"));
        }
    }
    session.close(tandem::CloseReason::normal()).await?;
    println!("closed: {}", session.close_reason().await);
    server.shutdown().await;
    Ok(())
}
