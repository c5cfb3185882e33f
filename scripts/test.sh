#!/usr/bin/env bash
# Runs every test of tandem, doing its own set-up on a fresh machine:
#
#   scripts/test.sh
#
# 1. toolchain pieces: rustfmt, clippy, the wasm32 target (rustup; skipped
#    when present); Debian's redis-server for the Redis backplane's tests
#    (scripts/setup.sh; each test starts and kills a private instance on a
#    free port of 127.0.0.1);
# 2. formatting and lints on both targets (`cargo fmt --check`,
#    `cargo clippy --workspace --all-targets -D warnings`, native and
#    wasm32: tandem and www/bindings, the browser package's crate, which is
#    empty natively), and rustdoc with broken links as errors;
# 3. unit, integration and doc tests (`cargo test`); the benchmarks built
#    (`cargo bench --no-run`) and a few seconds of the load generator
#    against the tandem echo server (`scripts/bench.sh --smoke`): a smoke
#    test, not a timed one;
# 4. the Autobahn TestSuite against the server, the native client and the
#    sessions inside axum (scripts/autobahn.sh; kosoku from PyPI in .venv);
# 5. the chat stress test (tests/stress.rs, release build, at most a minute:
#    a few hundred clients with slow, silent and malformed ones, no message
#    lost or reordered, memory bounded);
# 6. the fuzz targets of fuzz/ for FUZZ_SECONDS each (default 40; 0 skips
#    them) with cargo-fuzz on nightly (scripts/fuzz.sh);
# 7. the browser suite in headless Chromium (scripts/test-browser.sh: the
#    wasm32 backend, and the JavaScript API of www/bindings);
# 8. the demo page end to end in headless Chromium (scripts/test-page.sh:
#    two pages and the native client chat, the echo panel), and the
#    TypeScript check of the package's types (tsc over
#    tests/page/types-check.ts);
# 9. the size budget of the browser package (scripts/check-wasm-size.sh);
# 10. the deployment files of examples/deploy/ run for real: two demo
#    servers behind nginx and behind HAProxy, the echo, the origin check,
#    the chat's placement and an idle session kept alive by pings
#    (scripts/test-proxies.sh; Debian's nginx and haproxy).
#
# The native cargo steps run with the cargo features axum, socks and redis,
# so that the axum extractor, the SOCKS5 proxies and the Redis backplane are
# linted, built and tested too,
# and one set of features is built per profile (scripts/autobahn.sh builds
# with it as well). The library with the default features alone is linted on
# its own: code that only those features use would go unnoticed otherwise.
#
# Everything runs on 127.0.0.1. Exit status 0 only if every step passes; the
# last line sums up the test counts.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_TAG=test
. scripts/setup.sh
FEATURES=("${TEST_FEATURES[@]}")

# The native client honours the proxy variables by default: the tests'
# clients reach 127.0.0.1 directly, while cargo and pip still use a proxy
# of the shell's.
export no_proxy="127.0.0.1,localhost,::1${no_proxy:+,$no_proxy}${NO_PROXY:+,$NO_PROXY}"

# Each step's wall-clock time, summed up at the end (the 30-minute budget of
# a fresh machine is watched with it).
step=""
step_started=$SECONDS
timings=()
end_step() {
    if [ -n "$step" ]; then
        timings+=("$(printf '%6d s  %s' $((SECONDS - step_started)) "$step")")
    fi
    step_started=$SECONDS
}
log() {
    end_step
    step="$*"
    printf '\n==> %s (at %d s)\n' "$*" "$SECONDS" >&2
}
mkdir -p test-output
passed=0
failed=0

count_cargo_results() {
    # Adds up "test result: ... N passed; M failed" lines of a cargo test log.
    local p f
    p=$(grep -Eo '[0-9]+ passed' "$1" | awk '{s+=$1} END {print s+0}')
    f=$(grep -Eo '[0-9]+ failed' "$1" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p))
    failed=$((failed + f))
}

count_plain_results() {
    # Adds up the "NAME: N passed, M failed" line of a script's log; a log
    # without one counts as one failure.
    local line
    line=$(grep -E "^$1: [0-9]+ passed, [0-9]+ failed" "$2" | tail -n 1 || true)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(echo "$line" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+')))
    failed=$((failed + $(echo "$line" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+')))
}

# Runs a script whose log ends with "NAME: N passed, M failed", counts that
# line, and goes on to the next step whatever its exit status: a failure is
# counted (one more if the script failed without saying so), not fatal, so
# that the run still reports every step and its time.
run_counted() {
    local name=$1 log=$2 status=0 failed_before=$failed
    shift 2
    "$@" 2>&1 | tee "$log" || status=$?
    count_plain_results "$name" "$log"
    if [ "$status" -ne 0 ] && [ "$failed" -eq "$failed_before" ]; then
        failed=$((failed + 1))
    fi
}

log "toolchain"
command -v rustup >/dev/null || { echo "rustup is required" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
setup_redis

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (native)"
cargo clippy --workspace --all-targets "${FEATURES[@]}" --locked -- -D warnings
cargo clippy --lib --locked -- -D warnings

log "cargo clippy (wasm32)"
cargo clippy --workspace --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

log "cargo doc (broken links fail, on both targets)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps "${FEATURES[@]}" --locked
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --target wasm32-unknown-unknown --locked

log "cargo test"
cargo build --examples "${FEATURES[@]}" --locked
cargo test "${FEATURES[@]}" --locked 2>&1 | tee test-output/cargo-test.log
count_cargo_results test-output/cargo-test.log

log "benchmarks: cargo bench --no-run, and the load generator's smoke test"
cargo bench --no-run "${FEATURES[@]}" --locked
bash scripts/bench.sh --smoke 2>&1 | tee test-output/bench-smoke.log
count_cargo_results test-output/bench-smoke.log

log "Autobahn TestSuite (sections 1-13 for server and client, 1-11 and 12.1 inside axum)"
run_counted autobahn test-output/autobahn.log bash scripts/autobahn.sh

log "chat stress test (release)"
cargo test --release "${FEATURES[@]}" --locked --test stress -- --ignored --nocapture 2>&1 | tee test-output/stress.log
count_cargo_results test-output/stress.log

if [ "${FUZZ_SECONDS:-40}" != 0 ]; then
    log "fuzzing (${FUZZ_SECONDS:-40} s per target)"
    run_counted fuzz test-output/fuzz.log bash scripts/fuzz.sh
fi

if [ -f scripts/test-browser.sh ]; then
    log "browser suite (headless Chromium)"
    bash scripts/test-browser.sh 2>&1 | tee test-output/browser.log
    count_cargo_results test-output/browser.log
fi

log "demo page end to end (headless Chromium, playwright-core), and tsc over the package's types"
run_counted page test-output/page.log bash scripts/test-page.sh

log "browser package size budget"
run_counted wasm-size test-output/wasm-size.log bash scripts/check-wasm-size.sh

log "the demo servers behind nginx and HAProxy (examples/deploy)"
run_counted proxies test-output/proxies.log bash scripts/test-proxies.sh

end_step
echo
echo "time per step:"
printf '%s\n' "${timings[@]}"
echo "total: $SECONDS s"
echo
echo "tandem: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
