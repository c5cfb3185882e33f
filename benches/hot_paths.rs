//! Microbenchmarks of the protocol's hot paths (criterion):
//!
//! ```text
//! cargo bench --bench hot_paths            # all of them
//! cargo bench --bench hot_paths -- mask    # one group
//! ```
//!
//! - `header`: frame header parse and encode at each length form;
//! - `mask`: XOR masking at message sizes from 20 B to 1 MiB;
//! - `utf8`: incremental UTF-8 validation of ASCII and multilingual text,
//!   whole and in pieces;
//! - `engine`: a whole masked frame through the server engine (parse,
//!   unmask, validate, hand out) and a frame queued and taken as output;
//! - `deflate`: permessage-deflate at the documented defaults, compress and
//!   decompress of 20 B, 1 KiB and 16 KiB text messages through the
//!   extension a server negotiates for a browser's offer.
//!
//! CI only builds these (`cargo bench --no-run`); they are not timed tests.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::hint::black_box;
use std::io::IoSlice;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tandem::extensions::{Extension, ExtensionFactory, ExtensionHeader, PerMessageDeflate};
use tandem::protocol::{apply_mask, Config, FrameHeader, Protocol, Role, Utf8Validator};
use tandem::{Frame, Rsv, WebSocketOptions};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn header(len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: Rsv::NONE,
        opcode: 0x1,
        mask,
        payload_len: len,
    }
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("header");
    for (name, len) in [("7-bit", 20u64), ("16-bit", 1024), ("64-bit", 1 << 20)] {
        let h = header(len, Some(KEY));
        let mut wire = Vec::new();
        h.encode(&mut wire);
        group.bench_function(BenchmarkId::new("parse", name), |b| {
            b.iter(|| FrameHeader::parse(black_box(&wire)))
        });
        let h = header(len, None);
        let mut out = BytesMut::with_capacity(64);
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                black_box(&h).encode(&mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [20usize, 1024, 16 * 1024, 1 << 20] {
        let mut data = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut data), KEY, 0))
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let ascii: Vec<u8> = (0..16 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mixed: Vec<u8> = "Hello-µ@ßöäüàá κόσμε 𝄞 ハロー "
        .repeat(16 * 1024 / 40)
        .into_bytes();
    let mut group = c.benchmark_group("utf8");
    for (name, text) in [("ascii", &ascii), ("multilingual", &mixed)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("whole", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(text)).unwrap();
                v.finish().unwrap()
            })
        });
        // Reads cut a message anywhere, inside characters too.
        group.bench_function(BenchmarkId::new("pieces-of-1000", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for piece in black_box(text).chunks(1000) {
                    v.feed(piece).unwrap();
                }
                v.finish().unwrap()
            })
        });
    }
    group.finish();
}

/// A masked client text frame, as a server receives it.
fn client_frame(size: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut wire = Vec::new();
    header(size as u64, Some(KEY)).encode(&mut wire);
    let start = wire.len();
    wire.extend_from_slice(&payload);
    apply_mask(&mut wire[start..], KEY, 0);
    wire
}

fn engine(c: &mut Criterion) {
    let now = Instant::now();
    let options = WebSocketOptions::default();
    let mut group = c.benchmark_group("engine");
    for size in [20usize, 1024, 16 * 1024] {
        let wire = client_frame(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
        group.bench_with_input(BenchmarkId::new("receive", size), &size, |b, _| {
            b.iter(|| {
                server.receive_data(black_box(&wire));
                black_box(server.poll_event(now).unwrap())
            })
        });
        let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
        let frame = Frame::text(String::from_utf8(vec![b'x'; size]).unwrap());
        group.bench_with_input(BenchmarkId::new("send", size), &size, |b, _| {
            b.iter(|| {
                server.send(frame.clone(), now).unwrap();
                let mut slices = [IoSlice::new(&[]); 8];
                let n = server.output(&mut slices);
                let written: usize = slices[..n].iter().map(|s| s.len()).sum();
                server.consume_output(black_box(written), now);
            })
        });
    }
    group.finish();
}

/// The extension a server at the defaults agrees for a browser's offer
/// (`permessage-deflate; client_max_window_bits`), once per call.
fn server_deflate() -> Box<dyn Extension> {
    let offer =
        &ExtensionHeader::parse_list("permessage-deflate; client_max_window_bits").unwrap()[0];
    PerMessageDeflate::new().accept(offer).unwrap().1
}

/// Chat-like text: words that repeat, as a compressor meets them.
fn chat_text(size: usize) -> String {
    let words = [
        "hello",
        "ktor",
        "tandem",
        "websocket",
        "room",
        "message",
        "user42",
        "ok",
    ];
    let mut text = String::new();
    let mut i = 0;
    while text.len() < size {
        text.push_str(words[(i * 7 + i / 3) % words.len()]);
        text.push(' ');
        i += 1;
    }
    text.truncate(size);
    text
}

fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    for size in [20usize, 1024, 16 * 1024] {
        let message = Frame::text(chat_text(size));
        group.throughput(Throughput::Bytes(size as u64));
        let mut server = server_deflate();
        group.bench_with_input(BenchmarkId::new("compress", size), &size, |b, _| {
            b.iter(|| server.encode(black_box(message.clone())).unwrap())
        });
        // What the server sent, as its peer decompresses it (a fresh
        // context for each message: the server takes none over).
        let compressed = server_deflate().encode(message.clone()).unwrap();
        let mut peer = server_deflate();
        group.bench_with_input(BenchmarkId::new("decompress", size), &size, |b, _| {
            b.iter(|| peer.decode(black_box(compressed.clone()), None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, headers, masking, utf8, engine, deflate);
criterion_main!(benches);
