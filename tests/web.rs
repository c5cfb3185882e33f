//! Browser tests of the wasm32 backend, against the native demo server.
//!
//! Run them with `scripts/test-browser.sh`: it starts
//! `cargo run --example server` on a free port, passes its address to this
//! file at compile time as `TANDEM_TEST_SERVER` (`HOST:PORT`) and runs
//! `wasm-pack test --headless --chrome`.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures::StreamExt;
use tandem::reconnect::{Ended, Reconnect, Reconnecting};
use tandem::{
    ClientBuilder, CloseCode, CloseReason, Error, Frame, FrameType, Session, WebSocketOptions,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/browser.rs"]
mod support;

use support::{drain, server_saw, sleep, unique_id, url, within};

async fn next_frame(session: &mut Session) -> Frame {
    within(10, "a frame", session.receive())
        .await
        .expect("the session ended before a frame arrived")
}

async fn next_text(session: &mut Session) -> String {
    let frame = next_frame(session).await;
    frame
        .read_text()
        .unwrap_or_else(|| panic!("expected text, got {frame:?}"))
        .to_owned()
}

#[wasm_bindgen_test]
async fn echo_demo_greets_answers_and_closes_on_bye() {
    let mut session = tandem::connect(&url("/echo")).await.expect("connect");
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    session.send("T").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, T!");
    session.send("Ktor").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    session.send("BYE").await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(
        reason,
        CloseReason::new(CloseCode::Normal, "Client said BYE")
    );
    // The server closed first: sending now fails with the reason.
    match session.send("late").await {
        Err(Error::ConnectionClosed(Some(reason))) => assert_eq!(reason.code, CloseCode::Normal),
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert!(session.outgoing().is_closed());
    assert_eq!(session.protocol(), None);
    assert!(session.request().is_none());
}

#[wasm_bindgen_test]
async fn binary_and_text_frames_round_trip() {
    let mut session = tandem::connect(&url("/echo-any")).await.expect("connect");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    let frames = [
        Frame::binary(all_bytes.clone()),
        Frame::binary(Vec::new()),
        Frame::text("héllo, wörld ✓"),
        Frame::text(""),
        Frame::binary(big.clone()),
        Frame::binary(&b"text-looking bytes"[..]),
    ];
    for frame in &frames {
        session.send(frame.clone()).await.unwrap();
    }
    for sent in &frames {
        let got = next_frame(&mut session).await;
        assert_eq!(got.frame_type(), sent.frame_type());
        assert_eq!(got.read_bytes(), sent.read_bytes());
        assert!(got.is_fin());
    }
    session.close(CloseReason::normal()).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
}

/// About `bytes` bytes of text that compresses well.
fn compressible(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 64);
    let mut i = 0u32;
    while text.len() < bytes {
        text.push_str(&format!("{{\"id\":{i},\"name\":\"κόσμε {}\"}},", i % 97));
        i += 1;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

#[wasm_bindgen_test]
async fn permessage_deflate_is_negotiated_and_compressed_traffic_round_trips() {
    // The browser offers permessage-deflate by itself; the demo server
    // accepts it on every route and `/echo-extensions` first says so.
    let mut session = tandem::connect(&url("/echo-extensions"))
        .await
        .expect("connect");
    let ours = session.extensions().to_vec();
    assert_eq!(
        ours.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["permessage-deflate"],
        "the browser's view: {ours:?}"
    );
    let server_view = next_text(&mut session).await;
    assert_eq!(
        server_view,
        tandem::extensions::ExtensionHeader::format_list(&ours),
        "both ends agree on the parameters"
    );
    assert!(
        server_view.contains("server_max_window_bits=12"),
        "{server_view}"
    );

    let mebibyte = 1 << 20;
    let big_binary: Vec<u8> = compressible(mebibyte)
        .into_bytes()
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ (i % 251) as u8)
        .collect();
    let frames = [
        Frame::text("Hello"),
        Frame::text(compressible(mebibyte)),
        Frame::binary(vec![1u8, 2, 3]),
        Frame::binary(big_binary),
        Frame::text(""),
        Frame::text(compressible(4000)),
        Frame::text(compressible(4000)),
    ];
    for frame in &frames {
        session.send(frame.clone()).await.unwrap();
    }
    for sent in &frames {
        let got = next_frame(&mut session).await;
        assert_eq!(got.frame_type(), sent.frame_type());
        assert_eq!(got.read_bytes().len(), sent.read_bytes().len());
        assert!(got.read_bytes() == sent.read_bytes(), "the echo differs");
    }
    session.close(CloseReason::normal()).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
}

#[wasm_bindgen_test]
async fn client_close_code_and_reason_reach_the_server() {
    let id = unique_id("close4001");
    let mut session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session
        .close(CloseReason::new(CloseCode::Other(4001), "x"))
        .await
        .unwrap();
    assert!(drain(&mut session).await.is_empty());
    // The server answers with our code (RFC 6455 §5.5.1), without a reason.
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Other(4001));
    assert_eq!(server_saw(&id).await, "4001 x");
    // Sending after close fails.
    assert!(matches!(
        session.send("late").await,
        Err(Error::ConnectionClosed(_))
    ));
}

#[wasm_bindgen_test]
async fn codes_a_script_cannot_send_go_out_as_1000_with_the_code_in_the_reason() {
    let id = unique_id("close1001");
    let mut session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session
        .close(CloseReason::new(CloseCode::GoingAway, "leaving"))
        .await
        .unwrap();
    drain(&mut session).await;
    assert_eq!(server_saw(&id).await, "1000 1001 leaving");

    // A reason over 123 bytes is cut on a character boundary.
    let id = unique_id("long");
    let mut session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session
        .close(CloseReason::new(CloseCode::Other(4999), "é".repeat(100)))
        .await
        .unwrap();
    drain(&mut session).await;
    assert_eq!(server_saw(&id).await, format!("4999 {}", "é".repeat(61)));
}

#[wasm_bindgen_test]
async fn close_frames_sent_with_send_close_the_session() {
    let id = unique_id("frame");
    let mut session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session
        .send(Frame::close(CloseReason::new(
            CloseCode::Other(3000),
            "by frame",
        )))
        .await
        .unwrap();
    drain(&mut session).await;
    assert_eq!(server_saw(&id).await, "3000 by frame");
}

#[wasm_bindgen_test]
async fn a_message_over_max_message_size_fails_with_1009() {
    let id = unique_id("toobig");
    let options = WebSocketOptions {
        max_message_size: Some(1024),
        ..WebSocketOptions::default()
    };
    let mut session = ClientBuilder::new(url(&format!("/echo-any?id={id}")))
        .options(options)
        .connect()
        .await
        .expect("connect");
    // At the limit: fine.
    session.send("a".repeat(1024)).await.unwrap();
    assert_eq!(next_text(&mut session).await.len(), 1024);
    // Over it: the echo fails the session.
    session.send("b".repeat(2048)).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::TooBig, "{reason}");
    assert!(reason.message.contains("1024"), "{reason}");
    // Scripts cannot send 1009: the server sees 1000 with the code in the reason.
    let seen = server_saw(&id).await;
    assert!(seen.starts_with("1000 1009 "), "{seen}");
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Move {
    player: String,
    x: u8,
}

#[wasm_bindgen_test]
async fn typed_messages_round_trip_and_a_bad_one_leaves_the_session_open() {
    let mut session = tandem::connect(&url("/echo-any")).await.expect("connect");
    let mv = Move {
        player: "ünïcode".into(),
        x: 3,
    };
    session.send_json(&mv).await.unwrap();
    let back: Move = within(10, "the echo", session.receive_json())
        .await
        .unwrap();
    assert_eq!(back, mv);
    // What does not decode is an error with the frame; the session goes on.
    session.send("not json").await.unwrap();
    match within(10, "the echo", session.receive_json::<Move>()).await {
        Err(Error::Decode { frame, .. }) => assert_eq!(frame.read_text(), Some("not json")),
        other => panic!("expected a decode error, got {other:?}"),
    }
    session.send_json(&mv).await.unwrap();
    let frame = next_frame(&mut session).await;
    assert_eq!(frame.json::<Move>().unwrap(), mv);
    session.close(CloseReason::normal()).await.unwrap();
    assert!(matches!(
        within(10, "the end", session.receive_json::<Move>()).await,
        Err(Error::ConnectionClosed(_))
    ));
}

#[wasm_bindgen_test]
async fn a_handler_that_leaves_its_queue_full_ends_with_1008() {
    let id = unique_id("full");
    let options = WebSocketOptions {
        incoming_queue: 3,
        ..WebSocketOptions::default()
    };
    let mut session = ClientBuilder::new(url(&format!("/echo-any?id={id}")))
        .options(options)
        .connect()
        .await
        .expect("connect");
    // Ten echoes and no reading: the fourth finds the queue full.
    for i in 0..10 {
        session.send(format!("{i}")).await.unwrap();
    }
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::ViolatedPolicy, "{reason}");
    // What was queued before is still there to read, and nothing after it.
    let texts: Vec<String> = drain(&mut session)
        .await
        .iter()
        .map(|f| f.read_text().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["0", "1", "2"]);
    // Scripts cannot send 1008: the server sees 1000 with the code in the reason.
    let seen = server_saw(&id).await;
    assert!(seen.starts_with("1000 1008 "), "{seen}");
}

#[wasm_bindgen_test]
async fn a_binary_message_over_max_frame_size_fails_with_1009() {
    let options = WebSocketOptions {
        max_frame_size: Some(100),
        max_message_size: None,
        ..WebSocketOptions::default()
    };
    let mut session = ClientBuilder::new(url("/echo-any"))
        .options(options)
        .connect()
        .await
        .expect("connect");
    session.send(vec![1u8; 100]).await.unwrap();
    assert_eq!(next_frame(&mut session).await.read_bytes().len(), 100);
    session.send(vec![2u8; 101]).await.unwrap();
    // A multi-byte text whose UTF-16 length is under the limit but UTF-8 length over it
    // would be caught too; here the binary one is enough.
    assert!(drain(&mut session).await.is_empty());
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::TooBig, "{reason}");
}

#[wasm_bindgen_test]
async fn text_is_measured_in_utf8_bytes() {
    let options = WebSocketOptions {
        max_message_size: Some(10),
        ..WebSocketOptions::default()
    };
    let mut session = ClientBuilder::new(url("/echo-any"))
        .options(options)
        .connect()
        .await
        .expect("connect");
    // 5 UTF-16 units, 10 UTF-8 bytes: at the limit.
    session.send("ééééé").await.unwrap();
    assert_eq!(next_text(&mut session).await, "ééééé");
    // 6 units, 12 bytes: over it.
    session.send("éééééé").await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    let reason = within(10, "close reason", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::TooBig, "{reason}");
}

#[wasm_bindgen_test]
async fn a_burst_of_sends_completes_without_loss() {
    const COUNT: u32 = 2000;
    const SIZE: usize = 10 * 1024;
    let session = tandem::connect(&url("/echo-any")).await.expect("connect");
    let (mut incoming, outgoing) = session.split();
    let send_all = async {
        for i in 0..COUNT {
            let mut payload = vec![(i % 251) as u8; SIZE];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            outgoing.send(payload).await.unwrap();
        }
    };
    let receive_all = async {
        let mut next = 0u32;
        while next < COUNT {
            let frame = incoming.next().await.expect("session ended early");
            let bytes = frame.read_bytes();
            assert_eq!(bytes.len(), SIZE);
            let i = u32::from_be_bytes(bytes[..4].try_into().unwrap());
            assert_eq!(i, next, "frames out of order or lost");
            assert!(bytes[4..].iter().all(|&b| b == (i % 251) as u8));
            next += 1;
        }
        next
    };
    let ((), received) = within(60, "2000 echoes of 10 KiB", async {
        futures::join!(send_all, receive_all)
    })
    .await;
    assert_eq!(received, COUNT);
    outgoing.close(CloseReason::normal()).await.unwrap();
    let reason = within(10, "close reason", outgoing.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Normal);
}

#[wasm_bindgen_test]
async fn sends_complete_while_nobody_reads() {
    // The browser cannot be told to stop reading: echoes pile up in the
    // incoming queue, up to its bounds, instead of stalling the sender.
    const COUNT: usize = 500;
    let options = WebSocketOptions {
        incoming_queue: COUNT,
        incoming_queue_bytes: COUNT * 10 * 1024,
        ..WebSocketOptions::default()
    };
    let mut session = ClientBuilder::new(url("/echo-any"))
        .options(options)
        .connect()
        .await
        .expect("connect");
    within(30, "500 sends with no reader", async {
        for i in 0..COUNT {
            session
                .send(vec![(i % 256) as u8; 10 * 1024])
                .await
                .unwrap();
        }
    })
    .await;
    for i in 0..COUNT {
        let frame = next_frame(&mut session).await;
        assert_eq!(frame.read_bytes()[0], (i % 256) as u8);
    }
    session.close(CloseReason::normal()).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
}

#[wasm_bindgen_test]
async fn ping_pong_and_fragments_are_unsupported() {
    let session = tandem::connect(&url("/echo-any")).await.expect("connect");
    assert!(matches!(
        session.send(Frame::ping("x")).await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session.send(Frame::pong("x")).await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session.outgoing().try_send(Frame::ping("")),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session.send(Frame::text("Hel").with_fin(false)).await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session
            .send(Frame::new(FrameType::Continuation, "lo"))
            .await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        session
            .send(Frame::new(FrameType::Text, vec![0xFFu8]))
            .await,
        Err(Error::InvalidFrame(_))
    ));
    // Still usable afterwards.
    session.send("still open").await.unwrap();
    let mut session = session;
    assert_eq!(next_text(&mut session).await, "still open");
}

#[wasm_bindgen_test]
async fn headers_cannot_be_set_from_a_browser() {
    let result = ClientBuilder::new(url("/echo"))
        .header("Authorization", "Bearer secret")
        .connect()
        .await;
    assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
}

#[wasm_bindgen_test]
async fn subprotocols_are_negotiated() {
    let session = ClientBuilder::new(url("/echo-proto"))
        .protocol("other")
        .protocol("tandem")
        .connect()
        .await
        .expect("connect");
    assert_eq!(session.protocol(), Some("tandem"));
    // The demo server accepts the permessage-deflate the browser offers.
    assert_eq!(session.extensions().len(), 1);
    assert_eq!(session.extensions()[0].name, "permessage-deflate");

    let session = ClientBuilder::new(url("/echo-proto"))
        .protocol("tandem")
        .protocol("tandem.v2")
        .connect()
        .await
        .expect("connect");
    assert_eq!(session.protocol(), Some("tandem.v2"));

    let invalid = ClientBuilder::new(url("/echo-proto"))
        .protocol("has space")
        .connect()
        .await;
    assert!(matches!(invalid, Err(Error::Handshake(_))), "{invalid:?}");
}

#[wasm_bindgen_test]
async fn refused_connections_fail_with_io_errors() {
    // An unknown path (404) and a route whose subprotocols were not offered
    // (400): the browser reports neither status, only that it failed.
    for path in ["/no-such-route", "/echo-proto"] {
        match within(10, path, tandem::connect(&url(path))).await {
            Err(Error::Io(error)) => {
                assert_eq!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionRefused,
                    "{error}"
                );
                // The message says what happened, as natively.
                let message = Error::Io(error).to_string();
                assert!(
                    message.starts_with("I/O error: the browser could not open ws://"),
                    "{message}"
                );
            }
            other => panic!("{path}: expected Error::Io, got {other:?}"),
        }
    }
    match tandem::connect("ftp://127.0.0.1/").await {
        Err(Error::InvalidUrl { .. }) => {}
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn the_opening_handshake_is_bounded_by_timeout() {
    // Zero is shorter than any real handshake.
    let options = WebSocketOptions {
        timeout: Duration::ZERO,
        ..WebSocketOptions::default()
    };
    let result = ClientBuilder::new(url("/echo"))
        .options(options)
        .connect()
        .await;
    match result {
        Err(Error::Io(error)) => assert_eq!(error.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn dropping_every_handle_closes_with_1000() {
    let id = unique_id("drop");
    let session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session.send("queued before the drop").await.unwrap();
    drop(session);
    assert_eq!(server_saw(&id).await, "1000");

    // A split session closes once both halves are gone.
    let id = unique_id("split");
    let session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    let (incoming, outgoing) = session.split();
    let closed = outgoing.close_reason();
    drop(incoming);
    sleep(50).await;
    assert!(
        !outgoing.is_closed(),
        "the outgoing half alone keeps it open"
    );
    drop(outgoing);
    let reason = within(10, "close reason", closed).await;
    assert_eq!(reason.code, CloseCode::Normal);
    assert_eq!(server_saw(&id).await, "1000");
}

// ----- how a session ends: the page's side (tests/session_end.rs has the
// native one). The browser reports each end in its `close` event; the
// session's `close_reason()` carries its code and reason.

/// Opens `/end?how=HOW`, where the server ends the session that way, and
/// returns how the page saw it end.
async fn ended_by_the_server(how: &str) -> CloseReason {
    let mut session = tandem::connect(&url(&format!("/end?how={how}")))
        .await
        .expect("connect /end");
    assert!(drain(&mut session).await.is_empty());
    within(10, "close reason", session.close_reason()).await
}

#[wasm_bindgen_test]
async fn the_server_closing_with_a_code_reaches_the_page() {
    assert_eq!(
        ended_by_the_server("code").await,
        CloseReason::new(CloseCode::Other(4002), "server closed")
    );
}

#[wasm_bindgen_test]
async fn a_server_handler_error_reaches_the_page_as_1011_with_its_message() {
    assert_eq!(
        ended_by_the_server("error").await,
        CloseReason::new(CloseCode::InternalError, "database down")
    );
}

#[wasm_bindgen_test]
async fn a_server_handler_panic_reaches_the_page_as_1011() {
    assert_eq!(
        ended_by_the_server("panic").await,
        CloseReason::new(CloseCode::InternalError, "handler panicked")
    );
}

#[wasm_bindgen_test]
async fn a_server_that_vanishes_ends_the_page_session_with_1006() {
    let reason = ended_by_the_server("terminate").await;
    assert_eq!(reason.code, CloseCode::ClosedAbnormally, "{reason}");
}

#[wasm_bindgen_test]
async fn terminate_ends_the_page_session_at_once_and_closes_the_socket() {
    let id = unique_id("terminate");
    let mut session = tandem::connect(&url(&format!("/echo-any?id={id}")))
        .await
        .expect("connect");
    session.terminate();
    // Over here at once, with no close handshake to wait for...
    assert!(session.outgoing().is_closed());
    assert!(session.receive().await.is_none());
    assert_eq!(
        session.close_reason().await,
        CloseReason::new(CloseCode::ClosedAbnormally, "terminated by this end")
    );
    // ...and the browser closed the socket, with no code (a page cannot
    // drop a connection without a Close).
    assert_eq!(server_saw(&id).await, "1005");
}

/// A policy with waits of tens of milliseconds, for the tests.
fn quick() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(20))
        .max_delay(Duration::from_millis(100))
}

/// Reads each session of `sessions` to its end; on session number
/// `serve_at` (from 0), first sends "hello", expects it back and closes
/// with 1000. Returns each session's close code.
async fn close_codes(sessions: &mut Reconnecting, serve_at: usize) -> Vec<CloseCode> {
    let mut codes = Vec::new();
    within(20, "the reconnecting sessions", async {
        while let Some(mut session) = sessions.next().await {
            if codes.len() == serve_at {
                session.send("hello").await.unwrap();
                assert_eq!(next_text(&mut session).await, "hello");
                session.close(CloseReason::normal()).await.unwrap();
            }
            drain(&mut session).await;
            codes.push(session.close_reason().await.code);
        }
    })
    .await;
    codes
}

#[wasm_bindgen_test]
async fn a_page_reconnects_after_try_again_later_until_the_server_serves() {
    let id = unique_id("flaky");
    let mut sessions =
        ClientBuilder::new(url(&format!("/flaky?id={id}&fail=2"))).reconnect(quick());
    let codes = close_codes(&mut sessions, 2).await;
    use CloseCode::{Normal, TryAgainLater};
    assert_eq!(codes, [TryAgainLater, TryAgainLater, Normal]);
    // The page's own 1000 is final.
    match sessions.ended() {
        Some(Ended::Final(error)) => assert_eq!(error.close_code(), Some(Normal), "{error}"),
        other => panic!("expected a final end, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn a_page_stops_reconnecting_at_a_policy_violation() {
    let id = unique_id("flaky");
    let mut sessions =
        ClientBuilder::new(url(&format!("/flaky?id={id}&fail=1&then=1008"))).reconnect(quick());
    let codes = close_codes(&mut sessions, usize::MAX).await;
    assert_eq!(codes, [CloseCode::TryAgainLater, CloseCode::ViolatedPolicy]);
    match sessions.ended() {
        Some(Ended::Final(error)) => {
            assert_eq!(
                error.close_code(),
                Some(CloseCode::ViolatedPolicy),
                "{error}"
            )
        }
        other => panic!("expected a final end, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn a_page_retries_a_refused_upgrade_until_max_attempts() {
    // The browser reports no status: a 404 is a refused connection, retried.
    let mut sessions = ClientBuilder::new(url("/nowhere")).reconnect(quick().max_attempts(Some(2)));
    let next = within(20, "the retries", sessions.next()).await;
    assert!(next.is_none());
    match sessions.ended() {
        Some(Ended::GaveUp {
            retries: 2,
            last: Error::Io(e),
        }) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        other => panic!("expected to give up after 2 retries, got {other:?}"),
    }
}
