//! Helpers shared by the integration tests: hang guards, sessions opened on
//! a server bound to 127.0.0.1 or on a `TestServer` (no socket), a raw HTTP
//! exchange over TCP, and a minimal hand-written WebSocket client for the
//! tests that must control the bytes on the wire.
//!
//! Every wait goes through [`within`], so a bug fails the test instead of
//! hanging it. The limit is generous: it is a hang guard, not a timing check.
//! Under a paused clock it is virtual time, so a test that waits on nothing
//! fails at once; [`watchdog`] covers a task that spins.

#![allow(dead_code)]

pub mod members;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, Frame, FrameType, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single wait may take before the test is failed as hung.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test with `what` if it does not finish in time.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(HANG_GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {HANG_GUARD:?}: {what}"),
    }
}

/// Ends the test process if it still runs after `limit` of real time: a
/// task that spins keeps paused time from advancing, so no timeout of
/// tokio's (not even [`within`]) would fire. It is the whole binary's
/// limit, not the calling test's: make it longer than all of them take.
pub fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("still running after {limit:?} of real time: a task spins");
        std::process::exit(101);
    });
}

/// A server a test opens sessions on: one bound to a port of 127.0.0.1
/// ([`RunningServer`]), or a [`TestServer`], which has no socket.
pub trait Endpoint {
    /// The URL of `path_and_query` on this server, for a [`ClientBuilder`].
    fn url(&self, path_and_query: &str) -> String;

    /// Opens a session as `client` describes it.
    fn open(&self, client: ClientBuilder) -> impl Future<Output = Result<Session, tandem::Error>>;
}

impl Endpoint for RunningServer {
    fn url(&self, path_and_query: &str) -> String {
        ws_url(self, path_and_query)
    }

    fn open(&self, client: ClientBuilder) -> impl Future<Output = Result<Session, tandem::Error>> {
        client.connect()
    }
}

impl Endpoint for TestServer {
    fn url(&self, path_and_query: &str) -> String {
        TestServer::url(self, path_and_query)
    }

    fn open(&self, client: ClientBuilder) -> impl Future<Output = Result<Session, tandem::Error>> {
        self.connect_with(client)
    }
}

/// The echo demo (`tandem::demo::echo`) at `/echo`.
pub fn echo_demo() -> Server {
    Server::new().web_socket("/echo", tandem::demo::echo)
}

/// The echo demo at `/echo` on a free port.
pub async fn echo_demo_server() -> RunningServer {
    echo_demo()
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// `ws://ADDR/PATH` for a running server.
pub fn ws_url(server: &RunningServer, path_and_query: &str) -> String {
    format!("ws://{}{}", server.local_addr(), path_and_query)
}

/// Connects a tandem client, failing the test on error or hang.
pub async fn connect(server: &impl Endpoint, path_and_query: &str) -> Session {
    let url = server.url(path_and_query);
    within(
        &format!("connect to {url}"),
        server.open(ClientBuilder::new(url.clone())),
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Opens a session as `client` describes it, failing the test on a hang
/// (not on an error: a refusal may be what the test expects).
pub async fn connect_with(
    server: &impl Endpoint,
    client: ClientBuilder,
) -> Result<Session, tandem::Error> {
    within("connect", server.open(client)).await
}

/// The next frame, which must be a text frame; fails on the end of the stream.
pub async fn next_text(session: &mut Session) -> String {
    let frame = within("the next text frame", session.receive())
        .await
        .expect("the session ended while a text frame was expected");
    match frame.read_text() {
        Some(text) => text.to_owned(),
        None => panic!("expected a text frame, got {frame:?}"),
    }
}

/// The next frame, failing on the end of the stream.
pub async fn next_frame(session: &mut Session) -> Frame {
    within("the next frame", session.receive())
        .await
        .expect("the session ended while a frame was expected")
}

/// Waits for the incoming stream to end and returns every frame left in it.
pub async fn drain(session: &mut Session) -> Vec<Frame> {
    within("the end of the incoming stream", async {
        let mut frames = Vec::new();
        while let Some(frame) = session.receive().await {
            frames.push(frame);
        }
        frames
    })
    .await
}

/// Serves `service` with hyper's HTTP/1 (upgrades on) on a free port of
/// 127.0.0.1, one task per connection, as an application that embeds
/// tandem in a hyper server of its own does; the accept loop runs until
/// the test ends.
pub async fn serve_hyper<S>(service: S) -> SocketAddr
where
    S: hyper::service::HttpService<hyper::body::Incoming> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a local address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service.clone())
                .with_upgrades();
            tokio::spawn(connection);
        }
    });
    addr
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A TCP connection to `addr` from the loopback address `from` (any of
/// 127.0.0.0/8 on Linux), for tests that need another client address.
pub async fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    within(&format!("connect to {addr} from {from}"), async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from((from, 0)))
            .unwrap_or_else(|e| panic!("bind {from}: {e}"));
        socket.connect(addr).await.expect("TCP connect")
    })
    .await
}

/// Sends `request` (a whole hand-written HTTP/1.1 request) on a fresh TCP
/// connection and reads one response with its `Content-Length` body.
pub async fn http_exchange(addr: SocketAddr, request: &str) -> HttpResponse {
    within(&format!("an HTTP exchange with {addr}"), async {
        let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write the request");
        let (response, _rest) = read_http_response(&mut stream).await;
        response
    })
    .await
}

/// Reads one HTTP response head and its `Content-Length` body; returns any
/// bytes read past it.
pub async fn read_http_response(stream: &mut TcpStream) -> (HttpResponse, Vec<u8>) {
    let (mut response, mut rest) = read_response_head(stream).await;
    let length = response
        .header("content-length")
        .map(|v| v.trim().parse::<usize>().expect("a numeric Content-Length"))
        .unwrap_or(0);
    let mut chunk = [0u8; 4096];
    while rest.len() < length {
        let n = stream.read(&mut chunk).await.expect("read the body");
        assert!(n > 0, "connection closed inside the body");
        rest.extend_from_slice(&chunk[..n]);
    }
    let after = rest.split_off(length);
    response.body = rest;
    (response, after)
}

/// Reads one HTTP response head (its `body` left empty); returns the bytes
/// read past it.
pub async fn read_response_head(stream: &mut TcpStream) -> (HttpResponse, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read the response");
        assert!(
            n > 0,
            "connection closed before a whole response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(head_len) =
            parsed.parse(&buf).expect("a well-formed HTTP response")
        {
            let status = parsed.code.expect("a status code");
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let rest = buf.split_off(head_len);
            let response = HttpResponse {
                status,
                headers,
                body: Vec::new(),
            };
            return (response, rest);
        }
    }
}

/// A file of `len` zero bytes at `dir/name`, sparse where the file system
/// allows: large downloads without writing them to disk.
pub fn sparse_file(dir: &std::path::Path, name: &str, len: u64) {
    std::fs::File::create(dir.join(name))
        .and_then(|file| file.set_len(len))
        .expect("create a sparse file");
}

/// A hand-written WebSocket client over a plain TCP stream: it sends exactly
/// the frames it is told to and reports exactly the frames it gets.
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    /// The RSV bits, as in the first byte (RSV1 is 0x40).
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl WireFrame {
    pub fn frame_type(&self) -> Option<FrameType> {
        FrameType::from_opcode(self.opcode)
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("a UTF-8 payload")
    }
}

impl RawClient {
    /// Opens `path` on `addr` with a valid upgrade request; fails the test
    /// unless the answer is 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let stream = within("TCP connect", TcpStream::connect(addr))
            .await
            .expect("TCP connect");
        Self::handshake(stream, addr, path).await
    }

    /// The same over `stream`, already connected to `addr` (from an address
    /// of the test's choosing, say).
    pub async fn handshake(mut stream: TcpStream, addr: SocketAddr, path: &str) -> Self {
        within("a raw WebSocket handshake", async {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .expect("write the upgrade request");
            let (response, rest) = read_http_response(&mut stream).await;
            assert_eq!(response.status, 101, "{response:?}");
            assert_eq!(
                response.header("sec-websocket-accept"),
                // RFC 6455 §1.3
                Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            );
            Self { stream, buf: rest }
        })
        .await
    }

    /// A client over a stream whose handshake was done by hand; `rest` holds
    /// any bytes read past the 101 response.
    pub fn from_parts(stream: TcpStream, rest: Vec<u8>) -> Self {
        Self { stream, buf: rest }
    }

    /// The bytes of one masked client frame.
    pub fn encode(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, fin: bool, payload: &[u8]) {
        let bytes = Self::encode(opcode, fin, payload);
        within("a raw frame write", self.stream.write_all(&bytes))
            .await
            .expect("write a frame");
    }

    /// Sends a Close frame with `code` and `reason`.
    pub async fn send_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send(0x8, true, &payload).await;
    }

    /// Reads the next frame; `None` on a clean end of file between frames.
    pub async fn read_frame(&mut self) -> Option<WireFrame> {
        within("a raw frame read", async {
            loop {
                if let Some((frame, used)) = parse_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some(frame);
                }
                let mut chunk = [0u8; 16 * 1024];
                match self.stream.read(&mut chunk).await {
                    Ok(0) => {
                        assert!(self.buf.is_empty(), "end of file inside a frame");
                        return None;
                    }
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) => panic!("read failed: {e}"),
                }
            }
        })
        .await
    }
}

impl RawClient {
    /// Reads the next frame without a hang guard; `None` at end of file or
    /// on an error (for peers the server may drop at any moment).
    pub async fn read_frame_lenient(&mut self) -> Option<WireFrame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// One frame from the front of `buf`, and how many bytes it took.
fn parse_frame(buf: &[u8]) -> Option<(WireFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let key = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        let k = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(k)
    } else {
        None
    };
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(k) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    Some((
        WireFrame {
            fin,
            rsv: buf[0] & 0x70,
            opcode,
            masked,
            payload,
        },
        at + len,
    ))
}

/// A one-connection server: reads the upgrade request and hands the stream
/// and the request's `Sec-WebSocket-Key` to `answer`, whose result the
/// returned task gives (the default when the client sends no whole request).
pub async fn hand_written_server<F, Fut, T>(answer: F) -> (String, tokio::task::JoinHandle<T>)
where
    F: FnOnce(TcpStream, String) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Default + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/test", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.unwrap() == 0 {
                return T::default();
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a Sec-WebSocket-Key");
        answer(stream, key).await
    });
    (url, task)
}

/// A 101 answer with `accept` and `extra` header lines (each ending in CRLF).
pub fn switching(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

/// A server that answers any upgrade with `extensions` and reports the
/// bytes it then receives.
pub async fn answering_server(
    extensions: &'static str,
) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    hand_written_server(move |mut stream, key| async move {
        let accept = tandem::protocol::handshake::accept_key(&key);
        let extra = format!("Sec-WebSocket-Extensions: {extensions}\r\n");
        stream
            .write_all(switching(&accept, &extra).as_bytes())
            .await
            .unwrap();
        let mut frame = Vec::new();
        let _ = stream.read_to_end(&mut frame).await;
        frame
    })
    .await
}

/// The close code of the masked Close frame at the start of `bytes`.
pub fn close_code(bytes: &[u8]) -> u16 {
    assert_eq!(bytes[0] & 0x0f, 0x8, "a Close frame");
    let key = [bytes[2], bytes[3], bytes[4], bytes[5]];
    u16::from_be_bytes([bytes[6] ^ key[0], bytes[7] ^ key[1]])
}

/// The path of the example program `name`, built by `cargo test` into
/// `target/<profile>/examples/` next to the `deps/` folder that holds the
/// test binary, before any test runs. A test runs it from there: running
/// cargo from inside a test would block on the build directory lock that
/// the outer `cargo test` holds. With a target filter (`cargo test --test
/// echo`), run `cargo build --features axum --examples` first; the test
/// says so if the binary is missing.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: `cargo test --features axum` builds the examples; with a target \
         filter run `cargo build --features axum --examples` first",
        path.display()
    );
    path
}
