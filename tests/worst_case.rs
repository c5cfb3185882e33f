//! The most memory a peer can make one connection cost, under a counting
//! allocator: peers that send the largest messages the defaults allow, as
//! fast as they can, and never read a reply, plain and compressed; and a
//! peer that pings at line rate and never reads the pongs. The process must
//! stay within the worst case that the README's "Limits and defaults" gives
//! as a formula of the options, every attacker's session still open (the
//! bound holds because reading stops, not because the server gave up).
//!
//! One test only, so that nothing else allocates meanwhile.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{read_http_response, RawClient};
use flate2::{Compress, Compression, FlushCompress};
use tandem::extensions::PerMessageDeflate;
use tandem::server::{RunningServer, Server};
use tandem::{Session, WebSocketOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Connections attacking at once.
const PEERS: usize = 4;
/// How long each attack lasts.
const ATTACK: Duration = Duration::from_secs(2);
/// What one read of the socket can bring in at once.
const READ: usize = 64 << 10;
/// The driver's output high-water mark.
const OUTPUT_HIGH_WATER: usize = 256 << 10;
/// permessage-deflate's state: a compressor and a decompressor at window
/// bits 15 (zlib's 256 KiB + 64 KiB and 32 KiB + 7 KiB, rounded up).
const DEFLATE_STATE: usize = 512 << 10;

/// The README's worst case for one connection, with a handler that holds
/// `held` bytes of its own.
fn worst_case(o: &WebSocketOptions, deflate: bool, held: usize) -> usize {
    let m = o.max_message_size.expect("a message limit");
    o.incoming_queue_bytes
        + o.incoming_queue * READ
        + o.outgoing_queue_bytes
        + 4 * m
        + OUTPUT_HIGH_WATER
        + READ
        + if deflate { DEFLATE_STATE } else { 0 }
        + held
}

/// An echo that sends back each message it receives, as it is: it holds
/// one message at a time.
async fn echo_server(deflate: bool) -> RunningServer {
    let server = Server::new().web_socket("/echo", |mut session: Session| async move {
        while let Some(frame) = session.receive().await {
            if session.send(frame).await.is_err() {
                break;
            }
        }
    });
    let server = if deflate {
        server.extension(PerMessageDeflate::new())
    } else {
        server
    };
    server.bind("127.0.0.1:0").await.expect("bind")
}

async fn upgrade(server: &RunningServer, deflate: bool) -> TcpStream {
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extensions = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extensions}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (response, _) = common::within("the 101", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(
        response.header("sec-websocket-extensions").is_some(),
        deflate
    );
    stream
}

/// `text` compressed on its own as a permessage-deflate message payload.
fn deflated(text: &[u8]) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(64 << 10);
    while compress.total_in() < text.len() as u64 || out.len() == out.capacity() {
        out.reserve(64 << 10);
        let done = compress.total_in() as usize;
        compress
            .compress_vec(&text[done..], &mut out, FlushCompress::Sync)
            .unwrap();
    }
    out.truncate(out.len() - 4);
    out
}

/// Opens `PEERS` sessions and has each write `frame` over and over for
/// `ATTACK`, never reading; returns the most bytes the process held
/// meanwhile above what it held before, and how much each peer got to write.
async fn attack(server: &RunningServer, deflate: bool, frame: &[u8]) -> (usize, Vec<usize>) {
    let mut streams = Vec::new();
    for _ in 0..PEERS {
        streams.push(upgrade(server, deflate).await);
    }
    let before = counting_alloc::start();
    let mut written = vec![0usize; PEERS];
    let deadline = tokio::time::Instant::now() + ATTACK;
    let writers = streams
        .iter_mut()
        .zip(written.iter_mut())
        .map(|(stream, written)| async move {
            // Each write is cut off at the deadline: a server that stopped
            // reading leaves it blocked.
            while let Ok(Ok(())) = tokio::time::timeout_at(deadline, stream.write_all(frame)).await
            {
                *written += frame.len();
            }
        });
    futures::future::join_all(writers).await;
    let (_, peak) = counting_alloc::since(before);
    assert_eq!(
        server.session_count(),
        PEERS,
        "every attacker is still connected: the bound comes from reading less"
    );
    drop(streams);
    (peak, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_costs_at_most_the_documented_worst_case() {
    let options = WebSocketOptions::default();
    let m = options.max_message_size.unwrap();
    let held = m;
    let text = vec![b'a'; m - 16];

    // Uncompressed: the largest text messages, one after another.
    let server = echo_server(false).await;
    let frame = RawClient::encode(0x1, true, &text);
    let (peak, written) = attack(&server, false, &frame).await;
    let bound = PEERS * worst_case(&options, false, held);
    eprintln!("plain: peak {peak} B for {PEERS} peers (bound {bound} B); written {written:?}");
    assert!(
        peak <= bound,
        "plain: {peak} bytes held, worst case {bound}"
    );
    server.shutdown().await;

    // Compressed: each message a few hundred bytes on the wire, the largest
    // message the limit allows once inflated.
    let server = echo_server(true).await;
    let mut frame = RawClient::encode(0x1, true, &deflated(&text));
    frame[0] |= 0x40; // RSV1: a compressed message
    assert!(frame.len() < 4096, "{}", frame.len());
    let (peak, written) = attack(&server, true, &frame).await;
    let bound = PEERS * worst_case(&options, true, held);
    eprintln!("deflate: peak {peak} B for {PEERS} peers (bound {bound} B); written {written:?}");
    assert!(
        peak <= bound,
        "deflate: {peak} bytes held, worst case {bound}"
    );
    server.shutdown().await;

    // Pings at line rate, pongs never read: only the latest ping is
    // answered once the output backs up, so it stops growing, though the
    // server goes on reading.
    let server = echo_server(false).await;
    let pings: Vec<u8> = (0..512)
        .flat_map(|_| RawClient::encode(0x9, true, &[7; 125]))
        .collect();
    let (peak, written) = attack(&server, false, &pings).await;
    let bound = PEERS * worst_case(&options, false, held);
    eprintln!("pings: peak {peak} B for {PEERS} peers (bound {bound} B); written {written:?}");
    assert!(peak <= bound, "pings: {peak} bytes held, bound {bound}");
    server.shutdown().await;
}
