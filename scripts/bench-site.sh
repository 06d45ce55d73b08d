#!/usr/bin/env bash
# Benchmark of the site runtime on a generated 10,000-page site (release build, this machine):
#   (a) full index build, ms/page (beside Zola's published ~0.16 ms/page and Hugo's ~1 ms/page);
#   (b) one-page change: git push → page served, and the server-side publish time;
#   (c) requests/s and p99 for a cached page with wrk, beside nginx serving the same HTML bytes
#       from disk, in the same run;
#   (d) the server's resident memory with the site loaded;
#   (e) the cost of Cedar authorization for a push touching 1,000 paths.
# Needs: cargo, git, wrk, nginx, python3, curl (Debian packages are installed when missing).
# nginx runs as the current user on a high port with its own config; nothing else is touched.
# Usage: scripts/bench-site.sh [PAGES]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" wrk nginx-light python3 curl
use_shared_target_dir
PAGES="${1:-10000}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir site-bench
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main
now_ms() { date +%s%3N; }

echo "generating a $PAGES-page site…" >&2
python3 scripts/lib/gen_site.py "$W/stream" "$PAGES"
git init -q --bare "$W/data/repos/site.git"
git -C "$W/data/repos/site.git" fast-import --quiet < "$W/stream"
git -C "$W/data/repos/site.git" symbolic-ref HEAD refs/heads/main
git -C "$W/data/repos/site.git" repack -adq

echo "== (a) full index build" >&2
BUILD=$(WHISPERCMS_LOG=warn "$BIN" reindex --data-dir "$W/data" | head -1)
echo "$BUILD" >&2
FULL_MS=$(echo "$BUILD" | sed -E 's/.* in ([0-9]+) ms.*/\1/')
PER_PAGE=$(echo "$BUILD" | sed -E 's/.*\(([0-9.]+) ms\/document\).*/\1/')

echo "== start the server" >&2
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C bench
# No rate limit at the edge for the benchmark (wrk is one client address).
printf '[ingress.rate_limit]\nrequests_per_second = 100000000\n' > "$W/settings.toml"
WHISPERCMS_LOG=warn "$BIN" --config "$W/settings.toml" demo --empty --data-dir "$W/data" --ssh-listen "127.0.0.1:$SSH_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" --authorized-keys "$W/client.pub" > "$W/server.out" 2> "$W/server.log" &
echo $! > "$W/server.pid"
for _ in $(seq 200); do grep -q "http listening" "$W/server.out" 2>/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null

# The seconds a request of each generated page FROM..TO takes (one curl at a time).
page_times() {
  for p in $(seq "$1" "$2"); do
    curl -s -o /dev/null -w '%{time_total} ' "http://127.0.0.1:$HTTP_PORT/s$((p % 50))/page-$p/"
  done
}

# Twenty pages read before the pushes below: after a one-page push they should still be cached.
page_times 200 219 > /dev/null

echo "== (b) one-page change: push → served" >&2
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
git clone -q "ssh://git@127.0.0.1:$SSH_PORT/site.git" "$W/clone"
PUBLISH=() ; SERVED=() ; AFTER=()
for i in 1 2 3 4 5; do
  printf '+++\ntitle = "Page 7"\ndate = 2024-08-08\n+++\nEdited %s.\n' "$i" > "$W/clone/content/s7/page-7.md"
  git -C "$W/clone" -c user.name=B -c user.email=b@e commit -qam "edit $i"
  t0=$(now_ms)
  git -C "$W/clone" push -q origin main 2> "$W/push.err"
  t_end=$(now_ms)
  until curl -sf "http://127.0.0.1:$HTTP_PORT/s7/page-7/" | grep -q "Edited $i."; do sleep 0.001; done
  t1=$(now_ms)
  PUBLISH+=("$(sed -nE 's/.*in ([0-9]+) ms.*/\1/p' "$W/push.err" | head -1)")
  SERVED+=("$((t1 - t0))")
  AFTER+=("$((t1 - t_end))")
done
echo "publish (server-side, incremental index + theme + swap): ${PUBLISH[*]} ms" >&2
echo "git push (ssh, pack, checks, publish) → new page served: ${SERVED[*]} ms" >&2
echo "end of git push → new page served (one curl): ${AFTER[*]} ms" >&2

echo "== (g) after a one-page push: pages read before it (kept in the cache?)" >&2
read -r -a KEPT <<< "$(page_times 200 219)"
echo "pages read before the push (s): ${KEPT[*]}" >&2

echo "== (f) first request of a page: highlighting, shortcodes and template, uncached" >&2
read -r -a FIRST <<< "$(page_times 100 139)"
echo "first requests (s): ${FIRST[*]}" >&2

echo "== (c) cached page: whispercms vs nginx (same bytes)" >&2
URL_PATH="/s3/page-3/"
mkdir -p "$W/www/s3/page-3"
curl -sf "http://127.0.0.1:$HTTP_PORT$URL_PATH" > "$W/www/s3/page-3/index.html"
NGINX_PORT=$(free_port)
start_nginx "$W/www" "$NGINX_PORT"
require_200 "http://127.0.0.1:$NGINX_PORT$URL_PATH"
require_200 "http://127.0.0.1:$HTTP_PORT$URL_PATH"
run_wrk() { wrk -t2 -c32 -d8s --latency "$1" 2>&1; }
curl -sf "http://127.0.0.1:$HTTP_PORT$URL_PATH" >/dev/null
OURS=$(run_wrk "http://127.0.0.1:$HTTP_PORT$URL_PATH")
NGINX=$(run_wrk "http://127.0.0.1:$NGINX_PORT$URL_PATH")
rps() { echo "$1" | awk '/Requests\/sec/ {print $2}'; }
p99() { echo "$1" | awk '$1 == "99%" {print $2}'; }
echo "$OURS" | grep -E "Requests/sec|99%" >&2
echo "$NGINX" | grep -E "Requests/sec|99%" >&2

echo "== (e) Cedar authorization of a push touching 1,000 paths" >&2
AUTHZ=$(cargo run --release --quiet -p hooks --example authz_cost -- 1000)
echo "$AUTHZ" >&2

echo "== (d) memory" >&2
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$W/server.pid")/status")

python3 - "$PAGES" "$FULL_MS" "$PER_PAGE" "${PUBLISH[*]}" "${SERVED[*]}" "${AFTER[*]}" "$(rps "$OURS")" "$(p99 "$OURS")" "$(rps "$NGINX")" "$(p99 "$NGINX")" "$RSS_KB" "${FIRST[*]}" "${KEPT[*]}" <<'PY'
import sys, statistics
pages, full_ms, per_page, publish, served, after, ours_rps, ours_p99, nginx_rps, nginx_p99, rss, first, kept = sys.argv[1:]
kept = sorted(float(x) * 1000 for x in kept.split())
first = sorted(float(x) * 1000 for x in first.split())
publish = [int(x) for x in publish.split()]
served = [int(x) for x in served.split()]
after = [int(x) for x in after.split()]
print(f"\nresults for a {pages}-page site")
print(f"(a) full index build: {full_ms} ms = {per_page} ms/page  (Zola ~0.16 ms/page, Hugo ~1 ms/page, published)")
print(f"(b) one-page push: publish (index + theme + swap) median {statistics.median(publish)} ms; "
      f"whole git push until the page is served median {statistics.median(served)} ms; "
      f"end of the push until served median {statistics.median(after)} ms (the first request after the push)")
ratio = float(ours_rps) / float(nginx_rps)
print(f"(c) cached page: whispercms {ours_rps} req/s, p99 {ours_p99}; nginx {nginx_rps} req/s, p99 {nginx_p99}; ratio {ratio:.2f}")
print(f"(d) server RSS with the site loaded: {int(rss) / 1024:.0f} MiB")
print(f"(f) first request of a page (every page has a highlighted code block, every fourth a shortcode): "
      f"median {statistics.median(first):.1f} ms, p90 {first[int(len(first) * 0.9)]:.1f} ms over {len(first)} pages (curl, one at a time)")
print(f"(g) after five one-page pushes, pages read before them: median {statistics.median(kept):.2f} ms, "
      f"max {kept[-1]:.2f} ms over {len(kept)} pages (kept in the cache when below the first-request figure)")
PY
echo "(e) $AUTHZ"
