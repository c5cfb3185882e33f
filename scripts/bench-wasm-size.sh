#!/usr/bin/env bash
# How big tandem is in a browser, against gloo-net: builds the minimal echo
# client of bench/browser/size on each (tandem-echo, gloo-echo: connect,
# send a text, receive it back, log it, close) and the browser package pkg/,
# and writes their sizes, raw and gzip -9, as a markdown table into
# bench/results/wasm-size.md (also printed).
#
#   scripts/bench-wasm-size.sh
#   SKIP_SETUP=1 scripts/bench-wasm-size.sh
#
# Each echo client: `cargo build --release --target wasm32-unknown-unknown`
# in bench/browser/size (its own workspace; the profile of the browser
# package: opt-level "z", LTO, one codegen unit, panic = "abort"), then
# `wasm-bindgen --target web` and binaryen 132's `wasm-opt -Oz` (from
# tools/binaryen, as for pkg/). The package is built as
# scripts/check-wasm-size.sh does (scripts/setup.sh's build_pkg). Target
# folder: ${CARGO_TARGET_DIR:-target}/wasm-size.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_TAG=bench-wasm-size
. scripts/setup.sh

if [ -z "${SKIP_SETUP:-}" ]; then
    setup_wasm_tools
fi
build_pkg

root=$PWD
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")/wasm-size
out=$target/out
mkdir -p "$out"

rows=()
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
row() {
    local name=$1 file=$2 raw gz
    raw=$(wc -c <"$file")
    gz=$(gzip -9 -c "$file" | wc -c)
    rows+=("| $name | $(thousands "$raw") | $(thousands "$gz") |")
}

for crate in tandem-echo gloo-echo; do
    setup_log "building $crate"
    (cd bench/browser/size && CARGO_TARGET_DIR=$target timeout 1200 \
        cargo build --release --target wasm32-unknown-unknown -p "$crate")
    lib=${crate//-/_}
    wasm-bindgen --target web --out-dir "$out/$crate" \
        "$target/wasm32-unknown-unknown/release/$lib.wasm"
    "$BINARYEN_BIN/wasm-opt" -Oz "$out/$crate/${lib}_bg.wasm" -o "$out/$crate/${lib}_bg.wasm"
done

row "echo client on tandem (\`bench/browser/size/tandem-echo\`)" "$out/tandem-echo/tandem_echo_bg.wasm"
row "echo client on gloo-net $(awk '$0 == "name = \"gloo-net\"" { getline; gsub(/version = |"/, ""); print; exit }' bench/browser/size/Cargo.lock) (\`bench/browser/size/gloo-echo\`)" "$out/gloo-echo/gloo_echo_bg.wasm"
row "the browser package (\`pkg/tandem_bg.wasm\`, \`WebSocketSession\`)" pkg/tandem_bg.wasm

{
    echo "Sizes of the \`.wasm\` after wasm-bindgen and binaryen's wasm-opt (\`-Oz\` for the echo clients; the package as scripts/check-wasm-size.sh builds it, with www/bindings' wasm-opt flags), in bytes (\`scripts/bench-wasm-size.sh\`, commit $(git -C "$root" rev-parse --short HEAD), $(rustc --version | awk '{ print $1, $2 }'), wasm-bindgen $(wasm-bindgen --version | awk '{ print $2 }'), $("$BINARYEN_BIN/wasm-opt" --version | awk '{ print $1, $3 }'))."
    echo
    echo "| build | raw | gzip -9 |"
    echo "|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >bench/results/wasm-size.md
cat bench/results/wasm-size.md
