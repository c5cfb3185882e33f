//! The servers under test, one process per run:
//!
//! ```text
//! bench-server --impl tandem|tungstenite|fastwebsockets --mode echo|chat --addr 127.0.0.1:9100
//! bench-server --impl tandem|tungstenite --mode echo --tls --addr 127.0.0.1:9100
//! bench-server --mode rooms [--redis redis://127.0.0.1:6390/] --addr 127.0.0.1:9100
//! ```
//!
//! `--deflate on` adds permessage-deflate at its documented defaults
//! (tandem only). `--tls` serves wss:// (echo, tandem and tungstenite):
//! rustls with the ring provider at its defaults (TLS 1.3) and a
//! self-signed certificate generated at start, the same `ServerConfig` for
//! both (see `tandem_bench::tls`). `echo` sends every message back; `chat` relays every text it receives to
//! every open session (the sender included). `rooms` (tandem only) is the
//! chat on `tandem::rooms::Rooms`: every session joins one room and every
//! text is published to it, on the Redis at `--redis` (`RedisBackplane`, a
//! room shared by every instance on that Redis) or, without it, on the
//! in-process `LocalBackplane`. Each implementation is written
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
    let mut tls = false;
    let mut redis = None;
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
            "--redis" => redis = Some(value()),
            "--tls" => tls = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    tandem_bench::raise_fd_limit(65_536);
    if !matches!(mode.as_str(), "echo" | "chat" | "rooms") {
        usage("--mode is echo, chat or rooms");
    }
    if mode == "rooms" && imp != "tandem" {
        usage("--mode rooms: tandem only (its `Rooms`)");
    }
    if redis.is_some() && mode != "rooms" {
        usage("--redis goes with --mode rooms");
    }
    if tls && (mode != "echo" || !matches!(imp.as_str(), "tandem" | "tungstenite")) {
        usage("--tls: echo on tandem or tungstenite");
    }
    let tls = match tls {
        true => Some(tandem_bench::tls::server_config().unwrap_or_else(|error| {
            eprintln!("bench-server: TLS configuration: {error}");
            std::process::exit(1)
        })),
        false => None,
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
        // The rooms' backplane before the address: the harness connects as
        // soon as it sees the line below, and every server then serves the
        // connections already waiting on this listener.
        let rooms = match mode.as_str() {
            "rooms" => Some(servers::tandem::rooms_on(redis).await?),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        eprintln!("bench-server: {imp} {mode} on {addr} ({scheme}://)");
        if deflate && imp != "tandem" {
            // Neither tokio-tungstenite 0.30 nor fastwebsockets 0.10 has it.
            usage("--deflate: only tandem implements permessage-deflate");
        }
        if let Some(rooms) = rooms {
            return servers::tandem::rooms(listener, rooms).await;
        }
        match (imp.as_str(), mode.as_str()) {
            ("tandem", "echo") => servers::tandem::echo(listener, deflate, tls).await,
            ("tandem", _) => servers::tandem::chat(listener).await,
            ("tungstenite", "echo") => {
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                servers::tungstenite::echo(listener, acceptor).await
            }
            ("tungstenite", _) => servers::tungstenite::chat(listener).await,
            ("fastwebsockets", "echo") => servers::fastwebsockets::echo(listener).await,
            ("fastwebsockets", _) => servers::fastwebsockets::chat(listener).await,
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
        "usage: bench-server [--impl tandem|tungstenite|fastwebsockets] [--mode echo|chat|rooms] \
         [--addr 127.0.0.1:9100] [--threads 0] [--deflate on|off] [--tls] [--redis redis://HOST:PORT/]"
    );
    std::process::exit(2)
}
