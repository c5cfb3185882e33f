//! tandem inside an axum app: the app's own JSON routes next to tandem's
//! echo and chat demos, a WebSocket route behind a bearer token, the demo
//! page, and a graceful shutdown on Ctrl-C.
//!
//! ```text
//! cargo run --features axum --example axum_chat -- --addr 127.0.0.1:8080 --token s3cret
//! ```
//!
//! - `GET /health`: `{"status":"ok","sessions":N}`, N the WebSocket sessions open;
//! - `GET /api/users`: `{"users":["user0",…]}`, who is in the chat;
//! - `/echo` and `/chat`: the demos, as in the `server` example (`/chat`
//!   answers the subprotocol `chat` to clients that offer it);
//! - `/announce`: a WebSocket for `Authorization: Bearer TOKEN` only (401
//!   otherwise), whose texts go to the chat as `[admin]: TEXT`;
//! - everything else: the demo page, from `--www DIR` (default `www`) and
//!   `--pkg DIR` (default `pkg`, at `/pkg`).
//!
//! Ctrl-C sends every WebSocket session 1001 Going Away, waits up to 10 s for
//! their close handshakes, then lets axum finish the HTTP requests in flight.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::Authorization;
use axum_extra::TypedHeader;
use serde::Serialize;
use tandem::axum::WebSocketUpgrade;
use tandem::demo::{echo, ChatRoom};
use tandem::extensions::PerMessageDeflate;
use tandem::server::SessionRegistry;
use tandem::Session;
use tower_http::services::ServeDir;

/// What every handler shares.
#[derive(Clone)]
struct App {
    room: ChatRoom,
    /// Every WebSocket session, for the graceful shutdown.
    sessions: SessionRegistry,
    /// The bearer token `/announce` asks for.
    token: Arc<str>,
}

impl App {
    /// The upgrade as every route here configures it: in the registry, with
    /// permessage-deflate for clients that offer it (browsers do).
    fn upgrade(&self, ws: WebSocketUpgrade) -> WebSocketUpgrade {
        ws.registry(&self.sessions)
            .extension(PerMessageDeflate::new())
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    sessions: usize,
}

async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok",
        sessions: app.sessions.session_count(),
    })
}

#[derive(Serialize)]
struct Users {
    users: Vec<String>,
}

async fn users(State(app): State<App>) -> Json<Users> {
    Json(Users {
        users: app.room.members(),
    })
}

async fn echo_ws(State(app): State<App>, ws: WebSocketUpgrade) -> Response {
    app.upgrade(ws).on_upgrade(echo)
}

async fn chat_ws(State(app): State<App>, ws: WebSocketUpgrade) -> Response {
    let room = app.room.clone();
    app.upgrade(ws)
        .protocols(["chat"])
        .on_upgrade(move |session| room.join(session))
}

/// The bearer token is checked before the upgrade: a client without it
/// gets a 401 and never a session.
async fn announce_ws(
    State(app): State<App>,
    auth: Option<TypedHeader<Authorization<Bearer>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let authorized = matches!(&auth, Some(TypedHeader(auth)) if auth.token() == &*app.token);
    if !authorized {
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"announce\"")];
        return (StatusCode::UNAUTHORIZED, challenge).into_response();
    }
    let room = app.room.clone();
    app.upgrade(ws)
        .on_upgrade(move |mut session: Session| async move {
            while let Some(frame) = session.receive().await {
                if let Some(text) = frame.read_text() {
                    if let Err(error) = room.say("admin", text).await {
                        eprintln!("an announcement was not sent: {error}");
                    }
                }
            }
        })
}

/// Sends every session 1001 once Ctrl-C is pressed; axum stops accepting
/// when this returns.
async fn shutdown_on_ctrl_c(sessions: SessionRegistry) {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handler: run until killed.
        std::future::pending::<()>().await;
    }
    eprintln!("shutting down: closing the WebSocket sessions");
    let report = sessions.shutdown_gracefully(Duration::from_secs(10)).await;
    eprintln!(
        "{} sessions closed, {} dropped at the deadline",
        report.closed, report.dropped
    );
}

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
    let mut token = "s3cret".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--www", Some(v)) => www = v,
            ("--pkg", Some(v)) => pkg = v,
            ("--token", Some(v)) => token = v,
            _ => {
                eprintln!(
                    "usage: axum_chat [--addr HOST:PORT] [--www DIR] [--pkg DIR] [--token TOKEN]"
                );
                std::process::exit(2);
            }
        }
    }

    let app = App {
        room: ChatRoom::new(),
        sessions: SessionRegistry::new(),
        token: token.into(),
    };
    let router = Router::new()
        .route("/health", get(health))
        .route("/api/users", get(users))
        .route("/echo", get(echo_ws))
        .route("/chat", get(chat_ws))
        .route("/announce", get(announce_ws))
        .nest_service("/pkg", ServeDir::new(pkg))
        .fallback_service(ServeDir::new(www))
        .with_state(app.clone());

    let listener = match tokio::net::TcpListener::bind(addr.as_str()).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {addr}: {error}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on http://{local}"),
        Err(error) => eprintln!("error: {error}"),
    }
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_on_ctrl_c(app.sessions))
        .await;
    if let Err(error) = served {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
