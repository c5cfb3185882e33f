//! What permessage-deflate costs a connection, measured with a counting
//! allocator: for window bits 8, 9, 12 and 15, with and without context
//! takeover, the bytes a server-side connection holds for its compressor
//! (what it sends) and its decompressor (what it receives) once a message
//! has passed and the connection is idle, and the peak while a message
//! passes. Then the throughput of one direction at the default settings.
//!
//! ```text
//! cargo run --release --example deflate_memory
//! ```
//!
//! The client and server extensions are negotiated through the public
//! `ExtensionFactory` API, exactly as a handshake does; the messages are
//! 4 KiB of JSON-like text.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::time::Instant;

use tandem::extensions::{Extension, ExtensionFactory, PerMessageDeflate};
use tandem::Frame;

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{since, start, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// About `bytes` of JSON-like text, different for each `seed`.
fn message(seed: usize, bytes: usize) -> Frame {
    let mut text = String::with_capacity(bytes + 64);
    let mut i = seed * 1000;
    while text.len() < bytes {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user-{}\",\"score\":{},\"online\":{}}},",
            i % 97,
            (i * 7919) % 10007,
            i % 3 == 0
        ));
        i += 1;
    }
    text.truncate(bytes);
    Frame::text(text)
}

fn negotiate(
    client: &PerMessageDeflate,
    server: &PerMessageDeflate,
) -> (Box<dyn Extension>, Box<dyn Extension>) {
    let offer = client.offers().remove(0);
    let (answer, server_ext) = server.accept(&offer).expect("the server accepts");
    let client_ext = client.confirm(&answer).expect("the client confirms");
    (client_ext, server_ext)
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn main() {
    const MESSAGES: usize = 8;
    const SIZE: usize = 4096;
    println!("bytes a server-side connection holds for permessage-deflate, after {MESSAGES} messages of {SIZE} bytes each way");
    println!();
    println!("| window bits | context takeover | compressor, idle | compressor, peak | decompressor, idle | decompressor, peak |");
    println!("|---|---|---|---|---|---|");
    for bits in [8u8, 9, 12, 15] {
        for takeover in [true, false] {
            let config = PerMessageDeflate::new()
                .server_max_window_bits(bits)
                .client_max_window_bits(bits)
                .server_no_context_takeover(!takeover)
                .client_no_context_takeover(!takeover);
            let (mut client, mut server) = negotiate(&config, &config);
            let inputs: Vec<Frame> = (0..MESSAGES).map(|i| message(i, SIZE)).collect();
            let compressed: Vec<Frame> = inputs
                .iter()
                .map(|m| client.encode(m.clone()).expect("encode"))
                .collect();

            // What the server keeps for sending.
            let base = start();
            for input in &inputs {
                drop(server.encode(input.clone()).expect("encode"));
            }
            let (send_idle, send_peak) = since(base);

            // What it keeps for receiving.
            let base = start();
            for frame in &compressed {
                drop(server.decode(frame.clone(), None).expect("decode"));
            }
            let (recv_idle, recv_peak) = since(base);

            println!(
                "| {bits} | {} | {} | {} | {} | {} |",
                if takeover { "yes" } else { "no" },
                kib(send_idle),
                kib(send_peak),
                kib(recv_idle),
                kib(recv_peak)
            );
        }
    }

    // What context takeover buys: the compressed size of a stream of
    // similar messages, with and without it.
    println!();
    println!("compressed size, % of the original, 200 messages (12-bit window, level 6)");
    println!();
    println!("| message size | context takeover | no context takeover |");
    println!("|---|---|---|");
    for size in [100, 1000, 4096, 65536] {
        let ratio = |takeover: bool| {
            let config = PerMessageDeflate::new().server_no_context_takeover(!takeover);
            let (_, mut server) = negotiate(&PerMessageDeflate::new(), &config);
            let (mut plain, mut wire) = (0, 0);
            for i in 0..200 {
                let input = message(i, size);
                plain += input.read_bytes().len();
                wire += server.encode(input).expect("encode").read_bytes().len();
            }
            format!("{:.1}%", 100.0 * wire as f64 / plain as f64)
        };
        println!("| {size} | {} | {} |", ratio(true), ratio(false));
    }

    // Throughput of the default configuration, one direction.
    let (mut client, mut server) = negotiate(&PerMessageDeflate::new(), &PerMessageDeflate::new());
    let inputs: Vec<Frame> = (0..2000).map(|i| message(i, SIZE)).collect();
    let total: usize = inputs.iter().map(|m| m.read_bytes().len()).sum();
    let began = Instant::now();
    let compressed: Vec<Frame> = inputs
        .iter()
        .map(|m| client.encode(m.clone()).expect("encode"))
        .collect();
    let compress_time = began.elapsed();
    let wire: usize = compressed.iter().map(|m| m.read_bytes().len()).sum();
    let began = Instant::now();
    for frame in compressed {
        drop(server.decode(frame, None).expect("decode"));
    }
    let inflate_time = began.elapsed();
    let mb_per_s = |seconds: f64| total as f64 / 1e6 / seconds;
    println!();
    println!(
        "defaults (level 6, 12-bit window, context takeover), {} messages of {SIZE} bytes: \
         compressed to {:.1}% of their size; compress {:.0} MB/s, inflate {:.0} MB/s (one core)",
        inputs.len(),
        100.0 * wire as f64 / total as f64,
        mb_per_s(compress_time.as_secs_f64()),
        mb_per_s(inflate_time.as_secs_f64())
    );
}
