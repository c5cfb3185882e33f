//! The demo server: `/echo`, `/chat` and the static files of `www/` and `pkg/`.
//!
//! ```text
//! cargo run --example server -- --addr 127.0.0.1:8080 --www www --pkg pkg
//! ```

use tandem::demo::{echo, ChatRoom};
use tandem::server::Server;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tandem=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut addr = "127.0.0.1:8080".to_string();
    let mut www = "www".to_string();
    let mut pkg = "pkg".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--addr", Some(v)) => addr = v,
            ("--www", Some(v)) => www = v,
            ("--pkg", Some(v)) => pkg = v,
            _ => {
                eprintln!("usage: server [--addr HOST:PORT] [--www DIR] [--pkg DIR]");
                std::process::exit(2);
            }
        }
    }

    let room = ChatRoom::new();
    let server = Server::new()
        .web_socket("/echo", echo)
        .web_socket("/chat", move |session| room.clone().join(session))
        .static_files("/pkg", pkg)
        .static_files("/", www)
        .bind(addr.as_str())
        .await;
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{}", server.local_addr());
    if let Err(error) = server.wait().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
