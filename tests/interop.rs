//! Interoperability with an independent implementation: a synchronous
//! tungstenite client (on a blocking thread) against tandem's server, and
//! tandem's client against a tokio-free tungstenite server on a std thread.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{drain, next_frame, next_text, within};
use tandem::server::{Route, RunningServer, Server};
use tandem::{ClientBuilder, CloseCode, CloseReason, Frame, FrameType, Session};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::Frame as TFrame;
use tungstenite::Message;

/// Blocking reads and writes on the std threads give up after this long, so
/// a bug fails the test instead of hanging it.
const IO_GUARD: Duration = Duration::from_secs(20);

async fn mirror(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

async fn tandem_server() -> RunningServer {
    Server::new()
        .web_socket("/echo", tandem::demo::echo)
        .web_socket(Route::new("/mirror").protocol("chat"), mirror)
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

fn tungstenite_client(
    addr: std::net::SocketAddr,
    path: &str,
    protocol: Option<&str>,
) -> tungstenite::WebSocket<TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(addr).expect("TCP connect");
    stream.set_read_timeout(Some(IO_GUARD)).unwrap();
    stream.set_write_timeout(Some(IO_GUARD)).unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (socket, response) = tungstenite::client(request, stream).expect("tungstenite handshake");
    assert_eq!(response.status(), 101);
    socket
}

fn read_text(socket: &mut tungstenite::WebSocket<TcpStream>) -> String {
    match socket.read().expect("read a message") {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Runs blocking `work` on the blocking pool, under the hang guard.
async fn blocking<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    within(what, tokio::task::spawn_blocking(work))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tungstenite_client_talks_to_the_echo_demo() {
    let server = tandem_server().await;
    let addr = server.local_addr();
    blocking("the tungstenite client", move || {
        let mut socket = tungstenite_client(addr, "/echo", None);
        assert_eq!(read_text(&mut socket), "Please enter your name");
        socket.send(Message::text("Ktor")).unwrap();
        assert_eq!(read_text(&mut socket), "Hi, Ktor!");

        // tandem answers pings in the default mode.
        socket
            .send(Message::Ping(b"are you there".to_vec().into()))
            .unwrap();
        match socket.read().unwrap() {
            Message::Pong(data) => assert_eq!(&data[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }

        // A message in three fragments, with a ping between two of them.
        let fragments = [
            TFrame::message(&b"fr"[..], OpCode::Data(Data::Text), false),
            TFrame::message(&b"ag"[..], OpCode::Data(Data::Continue), false),
            TFrame::message(&b"ments"[..], OpCode::Data(Data::Continue), true),
        ];
        for (i, fragment) in fragments.into_iter().enumerate() {
            socket.send(Message::Frame(fragment)).unwrap();
            if i == 1 {
                socket.send(Message::Ping(b"mid".to_vec().into())).unwrap();
            }
        }
        match socket.read().unwrap() {
            Message::Pong(data) => assert_eq!(&data[..], b"mid"),
            other => panic!("expected a pong, got {other:?}"),
        }
        assert_eq!(read_text(&mut socket), "Hi, fragments!");

        socket.send(Message::text("BYE")).unwrap();
        match socket.read().unwrap() {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1000);
                assert_eq!(frame.reason.as_str(), "Client said BYE");
            }
            other => panic!("expected a close, got {other:?}"),
        }
        // tungstenite answered the Close; tandem then ends the connection.
        match socket.read() {
            Err(tungstenite::Error::ConnectionClosed) => {}
            Ok(message) => panic!("a message after the close: {message:?}"),
            Err(e) => panic!("expected a clean end, got {e}"),
        }
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tungstenite_client_gets_binary_and_large_messages_back() {
    let server = tandem_server().await;
    let addr = server.local_addr();
    blocking("the tungstenite client", move || {
        let mut socket = tungstenite_client(addr, "/mirror", Some("chat"));
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            socket.send(Message::binary(data.clone())).unwrap();
            match socket.read().unwrap() {
                Message::Binary(back) => assert!(back[..] == data[..], "{len} bytes differ"),
                other => panic!("expected binary, got {other:?}"),
            }
        }
        let text = "é".repeat(300_000);
        socket.send(Message::text(text.clone())).unwrap();
        assert!(read_text(&mut socket) == text);

        socket
            .close(Some(CloseFrame {
                code: 4001u16.into(),
                reason: "done here".into(),
            }))
            .unwrap();
        loop {
            match socket.read() {
                Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4001),
                Ok(message) => panic!("unexpected {message:?}"),
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("expected a clean end, got {e}"),
            }
        }
    })
    .await;
    server.shutdown().await;
}

/// A tungstenite echo server for one connection on a std thread. It picks
/// the subprotocol `chat` if offered, reports the `x-test` header in its
/// first message, echoes data messages, and closes with 4000 when told
/// `close me`. Returns the close frame it received, if any.
fn spawn_tungstenite_server() -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<Option<(u16, String)>>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(IO_GUARD)).unwrap();
        stream.set_write_timeout(Some(IO_GUARD)).unwrap();
        let mut header = String::new();
        // The callback's error type is tungstenite's, large or not.
        #[allow(clippy::result_large_err)]
        let callback =
            |request: &tungstenite::handshake::server::Request,
             mut response: tungstenite::handshake::server::Response| {
                header = request
                    .headers()
                    .get("x-test")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                let offers_chat = request
                    .headers()
                    .get_all("sec-websocket-protocol")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .any(|p| p.trim() == "chat");
                if offers_chat {
                    response
                        .headers_mut()
                        .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
                }
                Ok(response)
            };
        let mut socket = tungstenite::accept_hdr(stream, callback).expect("server handshake");
        socket
            .send(Message::text(format!("x-test={header}")))
            .unwrap();
        let mut received_close = None;
        loop {
            match socket.read() {
                Ok(Message::Text(text)) if text.as_str() == "close me" => {
                    socket
                        .close(Some(CloseFrame {
                            code: 4000u16.into(),
                            reason: "as you wish".into(),
                        }))
                        .unwrap();
                }
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                    socket.send(message).unwrap()
                }
                Ok(Message::Close(frame)) => {
                    received_close =
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                }
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("tungstenite server: {e}"),
            }
        }
        received_close
    });
    (addr, handle)
}

#[tokio::test]
async fn tandem_client_talks_to_a_tungstenite_server_and_closes() {
    let (addr, server) = spawn_tungstenite_server();
    let mut session = within(
        "connect",
        ClientBuilder::new(format!("ws://{addr}/anything"))
            .protocol("mqtt")
            .protocol("chat")
            .header("X-Test", "from tandem")
            .connect(),
    )
    .await
    .expect("connect to tungstenite");
    assert_eq!(session.protocol(), Some("chat"));
    assert_eq!(next_text(&mut session).await, "x-test=from tandem");

    within("send", session.send("hello")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "hello");
    // tungstenite answers our ping; the default mode swallows the pong.
    within("ping", session.send(Frame::ping(&b"p"[..])))
        .await
        .unwrap();
    let data: Vec<u8> = (0..1usize << 20).map(|i| (i % 241) as u8).collect();
    within("send 1 MiB", session.send(data.clone()))
        .await
        .unwrap();
    let frame = next_frame(&mut session).await;
    assert_eq!(frame.frame_type(), FrameType::Binary);
    assert!(frame.read_bytes() == &data[..], "1 MiB payload differs");
    // A fragmented message, reassembled by tungstenite and echoed whole.
    within("fragment", session.send(Frame::text("Hel").with_fin(false)))
        .await
        .unwrap();
    within(
        "fragment",
        session.send(Frame::new(FrameType::Continuation, "lo")),
    )
    .await
    .unwrap();
    assert_eq!(next_text(&mut session).await, "Hello");

    within(
        "close",
        session.close(CloseReason::new(CloseCode::GoingAway, "leaving")),
    )
    .await
    .unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await.code,
        CloseCode::GoingAway
    );
    let received = blocking("the tungstenite server", move || server.join().unwrap()).await;
    assert_eq!(received, Some((1001, "leaving".to_owned())));
}

#[tokio::test]
async fn tandem_client_sees_a_tungstenite_servers_close() {
    let (addr, server) = spawn_tungstenite_server();
    let mut session = within("connect", tandem::connect(&format!("ws://{addr}/")))
        .await
        .expect("connect to tungstenite");
    assert_eq!(session.protocol(), None);
    assert_eq!(next_text(&mut session).await, "x-test=-");
    within("send", session.send("close me")).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await,
        CloseReason::new(CloseCode::Other(4000), "as you wish")
    );
    let received = blocking("the tungstenite server", move || server.join().unwrap()).await;
    // tandem answers a Close with the same code.
    assert_eq!(received.map(|(code, _)| code), Some(4000));
}
