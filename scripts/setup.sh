# Shared set-up for scripts/test.sh, scripts/demo.sh, scripts/test-browser.sh,
# scripts/test-page.sh, scripts/test-proxies.sh, scripts/check-wasm-size.sh
# and scripts/bench-browser.sh.
# Source it from the
# repository root:
#
#   SETUP_TAG=demo
#   . scripts/setup.sh
#   setup_wasm_tools
#   build_pkg
#
# Every function installs only what is missing, so calling it again is cheap.
# Installs are bounded in time. Debian packages come from apt-get (as root,
# or through sudo), Rust tools from crates.io through cargo install, npm
# packages through npm ci from the lock files in tools/binaryen and tests/page.

# shellcheck shell=bash

export PATH="$HOME/.cargo/bin:$PATH"

# The browser package's build: the crate of the JavaScript API, www/bindings
# (tandem-web; its default feature tracing-off compiles tandem's tracing
# events out, since nothing in a page installs a tracing subscriber), with
# the workspace's size-tuned cargo profile (Cargo.toml, [profile.wasm-release]),
# into pkg/ at the repository root (--out-dir is relative to the crate) as
# tandem.js, tandem_bg.wasm and tandem.d.ts (--out-name).
# The cargo features of every native build the test scripts make
# (scripts/test.sh, scripts/autobahn.sh, scripts/test-proxies.sh): one set,
# so that each profile is built once.
# shellcheck disable=SC2034 # used by the scripts that source this file
TEST_FEATURES=(--features axum,socks,redis)

PKG_BUILD=(wasm-pack build --profile wasm-release --target web --out-dir ../../pkg --out-name tandem www/bindings)

setup_log() { printf '[%s] %s\n' "${SETUP_TAG:-setup}" "$*" >&2; }

_setup_apt_updated=""
# apt_install PACKAGE... : installs Debian packages, running apt-get update once.
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "$_setup_apt_updated" ]; then
        timeout 600 $sudo apt-get update -qq
        _setup_apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq "$@" >/dev/null
}

setup_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        setup_log "adding the wasm32-unknown-unknown target"
        timeout 600 rustup target add wasm32-unknown-unknown
    fi
}

# binaryen's wasm-opt for wasm-pack, from npm (binaryen 132, pinned in
# tools/binaryen/package-lock.json): Debian bookworm's binaryen 108 corrupts
# wasm-bindgen 0.2.130's output (it re-points the exported externref table at
# the function table, and the page then fails in WebAssembly.Table.set), and
# the crates.io `wasm-opt` builds binaryen's C++ for most of an hour here.
# build_pkg puts it first on PATH, where wasm-pack looks for wasm-opt.
BINARYEN_BIN="$PWD/tools/binaryen/node_modules/.bin"
setup_binaryen() {
    setup_node_modules tools/binaryen
}

setup_wasm_pack() {
    if ! command -v wasm-pack >/dev/null; then
        setup_log "installing wasm-pack (a few minutes, once)"
        timeout 1200 cargo install wasm-pack
    fi
}

# wasm-pack must find a wasm-bindgen CLI of exactly the library's version on
# PATH: it cannot download one here.
setup_wasm_bindgen() {
    local want have
    want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    if [ -z "$want" ]; then
        setup_log "no wasm-bindgen in Cargo.lock: run 'cargo generate-lockfile' first"
        return 1
    fi
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    if [ "$have" != "$want" ]; then
        setup_log "installing wasm-bindgen-cli $want (have: ${have:-none}; a few minutes, once)"
        timeout 1200 cargo install wasm-bindgen-cli --version "$want" --force
    fi
}

# Everything needed to build pkg/: the wasm32 target, binaryen's wasm-opt,
# wasm-pack and the wasm-bindgen CLI.
setup_wasm_tools() {
    setup_wasm_target
    setup_binaryen
    setup_wasm_pack
    setup_wasm_bindgen
}

# Debian's chromium (its own build: a test tool's browser download fails here).
setup_chromium() {
    if ! command -v chromium >/dev/null; then
        setup_log "installing chromium"
        apt_install chromium
    fi
}

# Debian's chromium and chromium-driver, for wasm-pack test --chrome.
setup_chromedriver() {
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        setup_log "installing chromium and chromium-driver"
        apt_install chromium chromium-driver
    fi
}

# Debian's redis-server (and redis-cli, from redis-tools), for the tests of
# the Redis backplane (tests/redis_backplane.rs). Each test starts a private
# instance of its own on a free port of 127.0.0.1 with its data in a
# temporary folder, and kills it by its process handle; none of them uses
# the service that the package may start on 6379.
setup_redis() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        setup_log "installing redis-server"
        apt_install redis-server
    fi
}

# Debian's nginx and haproxy, for scripts/test-proxies.sh, which runs them
# in the foreground with configurations of its own: the services the
# packages install are neither needed nor touched.
setup_proxies() {
    if ! command -v nginx >/dev/null || ! command -v haproxy >/dev/null; then
        setup_log "installing nginx and haproxy"
        apt_install nginx haproxy
    fi
}

# Node.js and npm (Debian's), when missing.
setup_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        setup_log "installing nodejs and npm"
        apt_install nodejs npm
    fi
}

# setup_node_modules DIR : DIR's npm packages from its package-lock.json,
# when node_modules is missing or older than the lock file. Never lets a
# package download a browser.
setup_node_modules() {
    local dir=$1
    setup_node
    if [ ! -f "$dir/node_modules/.package-lock.json" ] \
        || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        setup_log "installing the npm packages of $dir"
        (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm ci --no-audit --no-fund)
    fi
}

# Builds the browser package into pkg/ when it is missing, when a source file
# of tandem or of www/bindings (or the pinned binaryen) is newer than it, or
# when it was built another way (pkg/.tandem-build holds the command that
# built it).
build_pkg() {
    local stamp=pkg/.tandem-build
    if [ -f pkg/tandem_bg.wasm ] && [ -f pkg/tandem.js ] && [ -f pkg/tandem.d.ts ] \
        && [ "$(cat "$stamp" 2>/dev/null)" = "${PKG_BUILD[*]}" ] \
        && [ -z "$(find src www/bindings/src www/bindings/Cargo.toml Cargo.toml Cargo.lock \
            tools/binaryen/package-lock.json -newer pkg/tandem_bg.wasm -print -quit)" ]; then
        return 0
    fi
    if [ ! -x "$BINARYEN_BIN/wasm-opt" ]; then
        setup_log "no $BINARYEN_BIN/wasm-opt: run setup_binaryen (or setup_wasm_tools) first"
        return 1
    fi
    setup_log "building the browser package into pkg/: ${PKG_BUILD[*]}"
    PATH="$BINARYEN_BIN:$PATH" timeout 1200 "${PKG_BUILD[@]}"
    printf '%s\n' "${PKG_BUILD[*]}" >"$stamp"
}
