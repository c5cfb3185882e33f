#!/usr/bin/env bash
# Cross-instance fan-out through tandem's rooms, with one command:
#
#   scripts/bench-rooms.sh      the set-ups below, 3 rounds (about 2 minutes + the build)
#
# Each round runs, one after the other (each round starting with another):
#
#   local    one `bench-server --mode rooms` on the in-process LocalBackplane,
#            MEMBERS sessions in the room;
#   redis    one instance on RedisBackplane, MEMBERS sessions;
#   redis-2  two instances on one Redis, MEMBERS/2 sessions each;
#   redis-4, redis-8 (INSTANCES): four and eight instances on one Redis, what
#            each instance reading a room adds to Redis's work per message.
#
# `loadgen broadcast` spreads the sessions over the instances round-robin,
# sends one SIZE-byte text per round from one session (on the first
# instance) and waits until every session on every instance has it. Each
# run with Redis gets a fresh `redis-server` of its own on a free port of
# 127.0.0.1 (never 6379), in a temporary folder, stopped by its PID.
#
# Pinning, as in scripts/bench.sh: the servers on SERVER_CPU, the load
# generator on LOADGEN_CPU, and Redis on REDIS_CPU (by default the load
# generator's core: Redis works at the start of a round, while the load
# generator waits for the message). Unlike bench.sh, nothing runs at a
# raised priority: every process keeps the caller's nice value.
#
# Writes bench/results/rooms.jsonl (one JSON object per run, and for the
# runs with Redis one more with Redis's own timing of the publish script and
# the XREADs, from `INFO commandstats`) and
# bench/results/rooms.md (the table: the median of the rounds, each column
# on its own) through bench/report_rooms.py, and refreshes the table in
# the README's "Rooms across instances" under "Performance".
#
# Environment: MEMBERS (default 600), INSTANCES (the set-ups of several
# instances on one Redis, default "2 4 8"), SIZE (default 64), BCAST_SECS
# (default 5), ROUNDS (default 3), SERVER_CPU (default 0), LOADGEN_CPU
# (default 1), REDIS_CPU (default LOADGEN_CPU), REDIS_AOF (default yes:
# `appendonly yes`, Redis's default `appendfsync everysec`, as the README
# asks of production; `no` for none), PORT_BASE (default 19300).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    "") ;;
    *) echo "usage: scripts/bench-rooms.sh" >&2; exit 2 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }
cores=$(nproc)
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-$((cores > 1 ? 1 : 0))}
REDIS_CPU=${REDIS_CPU:-$LOADGEN_CPU}
MEMBERS=${MEMBERS:-600}
INSTANCES=${INSTANCES:-2 4 8}
SIZE=${SIZE:-64}
BCAST_SECS=${BCAST_SECS:-5}
ROUNDS=${ROUNDS:-3}
REDIS_AOF=${REDIS_AOF:-yes}
port=${PORT_BASE:-19300}

command -v redis-server >/dev/null || {
    echo "bench-rooms: redis-server is not on PATH (Debian: apt-get install redis-server)" >&2
    exit 1
}
case "$REDIS_AOF" in
    yes | no) ;;
    *) echo "bench-rooms: REDIS_AOF is yes or no" >&2; exit 2 ;;
esac

log "building bench/ (release)"
cargo build --release --locked --manifest-path bench/Cargo.toml
target_dir=$(cargo metadata --manifest-path bench/Cargo.toml --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"

pin_server=()
pin_loadgen=()
pin_redis=()
if command -v taskset >/dev/null; then
    pin_server=(taskset -c "$SERVER_CPU")
    pin_loadgen=(taskset -c "$LOADGEN_CPU")
    pin_redis=(taskset -c "$REDIS_CPU")
fi

results=bench/results
mkdir -p "$results"
work=$(mktemp -d)
pids=()     # every process started here, stopped by its PID
redis_pid=""
redis_port=""
redis_url=""
server_pids=()
server_addrs=()

stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
    rm -f "$work"/server-*.log
    redis_pid=""
    server_pids=()
    server_addrs=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# The next port from PORT_BASE on that nothing listens on.
next_port() {
    port=$((port + 1))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
}

start_redis() {
    next_port
    local dir="$work/redis-$port"
    mkdir -p "$dir"
    "${pin_redis[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly "$REDIS_AOF" --dir "$dir" >"$dir/log" 2>&1 &
    redis_pid=$!
    redis_port=$port
    pids+=("$redis_pid")
    redis_url="redis://127.0.0.1:$port/"
    for _ in $(seq 100); do
        if (
            exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 &&
                read -r -t 1 reply <&3 && [[ "$reply" == +PONG* ]]
        ) 2>/dev/null; then
            return 0
        fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "redis-server did not start:" >&2
    cat "$dir/log" >&2
    exit 1
}

start_server() { # [--redis URL]
    next_port
    local slog="$work/server-$port.log"
    "${pin_server[@]}" "$bin/bench-server" --impl tandem --mode rooms \
        --addr "127.0.0.1:$port" "$@" 2>"$slog" &
    local pid=$!
    pids+=("$pid")
    server_pids+=("$pid")
    server_addrs+=("127.0.0.1:$port")
    for _ in $(seq 200); do
        grep -q '^bench-server:' "$slog" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench-server rooms $* did not start:" >&2
    cat "$slog" >&2
    exit 1
}

run() { # label instances backplane(local|redis)
    local label=$1 instances=$2 backplane=$3
    local redis_args=() loadgen_args=()
    if [ "$backplane" = redis ]; then
        start_redis
        redis_args=(--redis "$redis_url")
        loadgen_args=(--redis-pid "$redis_pid")
    fi
    for _ in $(seq "$instances"); do start_server "${redis_args[@]}"; done
    for pid in "${server_pids[@]}"; do loadgen_args+=(--server-pid "$pid"); done
    log "rooms: $label, $instances instance(s), $MEMBERS members in all, $backplane backplane"
    local addrs
    addrs=$(IFS=,; echo "${server_addrs[*]}")
    if ! "${pin_loadgen[@]}" "$bin/loadgen" broadcast --addrs "$addrs" --label "$label" \
        --connections "$MEMBERS" --size "$SIZE" --duration "$BCAST_SECS" \
        "${loadgen_args[@]}" >>"$jsonl"; then
        echo "bench-rooms: $label failed; the servers said:" >&2
        cat "$work"/server-*.log >&2
        exit 1
    fi
    if [ "$backplane" = redis ] && command -v redis-cli >/dev/null; then
        # What Redis itself timed, per command: the publish script
        # (EVALSHA) and the instances' XREADs, over the whole run.
        redis-cli -p "$redis_port" info commandstats | tr -d '\r' |
            awk -F'[:,=]' -v label="$label" -v instances="$instances" '
                /^cmdstat_(evalsha|xread):/ { sub("cmdstat_", "", $1); calls[$1] = $3; usec[$1] = $5 }
                END { printf "{\"mode\":\"redis-commandstats\",\"label\":\"%s\",\"servers\":%d,\"evalsha_calls\":%d,\"evalsha_usec\":%d,\"xread_calls\":%d,\"xread_usec\":%d}\n",
                    label, instances, calls["evalsha"], usec["evalsha"], calls["xread"], usec["xread"] }' >>"$jsonl"
    fi
    stop_all
}

jsonl="$results/rooms.jsonl"
: >"$jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
setups=("local 1 local" "redis 1 redis")
for n in $INSTANCES; do setups+=("redis-$n $n redis"); done

for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    # Each round starts with another set-up.
    shift_by=$(((round - 1) % ${#setups[@]}))
    for setup in "${setups[@]:shift_by}" "${setups[@]:0:shift_by}"; do
        # shellcheck disable=SC2086
        run $setup
    done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
aof="appendonly yes, appendfsync everysec"
[ "$REDIS_AOF" = no ] && aof="appendonly no"
python3 bench/report_rooms.py "$jsonl" "$results/rooms.md" \
    --machine "$cpu; $cores cores; $(free -g | awk '/^Mem:/ {print $2}') GiB; Linux $(uname -r)" \
    --rustc "$(rustc --version)" \
    --redis "$(redis-server --version | sed 's/^Redis server v=\([^ ]*\).*/Redis \1/'), $aof, save ''" \
    --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --started "$started" \
    --load "load average $load_before before, $load_after after; nice $(nice)" \
    --pinning "servers on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU, Redis on CPU $REDIS_CPU; $SIZE-byte texts, $BCAST_SECS s per run after 3 rounds of warm-up; every figure the median of $ROUNDS rounds" \
    --took "$(($(date +%s) - t0)) s" \
    --readme README.md
log "wrote $results/rooms.md"
cat "$results/rooms.md"
