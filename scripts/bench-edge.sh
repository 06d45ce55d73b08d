#!/usr/bin/env bash
# Benchmark of the edge (release build, this machine): wrk on loopback, in one run, against the
# same cached page served (1) through the Pingora edge, (2) straight by the Axum site behind it,
# (3) by nginx from disk (the same bytes). Prints req/s and p99 of each and the ratios
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

W=$(mktemp -d /tmp/whispercms-edge-bench.XXXXXX)
cleanup() {
  [ -f "$W/server.pid" ] && kill "$(cat "$W/server.pid")" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# No rate limit for the benchmark (wrk is one client address).
printf '[ingress.rate_limit]\nrequests_per_second = 100000000\n' > "$W/settings.toml"
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
WHISPERCMS_LOG=warn "$BIN" --config "$W/settings.toml" demo --data-dir "$W/data" --ssh-listen "127.0.0.1:$SSH_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" > "$W/server.out" 2> "$W/server.log" &
echo $! > "$W/server.pid"
for _ in $(seq 200); do grep -q "site upstream" "$W/server.out" 2>/dev/null && break; sleep 0.05; done
UPSTREAM=$(sed -nE 's/^site upstream .* on (.*)$/\1/p' "$W/server.out")
URL_PATH="/blog/hello-world/"
curl -sf "http://127.0.0.1:$HTTP_PORT$URL_PATH" > /dev/null

mkdir -p "$W/www/blog/hello-world" "$W/nginx"
curl -sf "http://$UPSTREAM$URL_PATH" > "$W/www/blog/hello-world/index.html"
NGINX_PORT=$(free_port)
cat > "$W/nginx.conf" <<CFG
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $W/www; etag on; }
}
CFG
nginx -c "$W/nginx.conf"
sleep 0.3

run_wrk() { wrk -t2 -c32 -d"${SECS}s" --latency "$1" 2>&1; }
EDGE=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH")
DIRECT=$(run_wrk "http://$UPSTREAM$URL_PATH")
NGINX=$(run_wrk "http://127.0.0.1:$NGINX_PORT$URL_PATH")
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
p99() { echo "$1" | awk '$1 == "99%" {print $2}'; }
errors() { echo "$1" | awk '/Non-2xx|Socket errors/ {print}'; }
for name in EDGE DIRECT NGINX; do
  echo "$name: $(rps "${!name}") req/s, p99 $(p99 "${!name}") $(errors "${!name}")" >&2
done
python3 - "$(rps "$EDGE")" "$(p99 "$EDGE")" "$(rps "$DIRECT")" "$(p99 "$DIRECT")" "$(rps "$NGINX")" "$(p99 "$NGINX")" <<'PY'
import sys
e, ep, d, dp, n, np_ = sys.argv[1:]
e, d, n = float(e), float(d), float(n)
print(f"\nthrough the edge (Pingora → Axum): {e:,.0f} req/s, p99 {ep}")
print(f"straight to Axum:                  {d:,.0f} req/s, p99 {dp}")
print(f"nginx, same bytes from disk:       {n:,.0f} req/s, p99 {np_}")
print(f"edge cost: {100 * (1 - e / d):.0f}% of direct throughput (goal < 20%); whole stack vs nginx: {e / n:.2f} (goal ≥ 0.5)")
PY
