//! The Autobahn TestSuite echo server: every message goes back as it came
//! (text as text, binary as binary), at `/`, with permessage-deflate
//! (sections 12 and 13) configured as `autobahn/settings.rs` says, which
//! `autobahn_axum.rs` shares.
//!
//! ```text
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9001
//! kosoku -m fuzzingclient 127.0.0.1:9001
//! ```
//!
//! `scripts/autobahn.sh` runs the whole suite against this server and the
//! client in `autobahn_client.rs` (and against `autobahn_axum.rs`).
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

#[path = "autobahn/settings.rs"]
mod settings;

use tandem::server::Server;

#[tokio::main]
async fn main() {
    settings::init_tracing();
    let addr = settings::addr_from_args("autobahn_server");
    let server = match Server::new()
        .options(settings::options())
        .extension(settings::deflate())
        .web_socket("/", settings::echo)
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
