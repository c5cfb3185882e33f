//! Raw mode (`web_socket_raw`, Ktor's `webSocketRaw`): the handler sees every
//! frame as it arrived (pings, fragments with their `fin` bits, the Close)
//! and nothing is answered for it.
//!
//! Most tests here speak through a hand-written client on a real socket, to
//! send exact frames and see exactly what comes back (no Pong, when the TCP
//! connection ends); what tandem's own client sends is checked on a
//! `TestServer`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{connect, drain, next_text, within, RawClient};
use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{CloseCode, CloseReason, Frame, FrameType, Session};

/// Describes a frame in one line, as the raw handler reports it.
fn describe(frame: &Frame) -> String {
    let payload = match frame.frame_type() {
        FrameType::Close => match frame.read_close_reason() {
            Some(reason) => format!("{} {}", u16::from(reason.code), reason.message),
            None => "empty".to_owned(),
        },
        _ => String::from_utf8_lossy(frame.read_bytes()).into_owned(),
    };
    format!(
        "{:?} fin={} {}",
        frame.frame_type(),
        frame.is_fin(),
        payload
    )
}

/// Reports every frame it sees as a text frame; on a Close, reports it and
/// then answers with the same Close itself (raw mode answers nothing for it).
async fn reporter(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(describe(&frame)).await.is_err() {
            break;
        }
        if frame.frame_type() == FrameType::Close {
            let _ = session.send(frame).await;
        }
    }
}

/// The `reporter` at `/raw`.
fn raw_routes() -> Server {
    Server::new().web_socket_raw("/raw", reporter)
}

async fn raw_server() -> RunningServer {
    raw_routes()
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

#[tokio::test]
async fn raw_handler_sees_pings_and_no_pong_is_sent() {
    let server = raw_server().await;
    let mut client = RawClient::connect(server.local_addr(), "/raw").await;

    client.send(0x9, true, b"are you there").await;
    // Had the server answered the ping itself, the Pong would come first:
    // it would be queued as the ping was parsed, before the handler ran.
    let frame = client.read_frame().await.expect("a frame");
    assert_eq!(frame.frame_type(), Some(FrameType::Text), "{frame:?}");
    assert!(!frame.masked, "server frames are not masked");
    assert_eq!(frame.text(), "Ping fin=true are you there");

    client.send(0xA, true, b"unsolicited").await;
    let frame = client.read_frame().await.expect("a frame");
    assert_eq!(frame.text(), "Pong fin=true unsolicited");

    client.send(0x1, true, b"plain text").await;
    let frame = client.read_frame().await.expect("a frame");
    assert_eq!(frame.text(), "Text fin=true plain text");

    client.send_close(1000, "done").await;
    let frame = client.read_frame().await.expect("a frame");
    assert_eq!(frame.text(), "Close fin=true 1000 done");
    let frame = client.read_frame().await.expect("the handler's Close");
    assert_eq!(frame.frame_type(), Some(FrameType::Close));
    assert_eq!(&frame.payload[..2], &1000u16.to_be_bytes());
    assert_eq!(&frame.payload[2..], b"done");
    // The server ends the TCP connection after the close handshake.
    assert_eq!(client.read_frame().await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn raw_handler_sees_fragments_with_their_fin_bits() {
    let server = raw_server().await;
    let mut client = RawClient::connect(server.local_addr(), "/raw").await;

    client.send(0x1, false, b"Hel").await;
    // A ping may come between the fragments of a message.
    client.send(0x9, true, b"between").await;
    client.send(0x0, false, b"l").await;
    client.send(0x0, true, b"o").await;
    client.send(0x2, false, &[1, 2]).await;
    client.send(0x0, true, &[3]).await;

    let expected = [
        "Text fin=false Hel",
        "Ping fin=true between",
        "Continuation fin=false l",
        "Continuation fin=true o",
        "Binary fin=false \u{1}\u{2}",
        "Continuation fin=true \u{3}",
    ];
    for line in expected {
        let frame = client.read_frame().await.expect("a frame");
        assert_eq!(frame.text(), line);
    }
    client.send_close(1001, "").await;
    assert_eq!(
        client.read_frame().await.expect("a frame").text(),
        "Close fin=true 1001 "
    );
    let close = client.read_frame().await.expect("the handler's Close");
    assert_eq!(close.frame_type(), Some(FrameType::Close));
    assert_eq!(client.read_frame().await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn raw_handler_sees_what_tandems_client_sends() {
    let server = TestServer::new(raw_routes());
    let mut session = connect(&server, "/raw").await;

    within("send a ping", session.send(Frame::ping(&b"p1"[..])))
        .await
        .unwrap();
    assert_eq!(next_text(&mut session).await, "Ping fin=true p1");

    within(
        "send a first fragment",
        session.send(Frame::text("Hel").with_fin(false)),
    )
    .await
    .unwrap();
    within(
        "send the last fragment",
        session.send(Frame::new(FrameType::Continuation, "lo")),
    )
    .await
    .unwrap();
    assert_eq!(next_text(&mut session).await, "Text fin=false Hel");
    assert_eq!(next_text(&mut session).await, "Continuation fin=true lo");

    within(
        "close",
        session.close(CloseReason::new(CloseCode::Normal, "done")),
    )
    .await
    .unwrap();
    // The handler's report of our Close still arrives while we wait for its answer.
    assert_eq!(next_text(&mut session).await, "Close fin=true 1000 done");
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await,
        CloseReason::new(CloseCode::Normal, "done")
    );
}

#[tokio::test]
async fn raw_handler_that_returns_after_a_close_answers_it_with_1000() {
    let server = Server::new()
        .web_socket_raw("/raw", |mut session: Session| async move {
            // Wait for the Close, then just return: the server sends 1000.
            while let Some(frame) = session.receive().await {
                if frame.frame_type() == FrameType::Close {
                    break;
                }
            }
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut client = RawClient::connect(server.local_addr(), "/raw").await;
    client.send(0x9, true, b"ignored").await;
    client.send_close(4000, "app code").await;
    let close = client.read_frame().await.expect("the server's Close");
    assert_eq!(close.frame_type(), Some(FrameType::Close), "{close:?}");
    assert_eq!(&close.payload[..2], &1000u16.to_be_bytes());
    assert_eq!(client.read_frame().await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn raw_handler_can_answer_pings_itself() {
    let server = Server::new()
        .web_socket_raw("/raw", |mut session: Session| async move {
            while let Some(frame) = session.receive().await {
                let answer = match frame.frame_type() {
                    FrameType::Ping => Frame::pong(frame.into_payload()),
                    FrameType::Close => frame,
                    _ => continue,
                };
                if session.send(answer).await.is_err() {
                    break;
                }
            }
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut client = RawClient::connect(server.local_addr(), "/raw").await;
    client.send(0x9, true, b"hello").await;
    let pong = client.read_frame().await.expect("a Pong");
    assert_eq!(pong.frame_type(), Some(FrameType::Pong));
    assert_eq!(pong.payload, b"hello");
    client.send_close(1000, "").await;
    let close = client.read_frame().await.expect("a Close");
    assert_eq!(close.frame_type(), Some(FrameType::Close));
    assert_eq!(client.read_frame().await, None);
    server.shutdown().await;
}
