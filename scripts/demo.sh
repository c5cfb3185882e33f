#!/usr/bin/env bash
# Runs the demo: the native server with /echo, /chat and the demo page.
#
#   scripts/demo.sh [--addr HOST:PORT]      (default 127.0.0.1:8080)
#
# Then open http://127.0.0.1:8080 in two tabs and chat, and join from a
# terminal with `cargo run --example client -- ws://127.0.0.1:8080/chat`.
#
# Set-up is idempotent: the wasm32 target, wasm-pack, the wasm-bindgen CLI at
# the version in Cargo.lock and Debian's binaryen (wasm-opt) are installed
# only when missing; the browser package pkg/ is rebuilt only when a source
# file is newer than it.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:8080
while [ $# -gt 0 ]; do
    case "$1" in
        --addr) addr=$2; shift 2 ;;
        *) echo "usage: scripts/demo.sh [--addr HOST:PORT]" >&2; exit 2 ;;
    esac
done

log() { printf '[demo] %s\n' "$*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi
if ! command -v wasm-opt >/dev/null; then
    log "installing binaryen (wasm-opt)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq binaryen >/dev/null
fi
if ! command -v wasm-pack >/dev/null; then
    log "installing wasm-pack (a few minutes, once)"
    cargo install wasm-pack
fi
want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$want" --force
fi

if [ ! -f pkg/tandem_bg.wasm ] || [ -n "$(find src Cargo.toml Cargo.lock -newer pkg/tandem_bg.wasm -print -quit)" ]; then
    log "building the browser package into pkg/"
    wasm-pack build --release --target web
fi

log "starting the server; open http://$addr"
exec cargo run --release --example server -- --addr "$addr" --www www --pkg pkg
