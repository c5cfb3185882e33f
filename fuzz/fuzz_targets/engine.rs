//! cargo-fuzz target: the protocol engine (see `harness::engine`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::engine(data));
