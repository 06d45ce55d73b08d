#!/usr/bin/env bash
# Benchmarks of the Git client and follow mode, each beside its reference in the same run:
#
# 1. Our client (githost's `git-client` example) against OpenSSH sshd + git, side by side with
#    the git CLI doing the same over the same sshd, on the ~20k-object benchmark repository:
#    clone (bare), fetch of the last 200 commits, push into an empty repository. Ratios are
#    ours / git (below 1.0 = we are faster).
# 1b. The same three over HTTPS with a token, against `git http-backend` behind the test suite's
#    HTTPS front (githost's `http-backend` example), ours beside the git CLI.
# 2. Follow mode: a primary and two followers (release binaries, 127.0.0.1). PUSHES pushes of
#    one page to the primary; for each, the time from `git push` returning until both followers
#    serve the new page (p50, p99). Then the primary's CPU time over an idle minute with the two
#    followers watching, against a minute without followers.
#
# Needs: cargo, git, openssh-server, hyperfine, python3, curl (Debian packages are installed when
# missing). Usage: scripts/bench-follow.sh [RUNS] [PUSHES]   (defaults 10 and 50)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" openssh-server hyperfine python3
use_shared_target_dir
RUNS="${1:-10}"
PUSHES="${2:-50}"
IDLE_SECS="${IDLE_SECS:-60}"
cargo build --release --quiet --bin whispercms-server -p whispercms-server
cargo build --release --quiet -p githost --example git-client --example http-backend
TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="$TARGET/whispercms-server"
CLIENT="$TARGET/examples/git-client"
HTTP_BACKEND="$TARGET/examples/http-backend"

W=$(mktemp -d /tmp/whispercms-bench-follow.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main

echo "generating the repository…" >&2
bench_repo "$W/src"
OBJECTS=$(git -C "$W/src" count-objects -v | awk '/in-pack/ {print $2}')
ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C bench
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
start_sshd "$W/client.pub"
FP=$(ssh-keygen -lf "$W/sshd_host.pub" | awk '{print $2}')
URL="ssh://$(id -un)@127.0.0.1:$SSHD_PORT$W/remote.git"
OURS="$CLIENT --key $W/client --fingerprint $FP"

git init -q --bare "$W/remote.git"
git -C "$W/src" push -q "$URL" main
# A repository 200 commits behind, for the fetch.
git init -q --bare "$W/behind.git"
git -C "$W/src" push -q "$W/behind.git" main~200:refs/heads/main

# compare_client PREFIX LABEL OURS GIT URL REMOTE_DIR: clone, fetch (200 behind) and a full push,
# ours beside the git CLI; results in $W/PREFIX{clone,fetch,push}.json.
compare_client() {
  local prefix=$1 label=$2 ours=$3 git=$4 url=$5 remote=$6
  echo "== $label: clone (bare, $OBJECTS objects)" >&2
  hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/${prefix}clone.json" --prepare "rm -rf $W/c" \
    -n ours "$ours clone $url $W/c" \
    -n git "$git clone -q --bare $url $W/c" >&2
  echo "== $label: fetch of the last 200 commits" >&2
  hyperfine --style basic -N --runs "$RUNS" --warmup 1 --export-json "$W/${prefix}fetch.json" \
    --prepare "bash -c 'rm -rf $W/f && cp -r $W/behind.git $W/f'" \
    -n ours "$ours fetch $url $W/f" \
    -n git "$git -C $W/f fetch -q $url +refs/heads/*:refs/heads/*" >&2
  echo "== $label: push of the whole history into an empty repository" >&2
  hyperfine --style basic -N --runs "$RUNS" --export-json "$W/${prefix}push.json" \
    --prepare "bash -c 'rm -rf $remote && git init -q --bare $remote'" \
    -n ours "$ours push $url $W/src/.git main" \
    -n git "$git -C $W/src push -q $url main" >&2
}
compare_client "" "OpenSSH + git" "$OURS" git "$URL" "$W/remote.git"

# --- the same over HTTPS
mkdir -p "$W/http"
git init -q --bare "$W/http/remote.git"
"$HTTP_BACKEND" "$W/http" bench-token > "$W/http.out" 2> "$W/http.log" &
PIDS+=($!)
for _ in $(seq 200); do grep -q '^ca ' "$W/http.out" 2>/dev/null && break; sleep 0.05; done
H_PORT=$(awk '/^port/ {print $2}' "$W/http.out")
H_CA=$(awk '/^ca/ {print $2}' "$W/http.out")
HURL="https://127.0.0.1:$H_PORT/remote.git"
printf 'bench-token\n' > "$W/token"
BASIC=$(printf 'git:bench-token' | base64)
# (GIT_SSL_CAINFO rather than http.sslCAInfo: an environment that sets the variable wins over -c.)
export GIT_SSL_CAINFO="$H_CA"
git -C "$W/src" -c "http.extraHeader=Authorization: Basic $BASIC" push -q "$HURL" main
compare_client h "HTTPS, git http-backend" "$CLIENT --token-file $W/token --ca-file $H_CA" \
  "git -c http.extraHeader=Authorization:\ Basic\ $BASIC" "$HURL" "$W/http/remote.git"
unset GIT_SSL_CAINFO

# --- follow mode
start_server() { # NAME ARGS… ; prints "ssh http" ports when listening
  local name=$1; shift
  "$BIN" demo --data-dir "$W/$name" --ssh-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 "$@" \
    > "$W/$name.out" 2> "$W/$name.log" &
  PIDS+=($!)
  echo $! > "$W/$name.pid"
  for _ in $(seq 400); do
    if grep -q "^http listening" "$W/$name.out" 2>/dev/null && grep -q "^ssh listening" "$W/$name.out"; then
      echo "$(awk '/^ssh listening/ {sub(/.*:/, "", $4); print $4}' "$W/$name.out") $(awk '/^http listening/ {sub(/.*:/, "", $4); print $4}' "$W/$name.out")"
      return 0
    fi
    sleep 0.05
  done
  echo "$name did not start" >&2; cat "$W/$name.log" >&2; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

read -r P_SSH P_HTTP < <(start_server primary)
PRIMARY_PID=$(cat "$W/primary.pid")
HOST_FP=$(ssh-keygen -lf "$W/primary/keys/ssh_host_ed25519.pub" | awk '{print $2}')
TICKS=$(getconf CLK_TCK)
echo "== primary idle ${IDLE_SECS} s without followers" >&2
sleep 2
c0=$(cpu_ticks "$PRIMARY_PID"); sleep "$IDLE_SECS"; c1=$(cpu_ticks "$PRIMARY_PID")
BASE_TICKS=$((c1 - c0))

FOLLOWER_HTTP=()
for f in f1 f2; do
  mkdir -p "$W/$f"
  cat > "$W/$f.toml" <<CFG
[follow]
url = "ssh://git@127.0.0.1:$P_SSH/site.git"
key = "$W/primary/keys/demo_ed25519"
host_key_fingerprint = "$HOST_FP"
CFG
  read -r _ f_http < <(start_server "$f" --empty --config "$W/$f.toml")
  FOLLOWER_HTTP+=("$f_http")
done
echo "== primary idle ${IDLE_SECS} s with two followers watching" >&2
sleep 2
c0=$(cpu_ticks "$PRIMARY_PID"); sleep "$IDLE_SECS"; c1=$(cpu_ticks "$PRIMARY_PID")
IDLE_TICKS=$((c1 - c0))

echo "== $PUSHES pushes to the primary, each until both followers serve it" >&2
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/primary/keys/demo_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
git clone -q "ssh://git@127.0.0.1:$P_SSH/site.git" "$W/site"
python3 - "$W/site" "$PUSHES" "${FOLLOWER_HTTP[@]}" > "$W/converge.txt" <<'PY'
import http.client, os, subprocess, sys, time
site, pushes, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
def status(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse(); r.read(); return r.status
    except OSError:
        return 0
    finally:
        c.close()
os.makedirs(f"{site}/content/bench", exist_ok=True)
times = []
for i in range(pushes):
    with open(f"{site}/content/bench/p{i}.md", "w") as f:
        f.write(f'+++\ntitle = "Bench page {i}"\n+++\nPage {i}.\n')
    subprocess.run(["git", "-C", site, "add", "-A"], check=True)
    subprocess.run(["git", "-C", site, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", f"page {i}"], check=True)
    subprocess.run(["git", "-C", site, "push", "-q", "origin", "main"], check=True, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    pending = set(ports)
    while pending:
        for p in list(pending):
            if status(p, f"/bench/p{i}/") == 200:
                pending.discard(p)
        if time.monotonic() - t0 > 30:
            print("timeout", i, file=sys.stderr); sys.exit(1)
        if pending:
            time.sleep(0.002)
    times.append(time.monotonic() - t0)
times.sort()
def pct(q): return times[min(len(times) - 1, int(round(q * (len(times) - 1))))]
print(f"{pct(0.5)*1000:.0f} {pct(0.99)*1000:.0f} {times[-1]*1000:.0f}")
PY
read -r P50 P99 MAX < "$W/converge.txt"

python3 - "$W" "$OBJECTS" "$P50" "$P99" "$MAX" "$PUSHES" "$BASE_TICKS" "$IDLE_TICKS" "$TICKS" "$IDLE_SECS" <<'PY'
import json, sys, statistics
w, objects, p50, p99, mx, pushes, base, idle, hz, secs = sys.argv[1:]
print(f"\nresults (median of runs; repository of {objects} objects; ratio = ours / git, both against OpenSSH + git)")
print(f"{'operation':<34}{'ours':>10}{'git':>10}{'ratio':>8}")
for name, label in [("clone", "clone --bare"), ("fetch", "fetch (200 commits behind)"), ("push", "push (full, empty remote)")]:
    r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(f"{w}/{name}.json"))["results"]}
    print(f"{label:<34}{r['ours']*1000:>8.0f}ms{r['git']*1000:>8.0f}ms{r['ours']/r['git']:>8.2f}")
print(f"\nover HTTPS with a token (ratio = ours / git, both against git http-backend behind HTTPS)")
for name, label in [("hclone", "clone --bare"), ("hfetch", "fetch (200 commits behind)"), ("hpush", "push (full, empty remote)")]:
    r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(f"{w}/{name}.json"))["results"]}
    print(f"{label:<34}{r['ours']*1000:>8.0f}ms{r['git']*1000:>8.0f}ms{r['ours']/r['git']:>8.2f}")
print(f"\nfollow: {pushes} pushes, push returned -> both followers serve the page: p50 {p50} ms, p99 {p99} ms, max {mx} ms")
ms = lambda t: int(t) * 1000 / int(hz)
per = (ms(idle) - ms(base)) / 2 * 60 / int(secs)
print(f"primary CPU over {secs} s idle: {ms(base):.0f} ms without followers, {ms(idle):.0f} ms with two watching "
      f"({per:.0f} ms CPU per idle follower-minute; clock tick {1000/int(hz):.0f} ms)")
PY
