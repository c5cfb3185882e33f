#!/usr/bin/env bash
# Runs the whole Autobahn TestSuite, sections 1-13 (12-13: permessage-deflate),
# against tandem's server and its native client, and sections 1-12 against
# tandem's sessions inside axum (examples/autobahn_axum.rs: the same sessions,
# upgraded by the axum extractor on axum's HTTP server), on 127.0.0.1 only,
# and checks the reports: exit 0 only if every case of every side passes.
#
# The axum run leaves out 12.2-12.5 and 13 by default: once upgraded, an
# axum session is the server's session (the same task, driver and engine) on
# hyper's upgraded stream instead of the TCP stream, so what it must show is
# that the stream carries every kind of traffic (sections 1-11, large
# messages in 9 included) and that the extractor negotiates
# permessage-deflate (12.1); 12.2-12.5 compress larger messages with the
# same codec, and 13 varies the parameters that the server run covers (on
# their own, on 2 cores, section 12 took 154 s and section 13 79 s).
#
# The server run, then the axum run, go on in the background while the
# client run goes on in the foreground: each side keeps about one core busy
# (kosoku is one Python process), so on 2 cores this halves the time.
#
#   scripts/autobahn.sh
#
# Needs python3 and cargo. Installs kosoku (the test suite, from PyPI) into
# .venv on first use. Builds the examples in release mode in cargo's target
# dir (CARGO_TARGET_DIR is respected), with the cargo feature axum. Reports go
# to reports/server, reports/client and reports/axum (index.html for people,
# index.json for the checker), logs to reports/logs. Every step is bounded in time; background processes are
# stopped on exit.
#
# Environment: KOSOKU_VERSION (default 0.1.0), AUTOBAHN_PARALLELISM (cases
# run at once against the server, default 2), AUTOBAHN_SUITE_TIMEOUT (seconds
# per side, default 1200), AUTOBAHN_CASES (a case glob such as '13.*' to run
# only those, e.g. while debugging; default: every case), AUTOBAHN_AXUM_CASES
# (the axum run's cases: globs separated by spaces, `all`, or `none` to skip
# it; default: AUTOBAHN_CASES when set, else sections 1-11 and 12.1).
set -euo pipefail

cd "$(dirname "$0")/.."
# The client under test reaches 127.0.0.1 directly, while pip still uses a
# proxy of the shell's.
export no_proxy="127.0.0.1,localhost,::1${no_proxy:+,$no_proxy}${NO_PROXY:+,$NO_PROXY}"

KOSOKU_VERSION=${KOSOKU_VERSION:-0.1.0}
PARALLELISM=${AUTOBAHN_PARALLELISM:-2}
SUITE_TIMEOUT=${AUTOBAHN_SUITE_TIMEOUT:-1200}
BUILD_TIMEOUT=1800
START_TIMEOUT=30
HOST=127.0.0.1
VENV=.venv
REPORTS=reports
LOGS=$REPORTS/logs
SELECT=()
if [[ -n ${AUTOBAHN_CASES:-} ]]; then
    SELECT=(-i "$AUTOBAHN_CASES")
fi
AXUM_CASES=${AUTOBAHN_AXUM_CASES:-${AUTOBAHN_CASES:-}}
AXUM_SELECT=()
case $AXUM_CASES in
    "") AXUM_SELECT=(-x '12.2.*' -x '12.3.*' -x '12.4.*' -x '12.5.*' -x '13.*') ;;
    all | none) ;;
    *)
        read -r -a globs <<<"$AXUM_CASES"
        for glob in "${globs[@]}"; do
            AXUM_SELECT+=(-i "$glob")
        done
        ;;
esac

log() { printf '==> %s\n' "$*" >&2; }

# Background processes to stop on exit, by pid.
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background under `timeout` and waits for it, so that
# a signal to this script is acted on at once. Returns the command's status.
run_bounded() {
    local seconds=$1
    shift
    timeout --kill-after=10 "$seconds" "$@" &
    local pid=$!
    pids+=("$pid")
    local status=0
    wait "$pid" || status=$?
    return "$status"
}

# Waits until FILE has a line matching REGEX with 127.0.0.1:PORT and prints
# the port; fails if PID dies first or START_TIMEOUT passes.
wait_for_port() {
    local file=$1 pid=$2 port
    for _ in $(seq $((START_TIMEOUT * 10))); do
        port=$(sed -n "s|.*ws://$HOST:\([0-9][0-9]*\).*|\1|p" "$file" | head -n 1)
        if [[ -n $port ]]; then
            echo "$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# ----- the test suite ---------------------------------------------------------

if [[ ! -x $VENV/bin/kosoku ]] || ! "$VENV/bin/kosoku" --help >/dev/null 2>&1; then
    log "installing kosoku $KOSOKU_VERSION into $VENV"
    if [[ ! -x $VENV/bin/pip ]]; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV"; then
            # Debian's python3 ships without ensurepip until python3-venv is in.
            log "python3 -m venv failed; installing python3-venv"
            rm -rf "$VENV"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    run_bounded 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kosoku==$KOSOKU_VERSION"
fi
KOSOKU=$VENV/bin/kosoku

# ----- the programs under test ------------------------------------------------

log "building the Autobahn examples (release)"
# The features of scripts/test.sh, so that the release build is shared.
# shellcheck source=scripts/setup.sh
. scripts/setup.sh
run_bounded "$BUILD_TIMEOUT" cargo build --release --quiet "${TEST_FEATURES[@]}" \
    --example autobahn_server --example autobahn_client --example autobahn_axum
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
SERVER_BIN=$TARGET_DIR/release/examples/autobahn_server
CLIENT_BIN=$TARGET_DIR/release/examples/autobahn_client
AXUM_BIN=$TARGET_DIR/release/examples/autobahn_axum

rm -rf "$REPORTS/server" "$REPORTS/client" "$REPORTS/axum" "$LOGS"
mkdir -p "$LOGS"

# ----- server sides: kosoku's fuzzing client against an echo server ------------

# Runs kosoku's fuzzing client against the echo server BIN, started on a free
# port, with the case selection given after the side's name; the report goes
# to reports/SIDE.
fuzz_server() {
    local side=$1 bin=$2 pid port status=0 started
    shift 2
    log "$side side: starting $(basename "$bin") on a free port"
    "$bin" --addr "$HOST:0" >"$LOGS/$side.out" 2>"$LOGS/$side.err" &
    pid=$!
    pids+=("$pid")
    if ! port=$(wait_for_port "$LOGS/$side.out" "$pid"); then
        log "$(basename "$bin") did not start; see $LOGS/$side.err"
        exit 1
    fi
    log "$side side: kosoku fuzzingclient against $HOST:$port"
    started=$SECONDS
    run_bounded "$SUITE_TIMEOUT" "$KOSOKU" -m fuzzingclient "$HOST:$port" \
        -o "$REPORTS/$side" -p "$PARALLELISM" "$@" \
        >"$LOGS/kosoku-fuzzingclient-$side.log" 2>&1 || status=$?
    log "$side side: kosoku exited with $status after $((SECONDS - started)) s (the checker decides)"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# The server side, then the axum side, in a subshell of their own that stops
# its processes when it ends or is stopped.
server_sides() {
    pids=()
    trap cleanup EXIT
    trap 'exit 143' TERM
    fuzz_server server "$SERVER_BIN" "${SELECT[@]}"
    if [[ $AXUM_CASES != none ]]; then
        fuzz_server axum "$AXUM_BIN" "${AXUM_SELECT[@]}"
    fi
}
server_sides &
server_sides_pid=$!
pids+=("$server_sides_pid")

# ----- client side: autobahn_client against kosoku's fuzzing server ------------

log "client side: starting kosoku fuzzingserver on a free port"
timeout --kill-after=10 "$SUITE_TIMEOUT" "$KOSOKU" -m fuzzingserver "$HOST:0" \
    -o "$REPORTS/client" "${SELECT[@]}" \
    >"$LOGS/kosoku-fuzzingserver.out" 2>"$LOGS/kosoku-fuzzingserver.err" &
fuzzingserver_pid=$!
pids+=("$fuzzingserver_pid")
if ! fuzzingserver_port=$(wait_for_port "$LOGS/kosoku-fuzzingserver.err" "$fuzzingserver_pid"); then
    log "kosoku fuzzingserver did not start; see $LOGS/kosoku-fuzzingserver.err"
    exit 1
fi

log "client side: autobahn_client against ws://$HOST:$fuzzingserver_port"
started=$SECONDS
status=0
run_bounded "$SUITE_TIMEOUT" "$CLIENT_BIN" --url "ws://$HOST:$fuzzingserver_port" \
    --parallel "$PARALLELISM" \
    >"$LOGS/client.out" 2>"$LOGS/client.err" || status=$?
if [[ $status -ne 0 ]]; then
    log "autobahn_client exited with $status; see $LOGS/client.err"
fi

# kosoku writes its reports and exits once the client asked for them.
for _ in $(seq 600); do
    kill -0 "$fuzzingserver_pid" 2>/dev/null || break
    sleep 0.1
done
kill "$fuzzingserver_pid" 2>/dev/null || true
wait "$fuzzingserver_pid" 2>/dev/null || true

log "client side: done after $((SECONDS - started)) s"

# ----- the server and axum sides, running meanwhile -------------------------------

wait "$server_sides_pid" || log "the server sides' job exited with $?"
report_dirs=("$REPORTS/server" "$REPORTS/client")
if [[ $AXUM_CASES != none ]]; then
    report_dirs+=("$REPORTS/axum")
fi

# ----- the verdict --------------------------------------------------------------

log "checking the reports"
python3 scripts/check_autobahn.py "${report_dirs[@]}"
