//! tandem's own routes served from an application's router: a `Server`
//! turned into a tower service (`Server::into_service`), nested under
//! `/ws` in an axum app, and served on a plain hyper connection. Routes,
//! hooks, the origin policy, session options and static files answer as
//! they do on `Server::bind`; the sessions shut down through the service's
//! registry.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::routing::get;
use common::{drain, http_exchange, next_text, serve_hyper, within};
use hyper::body::Incoming;
use tandem::server::{Admission, Route, Server, ServerService, ShutdownReport, UpgradeRequest};
use tandem::{CloseCode, Error, Session, WebSocketOptions};
use tower_service::Service;

/// Reports its path, its `id` and the hook's state, then echoes.
async fn report(mut session: Session) {
    let request = session.request().expect("a server session has its request");
    let report = format!(
        "path={} id={} user={}",
        request.path(),
        request.path_param("id").unwrap_or("-"),
        session.state::<String>().map_or("-", String::as_str),
    );
    let _ = session.send(report).await;
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

/// tandem's routes, as an application would configure them, with a page in
/// `www` beside them.
fn tandem_routes(www: &Path) -> ServerService {
    let private = Route::new("/private").before_upgrade(|request: UpgradeRequest| async move {
        match request.query_param("token").as_deref() {
            Some("s3cret") => Admission::accept().state("alice".to_string()),
            _ => Admission::refuse(
                http::Response::builder()
                    .status(401)
                    .header("www-authenticate", "Bearer")
                    .body("a token is required")
                    .unwrap(),
            ),
        }
    });
    let small = WebSocketOptions {
        max_message_size: Some(16),
        ..WebSocketOptions::default()
    };
    Server::new()
        .web_socket("/echo", tandem::demo::echo)
        .web_socket("/rooms/{id}", report)
        .web_socket(private, report)
        .web_socket(Route::new("/small").options(small), report)
        .static_files("/", www)
        .into_service()
}

/// A folder with `index.html`.
fn site() -> tempfile::TempDir {
    let www = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(www.path().join("index.html"), "<h1>tandem</h1>").unwrap();
    www
}

/// The application: a route of its own and tandem's under `/ws`.
async fn serve_axum(tandem: ServerService) -> SocketAddr {
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/ws", tandem);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn connect(url: &str) -> Session {
    within("connect", tandem::connect(url))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

async fn refusal(url: &str) -> (u16, String) {
    match within("connect", tandem::connect(url)).await {
        Err(Error::HandshakeRefused { status, body, .. }) => (status, body),
        other => panic!("{url}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn tandem_routes_nested_under_a_prefix_in_axum() {
    let www = site();
    let addr = serve_axum(tandem_routes(www.path())).await;

    let mut session = connect(&format!("ws://{addr}/ws/echo")).await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("Ktor")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    within("send", session.send("bye")).await.unwrap();
    drain(&mut session).await;

    // Routes match the path axum passes on, without its prefix.
    let mut session = connect(&format!("ws://{addr}/ws/rooms/J%C3%BCrgen")).await;
    assert_eq!(
        next_text(&mut session).await,
        "path=/rooms/J%C3%BCrgen id=Jürgen user=-"
    );
    drop(session);

    // The route's hook: its refusal, then its state.
    let (status, body) = refusal(&format!("ws://{addr}/ws/private")).await;
    assert_eq!((status, body.as_str()), (401, "a token is required"));
    let mut session = connect(&format!("ws://{addr}/ws/private?token=s3cret")).await;
    assert_eq!(
        next_text(&mut session).await,
        "path=/private id=- user=alice"
    );
    drop(session);

    // The route's options: a message over its limit closes with 1009.
    let mut session = connect(&format!("ws://{addr}/ws/small")).await;
    next_text(&mut session).await;
    within("send", session.send("x".repeat(64))).await.unwrap();
    drain(&mut session).await;
    assert_eq!(session.close_reason().await.code, CloseCode::TooBig);

    // The origin policy: another site's page is refused.
    let from_elsewhere = format!(
        "GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://evil.example\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert_eq!(http_exchange(addr, &from_elsewhere).await.status, 403);

    // Static files and tandem's 404 under the prefix; the app's own route beside them.
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let page = http_exchange(addr, &get("/ws/index.html")).await;
    assert_eq!(
        (page.status, page.body_text().as_str()),
        (200, "<h1>tandem</h1>")
    );
    let missing = http_exchange(addr, &get("/ws/nope")).await;
    assert_eq!(
        (missing.status, missing.body_text().as_str()),
        (404, "no route for /nope\n")
    );
    let health = http_exchange(addr, &get("/health")).await;
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok"));
}

#[tokio::test]
async fn sessions_of_the_service_shut_down_gracefully_through_its_registry() {
    let www = site();
    let tandem = tandem_routes(www.path());
    let registry = tandem.registry();
    let addr = serve_axum(tandem).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut session = connect(&format!("ws://{addr}/ws/echo")).await;
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        clients.push(tokio::spawn(async move {
            drain(&mut session).await;
            session.close_reason().await
        }));
    }
    assert_eq!(registry.session_count(), 2);

    let report = within(
        "the graceful shutdown",
        registry.shutdown_gracefully(Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        report,
        ShutdownReport {
            sessions: 2,
            closed: 2,
            dropped: 0
        }
    );
    for client in clients {
        let reason = within("a client", client).await.unwrap();
        assert_eq!(reason.code, CloseCode::GoingAway);
    }
    let (status, _) = refusal(&format!("ws://{addr}/ws/echo")).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_service_on_a_plain_hyper_connection() {
    let www = site();
    let tandem = tandem_routes(www.path());
    let addr = serve_hyper(hyper::service::service_fn(
        move |request: http::Request<Incoming>| {
            let mut tandem = tandem.clone();
            async move { Ok::<_, Infallible>(tandem.call(request).await.unwrap()) }
        },
    ))
    .await;

    let mut session = connect(&format!("ws://{addr}/rooms/7")).await;
    assert_eq!(next_text(&mut session).await, "path=/rooms/7 id=7 user=-");
    within("send", session.send("again")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "again");
    drop(session);

    let (status, _) = refusal(&format!("ws://{addr}/nope")).await;
    assert_eq!(status, 404);
    let page = http_exchange(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(
        (page.status, page.body_text().as_str()),
        (200, "<h1>tandem</h1>")
    );
}
