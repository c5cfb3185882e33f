//! tandem's native client against hand-written servers: what a user sees
//! when the server refuses, misbehaves, stalls or goes silent, and the
//! limits and keepalive of its options.
//!
//! The hand-written servers listen on 127.0.0.1, as do the tests of what
//! the client does with its URL (host names, user info, requests refused
//! before anything is sent). Where tandem's own server is the peer (a
//! refusal, message limits, keepalive, a hand-built Close) the routes run
//! on a `TestServer`, the keepalive on a paused clock.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{connect_with, drain, hand_written_server, next_text, switching, watchdog, within};
use tandem::server::{Route, Server};
use tandem::testing::TestServer;
use tandem::{
    ClientBuilder, CloseCode, CloseReason, Error, Frame, FrameType, Session, WebSocketOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn accept(key: &str) -> String {
    tandem::protocol::handshake::accept_key(key)
}

#[tokio::test]
async fn urls_that_cannot_be_used_are_refused() {
    for url in [
        "http://127.0.0.1/",
        "not a url",
        "ws:///no-host",
        // Not port 80: a port that is not a number is an error.
        "ws://127.0.0.1:eighty/",
        "ws://127.0.0.1:65536/",
    ] {
        match within("connect", tandem::connect(url)).await {
            Err(Error::InvalidUrl { .. }) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_invalid_url_is_reported_without_its_password() {
    match tandem::connect("ws://alice:s3cret@127.0.0.1:eighty/").await {
        Err(error @ Error::InvalidUrl { .. }) => {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("alice:***@"), "{shown}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_carries_its_status_and_body() {
    let server = TestServer::new(Server::new());
    match within("connect", server.connect("/nowhere")).await {
        Err(Error::HandshakeRefused { status, body, .. }) => {
            assert_eq!(status, 404);
            assert!(body.contains("/nowhere"), "{body:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_carries_the_servers_retry_after() {
    use tandem::server::Admission;
    let route = Route::new("/busy").before_upgrade(|_| async {
        Admission::refuse(
            http::Response::builder()
                .status(503)
                .header("retry-after", "7")
                .body("busy")
                .unwrap(),
        )
    });
    let server = Server::new()
        .web_socket(route, |_session: Session| async {})
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    match within(
        "connect",
        tandem::connect(&common::ws_url(&server, "/busy")),
    )
    .await
    {
        Err(Error::HandshakeRefused {
            status: 503,
            retry_after,
            ..
        }) => assert_eq!(retry_after, Some(Duration::from_secs(7))),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Without the header, there is nothing to wait for.
    match within(
        "connect",
        tandem::connect(&common::ws_url(&server, "/nowhere")),
    )
    .await
    {
        Err(Error::HandshakeRefused {
            status: 404,
            retry_after: None,
            ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    let (url, server) = hand_written_server(|stream, _key| async move {
        // Hold the connection open, say nothing, until the client gives up.
        let mut stream = stream;
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let options = WebSocketOptions {
        timeout: Duration::from_millis(300),
        ..WebSocketOptions::default()
    };
    let result = within(
        "connect",
        ClientBuilder::new(&url).options(options).connect(),
    )
    .await;
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn a_server_that_hangs_up_during_the_handshake_is_an_error() {
    let (url, server) = hand_written_server(|stream, _key| async move { drop(stream) }).await;
    match within("connect", tandem::connect(&url)).await {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
            assert!(e.to_string().contains("closed"), "{e}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn a_wrong_accept_key_is_an_error() {
    let (url, server) = hand_written_server(|mut stream, _key| async move {
        let response = switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
        stream.write_all(response.as_bytes()).await.unwrap();
    })
    .await;
    match within("connect", tandem::connect(&url)).await {
        Err(Error::Handshake(reason)) => assert!(reason.contains("Accept"), "{reason}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn a_subprotocol_that_was_not_offered_is_an_error() {
    let (url, server) = hand_written_server(|mut stream, key| async move {
        let response = switching(&accept(&key), "Sec-WebSocket-Protocol: mqtt\r\n");
        stream.write_all(response.as_bytes()).await.unwrap();
    })
    .await;
    match within(
        "connect",
        ClientBuilder::new(&url).protocol("chat").connect(),
    )
    .await
    {
        Err(Error::Handshake(reason)) => assert!(reason.contains("subprotocol"), "{reason}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn frames_sent_right_behind_the_101_are_not_lost() {
    let (url, server) = hand_written_server(|mut stream, key| async move {
        // The answer and two frames in one write: the client reads them all
        // in one go and must keep what follows the head.
        let mut bytes = switching(&accept(&key), "").into_bytes();
        bytes.extend_from_slice(&[0x81, 5]);
        bytes.extend_from_slice(b"first");
        bytes.extend_from_slice(&[0x81, 6]);
        bytes.extend_from_slice(b"second");
        stream.write_all(&bytes).await.unwrap();
        // Then close: 1000 "over".
        let mut close = vec![0x88, 6];
        close.extend_from_slice(&1000u16.to_be_bytes());
        close.extend_from_slice(b"over");
        stream.write_all(&close).await.unwrap();
        // Read the client's answer, then end the connection.
        let mut answer = [0u8; 64];
        let _ = stream.read(&mut answer).await;
    })
    .await;
    let mut session = within("connect", tandem::connect(&url)).await.unwrap();
    assert_eq!(next_text(&mut session).await, "first");
    assert_eq!(next_text(&mut session).await, "second");
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await,
        CloseReason::new(CloseCode::Normal, "over")
    );
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn a_message_and_the_end_of_the_connection_behind_the_101_are_not_lost() {
    // Autobahn's getCaseCount: the answer, one text and a Close, then the
    // server hangs up at once. The end of file must not overtake the text
    // that the client already has in its buffer.
    let (url, server) = hand_written_server(|mut stream, key| async move {
        let mut bytes = switching(&accept(&key), "").into_bytes();
        bytes.extend_from_slice(&[0x81, 3]);
        bytes.extend_from_slice(b"517");
        bytes.extend_from_slice(&[0x88, 2]);
        bytes.extend_from_slice(&1000u16.to_be_bytes());
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
    })
    .await;
    let mut session = within("connect", tandem::connect(&url)).await.unwrap();
    assert_eq!(next_text(&mut session).await, "517");
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test]
async fn a_silent_peer_is_given_up_by_the_keepalive() {
    let (url, server) = hand_written_server(|mut stream, key| async move {
        let response = switching(&accept(&key), "");
        stream.write_all(response.as_bytes()).await.unwrap();
        // Read everything (pings included) and never answer.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_millis(50)),
        timeout: Duration::from_millis(300),
        ..WebSocketOptions::default()
    };
    let mut session = within(
        "connect",
        ClientBuilder::new(&url).options(options).connect(),
    )
    .await
    .unwrap();
    assert!(drain(&mut session).await.is_empty());
    let reason = within("close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::InternalError, "{reason}");
    assert!(reason.message.contains("of a ping"), "{reason}");
    drop(session);
    within("the hand-written server", server).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_a_live_session_open() {
    // Both ends ping every 20 ms and give up after 2 s of silence; the
    // session outlives many ping periods (of virtual time) and still works.
    watchdog(Duration::from_secs(60));
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_millis(20)),
        timeout: Duration::from_secs(2),
        ..WebSocketOptions::default()
    };
    let server = TestServer::new(common::echo_demo().options(options.clone()));
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/echo")).options(options),
    )
    .await
    .unwrap();
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    for i in 0..5 {
        // Let some ping periods pass between messages.
        tokio::time::sleep(Duration::from_millis(60)).await;
        within("send", session.send(format!("n{i}"))).await.unwrap();
        assert_eq!(next_text(&mut session).await, format!("Hi, n{i}!"));
    }
    within("send", session.send("bye")).await.unwrap();
    drain(&mut session).await;
    assert_eq!(
        session.close_reason().await,
        CloseReason::new(CloseCode::Normal, "Client said BYE")
    );
}

async fn mirror(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn a_message_over_the_servers_limit_closes_with_1009() {
    let limits = WebSocketOptions {
        max_message_size: Some(1024),
        ..WebSocketOptions::default()
    };
    let server = TestServer::new(
        Server::new()
            .web_socket(Route::new("/small").options(limits), mirror)
            .web_socket("/big", mirror),
    );

    // Within the limit: echoed.
    let mut session = common::connect(&server, "/small").await;
    within("send", session.send(vec![7u8; 1024])).await.unwrap();
    let frame = common::next_frame(&mut session).await;
    assert_eq!(frame.read_bytes().len(), 1024);
    // Over it: the server fails the session with 1009.
    within("send", session.send(vec![7u8; 1025])).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await.code,
        CloseCode::TooBig
    );

    // The route's options are its own: other routes keep the defaults.
    let mut session = common::connect(&server, "/big").await;
    within("send", session.send(vec![7u8; 4096])).await.unwrap();
    assert_eq!(
        common::next_frame(&mut session).await.read_bytes().len(),
        4096
    );
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
}

#[tokio::test]
async fn a_message_over_the_clients_limit_closes_with_1009() {
    let server = TestServer::new(Server::new().web_socket(
        "/flood",
        |session: Session| async move {
            let _ = session.send(vec![1u8; 10_000]).await;
            let _ = session.close_reason().await;
        },
    ));
    let options = WebSocketOptions {
        max_message_size: Some(1000),
        ..WebSocketOptions::default()
    };
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/flood")).options(options),
    )
    .await
    .unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await.code,
        CloseCode::TooBig
    );
}

#[tokio::test]
async fn host_names_and_urls_without_a_path_connect() {
    let server = Server::new()
        .web_socket("/", tandem::demo::echo)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let port = server.local_addr().port();
    for url in [
        format!("ws://127.0.0.1:{port}"),
        format!("ws://127.0.0.1:{port}/"),
        format!("ws://localhost:{port}/"),
    ] {
        let mut session = within("connect", tandem::connect(&url))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        within("close", session.close(CloseReason::normal()))
            .await
            .unwrap();
        drain(&mut session).await;
        assert!(session.outgoing().is_closed());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_close_frame_built_by_hand_is_refused_like_a_bad_close_reason() {
    let server = TestServer::new(Server::new().web_socket("/mirror", mirror));
    let mut session = common::connect(&server, "/mirror").await;
    for payload in [
        &b"\x03"[..],        // 1 byte: no room for a code
        b"\x03\xed",         // 1005: local use only
        b"\x03\xee",         // 1006: local use only
        b"\x03\xe7",         // 999: below the range
        b"\x13\x88",         // 5000: above the range
        b"\x03\xe8\xff\xfe", // 1000 with a reason that is not UTF-8
        b"\x03\xed\xc3",     // 1005 and a cut UTF-8 sequence
    ] {
        let frame = Frame::new(FrameType::Close, payload.to_vec());
        match within("send", session.send(frame)).await {
            Err(Error::InvalidFrame(why)) => assert!(!why.is_empty()),
            other => panic!("{payload:?}: expected InvalidFrame, got {other:?}"),
        }
    }
    // Nothing went out: the session is still open both ways.
    within("send", session.send("still open")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "still open");
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
    assert_eq!(session.close_reason().await, CloseReason::normal());
}

/// A listener that reports what reaches it: a request head (answered with
/// 101), or that no client connected at all.
struct Recorder {
    listener: tokio::net::TcpListener,
}

impl Recorder {
    async fn new() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Accepts one connection, reads its request head and answers 101.
    async fn answer_one(&self) -> String {
        let (mut stream, _) = self.listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "a whole head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = header_values(&head, "sec-websocket-key").remove(0);
        let response = switching(&accept(&key), "");
        stream.write_all(response.as_bytes()).await.unwrap();
        // Keep the connection open until the client is done with it.
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        });
        head
    }

    /// Whether no client has connected (by the time a refused `connect`
    /// returned, any connection it made would be waiting here).
    async fn nobody_connected(&self) -> bool {
        tokio::time::timeout(Duration::from_millis(200), self.listener.accept())
            .await
            .is_err()
    }
}

/// The values of every `name` line of a request head, in order.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn a_request_with_injected_lines_is_refused_before_anything_is_sent() {
    let recorder = Recorder::new().await;
    let url = format!("ws://127.0.0.1:{}/test", recorder.port());
    // Short, so that a client that does connect fails quickly instead.
    let options = WebSocketOptions {
        timeout: Duration::from_secs(1),
        ..WebSocketOptions::default()
    };
    let builder = || ClientBuilder::new(&url).options(options.clone());
    for (client, what) in [
        (builder().protocol("chat\r\nX-Evil: 1"), "not a valid token"),
        (builder().protocol("chat, mqtt"), "not a valid token"),
        (builder().protocol("has space"), "not a valid token"),
        (builder().protocol("chat").protocol("chat"), "offered twice"),
        (
            builder().header("x", "a\r\nEvil: 1"),
            "not a valid header value",
        ),
        (
            builder().header("x", "a\nEvil: 1"),
            "not a valid header value",
        ),
        (builder().header("bad name", "1"), "not an HTTP token"),
    ] {
        match within("connect", client.clone().connect()).await {
            Err(Error::Handshake(why)) => assert!(why.contains(what), "{client:?}: {why}"),
            other => panic!("{client:?}: expected a handshake error, got {other:?}"),
        }
        assert!(
            recorder.nobody_connected().await,
            "{client:?} reached the server"
        );
    }
}

#[tokio::test]
async fn user_info_in_the_url_goes_in_authorization_and_never_in_host() {
    let recorder = Recorder::new().await;
    let port = recorder.port();
    // "user" and "p@ss:word", percent-encoded as a URL must carry them.
    let url = format!("ws://us%65r:p%40ss%3Aword@127.0.0.1:{port}/test");
    let (session, head) = tokio::join!(
        within("connect", tandem::connect(&url)),
        within("the request", recorder.answer_one()),
    );
    session.unwrap();
    assert_eq!(header_values(&head, "host"), [format!("127.0.0.1:{port}")]);
    assert!(!head.contains("p%40ss") && !head.contains("p@ss"), "{head}");
    // base64("user:p@ss:word")
    assert_eq!(
        header_values(&head, "authorization"),
        ["Basic dXNlcjpwQHNzOndvcmQ="]
    );

    // The caller's own Authorization wins; the URL's is not added.
    let client = ClientBuilder::new(&url).header("Authorization", "Bearer token");
    let (session, head) = tokio::join!(
        within("connect", client.connect()),
        within("the request", recorder.answer_one()),
    );
    session.unwrap();
    assert_eq!(header_values(&head, "authorization"), ["Bearer token"]);
    assert_eq!(header_values(&head, "host"), [format!("127.0.0.1:{port}")]);

    // A broken escape is the URL's fault, found before connecting.
    let bad = format!("ws://user:%zz@127.0.0.1:{port}/test");
    match within("connect", tandem::connect(&bad)).await {
        Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains('%'), "{reason}"),
        other => panic!("expected an invalid URL, got {other:?}"),
    }
    assert!(recorder.nobody_connected().await);
}

#[tokio::test]
async fn a_client_cannot_be_told_to_send_unmasked_frames() {
    let recorder = Recorder::new().await;
    let url = format!("ws://127.0.0.1:{}/test", recorder.port());
    let unmasked = WebSocketOptions {
        masking: Some(false),
        timeout: Duration::from_secs(1),
        ..WebSocketOptions::default()
    };
    match within(
        "connect",
        ClientBuilder::new(&url).options(unmasked).connect(),
    )
    .await
    {
        Err(Error::InvalidOptions(why)) => assert!(why.contains("mask"), "{why}"),
        other => panic!("expected invalid options, got {other:?}"),
    }
    assert!(recorder.nobody_connected().await);
}
