//! What the engine allocates on the path of a message: a message that came
//! in one frame is a view of the read buffer, and echoing it back queues
//! that same payload, so a connection's steady echo makes no allocation per
//! message (a fragmented message is the exception: it is copied together).
//!
//! One test only, so that nothing else allocates meanwhile.
#![cfg(not(target_arch = "wasm32"))]

use std::io::IoSlice;
use std::time::Instant;

use tandem::protocol::{apply_mask, Config, Protocol, Role};
use tandem::{Frame, WebSocketOptions};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MESSAGES: usize = 1_000;

/// A client's masked frame: text or binary, final or not, or a continuation.
fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![
        opcode | if fin { 0x80 } else { 0 },
        0x80 | payload.len() as u8,
    ];
    frame.extend_from_slice(&key);
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], key, 0);
    frame
}

/// Feeds `wire` to a server engine and echoes every message it yields;
/// returns the echoed messages and the allocations made while parsing and
/// echoing (the read buffer is filled, and its room reserved, before).
fn echo(wire: &[u8]) -> (Vec<Frame>, usize) {
    let now = Instant::now();
    let options = WebSocketOptions::default();
    let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
    server.read_buffer().extend_from_slice(wire);
    let mut echoed = Vec::with_capacity(MESSAGES);
    let before = allocations();
    while let Some(frame) = server.poll_event(now) {
        server.send(frame.clone(), now).expect("send");
        let written = {
            let mut slices = [IoSlice::new(&[]); 8];
            let n = server.output(&mut slices);
            slices[..n].iter().map(|s| s.len()).sum()
        };
        server.consume_output(written, now);
        echoed.push(frame);
    }
    (echoed, allocations() - before)
}

#[test]
fn echoing_single_frame_messages_allocates_nothing_per_message() {
    let texts: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| client_frame(0x1, true, format!("message {i}").as_bytes()))
        .collect();
    let (echoed, allocated) = echo(&texts.concat());
    assert_eq!(echoed.len(), MESSAGES);
    assert_eq!(echoed[7], Frame::text("message 7"));
    // A few set the connection up (the read buffer turns shared, the
    // output queue gets its first room); none is per message.
    assert!(
        allocated < MESSAGES / 100,
        "{allocated} allocations for {MESSAGES} single-frame echoes"
    );

    let binaries: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| client_frame(0x2, true, &[i as u8; 20]))
        .collect();
    let (echoed, allocated) = echo(&binaries.concat());
    assert_eq!(echoed.len(), MESSAGES);
    assert!(
        allocated < MESSAGES / 100,
        "{allocated} allocations for {MESSAGES} binary echoes"
    );

    // A fragmented message is put together in a buffer of its own.
    let fragmented: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|_| {
            [
                client_frame(0x1, false, b"Hel"),
                client_frame(0x0, true, b"lo"),
            ]
            .concat()
        })
        .collect();
    let (echoed, allocated) = echo(&fragmented.concat());
    assert_eq!(echoed.len(), MESSAGES);
    assert_eq!(echoed[MESSAGES - 1], Frame::text("Hello"));
    assert!(allocated >= MESSAGES, "{allocated} allocations");
}
