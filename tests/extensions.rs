//! Extensions negotiated end to end: the custom `x-xor` extension of
//! `examples/custom_extension`, between tandem's server and client, against
//! a hand-written peer, and refused when misconfigured.
//!
//! Between tandem's own ends the routes run on a `TestServer`; the
//! hand-written peers (a client that sends exact bytes, servers that give
//! answers tandem's would not) keep a real socket.
#![cfg(not(target_arch = "wasm32"))]

mod common;
#[path = "../examples/custom_extension/xor.rs"]
mod xor;

use common::{answering_server, close_code, connect_with, read_http_response, within, RawClient};
use futures::StreamExt;
use tandem::extensions::{Extension, ExtensionFactory, ExtensionHeader};
use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, Error, Frame, Rsv, Session};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use xor::Xor;

/// `server` with an echo at `/echo`.
fn with_echo(server: Server) -> Server {
    server.web_socket("/echo", |mut session: Session| async move {
        while let Some(frame) = session.receive().await {
            if session.send(frame).await.is_err() {
                break;
            }
        }
    })
}

async fn echo_server(server: Server) -> RunningServer {
    with_echo(server).bind("127.0.0.1:0").await.expect("bind")
}

#[tokio::test]
async fn both_ends_agree_and_messages_round_trip() {
    let server = TestServer::new(with_echo(Server::new().extension(Xor { key: 1 })));
    let (seen, agreed) = tokio::sync::oneshot::channel();
    let seen = std::sync::Mutex::new(Some(seen));
    let probe = TestServer::new(Server::new().extension(Xor { key: 1 }).web_socket(
        "/probe",
        move |session: Session| {
            let list: Vec<String> = session.extensions().iter().map(|e| e.to_string()).collect();
            if let Some(seen) = seen.lock().unwrap().take() {
                let _ = seen.send(list);
            }
            async {}
        },
    ));

    let client = connect_with(
        &probe,
        ClientBuilder::new(probe.url("/probe")).extension(Xor { key: 42 }),
    )
    .await
    .unwrap();
    assert_eq!(
        client.extensions(),
        &[ExtensionHeader::new("x-xor").with_param("key", Some("42"))]
    );
    assert_eq!(
        within("the server's view", agreed).await.unwrap(),
        ["x-xor; key=42"]
    );

    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/echo")).extension(Xor { key: 42 }),
    )
    .await
    .unwrap();
    session.send("κόσμε through x-xor").await.unwrap();
    session.send(vec![0u8, 42, 255]).await.unwrap();
    let text = within("the text echo", session.receive()).await.unwrap();
    assert_eq!(text.read_text(), Some("κόσμε through x-xor"));
    assert_eq!(text.rsv(), Rsv::NONE, "the extension took its bit off");
    let binary = within("the binary echo", session.receive()).await.unwrap();
    assert_eq!(binary.read_bytes(), &[0, 42, 255]);
}

#[tokio::test]
async fn the_bytes_on_the_wire_are_transformed_and_marked_with_the_extensions_bit() {
    let server = echo_server(Server::new().extension(Xor { key: 1 })).await;
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: x-unknown, x-xor; key=5\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (response, rest) = within("the 101", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101);
    assert_eq!(
        response.header("sec-websocket-extensions"),
        Some("x-xor; key=5")
    );

    let mut raw = RawClient::from_parts(stream, rest);
    let wire: Vec<u8> = b"hi".iter().map(|b| b ^ 5).collect();
    // Opcode 0x1 with RSV3 (0x10): a text message transformed by x-xor.
    raw.send(0x10 | 0x1, true, &wire).await;
    let echo = raw.read_frame().await.expect("the echo");
    assert_eq!(echo.opcode, 0x1);
    assert_eq!(echo.payload, wire, "the echo is XORed again on the way out");

    // RSV2 belongs to no negotiated extension: 1002.
    raw.send(0x20 | 0x2, true, b"x").await;
    let close = raw.read_frame().await.expect("a Close");
    assert_eq!(close.opcode, 0x8);
    assert_eq!(
        u16::from_be_bytes([close.payload[0], close.payload[1]]),
        1002
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_without_the_extension_declines_it() {
    let server = TestServer::new(with_echo(Server::new()));
    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/echo")).extension(Xor { key: 3 }),
    )
    .await
    .unwrap();
    assert!(session.extensions().is_empty());
    session.send("plain").await.unwrap();
    assert_eq!(
        within("echo", session.incoming().next()).await.unwrap(),
        Frame::text("plain")
    );
}

#[tokio::test]
async fn an_answer_the_client_cannot_accept_fails_with_1010() {
    let (url, server) = answering_server("x-xor; key=9").await;
    let result = within(
        "connect",
        ClientBuilder::new(url).extension(Xor { key: 42 }).connect(),
    )
    .await;
    match result {
        Err(Error::Handshake(why)) => assert!(why.contains("1010"), "{why}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    let sent = within("the client's Close", server).await.unwrap();
    assert_eq!(close_code(&sent), 1010);
}

#[tokio::test]
async fn an_extension_that_was_never_offered_fails_with_1010() {
    let (url, server) = answering_server("permessage-deflate").await;
    let result = within("connect", tandem::connect(&url)).await;
    assert!(
        matches!(result, Err(Error::Handshake(ref why)) if why.contains("not offered")),
        "{result:?}"
    );
    let sent = within("the client's Close", server).await.unwrap();
    assert_eq!(close_code(&sent), 1010);
}

#[derive(Debug)]
struct AlsoRsv3;

impl ExtensionFactory for AlsoRsv3 {
    fn name(&self) -> &str {
        "x-also-rsv3"
    }
    fn rsv(&self) -> Rsv {
        Rsv::RSV3
    }
    fn offers(&self) -> Vec<ExtensionHeader> {
        Vec::new()
    }
    fn accept(&self, _: &ExtensionHeader) -> Option<(ExtensionHeader, Box<dyn Extension>)> {
        None
    }
    fn confirm(&self, _: &ExtensionHeader) -> Result<Box<dyn Extension>, String> {
        Err("never offered".into())
    }
}

#[test]
#[should_panic(expected = "both claim RSV bits")]
fn two_extensions_claiming_one_bit_are_refused_when_configured() {
    let _ = Server::new().extension(Xor { key: 1 }).extension(AlsoRsv3);
}

#[test]
#[should_panic(expected = "both claim RSV bits")]
fn the_client_refuses_them_too() {
    let _ = ClientBuilder::new("ws://127.0.0.1:1/")
        .extension(AlsoRsv3)
        .extension(Xor { key: 1 });
}
