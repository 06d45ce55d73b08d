#!/usr/bin/env bash
# Benchmark of the edge (release build, this machine): wrk on loopback, in one run, against the
# same cached page served (1) through the Pingora edge (router called in-process, the default),
# (2) through the edge proxying over loopback (`upstream = "loopback"`), (3) straight by the Axum
# site behind it, (4) by nginx from disk (the same bytes). Prints req/s, p99 and the server CPU time per
# request of each, and the ratios
# (goals: the edge costs < 20% of direct Axum's throughput; the whole stack stays ≥ 0.5× nginx).
# No access logs, as for nginx here (`access_log off`) and direct Axum (which writes none): the
# server logs at `warn` unless WHISPERCMS_LOG says otherwise (`info` adds the edge's access log).
# Needs: cargo, git, wrk, nginx, curl (Debian packages are installed when missing).
# The edge and direct Axum are measured in alternating rounds and each reported by its median
# round (this machine's speed drifts by ±20% within a minute); the edge's cost also as the median
# of the ratios of adjacent rounds.
# Usage: scripts/bench-edge.sh [SECONDS] [ROUNDS]   (default 5 seconds per run, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" wrk nginx-light curl python3
use_shared_target_dir
SECS="${1:-5}"
ROUNDS="${2:-3}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir edge-bench

# No rate limit for the benchmark (wrk is one client address).
start_server() { # $1: name, $2: upstream mode, $3: HTTP/1 server
  printf '[ingress]\nupstream = "%s"\nhttp1 = "%s"\n[ingress.rate_limit]\nrequests_per_second = 100000000\n' \
    "$2" "$3" > "$W/$1.toml"
  local ssh http
  ssh=$(free_port); http=$(free_port)
  WHISPERCMS_LOG="${WHISPERCMS_LOG:-warn}" "$BIN" --config "$W/$1.toml" demo --data-dir "$W/data" --ssh-listen "127.0.0.1:$ssh" \
    --http-listen "127.0.0.1:$http" > "$W/$1.out" 2> "$W/$1.log" &
  echo $! > "$W/server.pid"
  for _ in $(seq 200); do grep -q "site upstream" "$W/$1.out" 2>/dev/null && break; sleep 0.05; done
  HTTP_PORT=$http
  UPSTREAM=$(sed -nE 's/^site upstream .* on (.*)$/\1/p' "$W/$1.out")
}
stop_server() { kill "$(cat "$W/server.pid")"; wait "$(cat "$W/server.pid")" 2>/dev/null || true; }
URL_PATH="/blog/hello-world/"
# CPU seconds (user + system) used so far by the processes $@ and their threads.
cpu_of() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {print s / hz}'; }
# wrk against $1; appends "CPU <µs per request>" of the processes $2… to wrk's report. The server's
# CPU per request is the steadier figure: wrk takes one of the two cores whatever it measures.
run_wrk() {
  local url=$1; shift
  local before out after
  before=$(cpu_of "$@")
  out=$(wrk -t2 -c32 -d"${SECS}s" --latency "$url" 2>&1)
  after=$(cpu_of "$@")
  echo "$out"
  echo "$out" | awk -v b="$before" -v a="$after" -v secs="$SECS" '/^Requests\/sec/ {printf "CPU %.1f\n", (a - b) * 1e6 / ($2 * secs)}'
}

start_server loopback loopback hyper
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
LOOPBACK=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH" "$(cat "$W/server.pid")")
stop_server
start_server pingora-http1 in-process pingora
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
PINGORA=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH" "$(cat "$W/server.pid")")
stop_server
start_server inprocess in-process hyper
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
require_200 "http://$UPSTREAM$URL_PATH"
mkdir -p "$W/www/blog/hello-world" "$W/nginx"
curl -sf "http://$UPSTREAM$URL_PATH" > "$W/www/blog/hello-world/index.html"
NGINX_PORT=$(free_port)
start_nginx "$W/www" "$NGINX_PORT"
require_200 "http://127.0.0.1:$NGINX_PORT$URL_PATH"
# The report of the median round (by req/s) of those given.
median_run() { # $@: reports
  local n=$# i=0 sorted
  sorted=$(for r in "$@"; do echo "$(echo "$r" | awk '/^Requests\/sec/ {print $2}') $i"; i=$((i + 1)); done | sort -n)
  local pick
  pick=$(echo "$sorted" | sed -n "$(((n + 1) / 2))p" | awk '{print $2}')
  local args=("$@")
  echo "${args[$pick]}"
}
EDGES=() DIRECTS=()
for round in $(seq "$ROUNDS"); do
  EDGES+=("$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH" "$(cat "$W/server.pid")")")
  DIRECTS+=("$(run_wrk "http://$UPSTREAM$URL_PATH" "$(cat "$W/server.pid")")")
  echo "round $round: edge $(echo "${EDGES[-1]}" | awk '/^Requests\/sec/ {print $2}') req/s," \
    "direct $(echo "${DIRECTS[-1]}" | awk '/^Requests\/sec/ {print $2}') req/s" >&2
done
EDGE=$(median_run "${EDGES[@]}")
DIRECT=$(median_run "${DIRECTS[@]}")
# Each edge round and the direct round right after it ran at nearly the same machine speed: the
# median of their ratios is the steadier figure of the edge's cost.
PAIR_RATIOS=()
for i in "${!EDGES[@]}"; do
  PAIR_RATIOS+=("$(echo "${EDGES[$i]}" | awk '/^Requests\/sec/ {print $2}')/$(echo "${DIRECTS[$i]}" | awk '/^Requests\/sec/ {print $2}')")
done
NGINX_MASTER=$(cat "$W/nginx.pid")
# shellcheck disable=SC2046 # one argument per process id: the master and its workers
NGINX=$(run_wrk "http://127.0.0.1:$NGINX_PORT$URL_PATH" "$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER"))
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
p99() { echo "$1" | awk '$1 == "99%" {print $2}'; }
cpu() { echo "$1" | awk '$1 == "CPU" {print $2}'; }
errors() { echo "$1" | awk '/Non-2xx|Socket errors/ {print}'; }
for name in EDGE PINGORA LOOPBACK DIRECT NGINX; do
  echo "$name: $(rps "${!name}") req/s, p99 $(p99 "${!name}"), server CPU $(cpu "${!name}") µs/request $(errors "${!name}")" >&2
done
args=()
for name in EDGE PINGORA LOOPBACK DIRECT NGINX; do args+=("$(rps "${!name}")" "$(p99 "${!name}")" "$(cpu "${!name}")"); done
python3 - "${PAIR_RATIOS[*]}" "${args[@]}" <<'PY'
import statistics, sys
pairs = [float(e) / float(d) for e, d in (p.split("/") for p in sys.argv[1].split())]
a = sys.argv[2:]
rows = [("through the edge (hyper's HTTP/1 on Pingora, the default)", a[0:3]),
        ("through the edge, Pingora's own HTTP/1 session (http1 = \"pingora\")", a[3:6]),
        ("through the edge proxying over loopback", a[6:9]),
        ("straight to Axum", a[9:12]),
        ("nginx, same bytes from disk", a[12:15])]
print()
for label, (rps, p99, cpu) in rows:
    print(f"{label + ':':72} {float(rps):>9,.0f} req/s, p99 {p99:>7}, server CPU {cpu:>6} µs/request")
e, pg, d, n = float(a[0]), float(a[3]), float(a[9]), float(a[12])
ec, pc, dc = float(a[2]), float(a[5]), float(a[11])
print(f"edge cost: {100 * (1 - e / d):.0f}% of direct throughput (goal < 20%), {ec / dc:.2f}x its CPU per request;"
      f" whole stack vs nginx: {e / n:.2f} (goal ≥ 0.5)")
print(f"edge cost, median of {len(pairs)} adjacent edge/direct rounds: {100 * (1 - statistics.median(pairs)):.0f}%"
      f" (rounds: {', '.join(f'{100 * (1 - r):.0f}%' for r in pairs)})")
print(f"with Pingora's HTTP/1 session instead: {100 * (1 - pg / d):.0f}% of direct throughput, {pc / dc:.2f}x its CPU")
PY
