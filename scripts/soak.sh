#!/usr/bin/env bash
# Soak: the demo server (release build, starter site) under everything at once for MINUTES
# (default 30):
#   - two publishers pushing a page each about every second, one push in five a page the push
#     checks refuse (a date that is not one); every accepted push must be served (its page, with
#     its text, within 10 s);
#   - an editor pushing to `main` about every two seconds, which the role matrix refuses;
#   - a reader fetching every two seconds and cloning afresh every fifteen;
#   - wrk on the site (home, a post, the tag list, a search) the whole time.
# At the end: no error other than the expected refusals (and pushes that lost a race to another
# push and were retried), every accepted push served, `git fsck --strict` clean, and the slope of
# the server's memory and open file descriptors over the run (sampled every 10 s, the first two
# minutes left out as warm-up), which must be flat.
# Needs: cargo, git, wrk, curl, python3 (Debian packages are installed when missing).
# Usage: scripts/soak.sh [MINUTES]   (BENCH_KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" wrk curl python3
use_shared_target_dir
MINUTES="${1:-30}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir soak
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0=user.name GIT_CONFIG_VALUE_0=Soak GIT_CONFIG_KEY_1=user.email GIT_CONFIG_VALUE_1=soak@example.org
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
BASE="http://127.0.0.1:$HTTP_PORT"
URL="ssh://git@127.0.0.1:$SSH_PORT/site.git"
# No rate limit: wrk is one client address.
printf '[ingress.rate_limit]\nrequests_per_second = 100000000\n' > "$W/settings.toml"
"$BIN" --config "$W/settings.toml" demo --data-dir "$W/data" --ssh-listen "127.0.0.1:$SSH_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" > "$W/server.out" 2> "$W/server.log" &
echo $! > "$W/server.pid"
PID=$(cat "$W/server.pid")
for _ in $(seq 600); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 0.1; done
curl -sf -o /dev/null "$BASE/readyz" || { echo "the server did not start" >&2; tail "$W/server.log" >&2; exit 1; }

ssh_as() { echo "ssh -F /dev/null -i $W/$1 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"; }
git_as() { local who=$1; shift; GIT_SSH_COMMAND="$(ssh_as "$who")" git "$@"; }
cp "$W/data/keys/demo_ed25519" "$W/admin"
for who in pub1 pub2 ed1 reader; do ssh-keygen -q -t ed25519 -N "" -f "$W/$who" -C "$who"; done

echo "== the team: two publishers, an editor, a reader" >&2
git_as admin clone -q "$URL" "$W/admin-clone"
for pair in pub1:publisher pub2:publisher ed1:editor reader:reader; do
  who=${pair%%:*}; role=${pair##*:}
  printf '\n[[user]]\nid = "%s"\nroles = ["%s"]\nkeys = ["%s"]\n' "$who" "$role" "$(cat "$W/$who.pub")" \
    >> "$W/admin-clone/access/users.toml"
done
git -C "$W/admin-clone" commit -qam "the soak team"
git_as admin -C "$W/admin-clone" push -q origin main
for who in pub1 pub2 ed1 reader; do git_as "$who" clone -q "$URL" "$W/clone-$who"; done

END=$(( $(date +%s) + MINUTES * 60 ))
# Each loop writes one line per attempt to $W/<name>.log: "<outcome> <detail>".
publisher() {
  local who=$1 dir="$W/clone-$1" n=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$(( n + 1 ))
    git_as "$who" -C "$dir" pull -q --rebase origin main > /dev/null 2>&1 || git -C "$dir" rebase --abort > /dev/null 2>&1 || true
    local page="content/soak/$who-$(( n % 20 )).md" marker="soak $who $n"
    mkdir -p "$dir/content/soak"
    local bad=$(( n % 5 == 0 ))
    if [ "$bad" = 1 ]; then
      printf '+++\ntitle = "%s"\ndate = "not a date"\n+++\n%s\n' "$marker" "$marker" > "$dir/$page"
    else
      printf '+++\ntitle = "%s"\ndate = 2026-12-01\ntags = ["soak"]\n+++\n%s.\n' "$marker" "$marker" > "$dir/$page"
    fi
    git -C "$dir" add -A && git -C "$dir" commit -qm "$marker"
    local out
    if out=$(git_as "$who" -C "$dir" push origin main 2>&1); then
      if [ "$bad" = 1 ]; then echo "unexpected-accept $marker"; continue; fi
      local url="$BASE/soak/$who-$(( n % 20 ))/" served=0
      for _ in $(seq 100); do
        curl -s "$url" | grep -q "$marker" && { served=1; break; }
        sleep 0.1
      done
      if [ "$served" = 1 ]; then echo "accepted-served $marker"; else echo "accepted-not-served $marker"; fi
    else
      git -C "$dir" reset -q --hard HEAD~1
      if grep -q "fetch first\|non-fast-forward\|it moved during this push" <<< "$out"; then echo "raced $marker"
      elif [ "$bad" = 1 ] && grep -q "remote: .*date" <<< "$out"; then echo "refused-as-expected $marker"
      else echo "unexpected-refusal $marker: $(tr '\n' ' ' <<< "$out")"; fi
    fi
    sleep 0.$(( RANDOM % 10 ))
  done > "$W/$who.log"
}
editor() {
  local dir="$W/clone-ed1" n=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$(( n + 1 ))
    git_as ed1 -C "$dir" pull -q --rebase origin main > /dev/null 2>&1 || git -C "$dir" rebase --abort > /dev/null 2>&1 || true
    mkdir -p "$dir/content/soak"
    printf '+++\ntitle = "editor %d"\n+++\nNot on main.\n' "$n" > "$dir/content/soak/editor.md"
    git -C "$dir" add -A && git -C "$dir" commit -qm "editor $n"
    local out
    if out=$(git_as ed1 -C "$dir" push origin main 2>&1); then echo "unexpected-accept editor $n"
    elif grep -q "denied: ed1 (editor)" <<< "$out"; then echo "refused-as-expected editor $n"
    elif grep -q "fetch first\|non-fast-forward\|it moved during this push" <<< "$out"; then echo "raced editor $n"
    else echo "unexpected-refusal editor $n: $(tr '\n' ' ' <<< "$out")"; fi
    git -C "$dir" reset -q --hard HEAD~1
    sleep 2
  done > "$W/ed1.log"
}
reader() {
  local n=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$(( n + 1 ))
    if git_as reader -C "$W/clone-reader" fetch -q origin 2> "$W/reader.err"; then echo "fetched $n"
    else echo "unexpected-fetch-failure $n: $(tr '\n' ' ' < "$W/reader.err")"; fi
    if [ $(( n % 8 )) = 0 ]; then
      rm -rf "$W/fresh"
      if git_as reader clone -q "$URL" "$W/fresh" 2> "$W/reader.err"; then echo "cloned $n"
      else echo "unexpected-clone-failure $n: $(tr '\n' ' ' < "$W/reader.err")"; fi
    fi
    sleep 2
  done > "$W/reader.log"
}
sampler() {
  local t0; t0=$(date +%s)
  echo "seconds rss_kib anon_kib fds threads" > "$W/samples.txt"
  while [ "$(date +%s)" -lt "$END" ]; do
    echo "$(( $(date +%s) - t0 )) $(awk '/^VmRSS/ {print $2}' "/proc/$PID/status") $(awk '/^RssAnon/ {print $2}' "/proc/$PID/status") $(ls "/proc/$PID/fd" | wc -l) $(awk '/^Threads/ {print $2}' "/proc/$PID/status")" >> "$W/samples.txt"
    sleep 10
  done
}
cat > "$W/paths.lua" <<'EOF'
-- The site's kinds of page in turn; the first failures (status and the body's start) are kept
-- and printed at the end, so a non-2xx says what it was.
local paths = {"/", "/blog/hello-world/", "/tags/", "/search?q=offline", "/blog/", "/rss.xml"}
local i = 0
local threads = {}
failures = ""
failed = 0
function setup(thread) table.insert(threads, thread) end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  if status >= 400 then
    failed = failed + 1
    if failed <= 10 then failures = failures .. status .. " " .. string.sub(body or "", 1, 120):gsub("%s+", " ") .. "\n" end
  end
end
done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    local f = t:get("failures")
    if f and #f > 0 then io.write("failures:\n" .. f) end
  end
end
EOF
echo "== $MINUTES minutes of pushes, fetches, clones and wrk, all at once" >&2
pids=()
publisher pub1 & pids+=($!)
publisher pub2 & pids+=($!)
editor & pids+=($!)
reader & pids+=($!)
sampler & pids+=($!)
wrk -t1 -c8 -d"${MINUTES}m" --latency --timeout 10s -s "$W/paths.lua" "$BASE" > "$W/wrk.txt" 2>&1 & pids+=($!)
wait "${pids[@]}"  # not the server, also a child of this shell

echo "== checks" >&2
fsck_ok=yes
git --git-dir "$W/data/repos/site.git" fsck --strict --no-dangling > "$W/fsck.txt" 2>&1 || fsck_ok=no
kill "$PID" 2>/dev/null || true
python3 - "$W" "$MINUTES" "$fsck_ok" <<'EOF'
import collections, re, sys
w, minutes, fsck_ok = sys.argv[1], int(sys.argv[2]), sys.argv[3]
outcomes = collections.Counter()
unexpected = []
for name in ("pub1", "pub2", "ed1", "reader"):
    for line in open(f"{w}/{name}.log"):
        kind = line.split(" ", 1)[0]
        outcomes[kind] += 1
        if kind.startswith("unexpected") or kind == "accepted-not-served":
            unexpected.append(f"{name}: {line.strip()}")
wrk = open(f"{w}/wrk.txt").read()
requests = re.search(r"(\d+) requests in", wrk)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
errors = re.search(r"Socket errors: (.*)", wrk)
p99 = re.search(r"99%\s+(\S+)", wrk)
rows = [l.split() for l in open(f"{w}/samples.txt").read().splitlines()[1:] if l.strip()]
rows = [[int(x) for x in r] for r in rows if len(r) == 5]
steady = [r for r in rows if r[0] >= 120] or rows
def slope(col):
    xs = [r[0] / 60 for r in steady]; ys = [r[col] for r in steady]
    if len(xs) < 2: return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
first, last = steady[0], steady[-1]
print(f"soak of {minutes} minutes")
print("  pushes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
print(f"  wrk: {requests.group(1) if requests else '?'} requests, p99 {p99.group(1) if p99 else '?'}, "
      f"non-2xx {non2xx.group(1) if non2xx else 0}, socket errors: {errors.group(1) if errors else 'none'}")
print(f"  server RSS {first[1] // 1024} -> {last[1] // 1024} MiB (slope {slope(1) / 1024:+.2f} MiB/min), "
      f"anonymous {first[2] // 1024} -> {last[2] // 1024} MiB (slope {slope(2) / 1024:+.2f} MiB/min)")
print(f"  open file descriptors {first[3]} -> {last[3]} (slope {slope(3):+.2f}/min), threads {first[4]} -> {last[4]}")
print(f"  git fsck --strict: {'clean' if fsck_ok == 'yes' else 'FAILED'}")
bad = unexpected[:]
if fsck_ok != "yes": bad.append("git fsck --strict failed")
if non2xx:
    seen = wrk.split("failures:\n", 1)[1].strip().splitlines() if "failures:" in wrk else []
    bad.append(f"{non2xx.group(1)} non-2xx responses, the first: " + " | ".join(seen[:5]))
if errors: bad.append(f"socket errors: {errors.group(1)}")
if outcomes["accepted-served"] == 0: bad.append("no push was accepted")
for b in bad[:20]: print("  PROBLEM: " + b)
sys.exit(1 if bad else 0)
EOF
