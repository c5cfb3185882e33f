//! What the two Autobahn echo servers share, so that both runs test the same
//! sessions: `autobahn_server.rs` on tandem's own server and
//! `autobahn_axum.rs` inside axum. Included by each with `#[path]`; this
//! folder has no `main.rs`, so cargo does not take it for an example.

use tandem::extensions::PerMessageDeflate;
use tandem::{Session, WebSocketOptions};

/// Case 9.x sends messages of up to 16 MiB; leave room above that.
const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The session options: the defaults, with room for the largest messages
/// and no keepalive pings. kosoku 0.1.0 ends a case as "did not finish"
/// when the peer pings in the middle of it (12.2.15 with a ping every 2 s
/// fails at 2.0 s), so a case that outlasts the default 30 s period on a
/// busy machine would fail for a ping RFC 6455 allows; the reference
/// Autobahn peers send none either.
pub fn options() -> WebSocketOptions {
    WebSocketOptions {
        max_message_size: Some(MAX_MESSAGE_SIZE),
        ping_period: None,
        ..WebSocketOptions::default()
    }
}

/// permessage-deflate for sections 12 and 13: it accepts every offer those
/// cases make, lowering `server_max_window_bits` to 12, and keeps its
/// compression context unless the client asks for
/// `server_no_context_takeover`, so both kinds of compressor are exercised
/// (a default server would always reset it).
pub fn deflate() -> PerMessageDeflate {
    PerMessageDeflate::new().server_no_context_takeover(false)
}

/// Sends every message back as it came: text as text, binary as binary.
pub async fn echo(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

/// Logs to standard error: errors only, unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tandem=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The `--addr HOST:PORT` argument (default 127.0.0.1:9001); exits with
/// usage for anything else.
pub fn addr_from_args(program: &str) -> String {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: {program} [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    addr
}
