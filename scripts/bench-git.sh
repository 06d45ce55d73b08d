#!/usr/bin/env bash
# Benchmark of the embedded Git host against OpenSSH sshd + git upload-pack/receive-pack, in one
# run on this machine, over loopback. Two repositories:
#   - a realistic project history (scripts/lib/gen_history.py: ~15,800 objects, 287 refs of which
#     280 annotated tags, merges, gc'd aggressively with delta chains up to 250), pushed whole
#     with --mirror, then `git clone --mirror` through both, with the server's CPU per clone;
#     then a series of PUSHES one-file pushes to each (default 1,000), every push timed: the
#     first 100 against the last 100 (medians; each push rewrites one small file), packs on disk after, and a clone after (and of
#     the same history freshly imported into our server); PEER_PUSHES (default PUSHES) caps
#     OpenSSH + git's series, so a long series of ours (10,000) fits in an hour;
#   - a ~20k-object site (4,000 pages and 1,500 edits): bare clone, full push into an empty
#     repository, up-to-date fetch.
# hyperfine times each command; ratios are ours / OpenSSH+git (below 1.0 = we are faster).
#
# Needs: cargo, git, openssh-server, hyperfine, python3 (Debian packages are installed when
# missing). Runs sshd as the current user on 127.0.0.1 with its own config; nothing else is
# touched. Usage: scripts/bench-git.sh [RUNS] [PUSHES] [PEER_PUSHES]   (defaults 10, 1000, PUSHES)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" openssh-server hyperfine python3
use_shared_target_dir
RUNS="${1:-10}"
PUSHES="${2:-1000}"
PEER_PUSHES="${3:-$PUSHES}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

W=$(mktemp -d /tmp/whispercms-bench.XXXXXX)
cleanup() {
  [ -f "$W/ours.pid" ] && kill "$(cat "$W/ours.pid")" 2>/dev/null || true
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  # BENCH_KEEP=1 keeps the work directory (repositories, data dirs, logs) for a closer look.
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main

# --- the repository: a 4000-file site, then 1500 commits of 5 files each (~20k objects)
echo "generating the repository…" >&2
bench_repo "$W/src"
OBJECTS=$(git -C "$W/src" count-objects -v | awk '/in-pack/ {print $2}')
echo "repository: $OBJECTS objects, $(du -sh "$W/src/.git/objects/pack" | cut -f1) packed" >&2

# --- a client key both servers accept
ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C bench
SSH="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export GIT_SSH_COMMAND="$SSH"

# --- OpenSSH sshd + git on a high port
start_sshd "$W/client.pub"
USER_NAME=$(id -un)

# --- whispercms-server
OURS_PORT=$(free_port)
start_ours() {
  rm -rf "$W/ours-data"
  mkdir -p "$W/ours-data"
  "$BIN" demo --empty --data-dir "$W/ours-data" --ssh-listen "127.0.0.1:$OURS_PORT" --http-listen 127.0.0.1:0 --authorized-keys "$W/client.pub" \
    > "$W/ours.out" 2> "$W/ours.log" &
  echo $! > "$W/ours.pid"
  for _ in $(seq 100); do grep -q "ssh listening" "$W/ours.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "whispercms-server did not start" >&2; cat "$W/ours.log" >&2; exit 1
}
# Stopped means gone: `wait` cannot wait for a server started by another shell (hyperfine's
# preparation), and a new one must not start while the old one still holds the port.
stop_ours() {
  local pid; pid=$(cat "$W/ours.pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}
start_ours
OURS_URL="ssh://git@127.0.0.1:$OURS_PORT/site.git"
SSHD_URL="ssh://$USER_NAME@127.0.0.1:$SSHD_PORT$W/sshd-repo.git"

# --- the realistic history: pushed whole to both, cloned with --mirror
git init -q -b main "$W/hist"
python3 scripts/lib/gen_history.py | git -C "$W/hist" fast-import --quiet
git -C "$W/hist" repack -adfq --depth=250 --window=250
HIST_OBJECTS=$(git -C "$W/hist" count-objects -v | awk '/in-pack/ {print $2}')
HIST_REFS=$(git -C "$W/hist" for-each-ref | wc -l)
echo "history: $HIST_OBJECTS objects, $HIST_REFS refs, $(du -sh "$W/hist/.git/objects/pack" | cut -f1) packed" >&2
# Our server on an empty data dir with a history pushed (default the generated one), once the
# background maintenance has written its first whole repack (clones are timed against a settled
# server).
fresh_ours_with_history() {
  stop_ours; start_ours
  git -C "${1:-$W/hist}" push -q --mirror "$OURS_URL" 2>/dev/null
  for _ in $(seq 400); do
    ls "$W"/ours-data/repos/site.git/objects/pack/*.reuse > /dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "the server never consolidated the pushed history" >&2; exit 1
}
fresh_ours_with_history
git init -q --bare "$W/sshd-hist.git"
SSHD_HIST="ssh://$USER_NAME@127.0.0.1:$SSHD_PORT$W/sshd-hist.git"
git -C "$W/hist" push -q --mirror "$SSHD_HIST"
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
CPU0=$(cpu_ms "$(cat "$W/ours.pid")")
echo "== clone --mirror of the history ($HIST_OBJECTS objects, $HIST_REFS refs)" >&2
hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/mirror.json" \
  --prepare "rm -rf $W/c" \
  -n ours "git clone -q --mirror $OURS_URL $W/c" \
  -n openssh+git "git clone -q --mirror $SSHD_HIST $W/c" >&2
CPU1=$(cpu_ms "$(cat "$W/ours.pid")")
CLONE_CPU=$(( (CPU1 - CPU0) / (RUNS + 1) ))
# git's own work for the same pack (what upload-pack runs), without ssh or the client.
PACK_OBJECTS_MS=$(python3 -c '
import statistics, subprocess, sys, time
t = []
for _ in range(5):
    s = time.perf_counter()
    subprocess.run(["git", "-C", sys.argv[1], "pack-objects", "--all", "--revs", "--stdout", "-q"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    t.append(time.perf_counter() - s)
print(round(statistics.median(t) * 1000))' "$W/sshd-hist.git")

# --- a series of one-file pushes to each server, every push timed
echo "== one-file pushes: $PUSHES to ours, $PEER_PUSHES to OpenSSH + git" >&2
fresh_ours_with_history
git init -q --bare "$W/sshd-series.git"
SSHD_SERIES="ssh://$USER_NAME@127.0.0.1:$SSHD_PORT$W/sshd-series.git"
git -C "$W/hist" push -q --mirror "$SSHD_SERIES"
python3 - "$W" "$PUSHES" "$OURS_URL" "$SSHD_SERIES" "$PEER_PUSHES" <<'SERIES'
import json, subprocess, sys, time
w = sys.argv[1]
times = {}
for name, url, pushes in (("ours", sys.argv[3], int(sys.argv[2])), ("openssh+git", sys.argv[4], int(sys.argv[5]))):
    work = f"{w}/series-{name}"
    subprocess.run(["git", "clone", "-q", f"{w}/hist", work], check=True)
    times[name] = []
    for i in range(pushes):
        # The same small file rewritten each time: push 10,000 carries what push 1 did, so any
        # growth is the server's (appending to one file made the last push send a 100 KB file).
        with open(f"{work}/docs/series.md", "w") as f:
            f.write(f"push {i}\n")
        subprocess.run(["git", "-C", work, "add", "docs/series.md"], check=True)
        subprocess.run(["git", "-C", work, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", f"push {i}"], check=True)
        start = time.perf_counter()
        subprocess.run(["git", "-C", work, "push", "-q", url, "HEAD:main"], check=True, stderr=subprocess.DEVNULL)
        times[name].append(time.perf_counter() - start)
json.dump(times, open(f"{w}/series.json", "w"))
SERIES
sleep 3 # the last maintenance run
OURS_PACKS=$(find "$W/ours-data/repos/site.git/objects/pack" -name '*.idx' | wc -l)
SSHD_PACKS=$(find "$W/sshd-series.git/objects/pack" -name '*.idx' | wc -l)
SSHD_LOOSE=$(git -C "$W/sshd-series.git" count-objects | cut -d' ' -f1)
echo "== clone --mirror after the series" >&2
hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/after.json" \
  --prepare "rm -rf $W/c" \
  -n ours "git clone -q --mirror $OURS_URL $W/c" \
  -n openssh+git "git clone -q --mirror $SSHD_SERIES $W/c" >&2
# The same history as the series left it, imported into a fresh server: the goal is that a clone
# after many pushes costs what one after an import does.
git clone -q --mirror "$OURS_URL" "$W/after-series.git"
fresh_ours_with_history "$W/after-series.git"
hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/imported.json" \
  --prepare "rm -rf $W/c" -n ours "git clone -q --mirror $OURS_URL $W/c" >&2

# --- back to an empty server for the site repository
stop_ours; start_ours

# Seed both with the repository.
git init -q --bare "$W/sshd-repo.git"
git -C "$W/src" push -q "$SSHD_URL" main
git -C "$W/src" push -q "$OURS_URL" main

echo "== clone (bare, $OBJECTS objects)" >&2
hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/clone.json" \
  --prepare "rm -rf $W/c" \
  -n ours "git clone -q --bare $OURS_URL $W/c" \
  -n openssh+git "git clone -q --bare $SSHD_URL $W/c" >&2

echo "== full push into an empty repository" >&2
# Our server is restarted on an empty data directory before each run; sshd's repository is
# re-created. Both preparations are outside the timing.
cat > "$W/prep-ours.sh" <<PREP
#!/usr/bin/env bash
$(declare -f start_ours stop_ours)
W=$W BIN=$BIN OURS_PORT=$OURS_PORT
stop_ours; start_ours
PREP
hyperfine --style basic -N --runs "$RUNS" --export-json "$W/push.json" \
  --prepare "bash $W/prep-ours.sh" -n ours "git -C $W/src push -q $OURS_URL main" \
  --prepare "bash -c 'rm -rf $W/sshd-repo.git && git init -q --bare $W/sshd-repo.git'" \
  -n openssh+git "git -C $W/src push -q $SSHD_URL main" >&2

echo "== fetch when up to date (connection + negotiation)" >&2
git clone -q --bare "$OURS_URL" "$W/f-ours" 2>/dev/null || true
git clone -q --bare "$SSHD_URL" "$W/f-sshd"
hyperfine --style basic -N --runs "$RUNS" --export-json "$W/fetch.json" \
  -n ours "git -C $W/f-ours fetch -q $OURS_URL main" \
  -n openssh+git "git -C $W/f-sshd fetch -q $SSHD_URL main" >&2

python3 - "$W" "$OBJECTS" "$HIST_OBJECTS" "$HIST_REFS" "$CLONE_CPU" "$PACK_OBJECTS_MS" "$PUSHES" \
  "$OURS_PACKS" "$SSHD_PACKS" "$SSHD_LOOSE" <<'PY'
import json, sys, statistics
w, objects, hist, refs, cpu, pack_objects, pushes, ours_packs, sshd_packs, sshd_loose = sys.argv[1:]
def medians(name):
    return {x["command"]: statistics.median(x["times"]) for x in json.load(open(f"{w}/{name}.json"))["results"]}
def row(label, r):
    print(f"{label:<46}{r['ours']*1000:>8.0f}ms{r['openssh+git']*1000:>12.0f}ms{r['ours']/r['openssh+git']:>8.2f}")
print("\nresults (median of runs; ratio = ours / OpenSSH+git)")
print(f"{'operation':<46}{'ours':>10}{'openssh+git':>14}{'ratio':>8}")
row(f"clone --mirror: history, {hist} objects, {refs} refs", medians("mirror"))
print(f"  server CPU per clone: ours {cpu} ms; git pack-objects --all of the same pack {pack_objects} ms")
series = json.load(open(f"{w}/series.json"))
for name in ("ours", "openssh+git"):
    first = statistics.median(series[name][:100]) * 1000
    last = statistics.median(series[name][-100:]) * 1000
    print(f"  {len(series[name])} pushes to {name}: first 100 {first:.0f} ms, last 100 {last:.0f} ms (last / first {last / first:.2f})")
print(f"  packs after the series: ours {ours_packs}; OpenSSH+git {sshd_packs} (and {sshd_loose} loose objects)")
if len(series["ours"]) == len(series["openssh+git"]):
    row("clone --mirror after the series", medians("after"))
else:  # different histories: no ratio
    r = medians("after")
    print(f"{'clone --mirror after each series':<46}{r['ours']*1000:>8.0f}ms{r['openssh+git']*1000:>12.0f}ms"
          f"   (not comparable: {len(series['ours'])} and {len(series['openssh+git'])} pushes)")
after, imported = medians("after")["ours"] * 1000, medians("imported")["ours"] * 1000
print(f"  ours after the series / the same history freshly imported: {after:.0f} / {imported:.0f} ms "
      f"({after / imported:.2f})")
print(f"\nthe site repository ({objects} objects)")
for name, label in [("clone", "clone --bare"), ("push", "push (full, empty remote)"), ("fetch", "fetch (up to date)")]:
    row(label, medians(name))
PY
