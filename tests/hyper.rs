//! tandem sessions in a hyper 1 server of the application's own, without
//! axum: `tandem::server::WebSocketUpgrade` in a `service_fn`, on
//! `hyper::server::conn::http1` with upgrades, and a `SessionRegistry` for
//! the graceful shutdown.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use common::{drain, http_exchange, next_text, serve_hyper, within};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tandem::server::{SessionRegistry, ShutdownReport, WebSocketUpgrade};
use tandem::{CloseCode, Error, Session};

/// The application: the echo demo at `/echo`, its sessions in `registry`,
/// 404 elsewhere.
async fn start(registry: SessionRegistry) -> SocketAddr {
    serve_hyper(service_fn(move |mut request: Request<Incoming>| {
        let registry = registry.clone();
        async move {
            if request.uri().path() != "/echo" {
                let not_found = Response::builder().status(404).body(Full::default());
                return Ok::<_, Infallible>(not_found.expect("a valid response"));
            }
            Ok(match WebSocketUpgrade::from_request(&mut request) {
                Ok(upgrade) => upgrade.registry(&registry).on_upgrade(tandem::demo::echo),
                Err(refusal) => refusal,
            })
        }
    }))
    .await
}

async fn connect(addr: SocketAddr) -> Session {
    within("connect", tandem::connect(&format!("ws://{addr}/echo")))
        .await
        .expect("the hyper service upgrades")
}

#[tokio::test]
async fn a_tandem_client_talks_to_a_hyper_service() {
    let addr = start(SessionRegistry::new()).await;
    let mut session = connect(addr).await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("Ktor")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    within("send", session.send("bye")).await.unwrap();
    drain(&mut session).await;
    let reason = session.close_reason().await;
    assert_eq!(
        (reason.code, reason.message.as_str()),
        (CloseCode::Normal, "Client said BYE")
    );

    // The application's own answers go on beside it.
    match within("connect", tandem::connect(&format!("ws://{addr}/other"))).await {
        Err(Error::HandshakeRefused { status: 404, .. }) => {}
        other => panic!("expected the application's 404, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_gets_426_or_400() {
    let addr = start(SessionRegistry::new()).await;

    let plain = format!("GET /echo HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let response = http_exchange(addr, &plain).await;
    assert_eq!(response.status, 426, "{response:?}");
    assert_eq!(
        response.header("upgrade").map(str::to_ascii_lowercase),
        Some("websocket".into())
    );
    assert_eq!(response.header("sec-websocket-version"), Some("13"));

    let no_key = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let response = http_exchange(addr, &no_key).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(
        response.body_text().contains("Sec-WebSocket-Key"),
        "the body says why: {:?}",
        response.body_text()
    );
}

#[tokio::test]
async fn a_graceful_shutdown_through_the_registry_closes_sessions_with_1001() {
    let registry = SessionRegistry::new();
    let addr = start(registry.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut session = connect(addr).await;
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        clients.push(tokio::spawn(async move {
            let frames = drain(&mut session).await;
            (frames.len(), session.close_reason().await)
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
        let (frames, reason) = within("a client", client).await.unwrap();
        assert_eq!((frames, reason.code), (0, CloseCode::GoingAway));
    }
    assert_eq!(registry.session_count(), 0);

    // Upgrades after it are refused, with a hint to come back.
    match within("connect", tandem::connect(&format!("ws://{addr}/echo"))).await {
        Err(Error::HandshakeRefused {
            status: 503, body, ..
        }) => {
            assert!(body.contains("shutting down"), "{body:?}")
        }
        other => panic!("expected a 503 during the shutdown, got {other:?}"),
    }
}
