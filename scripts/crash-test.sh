#!/usr/bin/env bash
# Crash anywhere: `kill -9` of the server (or of `whispercms-server reindex`) at a random moment
# of a push, a publish, a whole repack or an index rebuild, TRIALS times (default 100), each
# followed by a restart and the checks of what the server promises:
#   - `main` is the commit it was before the trial or the one pushed, nothing else;
#   - `git fsck --strict` of the repository is clean (no missing or corrupt object);
#   - no debris: no quarantine (`objects/incoming-*`), no repack temporaries, no ref lock files,
#     nothing in the index directory but the SQLite file and its WAL;
#   - the site serves the commit `main` points to (`/readyz`, and the page the trial changed).
# The site: PAGES generated pages (default 3,000, scripts/lib/gen_scale.py) pushed once. Each
# trial picks its phase in turn:
#   push     a commit changing 1-300 pages, SIGKILL 0-500 ms after `git push` starts;
#   publish  a commit changing site.toml (every page indexed again), SIGKILL 0-1,500 ms after;
#   repack   the repack record removed so the next start repacks whole, SIGKILL 0-1,000 ms
#            after the start;
#   reindex  `whispercms-server reindex` of the stopped server's data, SIGKILL 0-1,000 ms after.
# It counts the kills that landed mid-work (the push or reindex still running, a repack's
# temporary file present), so a run that proves nothing shows it.
# Release build; usage: scripts/crash-test.sh [TRIALS] [PAGES]   (about 5 minutes at 100;
# BENCH_KEEP=1 keeps the work directory). Exits non-zero at the first broken promise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" python3 curl
use_shared_target_dir
TRIALS="${1:-100}"
PAGES="${2:-3000}"
cargo build --release --quiet --bin whispercms-server
BIN="${CARGO_TARGET_DIR:-target}/release/whispercms-server"

bench_workdir crash-test
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main
DATA="$W/data"
REPO="$DATA/repos/site.git"
ssh-keygen -q -t ed25519 -N "" -f "$W/client" -C crash
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/client -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
URL="ssh://git@127.0.0.1:$SSH_PORT/site.git"

start_server() {
  "$BIN" demo --empty --data-dir "$DATA" --ssh-listen "127.0.0.1:$SSH_PORT" \
    --http-listen "127.0.0.1:$HTTP_PORT" --authorized-keys "$W/client.pub" >> "$W/server.out" 2>> "$W/server.log" &
  echo $! > "$W/server.pid"
}
kill9_server() {
  local pid; pid=$(cat "$W/server.pid")
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# Wait until the server listens (the publish of the head, if the index is behind, comes first).
wait_listening() {
  for _ in $(seq 1200); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" && return 0
    sleep 0.05
  done
  echo "the server did not start; its log:" >&2; tail -20 "$W/server.log" >&2; exit 1
}
head_commit() { git --git-dir "$REPO" rev-parse -q --verify refs/heads/main 2> /dev/null || echo none; }
millis() { echo $(( RANDOM * 32768 + RANDOM )) ; }
# A random delay of 0..$1 ms, as seconds for sleep.
delay() { local ms=$(( $(millis) % ($1 + 1) )); printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )); }
fail() { echo "trial $trial ($phase, SIGKILL after ${wait_s}s): $*" >&2; exit 1; }

echo "== a $PAGES-page site, pushed" >&2
python3 scripts/lib/gen_scale.py "$W/site" "$PAGES"
rm -rf "$W/site-hugo"
git -C "$W/site" init -q
git -C "$W/site" add -A
git -C "$W/site" -c user.name=C -c user.email=c@e commit -qm "a site"
start_server; wait_listening
git -C "$W/site" push -q "$URL" main
git -C "$W/site" remote add origin "$URL"

declare -A count=() outcome=() midways=()
for trial in $(seq 1 "$TRIALS"); do
  phase=$(printf '%s\n' push publish repack reindex | sed -n "$(( (trial - 1) % 4 + 1 ))p")
  before=$(head_commit)
  marker="trial $trial"
  wait_s=0
  midway=0
  case $phase in
    push|publish)
      if [ "$phase" = push ]; then
        n=$(( $(millis) % 300 + 1 ))
        for k in $(seq 1 "$n"); do
          p=$(( ($(millis) + k) % PAGES ))
          printf '+++\ntitle = "Page %d"\ndate = 2024-01-01\n+++\n%s, page %d.\n' "$p" "$marker" "$p" \
            > "$W/site/content/s$(( p % (PAGES / 100 > 0 ? PAGES / 100 : 1) ))/page-$p.md"
        done
        wait_s=$(delay 500)
      else
        printf 'title = "Scale %d"\nbase_url = "http://127.0.0.1"\npaginate_by = 10\ntaxonomies = ["tags"]\n' \
          "$trial" > "$W/site/site.toml"
        wait_s=$(delay 1500)
      fi
      git -C "$W/site" add -A
      git -C "$W/site" -c user.name=C -c user.email=c@e commit -qm "$marker"
      pushed=$(git -C "$W/site" rev-parse HEAD)
      (git -C "$W/site" push -q origin main > "$W/push.out" 2>&1 || true) &
      push_pid=$!
      sleep "$wait_s"
      kill -0 "$push_pid" 2>/dev/null && midway=1
      kill9_server
      wait "$push_pid" || true
      ;;
    repack)
      pushed=$before
      kill9_server
      find "$REPO/objects/pack" -name '*.reuse' -delete
      start_server
      wait_s=$(delay 1000)
      sleep "$wait_s"
      compgen -G "$REPO/objects/pack/.tmp-repack-*" > /dev/null && midway=1
      kill9_server
      ;;
    reindex)
      pushed=$before
      kill9_server
      "$BIN" reindex --data-dir "$DATA" > /dev/null 2>&1 &
      reindex_pid=$!
      wait_s=$(delay 1000)
      sleep "$wait_s"
      kill -0 "$reindex_pid" 2>/dev/null && midway=1
      kill -9 "$reindex_pid" 2>/dev/null || true
      wait "$reindex_pid" 2>/dev/null || true
      ;;
  esac

  after=$(head_commit)
  if [ "$after" = "$before" ]; then landed=old; elif [ "$after" = "$pushed" ]; then landed=new; else
    fail "main is $after: neither $before (before) nor $pushed (pushed)"
  fi
  count[$phase]=$(( ${count[$phase]:-0} + 1 ))
  midways[$phase]=$(( ${midways[$phase]:-0} + midway ))
  outcome[$phase-$landed]=$(( ${outcome[$phase-$landed]:-0} + 1 ))

  start_server; wait_listening
  # The restarted server may start a repack of its own: debris is what is still there once it
  # is done (its temporaries come and go; the killed one's must be gone).
  for _ in $(seq 600); do compgen -G "$REPO/objects/pack/.tmp-*" > /dev/null || break; sleep 0.1; done
  # The repository: sound, and nothing left of the interrupted work.
  if ! fsck=$(git --git-dir "$REPO" fsck --strict --no-dangling 2>&1); then fail "git fsck --strict: $fsck"; fi
  debris=$(find "$REPO" \( -name 'incoming-*' -o -name '.tmp-*' -o -name 'tmp_*' \
    -o \( -name '*.lock' ! -name whispercms.lock ! -name whispercms-maintenance.lock \) \) -print)
  [ -z "$debris" ] || fail "left behind: $debris"
  extra=$(find "$DATA/index" -type f ! -name '*.sqlite' ! -name '*.sqlite-wal' ! -name '*.sqlite-shm' -print)
  [ -z "$extra" ] || fail "left in the index directory: $extra"
  # The site serves what main points to.
  for _ in $(seq 600); do
    ready=$(curl -s "http://127.0.0.1:$HTTP_PORT/readyz" | head -1)
    [ "$ready" = "ready $after" ] && break
    sleep 0.05
  done
  [ "$ready" = "ready $after" ] || fail "/readyz says '$ready' after 30 s, main is $after"
  if [ "$phase" = push ] && [ "$landed" = new ]; then
    curl -s "http://127.0.0.1:$HTTP_PORT/s$(( p % (PAGES / 100 > 0 ? PAGES / 100 : 1) ))/page-$p/" | grep -q "$marker" \
      || fail "the page pushed is not served"
  fi
  # Whatever the server did not take is pushed again by the next trial (the clone is ahead).
  printf '.' >&2
done
echo >&2
echo "$TRIALS trials, every promise kept:"
for phase in push publish repack reindex; do
  echo "  $phase: ${count[$phase]:-0} kills, ${midways[$phase]:-0} of them mid-work; main afterwards: old ${outcome[$phase-old]:-0}, new ${outcome[$phase-new]:-0}"
done
for phase in push publish repack reindex; do
  [ "${midways[$phase]:-0}" -gt 0 ] || { echo "no kill landed mid-$phase: the run proves nothing of it" >&2; exit 1; }
done
