//! The demo server: `/echo`, `/chat` (Ktor's text protocol), `/chat-json`
//! (the same room in JSON, with message ids, for clients that reconnect and
//! resume: see `tandem::demo::ChatRoom::join_json`) and the static files of
//! `www/` and `pkg/`.
//!
//! ```text
//! cargo run --example server -- --addr 127.0.0.1:8080 --www www --pkg pkg
//! ```
//!
//! With `--redis redis://HOST:PORT` (built with `--features redis`) the chat
//! lives in that Redis: several servers on different ports form one chat,
//! and the welcome counts the members of all of them. `--heartbeat SECS`
//! sets how often each server restates its member count (default 5; the
//! members of a server that died leave the count within three heartbeats).
//!
//! Its own pages may open sessions; so may pages from each
//! `--allow-origin ORIGIN` (repeatable, e.g. `--allow-origin
//! http://localhost:3000`), or from anywhere with `--any-origin` (the
//! browser tests' page is served from another port, so they need it).
//!
//! Every route negotiates permessage-deflate with clients that offer it
//! (browsers do), in its default configuration.
//!
//! `--ping-period SECS` sets how often each session is pinged (default 30,
//! tandem's `ping_period`; 0 sends no pings). A ping and its pong keep a
//! quiet session open through a proxy's idle timeout
//! (`scripts/test-proxies.sh` runs it with 1 s behind proxies with 3 s).
//!
//! Six more routes serve the browser tests (`scripts/test-browser.sh`):
//! `/echo-any` sends every message back as it came (text or binary),
//! `/echo-extensions` does the same after a first text message listing the
//! extensions the server agreed on (as a `Sec-WebSocket-Extensions` value),
//! `/echo-proto` only speaks the subprotocols `tandem.v2` and `tandem`, and
//! `/closed?id=ID` answers with the close reason that the `/echo-any?id=ID`
//! session ended with, as the text `CODE REASON`, and `/end?how=HOW` ends
//! the session at once in one of the ways a server's session can end:
//! `code` (closes with 4002 "server closed"), `error` (the handler returns
//! an error), `panic` (the handler panics) or `terminate` (the connection
//! is dropped without a Close), and `/flaky?id=ID&fail=N&then=CODE`, for
//! clients that reconnect, closes the first `N` sessions of each `ID` at
//! once with 1013 "try again later", then closes with `CODE` if given, or
//! else sends every message back as it came.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::demo::{echo, ChatRoom};
use tandem::extensions::{ExtensionHeader, PerMessageDeflate};
#[cfg(feature = "redis")]
use tandem::rooms::RedisBackplane;
use tandem::server::{Route, Server};
use tandem::{CloseCode, CloseReason, Session, WebSocketOptions};

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
    let mut origins = Vec::new();
    let mut any_origin = false;
    let mut options = WebSocketOptions::default();
    let mut redis = None;
    let mut heartbeat = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--any-origin" {
            any_origin = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--www", Some(v)) => www = v,
            ("--pkg", Some(v)) => pkg = v,
            ("--allow-origin", Some(v)) => origins.push(v),
            ("--ping-period", Some(v)) => {
                let Ok(secs) = v.parse::<u64>() else { usage() };
                options.ping_period = (secs > 0).then(|| Duration::from_secs(secs));
            }
            ("--redis", Some(v)) => redis = Some(v),
            ("--heartbeat", Some(v)) => {
                let Ok(secs) = v.parse::<f64>() else { usage() };
                let Ok(every) = Duration::try_from_secs_f64(secs) else {
                    usage()
                };
                heartbeat = Some(every);
            }
            _ => usage(),
        }
    }

    let mut room = chat_room(redis).await;
    if let Some(heartbeat) = heartbeat {
        room = room.presence_heartbeat(heartbeat);
    }
    let json_room = room.clone();
    let log_any = CloseLog::default();
    let (log_proto, log_closed) = (log_any.clone(), log_any.clone());
    let log_extensions = log_any.clone();
    let tries = Tries::default();
    let server = if any_origin {
        Server::new().allow_any_origin()
    } else {
        Server::new().allowed_origins(origins)
    };
    let server = server
        .options(options)
        .extension(PerMessageDeflate::new())
        .web_socket("/echo", echo)
        .web_socket("/chat", move |session| room.clone().join(session))
        .web_socket("/chat-json", move |session| {
            json_room.clone().join_json(session)
        })
        .web_socket("/echo-any", move |session| {
            echo_any(session, log_any.clone())
        })
        .web_socket("/echo-extensions", move |session: Session| {
            let log = log_extensions.clone();
            async move {
                let agreed = ExtensionHeader::format_list(session.extensions());
                if session.send(agreed).await.is_ok() {
                    echo_any(session, log).await;
                }
            }
        })
        .web_socket(
            Route::new("/echo-proto")
                .protocol("tandem.v2")
                .protocol("tandem"),
            move |session| echo_any(session, log_proto.clone()),
        )
        .web_socket("/closed", move |session| {
            closed(session, log_closed.clone())
        })
        .web_socket("/end", end)
        .web_socket("/flaky", move |session| flaky(session, tries.clone()))
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

fn usage() -> ! {
    eprintln!(
        "usage: server [--addr HOST:PORT] [--www DIR] [--pkg DIR] \
         [--allow-origin ORIGIN]... [--any-origin] [--ping-period SECS] \
         [--redis redis://HOST:PORT] [--heartbeat SECS]"
    );
    std::process::exit(2);
}

/// The chat, in this process or in the Redis at `redis`.
async fn chat_room(redis: Option<String>) -> ChatRoom {
    let Some(url) = redis else {
        return ChatRoom::new();
    };
    #[cfg(feature = "redis")]
    match RedisBackplane::builder(url.as_str()).connect().await {
        Ok(backplane) => {
            // Not the URL: it may hold a password.
            println!("chat on redis");
            ChatRoom::with_backplane(backplane)
        }
        Err(error) => {
            eprintln!("error: cannot use redis: {error}");
            std::process::exit(1);
        }
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        eprintln!("error: --redis: this server was built without the redis feature (cargo run --features redis --example server)");
        std::process::exit(2);
    }
}

/// The close reasons of `/echo-any?id=ID` sessions, by ID, until `/closed` takes them.
#[derive(Clone, Default)]
struct CloseLog(Arc<Mutex<HashMap<String, CloseReason>>>);

impl CloseLog {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, CloseReason>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends every message back as it came; records the close reason under `?id=`.
async fn echo_any(mut session: Session, log: CloseLog) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
    let reason = session.close_reason().await;
    if let Some(id) = session.request().and_then(|r| r.query_param("id")) {
        log.map().insert(id.into_owned(), reason);
    }
}

/// Ends the session as `?how=` says (see the module doc).
async fn end(session: Session) -> Result<(), String> {
    let how = session
        .request()
        .and_then(|r| r.query_param("how"))
        .unwrap_or_default()
        .into_owned();
    match how.as_str() {
        "code" => {
            let _ = session
                .close(CloseReason::new(CloseCode::Other(4002), "server closed"))
                .await;
        }
        "error" => return Err("database down".to_owned()),
        "panic" => panic!("the /end route was asked to panic"),
        "terminate" => session.terminate(),
        _ => return Err(format!("no way to end called {how:?}")),
    }
    session.close_reason().await;
    Ok(())
}

/// How many `/flaky?id=ID` sessions each ID has opened.
#[derive(Clone, Default)]
struct Tries(Arc<Mutex<HashMap<String, u32>>>);

/// Closes with 1013 the first `?fail=` sessions of `?id=`, then with
/// `?then=` if given, or else echoes (see the module doc).
async fn flaky(mut session: Session, tries: Tries) {
    let param = |name| {
        session
            .request()
            .and_then(|r| r.query_param(name))
            .map(|value| value.into_owned())
    };
    let (id, fail, then) = (param("id"), param("fail"), param("then"));
    let fail: u32 = fail.and_then(|n| n.parse().ok()).unwrap_or(0);
    let then: Option<u16> = then.and_then(|code| code.parse().ok());
    let tried = {
        let mut tries = tries.0.lock().unwrap_or_else(|e| e.into_inner());
        let tried = tries.entry(id.unwrap_or_default()).or_default();
        *tried += 1;
        *tried
    };
    let close = match then {
        _ if tried <= fail => CloseReason::new(CloseCode::TryAgainLater, "try again later"),
        Some(code) => CloseReason::new(code, "flaky: then"),
        None => {
            while let Some(frame) = session.receive().await {
                if session.send(frame).await.is_err() {
                    break;
                }
            }
            return;
        }
    };
    let _ = session.close(close).await;
    session.close_reason().await;
}

/// Answers with the close reason recorded for `?id=` (waiting up to 5 s for
/// that session to end), as `CODE REASON`, then closes with 1000.
async fn closed(session: Session, log: CloseLog) {
    let id = session
        .request()
        .and_then(|r| r.query_param("id"))
        .unwrap_or_default()
        .into_owned();
    let mut answer = format!("no session {id:?} ended");
    for _ in 0..100 {
        if let Some(reason) = log.map().remove(&id) {
            answer = format!("{} {}", u16::from(reason.code), reason.message);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if session.send(answer).await.is_ok() {
        let _ = session.close(CloseReason::normal()).await;
        // Returning drops the session; wait for the close handshake first.
        session.close_reason().await;
    }
}
