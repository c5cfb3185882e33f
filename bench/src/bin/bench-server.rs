//! The servers under test, one process per run:
//!
//! ```text
//! bench-server --impl tandem|tungstenite|fastwebsockets --mode echo|chat --addr 127.0.0.1:9100
//! ```
//!
//! `--deflate on` adds permessage-deflate at its documented defaults
//! (tandem only). `echo` sends every message back; `chat` relays every text it receives to
//! every open session (the sender included). Each implementation is written
//! the way its own documentation shows (see `src/servers/`); all run on the
//! same tokio runtime: current-thread by default (as fastwebsockets' examples
//! do), or `--threads N` workers for all of them alike. The one change to the
//! libraries' examples: every server sets TCP_NODELAY on accepted sockets, as
//! tandem does, so that Nagle's algorithm is the same for all.

use std::net::SocketAddr;

use tandem_bench::servers;

fn main() {
    let mut imp = String::from("tandem");
    let mut mode = String::from("echo");
    let mut addr: SocketAddr = "127.0.0.1:9100".parse().unwrap();
    let mut threads = 0usize;
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--impl" => imp = value(),
            "--mode" => mode = value(),
            "--addr" => addr = value().parse().unwrap_or_else(|_| usage("bad --addr")),
            "--threads" => threads = value().parse().unwrap_or_else(|_| usage("bad --threads")),
            "--deflate" => deflate = matches!(value().as_str(), "on" | "1" | "yes" | "true"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    tandem_bench::raise_fd_limit(65_536);
    let chat = match mode.as_str() {
        "echo" => false,
        "chat" => true,
        _ => usage("--mode is echo or chat"),
    };
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("bench-server: {imp} {mode} on {addr}");
        if deflate && imp != "tandem" {
            // Neither tokio-tungstenite 0.30 nor fastwebsockets 0.10 has it.
            usage("--deflate: only tandem implements permessage-deflate");
        }
        match (imp.as_str(), chat) {
            ("tandem", false) => servers::tandem::echo(listener, deflate).await,
            ("tandem", true) => servers::tandem::chat(listener).await,
            ("tungstenite", false) => servers::tungstenite::echo(listener).await,
            ("tungstenite", true) => servers::tungstenite::chat(listener).await,
            ("fastwebsockets", false) => servers::fastwebsockets::echo(listener).await,
            ("fastwebsockets", true) => servers::fastwebsockets::chat(listener).await,
            _ => usage("--impl is tandem, tungstenite or fastwebsockets"),
        }
    });
    if let Err(error) = result {
        eprintln!("bench-server: {error}");
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("bench-server: {problem}");
    }
    eprintln!(
        "usage: bench-server [--impl tandem|tungstenite|fastwebsockets] [--mode echo|chat] \
         [--addr 127.0.0.1:9100] [--threads 0] [--deflate on|off]"
    );
    std::process::exit(2)
}
