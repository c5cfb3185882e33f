//! Liveness, limits, backpressure, origins and graceful shutdown, against
//! a real server on 127.0.0.1: what a hostile or broken peer meets. They
//! need the socket: hand-written peers that vanish or never read, caps on
//! connections and per address, HTTP timeouts, TCP flow control, and the
//! accept loop's shutdown. The one test with a well-behaved tandem client
//! on both ends, a peer that answers pings, runs on a `TestServer` and a
//! paused clock.
//!
//! Timeouts here are set short so that the tests run fast; every wait is
//! bounded by the hang guard of `common::within`, and no test asserts how
//! long anything took.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{connect, drain, http_exchange, next_text, watchdog, within, RawClient};
use tandem::server::{Route, RunningServer, Server, ShutdownReport};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, CloseCode, CloseReason, Error, Session, WebSocketOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

async fn start(server: Server) -> RunningServer {
    server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A handler that reports how its session ended, and never reads.
fn reporting(reasons: mpsc::UnboundedSender<CloseReason>) -> impl Fn(Session) -> ReportFut + Clone {
    move |session: Session| {
        let reasons = reasons.clone();
        Box::pin(async move {
            let reason = session.close_reason().await;
            let _ = reasons.send(reason);
        })
    }
}
type ReportFut = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Reads from `stream` until end of file or an error; returns the bytes read.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return bytes,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

// ----- liveness ----------------------------------------------------------------

#[tokio::test]
async fn a_half_open_peer_is_detected_by_the_ping_timeout() {
    // The real timer path: tokio's clock drives the engine's ping and
    // timeout. The peer completes the handshake, then vanishes without a
    // FIN: it neither reads nor writes another byte.
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_millis(50)),
        timeout: Duration::from_millis(300),
        ..WebSocketOptions::default()
    };
    let server =
        start(Server::new().web_socket(Route::new("/ws").options(options), reporting(tx))).await;
    let vanished = RawClient::connect(server.local_addr(), "/ws").await;
    let reason = within("the ping timeout", reasons.recv()).await.unwrap();
    assert_eq!(reason.code, CloseCode::InternalError, "{reason}");
    assert!(
        reason.message.contains("of a ping"),
        "the reason says why: {reason}"
    );
    drop(vanished);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_pings_stays_connected_past_many_timeouts() {
    // The counterpart: with pongs coming back, the same settings keep the
    // session open (the client's engine answers every ping). On a paused
    // clock: thirty ping periods and three timeouts of virtual time.
    watchdog(Duration::from_secs(60));
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_millis(20)),
        timeout: Duration::from_millis(200),
        ..WebSocketOptions::default()
    };
    let server = TestServer::new(
        Server::new().web_socket(Route::new("/ws").options(options), reporting(tx)),
    );
    let session = connect(&server, "/ws").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        reasons.try_recv().is_err(),
        "the session must still be open"
    );
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    let reason = within("the close", reasons.recv()).await.unwrap();
    assert_eq!(reason.code, CloseCode::Normal);
}

#[tokio::test]
async fn a_peer_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let options = WebSocketOptions {
        close_timeout: Duration::from_millis(200),
        ..WebSocketOptions::default()
    };
    let server = start(Server::new().web_socket(
        Route::new("/ws").options(options),
        move |session: Session| {
            let tx = tx.clone();
            async move {
                let closed = session.close_reason();
                let _ = session
                    .close(CloseReason::new(CloseCode::Normal, "bye"))
                    .await;
                let _ = tx.send(closed.await);
            }
        },
    ))
    .await;
    let mut client = RawClient::connect(server.local_addr(), "/ws").await;
    let close = client.read_frame().await.expect("the server's Close");
    assert_eq!(close.opcode, 0x8);
    // Never answered: the server gives the handshake up and hangs up.
    let reason = within("the close timeout", reasons.recv()).await.unwrap();
    assert_eq!(reason.code, CloseCode::ClosedAbnormally, "{reason}");
    assert!(
        reason.message.contains("close handshake timed out"),
        "{reason}"
    );
    assert_eq!(client.read_frame().await, None, "the server hangs up");
    server.shutdown().await;
}

// ----- limits --------------------------------------------------------------------

#[tokio::test]
async fn a_frame_over_max_frame_size_closes_with_1009_before_its_payload_arrives() {
    let options = WebSocketOptions {
        max_frame_size: Some(1 << 20),
        ..WebSocketOptions::default()
    };
    let server = start(Server::new().web_socket(
        Route::new("/ws").options(options),
        |mut s: Session| async move { while s.receive().await.is_some() {} },
    ))
    .await;
    let mut client = RawClient::connect(server.local_addr(), "/ws").await;
    // The header of a 1 GiB binary frame, and not one byte of its payload:
    // the answer can only come from the header.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    within("write", client.stream.write_all(&header))
        .await
        .unwrap();
    let close = client.read_frame().await.expect("a Close");
    assert_eq!(close.opcode, 0x8);
    assert_eq!(
        u16::from_be_bytes([close.payload[0], close.payload[1]]),
        1009
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431_and_the_server_keeps_serving() {
    for (limit, header_len) in [(16 * 1024, 20 * 1024), (4 * 1024, 6 * 1024)] {
        let server = start(
            Server::new()
                .max_request_head(limit)
                .web_socket("/echo", tandem::demo::echo),
        )
        .await;
        let addr = server.local_addr();
        let big = format!("X-Padding: {}\r\n", "a".repeat(header_len));
        let response = http_exchange(addr, &upgrade_request(addr, "/echo", &big)).await;
        assert_eq!(response.status, 431, "limit {limit}: {response:?}");
        // Under the limit, the same server upgrades.
        let mut session = connect(&server, "/echo").await;
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_request_is_dropped() {
    let server = start(
        Server::new()
            .handshake_timeout(Duration::from_millis(300))
            .web_socket("/echo", tandem::demo::echo),
    )
    .await;
    let addr = server.local_addr();
    let request = upgrade_request(addr, "/echo", "");
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 20 ms: the whole request would take seconds.
    let trickle = tokio::spawn(async move {
        for byte in request.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    let mut answer = Vec::new();
    let _ = within(
        "the server to drop the slow client",
        reader.read_to_end(&mut answer),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 101 "),
        "the slow request must not be upgraded: {:?}",
        String::from_utf8_lossy(&answer)
    );
    trickle.abort();
    // A client that connects and says nothing is dropped too.
    let mut silent = within("connect", TcpStream::connect(addr)).await.unwrap();
    assert!(within(
        "the silent client to be dropped",
        read_until_closed(&mut silent)
    )
    .await
    .is_empty());
    // Well-behaved clients are still served.
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    server.shutdown().await;
}

#[tokio::test]
async fn upgrades_over_the_connection_cap_get_503_and_open_sessions_are_untouched() {
    let server = start(
        Server::new()
            .max_connections(Some(2))
            .web_socket("/echo", tandem::demo::echo),
    )
    .await;
    let url = common::ws_url(&server, "/echo");
    let mut first = connect(&server, "/echo").await;
    let mut second = connect(&server, "/echo").await;
    for session in [&mut first, &mut second] {
        assert_eq!(next_text(session).await, "Please enter your name");
    }
    match within("a third connect", tandem::connect(&url)).await {
        Err(Error::HandshakeRefused { status: 503, .. }) => {}
        other => panic!("expected 503 over the cap, got {other:?}"),
    }
    // The open sessions did not notice.
    for (k, session) in [&mut first, &mut second].into_iter().enumerate() {
        within("send", session.send(format!("s{k}"))).await.unwrap();
        assert_eq!(next_text(session).await, format!("Hi, s{k}!"));
    }
    // Once one leaves, there is room again.
    within("send", first.send("bye")).await.unwrap();
    drain(&mut first).await;
    within("the slot to be freed", async {
        while server.session_count() > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut third = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut third).await, "Please enter your name");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_is_dropped() {
    const SIZE: u64 = 64 << 20;
    let root = tempfile::tempdir().unwrap();
    common::sparse_file(root.path(), "big.bin", SIZE);
    let server = start(
        Server::new()
            .http_idle_timeout(Duration::from_millis(300))
            .static_files("/", root.path()),
    )
    .await;
    let addr = server.local_addr();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let get = format!("GET /big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (response, early) = within("the head", common::read_response_head(&mut stream)).await;
    assert_eq!(response.status, 200);
    // The client reads no more: once the socket buffers are full the
    // server's writes stall, and it gives the connection up.
    within("the stalled connection to be dropped", async {
        while server.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let rest = read_until_closed(&mut stream).await;
    assert!(
        ((early.len() + rest.len()) as u64) < SIZE,
        "the whole file was sent to a client that stopped reading"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_keep_alive_connection_that_sends_nothing_is_dropped() {
    // A long head timeout: the idle timeout alone ends the connection.
    let server = start(
        Server::new()
            .handshake_timeout(Duration::from_secs(60))
            .http_idle_timeout(Duration::from_millis(300))
            .web_socket("/echo", tandem::demo::echo),
    )
    .await;
    let addr = server.local_addr();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let get = format!("GET /nothing HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (response, rest) = within("a 404", common::read_http_response(&mut stream)).await;
    assert_eq!(response.status, 404);
    assert!(rest.is_empty());
    assert!(within(
        "the quiet connection to be dropped",
        read_until_closed(&mut stream)
    )
    .await
    .is_empty());
    // A WebSocket session is not an HTTP connection: it outlives the idle
    // timeout.
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    tokio::time::sleep(Duration::from_millis(600)).await;
    within("send", session.send("Ktor")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    server.shutdown().await;
}

#[tokio::test]
async fn every_connection_counts_against_the_cap_and_one_over_it_gets_503() {
    let server = start(
        Server::new()
            .max_connections(Some(2))
            .web_socket("/echo", tandem::demo::echo),
    )
    .await;
    let addr = server.local_addr();
    let url = common::ws_url(&server, "/echo");
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    // A keep-alive HTTP connection that has had its answer and stays open
    // holds the second place.
    let get = format!("GET /nothing HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut keep_alive = within("connect", TcpStream::connect(addr)).await.unwrap();
    within("write", keep_alive.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (answer, _) = within("a 404", common::read_http_response(&mut keep_alive)).await;
    assert_eq!(answer.status, 404);

    // A third connection is refused with a 503 that says so, then closed.
    let mut refused = within("connect", TcpStream::connect(addr)).await.unwrap();
    within("write", refused.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (response, rest) = within("the 503", common::read_http_response(&mut refused)).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.header("retry-after"), Some("5"));
    assert_eq!(response.header("connection"), Some("close"));
    assert!(
        response.body_text().contains("too many connections"),
        "{response:?}"
    );
    assert!(rest.is_empty());
    assert!(within("the close", read_until_closed(&mut refused))
        .await
        .is_empty());
    // So is an upgrade.
    match within("a third connect", tandem::connect(&url)).await {
        Err(Error::HandshakeRefused { status: 503, .. }) => {}
        other => panic!("expected 503 over the cap, got {other:?}"),
    }
    // The session did not notice.
    within("send", session.send("Ktor")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");

    // Once the HTTP connection leaves there is room again.
    drop(keep_alive);
    let mut third = within("room for a third", async {
        loop {
            match tandem::connect(&url).await {
                Ok(session) => return session,
                Err(Error::HandshakeRefused { status: 503, .. }) => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
    })
    .await;
    assert_eq!(next_text(&mut third).await, "Please enter your name");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_per_address_get_503_and_other_addresses_are_served() {
    let server = start(
        Server::new()
            .max_connections_per_ip(Some(1))
            .web_socket("/echo", tandem::demo::echo),
    )
    .await;
    let addr = server.local_addr();
    let home = Ipv4Addr::new(127, 0, 0, 1);
    let mut first =
        RawClient::handshake(common::connect_from(home, addr).await, addr, "/echo").await;
    assert_eq!(
        first.read_frame().await.unwrap().text(),
        "Please enter your name"
    );

    let response = http_exchange(addr, &upgrade_request(addr, "/echo", "")).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.header("retry-after"), Some("5"));
    assert!(
        response.body_text().contains("from your address"),
        "{response:?}"
    );

    // Another client address has a place of its own.
    let elsewhere = Ipv4Addr::new(127, 0, 0, 2);
    let mut other =
        RawClient::handshake(common::connect_from(elsewhere, addr).await, addr, "/echo").await;
    assert_eq!(
        other.read_frame().await.unwrap().text(),
        "Please enter your name"
    );
    // The first session did not notice.
    first.send(0x1, true, b"Ktor").await;
    assert_eq!(first.read_frame().await.unwrap().text(), "Hi, Ktor!");
    server.shutdown().await;
}

#[tokio::test]
async fn the_largest_option_values_mean_no_limit_and_the_server_serves() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "page\n").unwrap();
    let server = start(
        Server::new()
            .handshake_timeout(Duration::MAX)
            .http_idle_timeout(Duration::MAX)
            .max_connections(Some(usize::MAX))
            .max_connections_per_ip(Some(usize::MAX))
            .max_request_head(usize::MAX)
            .web_socket("/echo", tandem::demo::echo)
            .static_files("/", root.path()),
    )
    .await;
    let addr = server.local_addr();
    // A page and then an upgrade on one keep-alive connection: every
    // timer of the HTTP side is armed on the way.
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let get = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (page, _) = within("the page", common::read_http_response(&mut stream)).await;
    assert_eq!((page.status, page.body_text().as_str()), (200, "page\n"));
    let mut raw = RawClient::handshake(stream, addr, "/echo").await;
    assert_eq!(
        raw.read_frame().await.unwrap().text(),
        "Please enter your name"
    );
    raw.send(0x1, true, b"Ktor").await;
    assert_eq!(raw.read_frame().await.unwrap().text(), "Hi, Ktor!");
    // And the tandem client's session.
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("MAX")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, MAX!");
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
    drop(raw);
    let report = within(
        "a graceful shutdown without a deadline",
        server.shutdown_gracefully(Duration::MAX),
    )
    .await;
    assert_eq!(report.dropped, 0);
}

// ----- origins -------------------------------------------------------------------

/// A handler that counts its sessions, greets and waits for the end.
fn welcoming(calls: Arc<AtomicUsize>) -> impl Fn(Session) -> ReportFut + Clone {
    move |session: Session| {
        calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let _ = session.send("welcome").await;
            session.close_reason().await;
        })
    }
}

/// The status of an upgrade to `/ws` with these `Host` and `Origin` values.
async fn upgrade_status(addr: SocketAddr, host: &str, origin: &str) -> u16 {
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    http_exchange(addr, &request).await.status
}

#[tokio::test]
async fn by_default_only_the_servers_own_pages_may_open_a_session() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(Server::new().web_socket("/ws", welcoming(calls.clone()))).await;
    let addr = server.local_addr();
    let here = addr.to_string();
    let other_port = format!("http://127.0.0.1:{}", addr.port() ^ 1);
    let cases = [
        // The server's own pages, whatever the case; a host without a port
        // is on its scheme's default one.
        (here.as_str(), format!("http://{addr}"), 101),
        (here.as_str(), format!("HTTP://{addr}/"), 101),
        ("chat.example", "http://Chat.Example:80".to_owned(), 101),
        ("chat.example", "https://chat.example".to_owned(), 101),
        // Pages of other hosts or ports, and opaque origins.
        (
            here.as_str(),
            format!("http://localhost:{}", addr.port()),
            403,
        ),
        (here.as_str(), other_port, 403),
        (here.as_str(), "https://evil.example".to_owned(), 403),
        (here.as_str(), "null".to_owned(), 403),
        ("chat.example:8443", "https://chat.example".to_owned(), 403),
    ];
    let mut accepted = 0;
    for (host, origin, status) in &cases {
        let got = upgrade_status(addr, host, origin).await;
        assert_eq!(got, *status, "Origin {origin} on Host {host}");
        accepted += usize::from(got == 101);
    }
    // A client that sends no Origin (not a browser) is accepted.
    let mut session = connect(&server, "/ws").await;
    assert_eq!(next_text(&mut session).await, "welcome");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        accepted + 1,
        "no refused upgrade reaches the handler"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn allow_any_origin_lets_every_page_open_a_session() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(
        Server::new()
            .allow_any_origin()
            .web_socket("/ws", welcoming(calls.clone())),
    )
    .await;
    let addr = server.local_addr();
    for origin in ["https://evil.example", "null"] {
        assert_eq!(
            upgrade_status(addr, &addr.to_string(), origin).await,
            101,
            "{origin}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn origins_not_on_the_allow_list_get_403_and_never_reach_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = start(
        Server::new()
            .allowed_origins(["http://good.example"])
            .web_socket("/ws", welcoming(calls.clone())),
    )
    .await;
    let addr = server.local_addr();
    for origin in [
        "http://evil.example",
        "null",
        "http://good.example.evil.example",
    ] {
        let request = upgrade_request(addr, "/ws", &format!("Origin: {origin}\r\n"));
        let response = http_exchange(addr, &request).await;
        assert_eq!(response.status, 403, "{origin}: {response:?}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no refused upgrade reaches the handler"
    );
    // A listed origin (any case) and a client that sends no Origin get in.
    for extra in ["Origin: http://GOOD.example\r\n", ""] {
        let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
        let mut stream = stream;
        within(
            "write",
            stream.write_all(upgrade_request(addr, "/ws", extra).as_bytes()),
        )
        .await
        .unwrap();
        let (response, rest) = common::read_http_response(&mut stream).await;
        assert_eq!(response.status, 101, "{extra:?}");
        let mut client = RawClient::from_parts(stream, rest);
        assert_eq!(client.read_frame().await.unwrap().text(), "welcome");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.shutdown().await;
}

// ----- graceful shutdown -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_1001_waits_for_the_handshakes_and_drops_the_rest() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let server = start(Server::new().web_socket("/ws", reporting(tx))).await;
    let url = common::ws_url(&server, "/ws");
    // Three clients that read (so their engines answer the Close).
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut session = connect(&server, "/ws").await;
        clients.push(tokio::spawn(async move {
            let frames = drain(&mut session).await;
            (frames.len(), session.close_reason().await)
        }));
    }
    // One peer that never reads again, so never answers the Close.
    let stuck = RawClient::connect(server.local_addr(), "/ws").await;
    within("four sessions", async {
        while server.session_count() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    let report = within(
        "the graceful shutdown",
        server.shutdown_gracefully(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(
        report,
        ShutdownReport {
            sessions: 4,
            closed: 3,
            dropped: 1
        }
    );
    // Every client saw 1001 Going Away ...
    for client in clients {
        let (frames, reason) = within("a client", client).await.unwrap();
        assert_eq!((frames, reason.code), (0, CloseCode::GoingAway));
    }
    // ... and so did every handler, the dropped session's too.
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(
            within("a handler's reason", reasons.recv())
                .await
                .unwrap()
                .code,
        );
    }
    assert!(
        codes.iter().all(|c| *c == CloseCode::GoingAway),
        "{codes:?}"
    );
    // The server is gone.
    assert!(matches!(
        within("connect after shutdown", tandem::connect(&url)).await,
        Err(Error::Io(_))
    ));
    drop(stuck);
}

#[tokio::test]
async fn graceful_shutdown_lets_a_download_in_flight_finish_with_no_session_open() {
    const SIZE: u64 = 32 << 20;
    let root = tempfile::tempdir().unwrap();
    common::sparse_file(root.path(), "big.bin", SIZE);
    let server = start(Server::new().static_files("/", root.path())).await;
    let addr = server.local_addr();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let get = format!("GET /big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    within("write", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (response, early) = within("the head", common::read_response_head(&mut stream)).await;
    assert_eq!(response.status, 200);
    // The shutdown begins with most of the file still to send (more than
    // the socket buffers hold), and no session open.
    let shutdown = tokio::spawn(server.shutdown_gracefully(Duration::from_secs(15)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest = within("the rest of the file", read_until_closed(&mut stream)).await;
    assert_eq!(
        (early.len() + rest.len()) as u64,
        SIZE,
        "the download was cut short by the shutdown"
    );
    let report = within("the shutdown", shutdown).await.unwrap();
    assert_eq!(
        report,
        ShutdownReport {
            sessions: 0,
            closed: 0,
            dropped: 0
        }
    );
}

// ----- backpressure ----------------------------------------------------------------

#[tokio::test]
async fn a_handler_that_does_not_read_makes_the_session_stop_reading_the_socket() {
    // The handler holds its session and reads nothing. The client writes
    // 64 KiB frames until a write stalls: TCP flow control must push back
    // long before the cap, because the server stops reading once its
    // incoming queue is full instead of buffering without bound.
    const CAP: usize = 256 << 20;
    let server = start(
        Server::new().web_socket("/ws", |session: Session| async move {
            session.close_reason().await;
        }),
    )
    .await;
    let mut client = RawClient::connect(server.local_addr(), "/ws").await;
    let frame = RawClient::encode(0x2, true, &vec![7u8; 64 * 1024]);
    let mut written = 0;
    let stalled = loop {
        if written >= CAP {
            break false;
        }
        match tokio::time::timeout(Duration::from_millis(500), client.stream.write_all(&frame))
            .await
        {
            Ok(Ok(())) => written += frame.len(),
            Ok(Err(e)) => panic!("write failed: {e}"),
            Err(_) => break true,
        }
    };
    eprintln!("writes stalled after {} KiB", written / 1024);
    assert!(
        stalled,
        "the server read {written} bytes that nobody handled"
    );
    assert!(
        written < 64 << 20,
        "{written} bytes were taken before the push-back"
    );
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_whose_reader_is_full_stops_reading_too() {
    // The same on the client side: a session whose handler does not read
    // stops reading the socket, so a flooding server's writes stall.
    let flood = Arc::new(Mutex::new(None));
    let result = flood.clone();
    let server = start(Server::new().web_socket("/flood", move |session: Session| {
        let result = result.clone();
        async move {
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0usize;
            let stalled = loop {
                if sent >= 256 << 20 {
                    break false;
                }
                match tokio::time::timeout(Duration::from_millis(500), session.send(chunk.clone()))
                    .await
                {
                    Ok(Ok(())) => sent += chunk.len(),
                    Ok(Err(_)) => break false,
                    Err(_) => break true,
                }
            };
            *result.lock().unwrap() = Some((stalled, sent));
        }
    }))
    .await;
    let session = within(
        "connect",
        ClientBuilder::new(common::ws_url(&server, "/flood")).connect(),
    )
    .await
    .unwrap();
    let (stalled, sent) = within("the flood to stall", async {
        loop {
            if let Some(result) = *flood.lock().unwrap() {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(stalled, "the client took {sent} bytes that nobody read");
    assert!(
        sent < 64 << 20,
        "{sent} bytes were taken before the push-back"
    );
    drop(session);
    server.shutdown().await;
}
