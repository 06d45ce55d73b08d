#!/usr/bin/env bash
# Benchmark of the edge (release build, this machine): wrk on loopback, in one run, against the
# same cached page served (1) through the Pingora edge (router called in-process, the default),
# (2) through the edge proxying over loopback (`upstream = "loopback"`), (3) straight by the Axum
# site behind it, (4) by nginx from disk (the same bytes). Prints req/s and p99 of each and the ratios
# (goals: the edge costs < 20% of direct Axum's throughput; the whole stack stays ≥ 0.5× nginx).
# Needs: cargo, git, wrk, nginx, curl (Debian packages are installed when missing).
# Usage: scripts/bench-edge.sh [SECONDS]   (default 8 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" wrk nginx-light curl python3
use_shared_target_dir
SECS="${1:-8}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir edge-bench

# No rate limit for the benchmark (wrk is one client address).
start_server() { # $1: name, $2: upstream mode
  printf '[ingress]\nupstream = "%s"\n[ingress.rate_limit]\nrequests_per_second = 100000000\n' "$2" > "$W/$1.toml"
  local ssh http
  ssh=$(free_port); http=$(free_port)
  WHISPERCMS_LOG=warn "$BIN" --config "$W/$1.toml" demo --data-dir "$W/data" --ssh-listen "127.0.0.1:$ssh" \
    --http-listen "127.0.0.1:$http" > "$W/$1.out" 2> "$W/$1.log" &
  echo $! > "$W/server.pid"
  for _ in $(seq 200); do grep -q "site upstream" "$W/$1.out" 2>/dev/null && break; sleep 0.05; done
  HTTP_PORT=$http
  UPSTREAM=$(sed -nE 's/^site upstream .* on (.*)$/\1/p' "$W/$1.out")
}
stop_server() { kill "$(cat "$W/server.pid")"; wait "$(cat "$W/server.pid")" 2>/dev/null || true; }
URL_PATH="/blog/hello-world/"
run_wrk() { wrk -t2 -c32 -d"${SECS}s" --latency "$1" 2>&1; }

start_server loopback loopback
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
LOOPBACK=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH")
stop_server
start_server inprocess in-process
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
require_200 "http://$UPSTREAM$URL_PATH"
mkdir -p "$W/www/blog/hello-world" "$W/nginx"
curl -sf "http://$UPSTREAM$URL_PATH" > "$W/www/blog/hello-world/index.html"
NGINX_PORT=$(free_port)
start_nginx "$W/www" "$NGINX_PORT"
require_200 "http://127.0.0.1:$NGINX_PORT$URL_PATH"
EDGE=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH")
DIRECT=$(run_wrk "http://$UPSTREAM$URL_PATH")
NGINX=$(run_wrk "http://127.0.0.1:$NGINX_PORT$URL_PATH")
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
p99() { echo "$1" | awk '$1 == "99%" {print $2}'; }
errors() { echo "$1" | awk '/Non-2xx|Socket errors/ {print}'; }
for name in EDGE LOOPBACK DIRECT NGINX; do
  echo "$name: $(rps "${!name}") req/s, p99 $(p99 "${!name}") $(errors "${!name}")" >&2
done
python3 - "$(rps "$EDGE")" "$(p99 "$EDGE")" "$(rps "$LOOPBACK")" "$(p99 "$LOOPBACK")" "$(rps "$DIRECT")" "$(p99 "$DIRECT")" "$(rps "$NGINX")" "$(p99 "$NGINX")" <<'PY'
import sys
e, ep, l, lp, d, dp, n, np_ = sys.argv[1:]
e, l, d, n = float(e), float(l), float(d), float(n)
print(f"\nthrough the edge (Pingora, router in-process): {e:,.0f} req/s, p99 {ep}")
print(f"through the edge proxying over loopback:  {l:,.0f} req/s, p99 {lp}")
print(f"straight to Axum:                  {d:,.0f} req/s, p99 {dp}")
print(f"nginx, same bytes from disk:       {n:,.0f} req/s, p99 {np_}")
print(f"edge cost: {100 * (1 - e / d):.0f}% of direct throughput (goal < 20%); whole stack vs nginx: {e / n:.2f} (goal ≥ 0.5)")
PY
