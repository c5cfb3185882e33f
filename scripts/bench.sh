#!/usr/bin/env bash
# The performance table, reproduced with one command:
#
#   scripts/bench.sh            every scenario for every server, 3 rounds (about 25 minutes + the build)
#   scripts/bench.sh --smoke    CI's smoke test: a few seconds of load on tandem
#   scripts/bench.sh --instructions [SERVER...]
#                               only the instruction counts (about 2 minutes a
#                               server), printed, not written to the table
#   scripts/bench.sh --cpu-split [SERVER...]
#                               only where the server's CPU goes, user space
#                               against the kernel, per echoed 20-B message at
#                               window 1 and 16 (ROUNDS rounds, about 45 s a
#                               server), printed, not written to the table
#
# Builds bench/ (its own workspace) in release, then for each scenario starts
# a server (`bench-server`) pinned to one core and the load generator
# (`loadgen`, raw TCP, no WebSocket library) pinned to the other, with
# `taskset`. Every run talks to 127.0.0.1 only and stops by itself.
#
# Writes bench/results/latest.jsonl (one JSON object per run), then
# bench/results/latest.md (the table, with ratios and the targets) and
# bench/results/latest.svg (the chart) through bench/report.py.
#
# Echo, idle and broadcast run on both of tokio's runtime flavours, every
# server alike: current-thread (as fastwebsockets' examples use) and
# multi-thread (`#[tokio::main]`'s, what most applications run; one worker,
# as `#[tokio::main]` builds on the one core the server is pinned to).
# User-space instructions per echoed message are counted once per server
# under valgrind (cachegrind), which unlike CPU time does not move with the
# machine's load: two runs of different lengths, and the difference of
# their counts divided by the difference of their messages, so that start-up
# and the handshakes cancel out. Skipped, and said so, without valgrind.
#
# Environment: SERVER_CPU (default 0), LOADGEN_CPU (default 1), ECHO_SECS
# (default 5), WARMUP_SECS (default 1), BCAST_SECS (default 4),
# IDLE_CONNS (default 10000), TLS_IDLE_CONNS (default IDLE_CONNS), ROUNDS
# (default 3), PORT_BASE (default 19100), RUNTIMES (default "current multi"),
# INSTRUCTIONS (default 1; 0 skips the instruction counts).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
only_instructions=0
only_cpu_split=0
impls=(tandem tungstenite fastwebsockets)
case "${1:-}" in
    --smoke) smoke=1 ;;
    --instructions)
        only_instructions=1
        if [ $# -gt 1 ]; then impls=("${@:2}"); fi
        ;;
    --cpu-split)
        only_cpu_split=1
        if [ $# -gt 1 ]; then impls=("${@:2}"); fi
        ;;
    "") ;;
    *) echo "usage: scripts/bench.sh [--smoke | --instructions [SERVER...] | --cpu-split [SERVER...]]" >&2; exit 2 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }
cores=$(nproc)
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-$((cores > 1 ? 1 : 0))}
ECHO_SECS=${ECHO_SECS:-5}
WARMUP_SECS=${WARMUP_SECS:-1}
BCAST_SECS=${BCAST_SECS:-4}
IDLE_CONNS=${IDLE_CONNS:-10000}
# 10,000 TLS handshakes take about 7 s here with the machine busy.
TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-$IDLE_CONNS}
# Every measurement is taken ROUNDS times, the servers in turn within each
# round, and the table shows the median: on a shared 2-core machine one
# run moves by tens of percent.
ROUNDS=${ROUNDS:-3}
RUNTIMES=${RUNTIMES:-current multi}
port=${PORT_BASE:-19100}

log "building bench/ (release)"
cargo build --release --locked --manifest-path bench/Cargo.toml
target_dir=$(cargo metadata --manifest-path bench/Cargo.toml --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"

# Each process pinned to its core when taskset is there.
pin_server=()
pin_loadgen=()
if command -v taskset >/dev/null; then
    pin_server=(taskset -c "$SERVER_CPU")
    pin_loadgen=(taskset -c "$LOADGEN_CPU")
fi
# Both processes get a higher priority than other work on the machine when
# allowed (root), the same for every server.
prio=()
if [ "$(id -u)" = 0 ]; then prio=(nice -n -10); fi

results=bench/results
mkdir -p "$results"
# A command the server runs under (valgrind, for the instruction counts).
wrap_server=()
server_pid=""
server_log=$(mktemp)
loadgen_log=$(mktemp)
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -f "$server_log" "$loadgen_log"' EXIT

# The server options of a runtime flavour.
runtime_opts=()
set_runtime() { # current|multi
    runtime=$1
    case "$runtime" in
        current) runtime_opts=() ;;
        multi) runtime_opts=(--threads 1) ;;
        *) echo "unknown runtime $runtime (RUNTIMES: current, multi)" >&2; exit 2 ;;
    esac
}
set_runtime current
# Marks a loadgen record with the runtime flavour its server ran on.
tag_runtime() { sed "s/^{/{\"runtime\":\"$runtime\",/"; }

start_server() { # impl mode [server options]
    port=$((port + 1))
    : >"$server_log"
    "${pin_server[@]}" "${prio[@]}" "${wrap_server[@]}" "$bin/bench-server" --impl "$1" --mode "$2" \
        --addr "127.0.0.1:$port" "${runtime_opts[@]}" "${@:3}" 2>"$server_log" &
    server_pid=$!
    for _ in $(seq 200); do
        grep -q '^bench-server:' "$server_log" && return 0
            kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "server $1 $2 did not start:" >&2
    cat "$server_log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

loadgen() { # mode impl args...
    local mode=$1 impl=$2
    shift 2
    "${pin_loadgen[@]}" "${prio[@]}" "$bin/loadgen" "$mode" --addr "127.0.0.1:$port" \
        --server-pid "$server_pid" --label "$impl" "$@"
}

if [ "$smoke" = 1 ]; then
    log "smoke: 3 s of echo load on tandem (20 connections, window 4)"
    start_server tandem echo
    out=$(loadgen echo tandem --connections 20 --size 100 --window 4 --duration 2 --warmup 1)
    stop_server
    echo "$out"
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if r["errors"] == 0 and r["messages"] > 0 else 1)' "$out"
    echo "bench smoke: 1 passed, 0 failed"
    exit 0
fi

# The server's user and kernel CPU time (utime and stime of /proc/PID/stat,
# in clock ticks) per echoed message: a 1-s run to warm up, then a 5-s one
# between two readings. Where a server spends its CPU: in user space (its
# own code, tokio's) or in the kernel (the socket calls, loopback TCP).
if [ "$only_cpu_split" = 1 ]; then
    tick=$(getconf CLK_TCK)
    for round in $(seq "$ROUNDS"); do
        for window in 1 16; do
            for impl in "${impls[@]}"; do
                start_server "$impl" echo
                loadgen echo "$impl" --connections 100 --size 20 --window "$window" \
                    --duration 1 --warmup 0 >/dev/null
                before=$(cut -d' ' -f14,15 "/proc/$server_pid/stat")
                out=$(loadgen echo "$impl" --connections 100 --size 20 --window "$window" \
                    --duration 5 --warmup 0)
                after=$(cut -d' ' -f14,15 "/proc/$server_pid/stat")
                stop_server
                python3 - "$impl" "$window" "$round" "$tick" "$before" "$after" "$out" <<'PY'
import json, sys
impl, window, round_, tick, before, after, out = sys.argv[1:]
u0, s0 = map(int, before.split())
u1, s1 = map(int, after.split())
messages = json.loads(out)["messages"]
per = lambda ticks: round(ticks * 1e6 / int(tick) / messages, 3)
print(json.dumps({"mode": "cpu-split", "label": impl, "connections": 100, "size": 20,
                  "window": int(window), "round": int(round_), "messages": messages,
                  "user_us_per_message": per(u1 - u0), "kernel_us_per_message": per(s1 - s0)}))
PY
            done
        done
    done
    exit 0
fi

jsonl="$results/latest.jsonl"
if [ "$only_instructions" = 1 ]; then
    jsonl=/dev/stdout
    INSTRUCTIONS=1
else
    : >"$jsonl"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# User-space instructions per echoed message of one server: two runs of
# the same load, short and long, under cachegrind; the counts' difference
# over the messages' difference leaves start-up and handshakes out.
instructions() { # impl connections size window
    local impl=$1 runs=() secs out
    for secs in 2 5; do
        wrap_server=(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null)
        start_server "$impl" echo
        wrap_server=()
        if ! out=$(loadgen echo "$impl" --connections "$2" --size "$3" --window "$4" \
            --duration "$secs" --warmup 0 2>"$loadgen_log"); then
            log "loadgen failed against $impl under valgrind: $(tail -n 3 "$loadgen_log")"
            stop_server
            return 1
        fi
        runs+=("$out")
        stop_server
        runs+=("$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$server_log" | tr -d ,)")
    done
    python3 - "$impl" "${runs[@]}" <<'PY'
import json, sys
impl, short, short_ir, long, long_ir = sys.argv[1:]
short, long = json.loads(short), json.loads(long)
per = (int(long_ir) - int(short_ir)) / (long["messages"] - short["messages"])
print(json.dumps({"mode": "instructions", "label": impl, "connections": long["connections"],
                  "size": long["size"], "window": long["window"], "instructions_per_message": round(per),
                  "runs": [[short["messages"], int(short_ir)], [long["messages"], int(long_ir)]]}))
PY
}

if [ "${INSTRUCTIONS:-1}" != 0 ] && ! command -v valgrind >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing valgrind (instruction counts)"
    apt-get install -y -qq valgrind >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; } || true
fi
if [ "${INSTRUCTIONS:-1}" = 0 ]; then
    log "INSTRUCTIONS=0: no instruction counts in this run"
elif command -v valgrind >/dev/null; then
    for scenario in "100 20 1" "100 20 16" "10 1024 1" "500 16384 1"; do
        set -- $scenario
        for impl in "${impls[@]}"; do
            log "instructions per echo: $impl, $1 connections x $2 B, window $3 (valgrind)"
            instructions "$impl" "$1" "$2" "$3" >>"$jsonl"
        done
    done
else
    log "valgrind is not installed: no instruction counts in this run"
fi
if [ "$only_instructions" = 1 ]; then exit 0; fi

for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    # Each round starts with another server, so that no server always runs
    # first (or right after the same one).
    shift_by=$(((round - 1) % ${#impls[@]}))
    order=("${impls[@]:shift_by}" "${impls[@]:0:shift_by}")
    pair=(tandem tungstenite)
    if [ $((round % 2)) = 0 ]; then pair=(tungstenite tandem); fi
    for flavour in $RUNTIMES; do
        set_runtime "$flavour"
        for scenario in "100 20" "10 1024" "500 16384"; do
            set -- $scenario
            for window in 1 16; do
                for impl in "${order[@]}"; do
                    log "echo ($runtime): $impl, $1 connections x $2 B, window $window"
                    start_server "$impl" echo
                    loadgen echo "$impl" --connections "$1" --size "$2" --window "$window" \
                        --duration "$ECHO_SECS" --warmup "$WARMUP_SECS" | tag_runtime >>"$jsonl"
                    stop_server
                done
            done
        done

        for impl in "${order[@]}"; do
            log "idle ($runtime): $impl, $IDLE_CONNS connections"
            start_server "$impl" echo
            sleep 0.5
            loadgen idle "$impl" --connections "$IDLE_CONNS" --settle 2 | tag_runtime >>"$jsonl"
            stop_server
        done

        # Broadcast: one text per round at 1,000 and 10,000 members, and 16
        # at once at 10,000 (several frames waiting for one member).
        for case in "1000 1" "10000 1" "10000 16"; do
            set -- $case
            for impl in "${pair[@]}"; do
                log "broadcast ($runtime): $impl, $1 sessions, window $2"
                start_server "$impl" chat
                loadgen broadcast "$impl" --connections "$1" --size 64 --window "$2" \
                    --duration "$BCAST_SECS" | tag_runtime >>"$jsonl"
                stop_server
            done
        done
    done
    set_runtime current

    # permessage-deflate: tandem only (the peers do not implement it), on
    # the current-thread runtime.
    for scenario in "100 20 1" "100 20 16" "10 1024 1" "500 16384 1"; do
        set -- $scenario
        log "echo with permessage-deflate: tandem, $1 connections x $2 B, window $3"
        start_server tandem echo --deflate on
        loadgen echo tandem --deflate on --connections "$1" --size "$2" --window "$3" \
            --duration "$ECHO_SECS" --warmup "$WARMUP_SECS" | tag_runtime >>"$jsonl"
        stop_server
    done
    log "idle with permessage-deflate: tandem, $IDLE_CONNS connections"
    start_server tandem echo --deflate on
    sleep 0.5
    loadgen idle tandem --deflate on --connections "$IDLE_CONNS" --settle 2 | tag_runtime >>"$jsonl"
    stop_server

    # wss://: tandem and tokio-tungstenite over TLS (rustls on both sides,
    # one ServerConfig; the load generator runs rustls's sans-I/O client).
    for scenario in "100 20 1" "100 20 16" "10 1024 1"; do
        set -- $scenario
        for impl in "${pair[@]}"; do
            log "wss echo: $impl, $1 connections x $2 B, window $3"
            start_server "$impl" echo --tls
            loadgen echo "$impl" --tls on --connections "$1" --size "$2" --window "$3" \
                --duration "$ECHO_SECS" --warmup "$WARMUP_SECS" | tag_runtime >>"$jsonl"
            stop_server
        done
    done
    for impl in "${pair[@]}"; do
        log "wss idle: $impl, $TLS_IDLE_CONNS connections"
        start_server "$impl" echo --tls
        sleep 0.5
        loadgen idle "$impl" --tls on --connections "$TLS_IDLE_CONNS" --settle 2 | tag_runtime >>"$jsonl"
        stop_server
    done
done # rounds

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
python3 bench/report.py "$jsonl" "$results/latest" \
    --machine "$cpu; $cores cores; $(free -g | awk '/^Mem:/ {print $2}') GiB; Linux $(uname -r)" \
    --rustc "$(rustc --version)" \
    --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --started "$started" \
    --load "load average $load_before before, $load_after after" \
    --pinning "server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU; echo ${ECHO_SECS} s after ${WARMUP_SECS} s warm-up; every figure the median of $ROUNDS rounds" \
    --readme README.md
log "wrote $results/latest.md and $results/latest.svg"
cat "$results/latest.md"
