#!/usr/bin/env bash
# The edge's cost in instructions per request, counted by callgrind: unlike req/s on this shared
# 2-core machine (±20% from one minute to the next), the count is the same run after run. The
# release server runs under `valgrind --tool=callgrind`; one keep-alive connection asks for the
# demo site's `/blog/hello-world/` (the page bench-edge.sh measures) N times (after a warm-up)
# through the edge with hyper's HTTP/1 (the default), through the edge with Pingora's own HTTP/1
# session, and straight from Axum; the counters are zeroed before and dumped after each series.
# The server logs at `warn` (no access-log lines: the edge's own work) unless WHISPERCMS_LOG says
# otherwise (`WHISPERCMS_LOG=info` counts the access log too).
# Needs: cargo, valgrind, python3 (Debian packages are installed when missing).
# Usage: scripts/bench-edge-instructions.sh [REQUESTS]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" valgrind python3
use_shared_target_dir
N="${1:-2000}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir edge-instructions
URL_PATH="/blog/hello-world/"

# N GETs of URL_PATH on one keep-alive connection to 127.0.0.1:$1, each checked for 200.
requests() {
  python3 - "$1" "$2" "$URL_PATH" <<'PY'
import http.client, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", path, headers={"User-Agent": "bench", "Accept": "*/*"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"answered {response.status}")
PY
}

# Instructions per request of N requests to port $1 of the callgrind-run server $2.
count() {
  local port=$1 pid=$2 out
  requests "$port" 200
  callgrind_control -z "$pid" > /dev/null 2>&1
  requests "$port" "$N"
  callgrind_control -d "series" "$pid" > /dev/null 2>&1
  out=$(ls -t "$W"/callgrind.out.*.* | head -1)
  callgrind_annotate "$out" 2> /dev/null | awk -v n="$N" '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "%.0f\n", $1 / n}'
  rm -f "$out"
}

# Start the server under callgrind with HTTP/1 server $1; sets PID, HTTP_PORT, UPSTREAM.
start_server() {
  printf '[ingress]\nhttp1 = "%s"\n[ingress.rate_limit]\nrequests_per_second = 100000000\n' "$1" > "$W/$1.toml"
  local ssh http
  ssh=$(free_port); http=$(free_port)
  rm -rf "$W/data"
  WHISPERCMS_LOG="${WHISPERCMS_LOG:-warn}" valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out.%p" "$BIN" \
    --config "$W/$1.toml" demo --data-dir "$W/data" --ssh-listen "127.0.0.1:$ssh" \
    --http-listen "127.0.0.1:$http" > "$W/$1.out" 2> "$W/$1.log" &
  PID=$!
  echo "$PID" > "$W/server.pid"
  for _ in $(seq 600); do grep -q "site upstream" "$W/$1.out" 2>/dev/null && break; sleep 0.2; done
  grep -q "site upstream" "$W/$1.out" || { echo "the server did not start under valgrind" >&2; exit 1; }
  HTTP_PORT=$http
  UPSTREAM=$(sed -nE 's/^site upstream .* on 127.0.0.1:(.*)$/\1/p' "$W/$1.out")
}
stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; }

start_server hyper
HYPER=$(count "$HTTP_PORT" "$PID")
DIRECT=$(count "$UPSTREAM" "$PID")
stop_server
start_server pingora
PINGORA=$(count "$HTTP_PORT" "$PID")
stop_server

python3 - "$HYPER" "$PINGORA" "$DIRECT" <<'PY'
import sys
hyper, pingora, direct = map(int, sys.argv[1:])
print("instructions per request (callgrind, one keep-alive connection):")
print(f"  through the edge, hyper's HTTP/1 on Pingora (the default): {hyper:>7,}  {hyper / direct:.2f}x direct")
print(f"  through the edge, Pingora's own HTTP/1 session:            {pingora:>7,}  {pingora / direct:.2f}x direct")
print(f"  straight to Axum:                                          {direct:>7,}")
PY
