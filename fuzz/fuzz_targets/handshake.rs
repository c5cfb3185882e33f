//! cargo-fuzz target: the handshake parsers (see `harness::handshake`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::handshake(data));
