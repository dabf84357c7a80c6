# Sourced by compare.sh and side-by-side.sh: how the benchmarks run `duplex serve`, and how they read
# `duplex bench --json`.

# `duplex serve` for a benchmark: one event loop, no limit that the load would trip, no heartbeats.
# Add --no-compression for the rows without permessage-deflate.
DUPLEX_SERVE_ARGS=(--max-message-rate 0 --max-message-size $((16 << 20)) --max-connections 100000
  --max-connections-per-address 100000 --ping-interval 0 --no-json-pings --threads 1 --log-level error)

# One field of a JSON object in a file: json_field FILE NAME.
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
