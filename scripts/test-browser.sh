#!/usr/bin/env bash
# Browser tests of the wasm32 backend (tests/web.rs) in headless Chromium,
# against the native demo server.
#
#   scripts/test-browser.sh            # set up what is missing, then test
#   SKIP_SETUP=1 scripts/test-browser.sh
#
# Set-up is idempotent: the wasm32 target, Debian's chromium and
# chromium-driver, wasm-pack and the wasm-bindgen CLI at the version in
# Cargo.lock are installed only when missing. The demo server is started on a
# free 127.0.0.1 port (`--addr 127.0.0.1:0`), its address is handed to the
# tests at compile time as TANDEM_TEST_SERVER, and it is stopped on exit.
# Every step is bounded in time.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '[test-browser] %s\n' "$*" >&2; }

setup() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "adding the wasm32-unknown-unknown target"
        timeout 600 rustup target add wasm32-unknown-unknown
    fi
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        log "installing chromium and chromium-driver"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        timeout 600 $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    if ! command -v wasm-pack >/dev/null; then
        log "installing wasm-pack (a few minutes)"
        timeout 1200 cargo install wasm-pack
    fi
    # wasm-pack must find a wasm-bindgen CLI of exactly the library's version
    # on PATH: it cannot download one here.
    local want have
    want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    if [ -z "$want" ]; then
        log "no wasm-bindgen in Cargo.lock: run 'cargo generate-lockfile' first"
        exit 1
    fi
    if [ "$have" != "$want" ]; then
        log "installing wasm-bindgen-cli $want (have: ${have:-none}; a few minutes)"
        timeout 1200 cargo install wasm-bindgen-cli --version "$want" --force
    fi
}

if [ -z "${SKIP_SETUP:-}" ]; then
    setup
fi
export PATH="$HOME/.cargo/bin:$PATH"

log "building the demo server"
timeout 900 cargo build --example server

server_log=$(mktemp)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -- "-$server_pid" 2>/dev/null || kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -f "$server_log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A process group of its own, so that cleanup stops cargo and the server alike.
RUST_LOG="${RUST_LOG:-tandem=warn}" setsid cargo run --quiet --example server -- \
    --addr 127.0.0.1:0 >"$server_log" 2>&1 &
server_pid=$!

addr=""
for _ in $(seq 1 300); do
    addr=$(sed -n 's|^listening on http://||p' "$server_log" | head -n 1)
    [ -n "$addr" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "the demo server exited:"
        cat "$server_log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    log "the demo server did not start within 30 s:"
    cat "$server_log" >&2
    exit 1
fi
log "demo server on $addr"

export TANDEM_TEST_SERVER="$addr"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"

log "running the lib's browser unit tests and tests/web.rs in headless Chromium"
status=0
timeout 1500 wasm-pack test --headless --chrome -- --lib --test web || status=$?
if [ "$status" -ne 0 ]; then
    log "failed (exit $status); demo server log:"
    tail -n 50 "$server_log" >&2
fi
exit "$status"
