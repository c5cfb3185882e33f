#!/usr/bin/env bash
# The deployment files of examples/deploy/ (nginx.conf, haproxy.cfg) run for
# real: two demo servers behind each proxy, and the demo client through it.
#
#   scripts/test-proxies.sh
#
# Debian's nginx, haproxy and redis-server are installed when missing
# (scripts/setup.sh);
# the server and client examples come from the debug build that
# scripts/test.sh makes (the same cargo features, so nothing rebuilds).
# Each proxy runs in the foreground from a temporary directory, with the
# committed file rendered by sed: the ports 8080 (the proxy's), 8081 and
# 8082 (the servers') become free ports of 127.0.0.1, and the 75 s idle
# timeout of upgraded connections becomes PROXY_TIMEOUT (3 s), against
# servers that ping every PING (1 s) instead of 30 s (all three can be set
# in the environment, as IDLE can). Through each proxy:
#
# - the page is served, and the echo conversation ends with the server's 1000;
# - an upgrade whose Origin is the proxy's own address gets 101 (the proxy
#   forwards the client's Host, which tandem's origin policy compares it
#   with), one from another origin 403;
# - the two servers share one chat on a private redis-server (started here
#   on a free port, stopped by PID): with one chat session on each server
#   (straight to it), a session through the proxy is welcomed with the count
#   of all three, and its message reaches both servers' sessions;
# - a session left idle for IDLE (5 s) is still open, kept alive by the
#   servers' pings, and, as a control, one behind a server that does not
#   ping is cut by the proxy's timeout.
#
# Only 127.0.0.1 is used, every step is bounded in time, and what the test
# starts it stops by PID. The last line is `proxies: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_TAG=test-proxies
. scripts/setup.sh
log() { setup_log "$* (at $SECONDS s)"; }
export PATH="$PATH:/usr/sbin:/sbin"
export no_proxy="127.0.0.1${no_proxy:+,$no_proxy}"

FEATURES=("${TEST_FEATURES[@]}")
PING=${PING:-1}
PROXY_TIMEOUT=${PROXY_TIMEOUT:-3}
IDLE=${IDLE:-5}

setup_proxies
setup_redis
log "building the server and client examples"
timeout 900 cargo build --examples "${FEATURES[@]}" --locked
target=${CARGO_TARGET_DIR:-target}
SERVER="$target/debug/examples/server"
CLIENT="$target/debug/examples/client"

tmp=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

passed=0
failed=0
# check NAME COMMAND...: runs the command, counts it, and on failure shows
# the files it names in $shown.
shown=()
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
        local file
        for file in "${shown[@]}"; do
            [ -f "$file" ] && sed "s|^|    ${file#"$tmp"/}: |" "$file"
        done
    fi
    shown=()
}

# wait_for FILE PATTERN: true once FILE has a line matching PATTERN (grep
# -E), false after 10 s.
wait_for() {
    for _ in $(seq 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME ARGS...: a demo server on a free port; sets $port.
start_server() {
    local name=$1
    shift
    "$SERVER" --addr 127.0.0.1:0 --www www "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    wait_for "$tmp/$name.out" '^listening on ' || { cat "$tmp/$name.err" >&2; return 1; }
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$tmp/$name.out")
}

# start_proxy nginx|haproxy NAME UPSTREAM1 UPSTREAM2: the committed file
# with these upstream ports, a free port of its own and the scaled timeout;
# sets $port once it answers.
start_proxy() {
    local kind=$1 name=$2 up1=$3 up2=$4 dir="$tmp/$2" config
    port=$(free_port)
    mkdir -p "$dir"
    case $kind in
    nginx)
        config=$dir/nginx.conf
        # Its logs and temporary files go to $dir, never the system's.
        sed -e "s|^\( *\)listen 8080;|\1listen 127.0.0.1:$port;|" \
            -e "s|127\.0\.0\.1:8081;|127.0.0.1:$up1;|" \
            -e "s|127\.0\.0\.1:8082;|127.0.0.1:$up2;|" \
            -e "s|proxy_read_timeout 75s;|proxy_read_timeout ${PROXY_TIMEOUT}s;|" \
            -e "s|proxy_send_timeout 75s;|proxy_send_timeout ${PROXY_TIMEOUT}s;|" \
            -e "s|^http {|http {\n    access_log $dir/access.log;\n    client_body_temp_path $dir/body;\n    proxy_temp_path $dir/proxy;\n    fastcgi_temp_path $dir/fastcgi;\n    uwsgi_temp_path $dir/uwsgi;\n    scgi_temp_path $dir/scgi;|" \
            examples/deploy/nginx.conf >"$config"
        nginx -p "$dir" -c "$config" -e "$dir/error.log" \
            -g "daemon off; pid $dir/nginx.pid; error_log $dir/error.log;" \
            >"$dir/out" 2>&1 &
        ;;
    haproxy)
        config=$dir/haproxy.cfg
        sed -e "s|^\( *\)bind :8080$|\1bind 127.0.0.1:$port|" \
            -e "s|127\.0\.0\.1:8081 |127.0.0.1:$up1 |" \
            -e "s|127\.0\.0\.1:8082 |127.0.0.1:$up2 |" \
            -e "s|timeout tunnel 75s$|timeout tunnel ${PROXY_TIMEOUT}s|" \
            examples/deploy/haproxy.cfg >"$config"
        haproxy -f "$config" -db >"$dir/out" 2>&1 &
        ;;
    esac
    pids+=($!)
    # Every port and timeout must have been replaced: a sed that no longer
    # matches the committed file would leave the test running against the
    # file's own ports and a 75 s timeout.
    if sed 's/#.*//' "$config" | grep -nE '808[012]|75s'; then
        echo "$config: the lines above were not rendered" >&2
        return 1
    fi
    for _ in $(seq 50); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
        sleep 0.1
    done
    echo "$name did not answer on port $port:" >&2
    cat "$dir/out" "$dir/error.log" 2>/dev/null >&2
    return 1
}

# Clients whose input this shell writes: open_client NAME URL starts one,
# say NAME TEXT sends a line, close_client NAME ends its input (the client
# then closes with 1000 and exits; saying something to a client that has
# exited is no error). Its output is in $tmp/NAME.out. Each
# client is started without the other clients' input pipes, which would
# keep them open.
declare -A client_fd client_pid
open_client() {
    local name=$1 url=$2 fd
    mkfifo "$tmp/$name.in"
    (
        for fd in "${client_fd[@]}"; do exec {fd}>&-; done
        exec timeout 20 "$CLIENT" "$url" <"$tmp/$name.in" >"$tmp/$name.out" 2>&1
    ) &
    client_pid[$name]=$!
    pids+=($!)
    exec {fd}>"$tmp/$name.in"
    client_fd[$name]=$fd
}
say() { (trap '' PIPE && echo "$2" >&"${client_fd[$1]}") 2>/dev/null || true; }
close_client() {
    local fd=${client_fd[$1]}
    exec {fd}>&-
    unset "client_fd[$1]"
    wait "${client_pid[$1]}" 2>/dev/null || true
}

# upgrade_status PORT ORIGIN: the status code of a browser's upgrade request
# for /echo through the proxy, from a page of ORIGIN.
upgrade_status() {
    local fd status=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: %s\r\n\r\n' \
        "$1" "$2" >&"$fd"
    read -r -t 5 _ status _ <&"$fd" || true
    exec {fd}>&-
    echo "$status"
}

# idle_session PORT OUT: an echo session that says nothing for IDLE seconds,
# then a line; OUT gets what the client printed.
idle_session() {
    (sleep "$IDLE"; echo later) | timeout $((IDLE + 10)) "$CLIENT" "ws://127.0.0.1:$1/echo" >"$2" 2>&1 || true
}

# was_cut OUT: the idle session of OUT ended before its last line was answered.
was_cut() { ! grep -qx 'Hi, later!' "$1" && grep -q '^closed: ' "$1"; }

log "starting redis-server for the servers' shared chat"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    >"$tmp/redis.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
redis=(--redis "redis://127.0.0.1:$redis_port/")

log "starting the demo servers (pings every $PING s, and one without pings)"
start_server one --ping-period "$PING" "${redis[@]}"
one=$port
start_server two --ping-period "$PING" "${redis[@]}"
two=$port
start_server quiet --ping-period 0
quiet=$port

log "starting nginx and haproxy (idle timeout of a tunnel: $PROXY_TIMEOUT s)"
declare -A proxy_port quiet_port
for kind in nginx haproxy; do
    start_proxy "$kind" "$kind" "$one" "$two"
    proxy_port[$kind]=$port
    start_proxy "$kind" "$kind-quiet" "$quiet" "$quiet"
    quiet_port[$kind]=$port
done

for kind in nginx haproxy; do
    p=${proxy_port[$kind]}
    log "through $kind (port $p; servers $one and $two)"

    check "$kind: the page is served" \
        test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$p/")" = 200

    printf 'proxy\nbye\n' | timeout 10 "$CLIENT" "ws://127.0.0.1:$p/echo" >"$tmp/echo.out" 2>&1 || true
    shown=("$tmp/echo.out")
    check "$kind: the echo greets, answers and closes with 1000" \
        test "$(cat "$tmp/echo.out")" = "$(printf 'Please enter your name\nHi, proxy!\nclosed: 1000 Client said BYE')"

    status=$(upgrade_status "$p" "http://127.0.0.1:$p")
    check "$kind: an upgrade from the proxy's own origin gets 101 (got $status)" test "$status" = 101
    status=$(upgrade_status "$p" "http://evil.example")
    check "$kind: an upgrade from another origin gets 403 (got $status)" test "$status" = 403

    rm -f "$tmp"/chat-*
    open_client chat-a "ws://127.0.0.1:$one/chat"
    wait_for "$tmp/chat-a.out" 'You are connected' || true
    open_client chat-b "ws://127.0.0.1:$two/chat"
    wait_for "$tmp/chat-b.out" 'You are connected' || true
    open_client chat-c "ws://127.0.0.1:$p/chat"
    wait_for "$tmp/chat-c.out" 'You are connected' || true
    say chat-c "hello from c"
    for name in chat-a chat-b chat-c; do wait_for "$tmp/$name.out" ': hello from c$' || true; done
    for name in chat-a chat-b chat-c; do close_client "$name"; done
    shown=("$tmp"/chat-*.out)
    check "$kind: the welcomes count the sessions of both servers" \
        test "$(cat "$tmp"/chat-*.out | grep -o 'There are [0-9]* users' | sort | tr '\n' ,)" \
        = "There are 1 users,There are 2 users,There are 3 users,"
    check "$kind: a message through the proxy reaches the sessions on both servers" \
        test "$(grep -l ': hello from c$' "$tmp"/chat-*.out | wc -l)" = 3
done

log "idle sessions: $IDLE s of silence behind a $PROXY_TIMEOUT s proxy timeout"
idle=()
for kind in nginx haproxy; do
    idle_session "${proxy_port[$kind]}" "$tmp/idle-$kind.out" &
    idle+=($!)
    idle_session "${quiet_port[$kind]}" "$tmp/idle-$kind-quiet.out" &
    idle+=($!)
done
for pid in "${idle[@]}"; do wait "$pid" || true; done
for kind in nginx haproxy; do
    shown=("$tmp/idle-$kind.out")
    check "$kind: an idle session with pings every $PING s outlives the proxy's timeout" \
        grep -qx 'Hi, later!' "$tmp/idle-$kind.out"
    shown=("$tmp/idle-$kind-quiet.out")
    check "$kind: (control) an idle session without pings is cut by the proxy's timeout" \
        was_cut "$tmp/idle-$kind-quiet.out"
done

echo "proxies: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
