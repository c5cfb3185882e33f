#!/usr/bin/env bash
# tandem in the browser against plain JavaScript, with one command:
#
#   scripts/bench-browser.sh        # set up what is missing, build, measure (about 2 minutes here, plus the builds)
#   SKIP_SETUP=1 ROUNDS=3 scripts/bench-browser.sh
#
# Echo round trips per second and bytes per second through the release demo
# server's /echo-any route, in headless Chromium: the page bench/browser/
# (served as the demo server's --www, the package from pkg/) runs each
# scenario with tandem's WebSocketSession and with the browser's WebSocket
# used directly, one after the other, ROUNDS times (default 5), then splits
# a round trip of each into where its time went (bench/browser/run.mjs,
# playwright-core from tests/page's npm packages). Writes
# bench/results/browser.md (the table: the median of the rounds) and
# bench/results/browser.jsonl (every run), and refreshes the table in the
# README's "In the browser" under "Performance".
#
# Set-up is idempotent (scripts/setup.sh): the wasm tools, Debian's chromium
# and tests/page's npm packages are installed only when missing; pkg/ is
# rebuilt only when stale (the size-tuned build every script uses), and its
# size is measured as scripts/check-wasm-size.sh does. The demo server is
# built in release into ${CARGO_TARGET_DIR:-target}. Only 127.0.0.1 is used
# (a port the system picks), the run is bounded in time, and everything it
# starts is stopped by its PID. Environment: ROUNDS, COUNT_SCALE (round
# trips of every scenario × it, default 1), README (empty: leave it alone),
# CHROMIUM.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_TAG=bench-browser
. scripts/setup.sh
log() { setup_log "$@"; }

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -z "${SKIP_SETUP:-}" ]; then
    setup_wasm_tools
    setup_chromium
    setup_node_modules tests/page
fi

build_pkg
log "building the demo server (release)"
timeout 1500 cargo build --locked --release --example server

gz() { gzip -9 -c "$1" | wc -c; }
PKG_SIZES="$(wc -c <pkg/tandem_bg.wasm) $(gz pkg/tandem_bg.wasm) $(wc -c <pkg/tandem.js) $(gz pkg/tandem.js)"
export PKG_SIZES
target=${CARGO_TARGET_DIR:-target}
export TANDEM_SERVER_BIN="$target/release/examples/server"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"

log "measuring in headless Chromium (bench/browser/run.mjs)"
timeout 900 node bench/browser/run.mjs
log "wrote bench/results/browser.md and bench/results/browser.jsonl"
