//! The server as a user meets it: HTTP answers for what is not a WebSocket
//! session, upgrade refusals, subprotocols per route, the request seen by
//! the handler. Static files are in `tests/static_files.rs`; how a
//! session ends (its handler returns, fails or panics, its peer closes or
//! vanishes) in `tests/session_end.rs`.
//!
//! What a handler and tandem's client see of each other runs on a
//! `TestServer`. These keep a real socket on 127.0.0.1: the HTTP answers
//! and upgrades read as bytes (404, 426, the refusals, a browser's
//! keep-alive upgrade, a refused upgrade that keeps its connection), the
//! accept loop (shutdown, a dropped `RunningServer`, fifty clients at
//! once, a listener served with a connection already waiting), and peers
//! tandem's client cannot play (one whose TCP connection just ends, one
//! that never reads).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::net::SocketAddr;

use common::{
    connect, connect_with, drain, http_exchange, next_text, read_http_response, within, ws_url,
    RawClient,
};
use tandem::server::{Route, RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, CloseCode, CloseReason, Error, Session};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn start(server: Server) -> RunningServer {
    server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

async fn quiet(mut session: Session) {
    while session.receive().await.is_some() {}
}

fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n")
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const V13: &str = "Sec-WebSocket-Version: 13\r\n";

#[tokio::test]
async fn unknown_paths_get_404() {
    let server = start(Server::new().web_socket("/ws", quiet)).await;
    let addr = server.local_addr();
    for path in ["/", "/nope", "/ws/extra", "/WS"] {
        let response = http_exchange(addr, &upgrade_request(addr, path, "")).await;
        assert_eq!(response.status, 404, "{path}");
    }
    // Also for a well-formed WebSocket upgrade to a path with no route.
    let extra = format!("{UPGRADE}{KEY}{V13}");
    let response = http_exchange(addr, &upgrade_request(addr, "/nope", &extra)).await;
    assert_eq!(response.status, 404);
    // And through the client, as a refused handshake.
    match within("connect", tandem::connect(&ws_url(&server, "/nope"))).await {
        Err(Error::HandshakeRefused { status: 404, .. }) => {}
        other => panic!("expected a 404 refusal, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_plain_get_on_a_websocket_path_gets_426_saying_why() {
    let server = start(Server::new().web_socket("/ws", quiet)).await;
    let addr = server.local_addr();
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", "")).await;
    assert_eq!(response.status, 426);
    let body = response.body_text();
    assert!(
        body.contains("WebSocket") && body.contains("Upgrade: websocket"),
        "the body says why: {body:?}"
    );
    assert_eq!(
        response.header("upgrade").map(str::to_ascii_lowercase),
        Some("websocket".into())
    );
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    // A query does not change the route.
    let response = http_exchange(addr, &upgrade_request(addr, "/ws?x=1", "")).await;
    assert_eq!(response.status, 426);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_upgrades_are_refused_with_a_reason() {
    let server = start(Server::new().web_socket("/ws", quiet)).await;
    let addr = server.local_addr();

    let wrong_version = format!("{UPGRADE}{KEY}Sec-WebSocket-Version: 8\r\n");
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", &wrong_version)).await;
    assert_eq!(response.status, 426, "{response:?}");
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    assert!(response.body_text().contains("13"), "{response:?}");

    let no_version = format!("{UPGRADE}{KEY}");
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", &no_version)).await;
    assert_eq!(response.status, 426, "{response:?}");

    let no_key = format!("{UPGRADE}{V13}");
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", &no_key)).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(
        response.body_text().contains("Sec-WebSocket-Key"),
        "{response:?}"
    );

    let short_key = format!("{UPGRADE}Sec-WebSocket-Key: c2hvcnQ=\r\n{V13}");
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", &short_key)).await;
    assert_eq!(response.status, 400, "{response:?}");

    // Each of the key and the version may appear once: with two keys, the
    // answer cannot prove which one it read.
    for twice in [format!("{KEY}{KEY}{V13}"), format!("{KEY}{V13}{V13}")] {
        let request = upgrade_request(addr, "/ws", &format!("{UPGRADE}{twice}"));
        let response = http_exchange(addr, &request).await;
        assert_eq!(response.status, 400, "{twice:?}: {response:?}");
        assert!(
            response.body_text().contains("more than once"),
            "{response:?}"
        );
    }

    let no_connection = format!("Upgrade: websocket\r\n{KEY}{V13}");
    let response = http_exchange(addr, &upgrade_request(addr, "/ws", &no_connection)).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(response.body_text().contains("Connection"), "{response:?}");

    let post = format!(
        "POST /ws HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n{UPGRADE}{KEY}{V13}\r\n"
    );
    let response = http_exchange(addr, &post).await;
    assert_eq!(response.status, 400, "{response:?}");

    // After all that the route still works.
    let mut session = connect(&server, "/ws").await;
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
    server.shutdown().await;
}

/// A handler that tells the client which subprotocol it got.
async fn tell_protocol(mut session: Session) {
    let chosen = session.protocol().unwrap_or("none").to_owned();
    let _ = session.send(chosen).await;
    while session.receive().await.is_some() {}
}

#[tokio::test]
async fn subprotocols_are_chosen_per_route_in_the_servers_order() {
    let server = TestServer::new(
        Server::new()
            .web_socket(
                Route::new("/chat").protocol("chat.v2").protocol("chat"),
                tell_protocol,
            )
            .web_socket("/plain", tell_protocol),
    );

    let cases: [(&[&str], &str); 4] = [
        (&["chat"], "chat"),
        (&["chat.v2"], "chat.v2"),
        // The server's preference wins over the client's order.
        (&["chat", "chat.v2"], "chat.v2"),
        (&["mqtt", "chat"], "chat"),
    ];
    for (offered, expected) in cases {
        let mut builder = ClientBuilder::new(server.url("/chat"));
        for protocol in offered {
            builder = builder.protocol(*protocol);
        }
        let mut session = connect_with(&server, builder)
            .await
            .unwrap_or_else(|e| panic!("offering {offered:?}: {e}"));
        assert_eq!(session.protocol(), Some(expected), "offering {offered:?}");
        assert_eq!(
            next_text(&mut session).await,
            expected,
            "the handler's view, offering {offered:?}"
        );
        within("close", session.close(CloseReason::normal()))
            .await
            .unwrap();
        drain(&mut session).await;
    }

    // Offering none of the route's subprotocols, or none at all: 400.
    for offered in [&["mqtt"][..], &[]] {
        let mut builder = ClientBuilder::new(server.url("/chat"));
        for protocol in offered {
            builder = builder.protocol(*protocol);
        }
        match connect_with(&server, builder).await {
            Err(Error::HandshakeRefused {
                status: 400, body, ..
            }) => {
                assert!(
                    body.contains("chat"),
                    "the body names the route's protocols: {body:?}"
                )
            }
            other => panic!("offering {offered:?}: expected a 400 refusal, got {other:?}"),
        }
    }

    // A route without subprotocols picks none, whatever the client offers.
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/plain")).protocol("chat"),
    )
    .await
    .unwrap();
    assert_eq!(session.protocol(), None);
    assert_eq!(next_text(&mut session).await, "none");
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
}

#[tokio::test]
async fn a_refused_subprotocol_leaves_the_connection_counted_and_usable() {
    let server =
        start(Server::new().web_socket(Route::new("/chat").protocol("chat"), tell_protocol)).await;
    let addr = server.local_addr();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let offering = |protocol: &str| {
        let extra = format!("{UPGRADE}{KEY}{V13}Sec-WebSocket-Protocol: {protocol}\r\n");
        upgrade_request(addr, "/chat", &extra)
    };

    within("write", stream.write_all(offering("mqtt").as_bytes()))
        .await
        .unwrap();
    let (response, rest) = within("the refusal", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(rest.is_empty());
    // The connection stays open, so it keeps its place under the cap ...
    assert_eq!(server.connection_count(), 1);

    // ... and, kept alive, it can still be upgraded.
    within("write", stream.write_all(offering("chat").as_bytes()))
        .await
        .unwrap();
    let (response, rest) = within("the upgrade", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("sec-websocket-protocol"), Some("chat"));
    let mut client = RawClient::from_parts(stream, rest);
    assert_eq!(client.read_frame().await.expect("a frame").text(), "chat");
    assert_eq!(server.session_count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_handler_sees_the_requests_path_query_and_headers() {
    let server = TestServer::new(Server::new().web_socket(
        "/info",
        |mut session: Session| async move {
            let request = session.request().expect("a server session has its request");
            let report = format!(
                "path={} query={} room={} x-test={} host-present={}",
                request.path(),
                request.query().unwrap_or("-"),
                request.query_param("room").as_deref().unwrap_or("-"),
                request
                    .headers()
                    .get("x-test")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
                request.headers().contains_key("host"),
            );
            let _ = session.send(report).await;
            while session.receive().await.is_some() {}
        },
    ));

    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/info?room=42&nick=ktor")).header("X-Test", "hello there"),
    )
    .await
    .unwrap();
    assert!(
        session.request().is_none(),
        "a client session has no request"
    );
    assert_eq!(
        next_text(&mut session).await,
        "path=/info query=room=42&nick=ktor room=42 x-test=hello there host-present=true"
    );
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let server = start(Server::new().web_socket("/echo", tandem::demo::echo)).await;
    let url = ws_url(&server, "/echo");
    let mut open = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut open).await, "Please enter your name");
    within("shutdown", server.shutdown()).await;
    match within("connect after shutdown", tandem::connect(&url)).await {
        Err(Error::Io(_)) => {}
        other => panic!("expected an I/O error after shutdown, got {other:?}"),
    }
    // Sessions already open run on.
    within("send", open.send("still")).await.unwrap();
    assert_eq!(next_text(&mut open).await, "Hi, still!");
    within("close", open.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut open).await;
}

#[tokio::test]
async fn a_dropped_running_server_keeps_serving() {
    let server = common::echo_demo_server().await;
    let url = ws_url(&server, "/echo");
    drop(server);
    let mut session = within("connect", tandem::connect(&url))
        .await
        .unwrap_or_else(|e| panic!("the server stopped with its handle: {e}"));
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("Ktor")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
}

#[tokio::test]
async fn serve_takes_a_listener_with_connections_already_waiting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    // Connected before anything serves: the kernel holds it in the backlog.
    let early = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect");
    let server = Server::new()
        .web_socket("/mirror", mirror)
        .serve(listener)
        .expect("serve the listener");
    assert_eq!(server.local_addr(), addr);
    let mut client = RawClient::handshake(early, addr, "/mirror").await;
    client.send(0x1, true, b"first in line").await;
    let echo = within("echo", client.read_frame()).await.expect("an echo");
    assert_eq!(echo.text(), "first in line");
    // And one that connects afterwards.
    let mut session = within("connect", tandem::connect(&ws_url(&server, "/mirror")))
        .await
        .expect("connect");
    within("send", session.send("second")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "second");
    server.shutdown().await;
}

async fn mirror(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn browser_style_upgrades_and_reused_connections_are_accepted() {
    use common::RawClient;
    use tokio::io::AsyncWriteExt;

    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "page\n").unwrap();
    let server = start(
        Server::new()
            .web_socket("/mirror", mirror)
            .static_files("/", root.path()),
    )
    .await;
    let addr = server.local_addr();

    // A page load, then the upgrade on the same keep-alive connection, with
    // Firefox's `Connection: keep-alive, Upgrade` and a capitalised token.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let get = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n");
    stream.write_all(get.as_bytes()).await.unwrap();
    let (page, rest) = within("the page", common::read_http_response(&mut stream)).await;
    assert_eq!((page.status, page.body_text().as_str()), (200, "page\n"));
    assert!(rest.is_empty());

    // The upgrade request and a first frame in one write, before the 101.
    let mut bytes = format!(
        "GET /mirror HTTP/1.1\r\nHost: {addr}\r\nUpgrade: WebSocket\r\n\
         Connection: keep-alive, Upgrade\r\n{KEY}{V13}\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&RawClient::encode(0x1, true, b"early bird"));
    stream.write_all(&bytes).await.unwrap();
    let (response, rest) = within("the 101", common::read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101, "{response:?}");
    let mut client = RawClient::from_parts(stream, rest);
    let echo = client.read_frame().await.expect("the early frame's echo");
    assert_eq!(echo.text(), "early bird");
    client.send_close(1000, "").await;
    let close = client.read_frame().await.expect("a Close");
    assert_eq!(close.opcode, 0x8);
    assert_eq!(client.read_frame().await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_long_close_reason_is_cut_to_fit_a_close_frame() {
    let server = TestServer::new(
        Server::new().web_socket("/long", |_session: Session| async move {
            Err::<(), _>("é".repeat(100))
        }),
    );
    let mut session = connect(&server, "/long").await;
    drain(&mut session).await;
    let reason = within("close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::InternalError);
    assert_eq!(
        reason.message,
        "é".repeat(61),
        "123 bytes at most, whole characters"
    );
}

/// Routes whose handler reports how its session ended on `report`.
fn reporting_routes(report: tokio::sync::mpsc::UnboundedSender<CloseReason>) -> Server {
    Server::new().web_socket("/report", move |mut session: Session| {
        let report = report.clone();
        async move {
            let _ = session.send("ready").await;
            while let Some(frame) = session.receive().await {
                if frame.read_text() == Some("close now") {
                    let _ = session
                        .close(CloseReason::new(CloseCode::Other(4001), "server"))
                        .await;
                }
            }
            let _ = report.send(session.close_reason().await);
        }
    })
}

#[tokio::test]
async fn closes_that_cross_end_cleanly_on_both_sides() {
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::new(reporting_routes(report));
    for _ in 0..10 {
        let mut session = connect(&server, "/report").await;
        assert_eq!(next_text(&mut session).await, "ready");
        // The server closes on "close now"; the client closes right behind it.
        within("send", session.send("close now")).await.unwrap();
        within(
            "close",
            session.close(CloseReason::new(CloseCode::Other(4002), "client")),
        )
        .await
        .unwrap();
        assert!(drain(&mut session).await.is_empty());
        let client_view = within("close reason", session.close_reason()).await;
        let server_view = within("the handler's report", reports.recv())
            .await
            .unwrap();
        // Each side ends with a code from the handshake, never 1006.
        for view in [&client_view, &server_view] {
            assert!(
                matches!(u16::from(view.code), 4001 | 4002),
                "client saw {client_view}, server saw {server_view}"
            );
        }
    }
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_after_the_handler_ends() {
    use std::time::Duration;
    let (report, reported) = tokio::sync::oneshot::channel();
    let report = std::sync::Mutex::new(Some(report));
    let options = tandem::WebSocketOptions {
        close_timeout: Duration::from_millis(200),
        ..tandem::WebSocketOptions::default()
    };
    let server = start(Server::new().web_socket(
        Route::new("/flood").options(options),
        move |session: Session| {
            let report = report.lock().unwrap().take();
            async move {
                let closed = session.close_reason();
                if let Some(report) = report {
                    tokio::spawn(async move {
                        let _ = report.send(closed.await);
                    });
                }
                // Send until the peer is clearly not reading, then return.
                let chunk = vec![0u8; 64 * 1024];
                loop {
                    let send = session.send(chunk.clone());
                    if tokio::time::timeout(Duration::from_millis(200), send)
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        },
    ))
    .await;
    // Connected, and never reads a byte.
    let client = common::RawClient::connect(server.local_addr(), "/flood").await;
    let reason = within("the server to give the session up", reported)
        .await
        .unwrap();
    assert_eq!(reason.code, CloseCode::ClosedAbnormally, "{reason}");
    drop(client);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_are_each_served_their_own_session() {
    const CLIENTS: usize = 50;
    let server = start(Server::new().web_socket("/echo", tandem::demo::echo)).await;
    let url = ws_url(&server, "/echo");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut session = tandem::connect(&url).await.expect("connect");
                assert_eq!(next_text(&mut session).await, "Please enter your name");
                for i in 0..10 {
                    session.send(format!("c{k} m{i}")).await.unwrap();
                    assert_eq!(next_text(&mut session).await, format!("Hi, c{k} m{i}!"));
                }
                session.send("bye").await.unwrap();
                drain(&mut session).await;
                session.close_reason().await
            })
        })
        .collect();
    for client in clients {
        let reason = within("a client", client).await.expect("client task");
        assert_eq!(
            reason,
            CloseReason::new(CloseCode::Normal, "Client said BYE")
        );
    }
    server.shutdown().await;
}

/// Ends when the session does, sending what the server saw as its close
/// reason on `seen`.
async fn report_close(session: Session, seen: tokio::sync::oneshot::Sender<CloseReason>) {
    let _ = seen.send(session.close_reason().await);
}

#[tokio::test]
async fn a_client_that_sends_then_awaits_the_close_reason_answers_the_servers_close() {
    // The echo demo closes with 1000 on "bye"; the client reads nothing
    // after sending it, only awaits the end, as Ktor's examples do.
    let (seen, server_saw) = tokio::sync::oneshot::channel();
    let seen = std::sync::Mutex::new(Some(seen));
    let server = TestServer::new(
        Server::new().web_socket("/echo", move |mut session: Session| {
            let seen = seen.lock().unwrap().take().expect("one session");
            async move {
                let _ = session.send("ready").await;
                let _ = session.receive().await;
                let _ = session
                    .close(CloseReason::new(CloseCode::Normal, "Client said BYE"))
                    .await;
                report_close(session, seen).await;
            }
        }),
    );
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "ready");
    session.send("bye").await.unwrap();
    let reason = within("the client's close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Normal, "{reason}");
    // The server got the client's answer: its handshake completed, it did
    // not time out (1006).
    let reason = within("the server's close reason", server_saw)
        .await
        .unwrap();
    assert_eq!(reason.code, CloseCode::Normal, "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_only_sends_still_answers_the_clients_close() {
    // A ticker: it never reads. The client's Close must still be answered
    // (after the engine's one-second grace), well before the client's own
    // close timeout would fail it with 1006. Both are virtual time here.
    common::watchdog(std::time::Duration::from_secs(60));
    let server = TestServer::new(Server::new().web_socket(
        "/ticks",
        |session: Session| async move {
            while session.send("tick").await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        },
    ));
    let options = tandem::WebSocketOptions {
        close_timeout: std::time::Duration::from_secs(4),
        ..Default::default()
    };
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/ticks")).options(options),
    )
    .await
    .unwrap();
    assert_eq!(next_text(&mut session).await, "tick");
    session
        .close(CloseReason::new(CloseCode::GoingAway, "leaving"))
        .await
        .unwrap();
    drain(&mut session).await;
    let reason = within("the close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::GoingAway, "{reason}");
}
