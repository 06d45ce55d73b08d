#!/usr/bin/env bash
# The site runtime at scale (release build, this machine): a generated site of PAGES pages
# (default 100,000: 1,000 sections of 100 pages of ~4 KB Markdown, 5 tags each out of 200),
#   (a) generation, and the same content built by Hugo (Debian's `hugo`) for reference;
#   (b) the initial push of the whole site, beside `git push` of the same commit to OpenSSH + git,
#       and the server's peak memory by its end;
#   (c) a full reindex (`whispercms-server reindex`);
#   (d) the server's resident memory with the site loaded;
#   (e) one-page push → page served, median of 5, and the server's publish time;
#   (f) after each publish, the first (uncached) request of each kind of page: a page, a section,
#       a section's second page, a tag, the tag list, the home page, a search, the feed, the
#       sitemap — p50/p99 over distinct URLs (one curl at a time).
# Needs: cargo, git, openssh-server, hugo, python3, curl (Debian packages are installed when
# missing). sshd runs as the current user on 127.0.0.1 with its own config; nothing else is
# touched. Usage: scripts/bench-scale.sh [PAGES]   (default 100000; about 10 minutes; BENCH_KEEP=1
# keeps the work directory: data dir, site and logs)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" openssh-server hugo python3 curl
use_shared_target_dir
PAGES="${1:-100000}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir scale-bench
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main
now_ms() { date +%s%3N; }
SECTIONS=$(( PAGES / 100 > 0 ? PAGES / 100 : 1 ))

echo "== (a) generating a $PAGES-page site" >&2
t0=$(now_ms)
python3 scripts/lib/gen_scale.py "$W/site" "$PAGES"
git -C "$W" init -q site
git -C "$W/site" add -A
git -C "$W/site" -c user.name=B -c user.email=b@e commit -qm "a large site"
GEN_MS=$(( $(now_ms) - t0 ))
echo "generated and committed in $GEN_MS ms; $(du -sh "$W/site/content" | cut -f1) of content" >&2
t0=$(now_ms)
hugo --quiet -s "$W/site-hugo" -d "$W/hugo-out" > "$W/hugo.log" 2>&1 || { cat "$W/hugo.log" >&2; exit 1; }
HUGO_MS=$(( $(now_ms) - t0 ))
HUGO_VERSION=$(hugo version | cut -d' ' -f2)
echo "hugo $HUGO_VERSION built it in $HUGO_MS ms ($(find "$W/hugo-out" -name '*.html' | wc -l) HTML files)" >&2

echo "== (b) initial push: whispercms-server and OpenSSH + git" >&2
ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C bench
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
start_sshd "$W/client.pub"
git init -q --bare "$W/sshd.git"
t0=$(now_ms)
git -C "$W/site" push -q "ssh://$(id -un)@127.0.0.1:$SSHD_PORT$W/sshd.git" main
SSHD_PUSH_MS=$(( $(now_ms) - t0 ))
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
printf '[ingress.rate_limit]\nrequests_per_second = 100000000\n' > "$W/settings.toml"
start_server() {
  WHISPERCMS_LOG=info "$BIN" --config "$W/settings.toml" demo --empty --data-dir "$W/data" --ssh-listen "127.0.0.1:$SSH_PORT" \
    --http-listen "127.0.0.1:$HTTP_PORT" --authorized-keys "$W/client.pub" > "$W/server.out" 2>> "$W/server.log" &
  echo $! > "$W/server.pid"
  for _ in $(seq 600); do grep -q "http listening" "$W/server.out" 2>/dev/null && break; sleep 0.05; done
  # Ready once a site is published (an empty repository has none to serve).
  if [ "${1:-}" != empty ]; then until curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" > /dev/null; do sleep 0.05; done; fi
}
stop_server() { kill "$(cat "$W/server.pid")"; wait "$(cat "$W/server.pid")" 2>/dev/null || true; }
start_server empty
URL="ssh://git@127.0.0.1:$SSH_PORT/site.git"
t0=$(now_ms)
git -C "$W/site" push "$URL" main 2> "$W/push.err"
OURS_PUSH_MS=$(( $(now_ms) - t0 ))
INITIAL_PUBLISH_MS=$(sed -nE 's/.*published main .* in ([0-9]+) ms.*/\1/p' "$W/push.err" | head -1)
# The server's own account of the push before publishing: the pack in (received, indexed,
# connectivity checked) and the checks (authorization and validation of every file).
RECEIVED_MS=$(sed -nE 's/.*pack received .*ms=([0-9]+).*/\1/p' "$W/server.log" | head -1)
CHECKED_MS=$(sed -nE 's/.*push checked .*ms=([0-9]+).*/\1/p' "$W/server.log" | head -1)
# The server's peak resident memory so far: receiving, checking and indexing the whole site.
PUSH_PEAK_KB=$(awk '/VmHWM/ {print $2}' "/proc/$(cat "$W/server.pid")/status")
echo "push: ours $OURS_PUSH_MS ms (publish $INITIAL_PUBLISH_MS ms of it); OpenSSH + git $SSHD_PUSH_MS ms" >&2

echo "== (c) full reindex" >&2
stop_server
REINDEX=$(WHISPERCMS_LOG=warn "$BIN" reindex --data-dir "$W/data" | head -1)
echo "$REINDEX" >&2
REINDEX_MS=$(echo "$REINDEX" | sed -E 's/.* in ([0-9]+) ms.*/\1/')
start_server

echo "== (d) memory with the site loaded" >&2
curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/"
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$W/server.pid")/status")

# One uncached request of each kind of page; the kinds' URLs advance with the round so that no
# URL is asked twice. Prints "kind seconds" lines.
first_requests() {
  local r=$1 base="http://127.0.0.1:$HTTP_PORT"
  for k in $(seq 0 9); do
    local n=$(( (r * 10 + k) * 37 % PAGES )) s=$(( (r * 10 + k) * 7 % SECTIONS )) t=$(( (r * 10 + k) * 3 % 200 ))
    for pair in "page /s$(( n % SECTIONS ))/page-$n/" "section /s$s/" "section-page-2 /s$s/page/2/" \
      "tag /tags/tag-$t/" "search /search?q=$(( r * 10 + k ))+site"; do
      set -- $pair
      echo "$1 $(curl -s -o /dev/null -w '%{time_total}' "$base$2")"
    done
  done
  for pair in "home /" "tags /tags/" "feed /rss.xml" "sitemap /sitemap.xml"; do
    set -- $pair
    echo "$1 $(curl -s -o /dev/null -w '%{time_total}' "$base$2")"
  done
}

echo "== (e) one-page pushes → served, (f) first requests after each publish" >&2
git clone -q "$URL" "$W/clone"
: > "$W/first.txt"
PUBLISH=(); SERVED=()
for i in 1 2 3 4 5; do
  printf '+++\ntitle = "Page 7"\ndate = 2024-08-08\ntags = ["tag-1"]\n+++\nEdited %s.\n' "$i" > "$W/clone/content/s7/page-7.md"
  git -C "$W/clone" -c user.name=B -c user.email=b@e commit -qam "edit $i"
  t0=$(now_ms)
  git -C "$W/clone" push -q origin main 2> "$W/push.err"
  until curl -sf "http://127.0.0.1:$HTTP_PORT/s7/page-7/" | grep -q "Edited $i."; do sleep 0.001; done
  SERVED+=("$(( $(now_ms) - t0 ))")
  PUBLISH+=("$(sed -nE 's/.*in ([0-9]+) ms.*/\1/p' "$W/push.err" | head -1)")
  first_requests "$i" >> "$W/first.txt"
done
RSS_AFTER_KB=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$W/server.pid")/status")
# Of which the server's own memory, and the index file's pages it maps (page cache, shared).
ANON_AFTER_KB=$(awk '/RssAnon/ {print $2}' "/proc/$(cat "$W/server.pid")/status")
FILE_AFTER_KB=$(awk '/RssFile/ {print $2}' "/proc/$(cat "$W/server.pid")/status")
stop_server

python3 - "$PAGES" "$GEN_MS" "$HUGO_VERSION" "$HUGO_MS" "$OURS_PUSH_MS" "$INITIAL_PUBLISH_MS" "$SSHD_PUSH_MS" \
  "$REINDEX_MS" "$RSS_KB" "$RSS_AFTER_KB" "${PUBLISH[*]}" "${SERVED[*]}" "$W/first.txt" "${RECEIVED_MS:-0}" \
  "${CHECKED_MS:-0}" "$ANON_AFTER_KB" "$FILE_AFTER_KB" "$PUSH_PEAK_KB" <<'PY'
import collections, statistics, sys
(pages, gen, hugo_version, hugo, ours_push, initial_publish, sshd_push, reindex, rss, rss_after,
 publish, served, first, received, checked, anon_after, file_after, push_peak) = sys.argv[1:]
pages = int(pages)
publish = [int(x) for x in publish.split()]
served = [int(x) for x in served.split()]
print(f"\nresults for a {pages:,}-page site")
print(f"(a) generated and committed in {int(gen) / 1000:.1f} s; Hugo {hugo_version} builds it in {int(hugo) / 1000:.1f} s "
      f"({int(hugo) / pages:.3f} ms/page)")
print(f"(b) initial push: ours {int(ours_push) / 1000:.1f} s (of which the publish {int(initial_publish) / 1000:.1f} s); "
      f"OpenSSH + git {int(sshd_push) / 1000:.1f} s; ours before publishing "
      f"{(int(ours_push) - int(initial_publish)) / pages:.3f} ms/page")
print(f"    server side before publishing: pack received in {int(received) / 1000:.1f} s; "
      f"checks (authorization, validation) {int(checked) / 1000:.1f} s = {int(checked) / pages:.3f} ms/page; "
      f"goal for the whole push: git's + the full reindex = {(int(sshd_push) + int(reindex)) / 1000:.1f} s")
print(f"    server peak RSS by the end of the initial push: {int(push_peak) / 1024:.0f} MiB")
print(f"(c) full reindex: {int(reindex) / 1000:.1f} s = {int(reindex) / pages:.3f} ms/page")
print(f"(d) server RSS with the site loaded: {int(rss) / 1024:.0f} MiB; after the pushes and requests below: "
      f"{int(rss_after) / 1024:.0f} MiB (anonymous {int(anon_after) / 1024:.0f} MiB, "
      f"mapped files {int(file_after) / 1024:.0f} MiB: the index's pages, page cache)")
print(f"(e) one-page push: publish median {statistics.median(publish)} ms ({publish}); "
      f"push → served median {statistics.median(served)} ms")
by_kind = collections.defaultdict(list)
for line in open(first):
    kind, seconds = line.split()
    by_kind[kind].append(float(seconds) * 1000)
print("(f) first request after a publish (uncached), per kind of page:")
for kind, times in by_kind.items():
    times.sort()
    p99 = times[min(len(times) - 1, int(round(len(times) * 0.99)) - 1)]
    print(f"    {kind:<16} p50 {statistics.median(times):8.1f} ms   p99 {p99:8.1f} ms   max {times[-1]:8.1f} ms   ({len(times)} requests)")
PY
