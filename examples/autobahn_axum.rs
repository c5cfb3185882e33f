//! The Autobahn TestSuite echo server inside axum: the same sessions as
//! `autobahn_server.rs` (options, permessage-deflate and the echo from
//! `autobahn/settings.rs`), upgraded by `tandem::axum::WebSocketUpgrade` on
//! axum's own HTTP server, at `/`.
//!
//! ```text
//! cargo run --release --features axum --example autobahn_axum -- --addr 127.0.0.1:9002
//! kosoku -m fuzzingclient 127.0.0.1:9002
//! ```
//!
//! `scripts/autobahn.sh` runs the suite against it after `autobahn_server`.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

#[path = "autobahn/settings.rs"]
mod settings;

use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tandem::axum::WebSocketUpgrade;

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.options(settings::options())
        .extension(settings::deflate())
        .on_upgrade(settings::echo)
}

#[tokio::main]
async fn main() {
    settings::init_tracing();
    let addr = settings::addr_from_args("autobahn_axum");
    let listener = match tokio::net::TcpListener::bind(addr.as_str()).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on ws://{local}"),
        Err(error) => eprintln!("error: {error}"),
    }
    if let Err(error) = axum::serve(listener, Router::new().route("/", get(upgrade))).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
