#!/usr/bin/env bash
# Runs the demo: the native server with /echo, /chat and the demo page.
#
#   scripts/demo.sh [--addr HOST:PORT]      (default 127.0.0.1:8080)
#
# Then open http://127.0.0.1:8080 in two tabs and chat, and join from a
# terminal with `cargo run --example client -- ws://127.0.0.1:8080/chat`.
#
# Set-up is idempotent (scripts/setup.sh): the wasm32 target, wasm-pack, the
# wasm-bindgen CLI at the version in Cargo.lock and Debian's binaryen
# (wasm-opt) are installed only when missing; the browser package pkg/ is
# rebuilt from www/bindings (size-tuned: `wasm-pack build --profile
# wasm-release --target web --out-dir ../../pkg --out-name tandem
# www/bindings`) only when a source file is newer than it or it was built
# another way.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:8080
while [ $# -gt 0 ]; do
    case "$1" in
        --addr) addr=$2; shift 2 ;;
        *) echo "usage: scripts/demo.sh [--addr HOST:PORT]" >&2; exit 2 ;;
    esac
done

SETUP_TAG=demo
. scripts/setup.sh
setup_wasm_tools
build_pkg

setup_log "starting the server; open http://$addr"
exec cargo run --release --example server -- --addr "$addr" --www www --pkg pkg
