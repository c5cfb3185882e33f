//! cargo-fuzz target: the handshake parsers (see `harness::handshake`).
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)] // each target runs one of the harnesses
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::handshake(data));
