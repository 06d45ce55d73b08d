#!/usr/bin/env bash
# Memory of clones: a realistic project history (scripts/lib/gen_history.py: ~15,800 objects,
# ~290 refs, most of them annotated tags, gc'd aggressively) pushed to whispercms-server (release
# build), then the server's peak resident memory above its idle level for one `git clone
# --mirror`, and for CLONES (default 10) at once; beside it the peak memory of
# `git pack-objects` making the same pack (what git's upload-pack runs), measured by GNU time.
# The server's peak is its VmHWM, reset before each measurement (`/proc/PID/clear_refs`).
#
# Usage: scripts/bench-clone-memory.sh [CLONES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" python3 time
use_shared_target_dir
CLONES="${1:-10}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"
bench_workdir clone-memory
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main

git init -q -b main "$W/hist"
python3 scripts/lib/gen_history.py | git -C "$W/hist" fast-import --quiet
git -C "$W/hist" repack -adfq --depth=250 --window=250
OBJECTS=$(git -C "$W/hist" count-objects -v | awk '/in-pack/ {print $2}')
REFS=$(git -C "$W/hist" for-each-ref | wc -l)
PACK=$(du -sh "$W/hist/.git/objects/pack" | cut -f1)

ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C bench
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
PORT=$(free_port)
mkdir -p "$W/data"
"$BIN" demo --empty --data-dir "$W/data" --ssh-listen "127.0.0.1:$PORT" --http-listen 127.0.0.1:0 --authorized-keys "$W/client.pub" \
  > "$W/server.out" 2> "$W/server.log" &
echo $! > "$W/server.pid"
PID=$(cat "$W/server.pid")
for _ in $(seq 100); do grep -q "ssh listening" "$W/server.out" 2>/dev/null && break; sleep 0.05; done
URL="ssh://git@127.0.0.1:$PORT/site.git"
git -C "$W/hist" push -q --mirror "$URL" 2>/dev/null
# Settled: the background maintenance has written its whole repack (what clones read).
for _ in $(seq 400); do ls "$W"/data/repos/site.git/objects/pack/*.reuse > /dev/null 2>&1 && break; sleep 0.05; done
sleep 1
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$PID/status"; }
# The first clone after the push pays what later ones find ready (the pack mapped, the allocator's
# pages): measured from the idle server before it, then the others from the idle after it.
FIRST=$( ( idle=$(kib VmRSS); echo 5 > "/proc/$PID/clear_refs"; git clone -q --mirror "$URL" "$W/warm"
  echo $(( ($(kib VmHWM) - idle) / 1024 )) ) )
peak_above_idle() {  # run "$@", print the server's peak RSS above its idle RSS, in MiB
  local idle; idle=$(kib VmRSS)
  echo 5 > "/proc/$PID/clear_refs"
  "$@"
  echo $(( ($(kib VmHWM) - idle) / 1024 ))
}
one() { rm -rf "$W/one"; git clone -q --mirror "$URL" "$W/one"; }
many() {
  local i pids=()
  for i in $(seq "$CLONES"); do
    rm -rf "$W/many$i"
    git clone -q --mirror "$URL" "$W/many$i" & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
}
IDLE_MIB=$(( $(kib VmRSS) / 1024 ))
ONE=(); for _ in 1 2 3; do ONE+=("$(peak_above_idle one)"); done
MANY=$(peak_above_idle many)
OK=0; for i in $(seq "$CLONES"); do git -C "$W/many$i" rev-parse -q --verify main > /dev/null && OK=$((OK + 1)); done
GIT_KIB=$( { /usr/bin/time -f %M git -C "$W/hist" pack-objects --all --revs --stdout -q < /dev/null > /dev/null; } 2>&1 )

echo "history: $OBJECTS objects, $REFS refs, $PACK packed; server idle: $IDLE_MIB MiB"
echo "first clone --mirror after the push, server peak above idle: $FIRST MiB"
echo "one clone --mirror, server peak above idle: ${ONE[*]} MiB (3 runs)"
echo "$CLONES clones at once, server peak above idle: $MANY MiB ($OK of $CLONES complete)"
echo "git pack-objects for the same pack, peak: $(( GIT_KIB / 1024 )) MiB"
