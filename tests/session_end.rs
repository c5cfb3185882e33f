//! Each way a session ends, and what each end is told: Ktor's guide maps
//! the browser's `onClose`/`onError` to the end of `incoming` and a
//! `closeReason` set in both; here `close_reason()` is that reason, on the
//! handler's side and on the peer's. The browser's side of the same cases
//! is in tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use tokio::sync::oneshot;

use common::{drain, next_text, within, RawClient};
use tandem::server::{Route, Server};
use tandem::testing::TestServer;
use tandem::{CloseCode, CloseReason, Error, FrameType, Outgoing, Session, WebSocketOptions};

/// A route whose handler hands its `Outgoing` to the test, then runs `end`;
/// the test learns the server's close reason from it after the handler is
/// gone.
fn handing_out<F, Fut, O>(path: &str, end: F) -> (Server, oneshot::Receiver<Outgoing>)
where
    F: Fn(Session) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = O> + Send + 'static,
    O: tandem::server::HandlerOutput + 'static,
{
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = Server::new().web_socket(path, move |session: Session| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(session.outgoing());
        }
        end(session)
    });
    (server, rx)
}

async fn server_reason(outgoing: oneshot::Receiver<Outgoing>) -> CloseReason {
    let outgoing = within("the handler to start", outgoing).await.unwrap();
    within("the server's close reason", outgoing.close_reason()).await
}

/// Reads until `incoming` ends (Ktor's `onClose`), then reports the reason.
async fn until_closed(mut session: Session) -> CloseReason {
    while session.receive().await.is_some() {}
    session.close_reason().await
}

/// A handler that reads until the session ends.
async fn reads_to_the_end(session: Session) {
    until_closed(session).await;
}

#[tokio::test]
async fn the_peer_closes_with_a_code() {
    let (server, handler) = handing_out("/ws", reads_to_the_end);
    let server = TestServer::new(server);
    let mut client = server.connect("/ws").await.unwrap();
    client
        .close(CloseReason::new(CloseCode::Other(4000), "done"))
        .await
        .unwrap();
    assert!(drain(&mut client).await.is_empty());
    // The handler gets the code and the reason; the closing end gets the
    // code back (RFC 6455 §5.5.1), with no reason.
    assert_eq!(
        server_reason(handler).await,
        CloseReason::new(CloseCode::Other(4000), "done")
    );
    let reason = client.close_reason().await;
    assert_eq!(reason.code, CloseCode::Other(4000), "{reason}");
    // Sending afterwards is an error that carries the reason (`onError`).
    match client.send("late").await {
        Err(Error::ConnectionClosed(Some(reason))) => {
            assert_eq!(reason.code, CloseCode::Other(4000))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_handler_closes_with_a_code() {
    let (server, handler) = handing_out("/ws", |session: Session| async move {
        let _ = session
            .close(CloseReason::new(CloseCode::Other(4001), "kicked"))
            .await;
        until_closed(session).await;
    });
    let server = TestServer::new(server);
    let client = server.connect("/ws").await.unwrap();
    assert_eq!(
        within("the client's close", until_closed(client)).await,
        CloseReason::new(CloseCode::Other(4001), "kicked")
    );
    assert_eq!(server_reason(handler).await.code, CloseCode::Other(4001));
}

#[tokio::test]
async fn a_handler_that_returns_closes_with_1000() {
    let server = TestServer::new(
        Server::new()
            .web_socket("/unit", |session: Session| async move {
                let _ = session.send("done").await;
            })
            .web_socket("/ok", |session: Session| async move {
                session.send("done").await?;
                Ok::<(), Error>(())
            }),
    );
    for path in ["/unit", "/ok"] {
        let mut session = server.connect(path).await.unwrap();
        assert_eq!(next_text(&mut session).await, "done", "{path}");
        assert!(drain(&mut session).await.is_empty(), "{path}");
        let reason = within("close reason", session.close_reason()).await;
        assert_eq!(reason.code, CloseCode::Normal, "{path}: {reason}");
    }
}

#[tokio::test]
async fn a_peer_that_drops_every_handle_closes_with_1000() {
    let (server, handler) = handing_out("/ws", reads_to_the_end);
    let server = TestServer::new(server);
    let client = server.connect("/ws").await.unwrap();
    drop(client);
    assert_eq!(server_reason(handler).await.code, CloseCode::Normal);
}

#[tokio::test]
async fn a_peer_that_vanishes_ends_the_session_with_1006() {
    // A real socket: the client goes without a Close, as a killed process
    // or a dropped network does.
    let (server, handler) = handing_out("/ws", reads_to_the_end);
    let server = server.bind("127.0.0.1:0").await.unwrap();
    let client = RawClient::connect(server.local_addr(), "/ws").await;
    drop(client);
    let reason = server_reason(handler).await;
    assert_eq!(reason.code, CloseCode::ClosedAbnormally, "{reason}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_terminated_session_vanishes_for_its_peer() {
    let (server, handler) = handing_out("/ws", |session: Session| async move {
        let _ = session.send("about to go").await;
        session.terminate();
        // The handler still runs; the session is over at once.
        assert!(session.outgoing().is_closed());
        reads_to_the_end(session).await
    });
    let server = TestServer::new(server);
    let mut client = server.connect("/ws").await.unwrap();
    // Whatever the peer got before is delivered, then the end without a Close.
    let frames = drain(&mut client).await;
    assert!(frames.len() <= 1, "{frames:?}");
    let reason = within("the client's close", client.close_reason()).await;
    assert_eq!(reason.code, CloseCode::ClosedAbnormally, "{reason}");
    assert_eq!(
        server_reason(handler).await,
        CloseReason::new(CloseCode::ClosedAbnormally, "terminated by this end")
    );
}

#[tokio::test]
async fn our_keepalive_timeout_closes_with_1011_and_says_why() {
    // A peer that reads but never answers a ping (a stuck process).
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_millis(50)),
        timeout: Duration::from_millis(200),
        ..WebSocketOptions::default()
    };
    let (tx, handler) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = Server::new()
        .web_socket(
            Route::new("/ws").options(options),
            move |session: Session| {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(session.outgoing());
                }
                reads_to_the_end(session)
            },
        )
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut client = RawClient::connect(server.local_addr(), "/ws").await;
    let mut pings = 0;
    let close = loop {
        let frame = client.read_frame().await.expect("a Close before the end");
        match frame.frame_type() {
            Some(FrameType::Ping) => pings += 1,
            Some(FrameType::Close) => break frame,
            other => panic!("{other:?}"),
        }
    };
    assert!(pings >= 1);
    assert_eq!(close.payload[..2], 1011u16.to_be_bytes());
    let said = std::str::from_utf8(&close.payload[2..]).unwrap();
    assert!(said.contains("of a ping"), "{said}");
    // The server does not wait for an answer: the transport ends.
    assert!(client.read_frame().await.is_none());
    let reason = server_reason(handler).await;
    assert_eq!(reason.code, CloseCode::InternalError, "{reason}");
    assert_eq!(reason.message, said);
    server.shutdown().await;
}

#[tokio::test]
async fn a_handler_that_returns_an_error_closes_with_1011_and_its_message() {
    let (server, handler) = handing_out("/ws", |_session: Session| async move {
        Err::<(), _>("database down")
    });
    let server = TestServer::new(server);
    let client = server.connect("/ws").await.unwrap();
    let expected = CloseReason::new(CloseCode::InternalError, "database down");
    assert_eq!(
        within("the client's close", until_closed(client)).await,
        expected
    );
    assert_eq!(server_reason(handler).await.code, CloseCode::InternalError);
}

#[tokio::test]
async fn a_handler_that_panics_closes_with_1011_and_the_server_goes_on() {
    let (server, handler) = handing_out("/ws", |session: Session| async move {
        if session
            .request()
            .and_then(|r| r.query_param("panic"))
            .is_some()
        {
            panic!("a bug in the handler");
        }
        until_closed(session).await;
    });
    let server = TestServer::new(server);
    let client = server.connect("/ws?panic").await.unwrap();
    // The panic's message stays in the server's log, not on the wire.
    assert_eq!(
        within("the client's close", until_closed(client)).await,
        CloseReason::new(CloseCode::InternalError, "handler panicked")
    );
    // The server's own reason is the peer's answer: the code, echoed.
    assert_eq!(server_reason(handler).await.code, CloseCode::InternalError);
    // The next session on the same route is served.
    let next = server.connect("/ws").await.unwrap();
    next.close(CloseReason::normal()).await.unwrap();
    assert_eq!(until_closed(next).await.code, CloseCode::Normal);
}

#[tokio::test]
async fn the_events_example_reports_each_end() {
    let output = within(
        "the events example",
        tokio::process::Command::new(common::example("events"))
            .env("RUST_LOG", "info,tandem=off")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run the events example");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "close: the client saw 1000");
    assert_eq!(lines[1], "error: the client saw 1011 the database is down");
    assert!(
        lines[2].starts_with("terminate: the client saw 1006"),
        "{stdout}"
    );
    // Its log: onClose for the end both sides agreed on, onError for the rest.
    let log = String::from_utf8(output.stderr).unwrap();
    assert!(
        log.contains("onClose side=\"server\" reason=1000 done here"),
        "{log}"
    );
    assert!(log.contains("onError side=\"client\" reason=1011"), "{log}");
    assert!(
        log.contains("onError side=\"server\" reason=1006 terminated by this end"),
        "{log}"
    );
}
