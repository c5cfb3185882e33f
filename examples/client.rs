//! The demo client: each line of standard input goes out as a text frame,
//! each received text frame is printed on its own line, and the close code
//! and reason are printed when the connection closes.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:8080/chat
//! ```

use futures::stream;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: client ws://HOST:PORT/PATH");
        std::process::exit(2);
    };
    let session = match tandem::connect(&url).await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("error: cannot connect to {url}: {error}");
            std::process::exit(1);
        }
    };
    let stdin = BufReader::new(tokio::io::stdin()).lines();
    let lines = Box::pin(stream::unfold(stdin, |mut stdin| async move {
        match stdin.next_line().await {
            Ok(Some(line)) => Some((line, stdin)),
            _ => None,
        }
    }));
    let reason = tandem::demo::run_line_client(session, lines, |text| println!("{text}")).await;
    println!("closed: {} {}", u16::from(reason.code), reason.message);
}
