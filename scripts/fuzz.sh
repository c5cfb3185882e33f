#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time:
#
#   scripts/fuzz.sh                 # 40 s per target (three targets: 2 min in all)
#   FUZZ_SECONDS=600 scripts/fuzz.sh engine
#
# Installs cargo-fuzz (once, a few minutes) and uses the nightly toolchain
# (or stable with RUSTC_BOOTSTRAP=1 where nightly cannot be had). The inputs under
# fuzz/regressions/TARGET/ seed each run. Fails when a target crashes:
# libFuzzer leaves the input in fuzz/artifacts/TARGET/; copy it into
# fuzz/regressions/TARGET/, where `cargo test` (tests/fuzz_regressions.rs)
# replays it through the same harness (fuzz/harness.rs), and fix the bug.
#
# The last line is "fuzz: N passed, M failed" over the targets run, and
# each target's line before it reports its executions.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-40}
log() { printf '\n==> %s\n' "$*" >&2; }

command -v rustup >/dev/null || { echo "rustup is required" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (a few minutes, once)"
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly features: the nightly toolchain when it is there
# (or can be installed), else the stable one with RUSTC_BOOTSTRAP=1.
rustup toolchain list | grep -q '^nightly' ||
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
if rustup toolchain list | grep -q '^nightly'; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    log "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
    fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && fuzz list)
fi

mkdir -p test-output
passed=0
failed=0
for target in "${targets[@]}"; do
    log "fuzzing $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    out="test-output/fuzz-$target.log"
    if (cd fuzz && fuzz run "$target" "corpus/$target" "regressions/$target" -- \
            -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1) >"$out" 2>&1; then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$out" | grep -Eo '[0-9]+$' | tail -1)
        echo "fuzz $target: ${runs:-?} executions in ${seconds}s, no crash"
        passed=$((passed + 1))
    else
        tail -40 "$out" >&2
        echo "fuzz $target: FAILED (see $out and fuzz/artifacts/$target/)"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
