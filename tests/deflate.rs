//! permessage-deflate end to end: tandem's client and server with every
//! kind of message, what each end says it agreed on, a hand-written client
//! sending RFC 7692's own bytes, and the failures (a bomb, corrupt data, an
//! answer a client must refuse).
//!
//! Between tandem's own client and server the routes run on a
//! `TestServer`; the hand-written client and servers, which deal in exact
//! bytes, keep a real socket.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{answering_server, close_code, connect_with, read_http_response, within, RawClient};
use flate2::{Compress, Compression, FlushCompress};
use tandem::extensions::{ExtensionHeader, PerMessageDeflate};
use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, CloseCode, Error, Frame, FrameType, Rsv, Session, WebSocketOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Echoes every message; `/agreed` first sends what the server agreed on.
fn deflate_routes(deflate: PerMessageDeflate, options: WebSocketOptions) -> Server {
    async fn echo(mut session: Session) {
        while let Some(frame) = session.receive().await {
            if session.send(frame).await.is_err() {
                break;
            }
        }
    }
    Server::new()
        .options(options)
        .extension(deflate)
        .web_socket("/echo", echo)
        .web_socket("/agreed", |session: Session| async move {
            let agreed = ExtensionHeader::format_list(session.extensions());
            if session.send(agreed).await.is_ok() {
                echo(session).await;
            }
        })
}

/// The same on a free port of 127.0.0.1, for the hand-written client.
async fn deflate_server(deflate: PerMessageDeflate, options: WebSocketOptions) -> RunningServer {
    deflate_routes(deflate, options)
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

/// Text that compresses well, about `n` * 40 bytes.
fn sample(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"κόσμε {i}\",\"ok\":true}}\n"))
        .collect()
}

async fn round_trip(session: &mut Session, frame: Frame) {
    let expected = frame.clone();
    session.send(frame).await.expect("send");
    let echo = within("the echo", session.receive())
        .await
        .expect("an echo");
    assert_eq!(echo.frame_type(), expected.frame_type());
    assert_eq!(echo.rsv(), Rsv::NONE, "the extension took RSV1 off");
    assert!(
        echo.read_bytes() == expected.read_bytes(),
        "the echo differs"
    );
}

#[tokio::test]
async fn client_and_server_agree_and_messages_round_trip() {
    // Room for the 1.2 MB message below, over the 1 MiB default.
    let options = WebSocketOptions {
        max_message_size: Some(4 << 20),
        ..WebSocketOptions::default()
    };
    let server = TestServer::new(deflate_routes(PerMessageDeflate::new(), options.clone()));
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/agreed"))
            .extension(PerMessageDeflate::new())
            .options(options),
    )
    .await
    .unwrap();
    let agreed = "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
                  client_max_window_bits=12";
    assert_eq!(
        ExtensionHeader::format_list(session.extensions()),
        agreed,
        "the client's view"
    );
    let server_view = within("the server's view", session.receive())
        .await
        .unwrap();
    assert_eq!(server_view.read_text(), Some(agreed));

    let mut big_binary: Vec<u8> = sample(30_000).into_bytes();
    big_binary.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    for frame in [
        Frame::text("Hello"),
        Frame::text(""),
        Frame::binary(vec![1u8, 2, 3]),
        Frame::binary(Vec::new()),
        Frame::text(sample(30_000)), // ~1.2 MB
        Frame::binary(big_binary),
        Frame::text("Hello"),
    ] {
        round_trip(&mut session, frame).await;
    }
    session.close(tandem::CloseReason::normal()).await.unwrap();
    assert_eq!(session.close_reason().await.code, CloseCode::Normal);
}

#[tokio::test]
async fn every_configuration_round_trips() {
    let configurations = [
        (
            PerMessageDeflate::new()
                .server_no_context_takeover(true)
                .client_no_context_takeover(true),
            PerMessageDeflate::new(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            PerMessageDeflate::new()
                .server_max_window_bits(8)
                .client_max_window_bits(8),
            PerMessageDeflate::new(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=8; \
             client_max_window_bits=8",
        ),
        (
            PerMessageDeflate::new().client_max_window_bits(15),
            PerMessageDeflate::new()
                .server_max_window_bits(15)
                .client_max_window_bits(9)
                .client_no_context_takeover(true),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             client_max_window_bits=9",
        ),
        (
            PerMessageDeflate::new()
                .server_max_window_bits(10)
                .offer_fallback(true)
                .compress_if_bigger_than(100)
                .compression_level(1),
            PerMessageDeflate::new()
                .server_max_window_bits(15)
                .server_no_context_takeover(false),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
        ),
    ];
    for (client, server_config, agreed) in configurations {
        let server = TestServer::new(deflate_routes(server_config, WebSocketOptions::default()));
        let mut session = connect_with(
            &server,
            ClientBuilder::new(server.url("/echo")).extension(client),
        )
        .await
        .unwrap();
        assert_eq!(ExtensionHeader::format_list(session.extensions()), agreed);
        for n in [0, 1, 10, 3_000, 10, 1] {
            round_trip(&mut session, Frame::text(sample(n))).await;
            round_trip(&mut session, Frame::binary(sample(n).into_bytes())).await;
        }
    }
}

#[tokio::test]
async fn a_server_without_deflate_declines_and_a_client_without_it_is_served_plain() {
    let plain = TestServer::new(
        Server::new().web_socket("/echo", |mut s: Session| async move {
            while let Some(f) = s.receive().await {
                let _ = s.send(f).await;
            }
        }),
    );
    let mut session = connect_with(
        &plain,
        ClientBuilder::new(plain.url("/echo")).extension(PerMessageDeflate::new()),
    )
    .await
    .unwrap();
    assert!(session.extensions().is_empty());
    round_trip(&mut session, Frame::text(sample(100))).await;

    let server = TestServer::new(deflate_routes(
        PerMessageDeflate::new(),
        WebSocketOptions::default(),
    ));
    let mut session = common::connect(&server, "/echo").await;
    assert!(session.extensions().is_empty());
    round_trip(&mut session, Frame::text(sample(100))).await;
}

// ----- a hand-written client: the bytes on the wire ----------------------------------

/// Upgrades with `offer` and returns the raw client and the answer.
async fn raw_upgrade(server: &RunningServer, offer: &str) -> (RawClient, Option<String>) {
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (response, rest) = within("the 101", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101);
    let answer = response
        .header("sec-websocket-extensions")
        .map(str::to_owned);
    (RawClient::from_parts(stream, rest), answer)
}

const RSV1: u8 = 0x40;

/// RFC 7692 §7.2.3.1 and §7.2.3.2: "Hello" twice, sharing the window.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];

#[tokio::test]
async fn the_rfc_vectors_on_the_wire() {
    let server = deflate_server(
        PerMessageDeflate::new()
            .server_max_window_bits(15)
            .server_no_context_takeover(false),
        WebSocketOptions::default(),
    )
    .await;
    let (mut raw, answer) = raw_upgrade(&server, "permessage-deflate").await;
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));

    // A compressed text message, RSV1 on its only frame...
    raw.send(RSV1 | 0x1, true, &HELLO).await;
    let echo = raw.read_frame().await.unwrap();
    // ...comes back compressed, byte for byte as in the RFC.
    assert_eq!((echo.rsv, echo.opcode), (RSV1, 0x1));
    assert_eq!(echo.payload, HELLO);
    // The second "Hello" refers to the first (context takeover both ways).
    raw.send(RSV1 | 0x1, true, &HELLO_AGAIN).await;
    let echo = raw.read_frame().await.unwrap();
    assert_eq!(
        (echo.rsv, echo.payload.as_slice()),
        (RSV1, &HELLO_AGAIN[..])
    );
    // Fragmented: RSV1 on the first frame only (§6.1).
    raw.send(RSV1 | 0x1, false, &HELLO_AGAIN[..2]).await;
    raw.send(0x0, true, &HELLO_AGAIN[2..]).await;
    let echo = raw.read_frame().await.unwrap();
    assert_eq!(echo.rsv, RSV1);
    assert!(
        echo.payload.len() <= HELLO_AGAIN.len(),
        "a third Hello refers back too"
    );
    // An uncompressed message is fine too (RSV1 clear).
    raw.send(0x1, true, b"plain").await;
    let echo = raw.read_frame().await.unwrap();
    assert_eq!(echo.rsv, RSV1, "the server compresses its echo");
    // RSV1 on a continuation frame is a protocol error.
    raw.send(RSV1 | 0x1, false, &HELLO[..3]).await;
    raw.send(RSV1, true, &HELLO[3..]).await;
    let close = raw.read_frame().await.unwrap();
    assert_eq!(close.opcode, 0x8);
    assert_eq!(
        u16::from_be_bytes([close.payload[0], close.payload[1]]),
        1002
    );
    server.shutdown().await;
}

/// Raw DEFLATE with a sync flush, the tail removed (as a peer would send).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    loop {
        let done = compress.total_in() as usize;
        out.reserve(64 << 10);
        compress
            .compress_vec(&data[done..], &mut out, FlushCompress::Sync)
            .unwrap();
        if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

async fn close_code_after(server: &RunningServer, payload: &[u8]) -> u16 {
    let (mut raw, answer) = raw_upgrade(server, "permessage-deflate").await;
    assert!(answer.is_some());
    raw.send(RSV1 | 0x2, true, payload).await;
    loop {
        let frame = raw.read_frame().await.expect("a Close");
        if frame.opcode == 0x8 {
            return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
        }
    }
}

#[tokio::test]
async fn a_decompression_bomb_closes_with_1009() {
    let options = WebSocketOptions {
        max_message_size: Some(1 << 20),
        ..Default::default()
    };
    let server = deflate_server(PerMessageDeflate::new(), options).await;
    let bomb = deflate(&vec![0u8; 10_000_000]);
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    assert_eq!(close_code_after(&server, &bomb).await, 1009);
    // Exactly the limit is fine.
    let (mut raw, _) = raw_upgrade(&server, "permessage-deflate").await;
    raw.send(RSV1 | 0x2, true, &deflate(&vec![7u8; 1 << 20]))
        .await;
    let echo = raw.read_frame().await.unwrap();
    assert_eq!(echo.opcode, 0x2);
    server.shutdown().await;
}

#[tokio::test]
async fn corrupt_data_closes_with_1002_and_bad_utf8_with_1007() {
    let server = deflate_server(PerMessageDeflate::new(), WebSocketOptions::default()).await;
    assert_eq!(close_code_after(&server, &[0x07, 0x00]).await, 1002);
    // Invalid UTF-8, compressed, in a text message.
    let (mut raw, _) = raw_upgrade(&server, "permessage-deflate").await;
    raw.send(RSV1 | 0x1, true, &deflate(&[0xce, 0xba, 0xff, 0xfe]))
        .await;
    let close = raw.read_frame().await.unwrap();
    assert_eq!(close.opcode, 0x8);
    assert_eq!(
        u16::from_be_bytes([close.payload[0], close.payload[1]]),
        1007
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_declines_invalid_offers_and_takes_the_next() {
    let server = deflate_server(PerMessageDeflate::new(), WebSocketOptions::default()).await;
    let (_, answer) = raw_upgrade(&server, "permessage-deflate; server_max_window_bits=16").await;
    assert_eq!(answer, None);
    let (_, answer) = raw_upgrade(
        &server,
        "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10",
    )
    .await;
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
    );
    server.shutdown().await;
}

// ----- a hand-written server: answers a client must refuse ---------------------------

#[tokio::test]
async fn the_client_refuses_invalid_answers_with_1010() {
    for answer in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=20",
        "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover=1",
    ] {
        let (url, server) = answering_server(answer).await;
        let result = within(
            "connect",
            ClientBuilder::new(url)
                .extension(PerMessageDeflate::new())
                .connect(),
        )
        .await;
        match result {
            Err(Error::Handshake(why)) => assert!(why.contains("1010"), "{answer}: {why}"),
            other => panic!("{answer}: expected a handshake error, got {other:?}"),
        }
        let sent = within("the client's Close", server).await.unwrap();
        assert_eq!(close_code(&sent), 1010);
    }
    // A required server_no_context_takeover missing from the answer.
    let (url, _server) = answering_server("permessage-deflate").await;
    let result = ClientBuilder::new(url)
        .extension(PerMessageDeflate::new().server_no_context_takeover(true))
        .connect()
        .await;
    assert!(matches!(result, Err(Error::Handshake(_))));
}

#[tokio::test]
async fn frames_of_other_types_pass_untouched() {
    let server = TestServer::new(deflate_routes(
        PerMessageDeflate::new(),
        WebSocketOptions::default(),
    ));
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/echo")).extension(PerMessageDeflate::new()),
    )
    .await
    .unwrap();
    session.send(Frame::ping(b"ping".to_vec())).await.unwrap();
    round_trip(&mut session, Frame::text("after a ping")).await;
    assert_eq!(Frame::text("x").frame_type(), FrameType::Text);
}
