//! Replays every input under fuzz/regressions/TARGET/ through the same
//! harness the cargo-fuzz target runs (fuzz/harness.rs), so that a crash
//! the fuzzer once found stays fixed. To add one: copy the input libFuzzer
//! left in fuzz/artifacts/TARGET/ into fuzz/regressions/TARGET/.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        eprintln!("replaying {}", input.display());
        run(&data);
    }
}

#[test]
fn engine_regressions_replay_cleanly() {
    replay("engine", harness::engine);
}

#[test]
fn handshake_regressions_replay_cleanly() {
    replay("handshake", harness::handshake);
}

#[test]
fn deflate_regressions_replay_cleanly() {
    replay("deflate", harness::deflate);
}
