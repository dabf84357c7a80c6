#!/usr/bin/env bash
# Duplex against its peers, side by side in one run (issue 8). Builds everything in release mode, starts
# each echo server pinned to one core and `duplex bench` pinned to another, runs the same workloads
# against each, and prints one Markdown table of absolute figures and Duplex's ratio to each peer.
#
#   Benchmarks/compare.sh                      # everything, about 5 minutes with the defaults
#   DURATION=10 Benchmarks/compare.sh          # longer runs
#   PEERS="duplex nio-websocket" WORKLOADS="small connect" Benchmarks/compare.sh
#   SKIP_BUILD=1 Benchmarks/compare.sh         # reuse the last build
#
# Settings (environment): DRIVER (frames), the load generator's driver for the echo and connect
# workloads without compression: frames, a lean one that writes frames prepared in advance and counts
# echoes from their headers, so that on a small machine the generator costs about what it costs in
# --mode tcp; or client, Duplex's WebSocketClient (the deflate workloads always use it, the frames
# driver does not compress). DURATION seconds per throughput run (3); ROUNDS (2): every server runs every
# workload this many times, round-robin, and the table keeps each one's best run (the machine may be
# shared: the best run is the one least disturbed); IDLE_CONNECTIONS (10000); SERVER_CPU (0)
# and BENCH_CPU (1), the cores to pin to; PEERS and WORKLOADS, space-separated subsets of the lists below;
# OUT, the folder for raw results (a new one under /tmp). A peer whose toolchain is missing is installed
# (apt-get / pip) or, failing that, skipped with a note in the table.
#
# Workloads (all binary messages; the payload is one repeated byte, so it compresses extremely well):
#   small   32 B,  C=64, P=16    medium 16 KiB, C=64, P=4    large 1 MiB, C=8, P=2
#   connect handshakes/s, 32 at a time      idle  resident memory per idle connection at IDLE_CONNECTIONS
#   small-deflate / medium-deflate / idle-deflate: the same with permessage-deflate negotiated
# Besides the figure, each run records the CPU time the server and the load generator used, as a share
# of one core over the measured window: a load generator near 100% with a server well below says the
# bench, not the server, was the limit; both well below 100% says other processes had the cores. The
# table also divides each rate by the server's CPU share (messages or handshakes per second of server
# CPU), which holds up much better than the raw rate on a machine shared with other work.
# `nio-tcp` (a raw TCP echo, driven by `duplex bench --mode tcp`) is the ceiling for the echo workloads.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="$ROOT/Benchmarks"
# shellcheck source=common.sh
. "$BENCH_DIR/common.sh"
BUILD="$BENCH_DIR/.build-peers"
DURATION="${DURATION:-3}"
DRIVER="${DRIVER:-frames}"
ROUNDS="${ROUNDS:-2}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"
PEERS="${PEERS:-duplex nio-websocket nio-tcp hummingbird vapor node-ws gorilla libwebsockets python-websockets}"
WORKLOADS="${WORKLOADS:-small medium large connect idle small-deflate medium-deflate idle-deflate}"
OUT="${OUT:-$(mktemp -d /tmp/duplex-compare.XXXXXX)}"
PORT=19400
mkdir -p "$BUILD" "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
NOTES="$OUT/notes.txt"
: >"$NOTES"

note() { echo "compare: $*" >&2; }
skip() { echo "$1: $2" >>"$NOTES"; note "skipping $1: $2"; }

ulimit -n "$(ulimit -Hn)" || true
if [ "$(ulimit -n)" -lt $((IDLE_CONNECTIONS + 100)) ]; then
  note "ulimit -n is $(ulimit -n): too low for $IDLE_CONNECTIONS idle connections"
fi

# ---------------------------------------------------------------------------------------------- build
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  note "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

AVAILABLE=""
available() { case " $AVAILABLE " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
wanted() { case " $PEERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

build_all() {
  note "building duplex (release)"
  swift build -c release --package-path "$ROOT" --product duplex >"$OUT/build-duplex.log" 2>&1 ||
    { cat "$OUT/build-duplex.log" >&2; exit 1; }
  if wanted nio-websocket || wanted nio-tcp || wanted hummingbird || wanted vapor; then
    note "building the Swift peers (release; Vapor and Hummingbird take several minutes the first time)"
    swift build -c release --package-path "$BENCH_DIR/peers/swift" >"$OUT/build-swift-peers.log" 2>&1 ||
      { tail -30 "$OUT/build-swift-peers.log" >&2; exit 1; }
  fi
  if wanted gorilla; then
    [ -d /usr/share/gocode/src/github.com/gorilla/websocket ] && command -v go >/dev/null ||
      apt_install golang golang-github-gorilla-websocket-dev || true
    if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/gorilla/websocket ]; then
      (cd "$BENCH_DIR/peers/go-gorilla" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$BUILD/go-cache" \
        go build -o "$BUILD/gorilla-echo" .) >"$OUT/build-gorilla.log" 2>&1 || cat "$OUT/build-gorilla.log" >&2
    fi
  fi
  if wanted libwebsockets; then
    pkg-config --exists libwebsockets || apt_install libwebsockets-dev pkg-config || true
    if pkg-config --exists libwebsockets; then
      # shellcheck disable=SC2046
      gcc -O2 -Wall -o "$BUILD/lws-echo" "$BENCH_DIR/peers/libwebsockets/echo.c" $(pkg-config --cflags --libs libwebsockets) \
        >"$OUT/build-lws.log" 2>&1 || cat "$OUT/build-lws.log" >&2
    fi
  fi
  if wanted node-ws && ! NODE_PATH=/usr/share/nodejs node -e "require('ws')" 2>/dev/null; then
    apt_install node-ws || true
  fi
  if wanted python-websockets && ! python3 -c "import websockets, sys; sys.exit(websockets.__version__ != '17.4')" 2>/dev/null; then
    note "pip install websockets==17.4"
    python3 -m pip install --quiet --disable-pip-version-check "websockets==17.4" >/dev/null 2>&1 || true
  fi
}
[ -n "${SKIP_BUILD:-}" ] || build_all

DUPLEX="$(swift build -c release --package-path "$ROOT" --show-bin-path)/duplex"
SWIFT_PEERS="$(swift build -c release --package-path "$BENCH_DIR/peers/swift" --show-bin-path 2>/dev/null || true)"

# The command line of each server, given its port and "--deflate" or "".
server_command() {
  local name="$1" port="$2" deflate="$3"
  case "$name" in
    duplex)
      local compression="--no-compression"
      [ -n "$deflate" ] && compression=""
      echo "$DUPLEX serve --host 127.0.0.1 --port $port ${DUPLEX_SERVE_ARGS[*]} $compression" ;;
    nio-websocket) echo "$SWIFT_PEERS/nio-websocket-echo $port" ;;
    nio-tcp) echo "$SWIFT_PEERS/nio-tcp-echo $port" ;;
    hummingbird) echo "$SWIFT_PEERS/hummingbird-echo $port $deflate" ;;
    vapor) echo "$SWIFT_PEERS/vapor-echo $port" ;;
    node-ws) echo "env NODE_PATH=/usr/share/nodejs node $BENCH_DIR/peers/node-ws/server.js $port $deflate" ;;
    gorilla) echo "$BUILD/gorilla-echo $port $deflate" ;;
    libwebsockets) echo "$BUILD/lws-echo $port $deflate" ;;
    python-websockets) echo "python3 $BENCH_DIR/peers/python-websockets/server.py $port $deflate" ;;
  esac
}

# Whether a server can run here; prints why not.
missing() {
  case "$1" in
    duplex) [ -x "$DUPLEX" ] || echo "duplex is not built" ;;
    nio-websocket | nio-tcp | hummingbird | vapor)
      [ -x "$SWIFT_PEERS/$1-echo" ] || echo "Benchmarks/peers/swift is not built" ;;
    node-ws) NODE_PATH=/usr/share/nodejs node -e "require('ws')" 2>/dev/null || echo "Node ws (Debian's node-ws) is not installed" ;;
    gorilla) [ -x "$BUILD/gorilla-echo" ] || echo "Go or gorilla/websocket (Debian's golang-github-gorilla-websocket-dev) is missing" ;;
    libwebsockets) [ -x "$BUILD/lws-echo" ] || echo "libwebsockets-dev is not installed" ;;
    python-websockets) python3 -c "import websockets" 2>/dev/null || echo "Python websockets is not installed" ;;
  esac
}

# Which workloads a server takes part in.
supports() {
  local name="$1" workload="$2"
  case "$workload" in
    *-deflate) case "$name" in nio-websocket | nio-tcp | vapor) return 1 ;; esac ;;
    small | medium | large) return 0 ;;
    *) [ "$name" != nio-tcp ] ;;
  esac
}

# ---------------------------------------------------------------------------------------------- run
SERVER_PID=""
start_server() {
  local name="$1" deflate="$2"
  PORT=$((PORT + 1))
  # shellcheck disable=SC2046
  taskset -c "$SERVER_CPU" $(server_command "$name" "$PORT" "$deflate") >"$OUT/server-$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  note "$name did not start listening on $PORT (see $OUT/server-$name.log)"
  stop_server
  return 1
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

# The CPU time a process's threads have run, in nanoseconds (the first field of each schedstat).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ total += $1 } END { printf "%.0f\n", total }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# record NAME WORKLOAD VALUE UNIT SERVER_CPU% BENCH_CPU% DETAIL
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }


# Runs `duplex bench` pinned to BENCH_CPU; leaves its JSON in $OUT/last.json and the CPU shares in
# BENCH_SHARE / SERVER_SHARE (percent of one core). The server's share is taken over the measured window:
# from the bench's first progress line ("bench: 1 s") to its last, or over the whole run in connect mode.
run_bench() {
  local log="$OUT/last.log" first="" first_time="" last="" last_time="" seconds="${DURATION%.*}"
  : >"$log"
  taskset -c "$BENCH_CPU" "$DUPLEX" bench --json "$@" >"$OUT/last.json" 2>"$log" &
  local bench=$! start end
  start="$(date +%s.%N)"
  local whole_start
  whole_start="$(cpu_ns "$SERVER_PID")"
  while kill -0 "$bench" 2>/dev/null; do
    if [ -z "$first" ] && grep -q "^bench: 1 s" "$log"; then first="$(cpu_ns "$SERVER_PID")"; first_time="$(date +%s.%N)"; fi
    if [ -z "$last" ] && [ "$seconds" -gt 1 ] && grep -q "^bench: $seconds s" "$log"; then
      last="$(cpu_ns "$SERVER_PID")"; last_time="$(date +%s.%N)"
    fi
    sleep 0.02
  done
  end="$(date +%s.%N)"
  cat "$log" >>"$OUT/bench.log"
  wait "$bench" || return 1
  if [ -z "$first" ] || [ -z "$last" ]; then
    first="$whole_start"; first_time="$start"; last="$(cpu_ns "$SERVER_PID")"; last_time="$end"
  fi
  SERVER_SHARE="$(echo "($last - $first) / 10000000 / ($last_time - $first_time)" | bc -l | xargs printf '%.1f')"
  BENCH_SHARE="$(json_field "$OUT/last.json" bench_cpu_percent 2>/dev/null || echo "")"
}

echo_workload() {
  local name="$1" workload="$2" size="$3" connections="$4" in_flight="$5" flags="$6" url="ws://127.0.0.1:$PORT/"
  local mode=echo driver="--driver $DRIVER"
  [ -n "$flags" ] && driver="--driver client"
  [ "$name" = nio-tcp ] && { mode=tcp; url="tcp://127.0.0.1:$PORT"; driver=""; }
  # shellcheck disable=SC2086
  if run_bench "$url" --mode "$mode" $driver --binary -s "$size" -c "$connections" -p "$in_flight" -d "$DURATION" $flags; then
    record "$name" "$workload" "$(json_field "$OUT/last.json" messages_per_s)" "msg/s" "$SERVER_SHARE" "$BENCH_SHARE" \
      "$(json_field "$OUT/last.json" mb_per_s) MB/s, p50 $(json_field "$OUT/last.json" p50_us) us, p99 $(json_field "$OUT/last.json" p99_us) us"
  else
    record "$name" "$workload" "failed" "msg/s" "" "" "see $OUT/bench.log"
  fi
}

connect_workload() {
  local name="$1"
  if run_bench "ws://127.0.0.1:$PORT/" --mode connect --driver "$DRIVER" -c 32 -d "$DURATION"; then
    record "$name" connect "$(json_field "$OUT/last.json" handshakes_per_s)" "handshakes/s" "$SERVER_SHARE" "$BENCH_SHARE" \
      "$(json_field "$OUT/last.json" failed) failed"
  else
    record "$name" connect "failed" "handshakes/s" "" "" "see $OUT/bench.log"
  fi
}

# Opens IDLE_CONNECTIONS connections, reads the server's resident memory once they are all open, and
# records the growth per connection in KiB.
idle_workload() {
  local name="$1" workload="$2" flags="$3" before after log="$OUT/idle-$name-$workload.log"
  sleep 0.5
  before="$(rss_kib "$SERVER_PID")"
  # shellcheck disable=SC2086
  taskset -c "$BENCH_CPU" "$DUPLEX" bench "ws://127.0.0.1:$PORT/" --mode idle -c "$IDLE_CONNECTIONS" -d 4 $flags \
    >/dev/null 2>"$log" &
  local bench=$!
  for _ in $(seq 1 1200); do
    grep -q "holding them" "$log" 2>/dev/null && break
    kill -0 "$bench" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "holding them" "$log"; then
    sleep 2 # let the server finish its side of the last handshakes
    after="$(rss_kib "$SERVER_PID")"
    record "$name" "$workload" "$(echo "($after - $before) / $IDLE_CONNECTIONS" | bc -l | xargs printf '%.1f')" "KiB/conn" "" "" \
      "RSS $((before / 1024)) -> $((after / 1024)) MiB"
  else
    record "$name" "$workload" "failed" "KiB/conn" "" "" "$(tail -1 "$log")"
  fi
  # The figure is taken: no need to wait for 10,000 close handshakes (slow on poll()-based servers).
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
}

run_workload() {
  local name="$1" workload="$2"
  case "$workload" in
    small) echo_workload "$name" small 32 64 16 "" ;;
    medium) echo_workload "$name" medium 16384 64 4 "" ;;
    large) echo_workload "$name" large 1048576 8 2 "" ;;
    connect) connect_workload "$name" ;;
    idle) idle_workload "$name" idle "" ;;
    small-deflate) echo_workload "$name" small-deflate 32 64 16 --compression ;;
    medium-deflate) echo_workload "$name" medium-deflate 16384 64 4 --compression ;;
    idle-deflate) idle_workload "$name" idle-deflate --compression ;;
  esac
}

RUNNABLE=""
for name in $PEERS; do
  why="$(missing "$name")"
  if [ -n "$why" ]; then skip "$name" "$why"; else RUNNABLE="$RUNNABLE $name"; fi
done
for round in $(seq 1 "$ROUNDS"); do
  for workload in $WORKLOADS; do
    deflate=""
    case "$workload" in *-deflate) deflate="--deflate" ;; esac
    for name in $RUNNABLE; do
      supports "$name" "$workload" || continue
      # A fresh server for each run, so that one run's leftovers do not weigh on the next.
      note "round $round/$ROUNDS: $workload: $name"
      start_server "$name" "$deflate" || { record "$name" "$workload" "failed" "" "" "" "did not start"; continue; }
      run_workload "$name" "$workload"
      stop_server
    done
  done
done

# ---------------------------------------------------------------------------------------------- table
python3 "$BENCH_DIR/compare-table.py" "$RESULTS" "$NOTES" "$DURATION" "$IDLE_CONNECTIONS" "$ROUNDS"
note "raw results in $OUT"
