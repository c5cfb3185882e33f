//! The demo client: each line of standard input goes out as a text frame,
//! each received text frame is printed on its own line, and the close code
//! and reason are printed when the connection closes.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:8080/chat
//! ```
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::io::BufRead;

use futures::stream;

#[tokio::main]
async fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: client ws://HOST:PORT/PATH (or wss://)");
        std::process::exit(2);
    };
    let session = match tandem::connect(&url).await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("error: cannot connect to {url}: {error}");
            std::process::exit(1);
        }
    };
    // Standard input is read on a thread of its own: a blocking read cannot
    // be cancelled, and tokio's stdin would keep the process alive after the
    // session is over until the user pressed enter.
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    // When input ends the session closes; the server's answers to what was
    // sent before still arrive ahead of its Close.
    let lines = Box::pin(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|l| (l, rx))
    }));
    let reason = tandem::demo::run_line_client(session, lines, |text| println!("{text}")).await;
    println!("closed: {reason}");
}
