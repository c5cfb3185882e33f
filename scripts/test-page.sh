#!/usr/bin/env bash
# End-to-end test of the demo page (www/) in headless Chromium: two pages and
# the native client chat through the demo server, the echo panel greets and
# closes, the chat page comes back after its server is killed (two servers on
# a private redis-server) and shows what it recovered, and the page reports a
# missing package or a server that is down
# (tests/page/page.test.mjs, node's test runner with playwright-core). With
# it, the TypeScript check of the package's types: `tsc --noEmit --strict`
# over tests/page/types-check.ts, an app's use of pkg/tandem.d.ts
# (tests/page/types.test.mjs, typescript from npm).
#
#   scripts/test-page.sh            # set up what is missing, then test
#   SKIP_SETUP=1 scripts/test-page.sh
#
# Set-up is idempotent (scripts/setup.sh): the wasm tools (wasm32 target,
# binaryen's wasm-opt, wasm-pack, the wasm-bindgen CLI at the Cargo.lock
# version), Debian's chromium and redis-server, and tests/page's npm packages (playwright-core
# and typescript, pinned in its package-lock.json; `npm ci`, no browser
# download) are installed only when missing; pkg/ is rebuilt only
# when stale. The server and client examples are built (debug) and located in
# ${CARGO_TARGET_DIR:-target}. Screenshots go to test-output/. Only
# 127.0.0.1 is used, every step is bounded in time, and the test stops what
# it started. The last line is `page: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_TAG=test-page
. scripts/setup.sh
log() { setup_log "$@"; }

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -z "${SKIP_SETUP:-}" ]; then
    setup_wasm_tools
    setup_chromium
    setup_redis
    setup_node_modules tests/page
fi

build_pkg
log "building the server and client examples"
timeout 900 cargo build --locked "${TEST_FEATURES[@]}" --example server --example client

target=${CARGO_TARGET_DIR:-target}
export TANDEM_SERVER_BIN="$target/debug/examples/server"
export TANDEM_CLIENT_BIN="$target/debug/examples/client"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
mkdir -p test-output

log "running tests/page/page.test.mjs in headless Chromium, and tsc over tests/page/types-check.ts"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
timeout 600 node --test --test-reporter=spec tests/page/page.test.mjs tests/page/types.test.mjs 2>&1 \
    | tee "$out" || status=$?

# The spec reporter's summary: "ℹ pass N" and "ℹ fail N".
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -n 1)
passed=${passed:-0}
failed=${failed:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    # Killed by the time limit, or it never got to run a test.
    log "node --test exited with $status"
    failed=1
fi
echo "page: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
