#!/usr/bin/env bash
# Benchmark of the embedded Git host against OpenSSH sshd + git upload-pack/receive-pack, in one
# run on this machine, over loopback. A generated repository of ~20k objects is cloned (bare) and
# pushed (full push into an empty repository) through both; hyperfine times each, and the script
# prints the ratios ours / OpenSSH+git (below 1.0 = we are faster).
#
# Needs: cargo, git, openssh-server, hyperfine, python3 (Debian packages are installed when
# missing). Runs sshd as the current user on 127.0.0.1 with its own config; nothing else is
# touched. Usage: scripts/bench-git.sh [RUNS]   (default 10 runs per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" openssh-server hyperfine python3
use_shared_target_dir
RUNS="${1:-10}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

W=$(mktemp -d /tmp/whispercms-bench.XXXXXX)
cleanup() {
  [ -f "$W/ours.pid" ] && kill "$(cat "$W/ours.pid")" 2>/dev/null || true
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  rm -rf "$W"
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
  "$BIN" demo --empty --data-dir "$W/ours-data" --ssh-listen "127.0.0.1:$OURS_PORT" --authorized-keys "$W/client.pub" \
    > "$W/ours.out" 2> "$W/ours.log" &
  echo $! > "$W/ours.pid"
  for _ in $(seq 100); do grep -q "ssh listening" "$W/ours.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "whispercms-server did not start" >&2; cat "$W/ours.log" >&2; exit 1
}
stop_ours() { kill "$(cat "$W/ours.pid")" 2>/dev/null || true; wait "$(cat "$W/ours.pid")" 2>/dev/null || true; }
start_ours
OURS_URL="ssh://git@127.0.0.1:$OURS_PORT/site.git"
SSHD_URL="ssh://$USER_NAME@127.0.0.1:$SSHD_PORT$W/sshd-repo.git"

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

python3 - "$W" "$OBJECTS" <<'PY'
import json, sys, statistics
w, objects = sys.argv[1], sys.argv[2]
print(f"\nresults (median of runs; repository of {objects} objects; ratio = ours / OpenSSH+git)")
print(f"{'operation':<28}{'ours':>10}{'openssh+git':>14}{'ratio':>8}")
for name, label in [("clone", "clone --bare"), ("push", "push (full, empty remote)"), ("fetch", "fetch (up to date)")]:
    r = {x["command"]: statistics.median(x["times"]) for x in json.load(open(f"{w}/{name}.json"))["results"]}
    print(f"{label:<28}{r['ours']*1000:>8.0f}ms{r['openssh+git']*1000:>12.0f}ms{r['ours']/r['openssh+git']:>8.2f}")
PY
