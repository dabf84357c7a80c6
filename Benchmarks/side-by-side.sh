#!/usr/bin/env bash
# Two builds of `duplex serve` measured at the same time, for A/B comparisons of a change on a noisy
# machine. Both servers run pinned to the same core (SERVER_CPU), so the scheduler splits it between
# them, and each is driven by its own `duplex bench --driver frames`, both pinned to BENCH_CPU. A slow
# minute then slows both alike, and the ratio of their rates is the ratio of their costs per message.
# Run the same build on both sides first: that ratio is the noise (within about ±2% here).
#
#   Benchmarks/side-by-side.sh OLD_DUPLEX NEW_DUPLEX               # 16 KiB echo, C=64, P=4, 3 rounds
#   SIZE=32 C=64 P=16 ROUNDS=5 Benchmarks/side-by-side.sh old new  # small messages
#
# Settings (environment): SIZE (16384), C (64), P (4), DURATION (5 s), ROUNDS (3); BENCH, the
# `duplex` that generates the load (default: the first build); SERVER_CPU (0), BENCH_CPU (1).
# Each round starts the two in the other order. Prints each round's rates and B ÷ A, then the median.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || { echo "usage: $0 DUPLEX_A DUPLEX_B" >&2; exit 2; }
A="$1" B="$2"
SIZE="${SIZE:-16384}" C="${C:-64}" P="${P:-4}" DURATION="${DURATION:-5}" ROUNDS="${ROUNDS:-3}"
BENCH="${BENCH:-$A}" SERVER_CPU="${SERVER_CPU:-0}" BENCH_CPU="${BENCH_CPU:-1}"
OUT="$(mktemp -d /tmp/duplex-side-by-side.XXXXXX)"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

serve() {  # binary port
  taskset -c "$SERVER_CPU" "$1" serve --host 127.0.0.1 --port "$2" "${DUPLEX_SERVE_ARGS[@]}" --no-compression \
    >/dev/null 2>&1 &
  PIDS+=($!)
}

bench() {  # port output
  taskset -c "$BENCH_CPU" "$BENCH" bench "ws://127.0.0.1:$1/" --mode echo --driver frames --binary \
    -s "$SIZE" -c "$C" -p "$P" -d "$DURATION" --json >"$2" 2>>"$OUT/bench.log" &
}

rate() { json_field "$1" messages_per_s; }

: >"$OUT/ratios"
for round in $(seq 1 "$ROUNDS"); do
  PIDS=()
  if [ $((round % 2)) -eq 1 ]; then serve "$A" 19651; serve "$B" 19652; else serve "$B" 19652; serve "$A" 19651; fi
  sleep 0.7
  bench 19651 "$OUT/a.json"; first=$!
  bench 19652 "$OUT/b.json"; second=$!
  wait "$first" "$second" || { echo "a bench run failed: $(tail -3 "$OUT/bench.log")" >&2; exit 1; }
  kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
  a="$(rate "$OUT/a.json")" b="$(rate "$OUT/b.json")"
  ratio="$(python3 -c "print(f'{$b / $a:.3f}')")"
  echo "$ratio" >>"$OUT/ratios"
  printf 'round %d: A %.0f msg/s, B %.0f msg/s, B/A %s\n' "$round" "$a" "$b" "$ratio"
done
python3 -c "import statistics,sys; r=[float(l) for l in open(sys.argv[1])]; print(f'median B/A {statistics.median(r):.3f} over {len(r)} rounds')" "$OUT/ratios"
