//! A decompression bomb against a server with permessage-deflate, under a
//! counting allocator: 10 MB of zeros, compressed to about 10 KB, sent to a
//! server whose `max_message_size` is 1 MiB, closes with 1009 while the
//! whole process never holds more than a few MiB; the same bomb under a
//! 16 MiB limit is inflated whole, which shows the measurement would see
//! it. One test only, so that nothing else allocates meanwhile.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{read_http_response, within, RawClient};
use flate2::{Compress, Compression, FlushCompress};
use tandem::extensions::PerMessageDeflate;
use tandem::server::Server;
use tandem::{Session, WebSocketOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// 10 MB of zeros as a permessage-deflate payload.
fn bomb() -> Vec<u8> {
    let zeros = vec![0u8; 10_000_000];
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(64 << 10);
    while compress.total_in() < zeros.len() as u64 || out.len() == out.capacity() {
        out.reserve(64 << 10);
        let done = compress.total_in() as usize;
        compress
            .compress_vec(&zeros[done..], &mut out, FlushCompress::Sync)
            .unwrap();
    }
    out.truncate(out.len() - 4);
    out
}

/// Sends `payload` as one compressed binary message to a server with
/// `max_message_size`; returns the opcode of the first frame back and the
/// most bytes the process held meanwhile, above what it held before.
async fn send_bomb(payload: &[u8], max_message_size: usize) -> (u8, Option<u16>, usize) {
    let server = Server::new()
        .options(WebSocketOptions {
            max_message_size: Some(max_message_size),
            ..Default::default()
        })
        .extension(PerMessageDeflate::new())
        .web_socket("/echo", |mut session: Session| async move {
            while let Some(frame) = session.receive().await {
                // Only the size comes back, not 10 MB of zeros.
                let size = frame.read_bytes().len().to_string();
                if session.send(size).await.is_err() {
                    break;
                }
            }
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (response, rest) = within("the 101", read_http_response(&mut stream)).await;
    assert!(response.header("sec-websocket-extensions").is_some());
    let mut raw = RawClient::from_parts(stream, rest);
    let frame = RawClient::encode(0x40 | 0x2, true, payload);

    let before = counting_alloc::start();
    raw.stream.write_all(&frame).await.unwrap();
    let answer = raw.read_frame().await.expect("an answer");
    let (_, peak) = counting_alloc::since(before);
    let code =
        (answer.opcode == 0x8).then(|| u16::from_be_bytes([answer.payload[0], answer.payload[1]]));
    server.shutdown().await;
    (answer.opcode, code, peak)
}

#[tokio::test(flavor = "current_thread")]
async fn a_bomb_costs_no_more_than_the_limit() {
    let bomb = bomb();
    assert!(bomb.len() < 20_000, "{}", bomb.len());

    let (opcode, code, peak) = send_bomb(&bomb, 1 << 20).await;
    assert_eq!((opcode, code), (0x8, Some(1009)));
    eprintln!("a 10 MB bomb under a 1 MiB limit: 1009, peak {peak} bytes above the start");
    assert!(
        peak < 3 << 20,
        "a 1 MiB limit, yet the process held {peak} more bytes"
    );

    // The measurement sees an inflated bomb: with room for it, 10 MB.
    let (opcode, _, peak) = send_bomb(&bomb, 16 << 20).await;
    assert_eq!(opcode, 0x1, "the size of the inflated message");
    eprintln!("the same bomb under a 16 MiB limit: inflated, peak {peak} bytes");
    assert!(peak >= 10_000_000, "{peak}");
}
