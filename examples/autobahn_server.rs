//! The Autobahn TestSuite echo server: every message goes back as it came
//! (text as text, binary as binary), at `/`, with permessage-deflate
//! (sections 12 and 13): it accepts every offer those cases make, lowering
//! `server_max_window_bits` to 12, and keeps its compression context unless
//! the client asks for `server_no_context_takeover`, so both kinds of
//! compressor are exercised (a default server would always reset it).
//!
//! ```text
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9001
//! kosoku -m fuzzingclient 127.0.0.1:9001
//! ```
//!
//! `scripts/autobahn.sh` runs the whole suite against this server and the
//! client in `autobahn_client.rs`.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use tandem::extensions::PerMessageDeflate;
use tandem::server::Server;
use tandem::{Session, WebSocketOptions};

/// Case 9.x sends messages of up to 16 MiB; leave room above that.
const MAX_MESSAGE_SIZE: usize = 64 << 20;

async fn echo(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tandem=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut addr = "127.0.0.1:9001".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: autobahn_server [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }

    let options = WebSocketOptions {
        max_message_size: Some(MAX_MESSAGE_SIZE),
        ..WebSocketOptions::default()
    };
    let server = match Server::new()
        .options(options)
        .extension(PerMessageDeflate::new().server_no_context_takeover(false))
        .web_socket("/", echo)
        .bind(addr.as_str())
        .await
    {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on ws://{}", server.local_addr());
    if let Err(error) = server.wait().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
