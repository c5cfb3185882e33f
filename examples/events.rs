//! The WebSocket events of Ktor's guide, as one handler that runs on both
//! ends: it logs `onConnect`, each `onMessage`, and `onClose` or `onError`
//! with the close reason.
//!
//! ```text
//! cargo run --example events
//! ```
//!
//! A server on a free loopback port runs `log_events` for each session; a
//! client runs the same function against it, three times, and each time
//! the session ends another way: the client closes with a code, the
//! server's handler fails, the server drops the connection.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use tandem::server::Server;
use tandem::{CloseCode, CloseReason, Session};
use tracing::{error, info};

/// Ktor's guide, mapped onto a session:
/// - `onConnect` is the start of the handler;
/// - `onMessage` is each frame `receive` gives;
/// - `onClose` is the end of the incoming frames, `onError` any other
///   failure (a send that fails, or a session that ended in an error);
/// - `closeReason` is `close_reason()`, known in both.
async fn log_events(side: &str, session: &mut Session) -> CloseReason {
    info!(side, "onConnect");
    while let Some(frame) = session.receive().await {
        info!(side, text = frame.read_text(), "onMessage");
    }
    let reason = session.close_reason().await;
    if reason.code.is_error() {
        error!(side, %reason, "onError");
    } else {
        info!(side, %reason, "onClose");
    }
    reason
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tandem=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let server = Server::new()
        .web_socket("/events", |mut session: Session| async move {
            let how = session
                .request()
                .and_then(|r| r.query_param("end"))
                .unwrap_or_default()
                .into_owned();
            let _ = session.send(format!("hello, you asked for {how}")).await;
            match how.as_str() {
                // The handler fails: the client sees 1011 and the message.
                "error" => return Err("the database is down".to_owned()),
                // The connection goes with no Close: the client sees 1006.
                "terminate" => session.terminate(),
                _ => {}
            }
            log_events("server", &mut session).await;
            Ok(())
        })
        .bind("127.0.0.1:0")
        .await?;

    for end in ["close", "error", "terminate"] {
        let url = format!("ws://{}/events?end={end}", server.local_addr());
        let mut session = tandem::connect(&url).await?;
        if end == "close" {
            // The client ends it, as agreed.
            let outgoing = session.outgoing();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let reason = CloseReason::new(CloseCode::Normal, "done here");
                let _ = outgoing.close(reason).await;
            });
        }
        let reason = log_events("client", &mut session).await;
        println!("{end}: the client saw {reason}");
    }
    server.shutdown().await;
    Ok(())
}
