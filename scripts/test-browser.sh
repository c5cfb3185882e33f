#!/usr/bin/env bash
# Browser tests in headless Chromium, against the native demo server: the
# wasm32 backend (the lib's unit tests and tests/web.rs) and the browser
# package's JavaScript API (www/bindings/tests/, the crate pkg/ is built from).
#
#   scripts/test-browser.sh            # set up what is missing, then test
#   SKIP_SETUP=1 scripts/test-browser.sh
#
# Set-up is idempotent (scripts/setup.sh): the wasm32 target, Debian's
# chromium and chromium-driver, wasm-pack and the wasm-bindgen CLI at the
# version in Cargo.lock are installed only when missing. The demo server is
# started on a free 127.0.0.1 port (`--addr 127.0.0.1:0`), its address is
# handed to the tests at compile time as TANDEM_TEST_SERVER, and it is
# stopped on exit. It runs with --any-origin: the wasm-bindgen-test runner
# serves the test page from a port of its own, so every session the tests
# open is cross-origin.
# Every step is bounded in time.
set -euo pipefail

cd "$(dirname "$0")/.."

SETUP_TAG=test-browser
. scripts/setup.sh
log() { setup_log "$@"; }

if [ -z "${SKIP_SETUP:-}" ]; then
    setup_wasm_target
    setup_chromedriver
    setup_wasm_pack
    setup_wasm_bindgen
fi

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
    --addr 127.0.0.1:0 --any-origin >"$server_log" 2>&1 &
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

status=0
log "running the lib's browser unit tests and tests/web.rs in headless Chromium"
timeout 1500 wasm-pack test --headless --chrome -- --lib --test web || status=$?
log "running the JavaScript API's tests (www/bindings/tests) in headless Chromium"
timeout 1200 wasm-pack test --headless --chrome www/bindings || status=$?
if [ "$status" -ne 0 ]; then
    log "failed (exit $status); demo server log:"
    tail -n 50 "$server_log" >&2
fi
exit "$status"
