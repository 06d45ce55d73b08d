#!/usr/bin/env bash
# Benchmarks of WhisperCMS Desktop on a large site (release build, this machine):
#
# 1. Without a window (desktop/app's `bench` example): a 10,000-page site (100 sections of 100
#    pages, ~4 KB each, 5 tags of 200) — its first save and first full preview; the app's start
#    and first screen (the page list); the time from an edit on disk to its preview rendered,
#    over EDITS edits (p50, p99); the process's memory with the site open.
# 2. The real window under Xvfb: from starting `whispercms-desktop` to its first screen painted
#    (the sidebar's colour at a point of the screen, polled), with the same site open; and the
#    window process's memory then.
#
# Goals (issue 13): first screen < 1 s; preview < 100 ms after typing stops; < 250 MiB.
# Usage: scripts/bench-desktop.sh [PAGES] [EDITS]   (defaults 10000 and 50)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}"
use_shared_target_dir
PAGES="${1:-10000}"
EDITS="${2:-50}"
cargo build --release --quiet -p whispercms-desktop --example bench --bin whispercms-desktop
TARGET="${CARGO_TARGET_DIR:-target}/release"
W=$(mktemp -d /tmp/whispercms-bench-desktop.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

echo "== without a window ($PAGES pages, $EDITS edits)" >&2
"$TARGET/examples/bench" "$PAGES" "$EDITS" "$W/site" | tee "$W/core.txt"

echo "== the window, first screen" >&2
printf 'site = "%s"\n' "$W/site" > "$W/desktop.toml"
DISPLAY_NUM=":$((90 + RANDOM % 100))"
Xvfb "$DISPLAY_NUM" -screen 0 1400x900x24 -nolisten tcp > /dev/null 2>&1 &
PIDS+=($!)
sleep 1
SIDEBAR="srgb(23,50,77)"   # --side in assets/app.css (#17324d)
for run in 1 2 3; do
  start=$(date +%s%N)
  DISPLAY="$DISPLAY_NUM" WEBKIT_DISABLE_COMPOSITING_MODE=1 "$TARGET/whispercms-desktop" --settings "$W/desktop.toml" > /dev/null 2>&1 &
  APP=$!
  PIDS+=($APP)
  painted=""
  for _ in $(seq 400); do
    pixel=$(DISPLAY="$DISPLAY_NUM" import -window root -crop 1x1+100+400 +repage txt:- 2>/dev/null | tail -1 | awk '{print $NF}' || true)
    if [ "$pixel" = "$SIDEBAR" ] || [ "$pixel" = "#17324D" ]; then painted=$(( ($(date +%s%N) - start) / 1000000 )); break; fi
    sleep 0.02
  done
  sleep 1
  rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$APP/status")
  # With WebKit's own processes (web, network), which are the app's children. RSS counts the
  # shared libraries (WebKitGTK's are ~100 MB) once per process; PSS shares them out, so its
  # sum is what the three processes cost together.
  total=$(ps -o rss= -p "$APP" --ppid "$APP" | awk '{s += $1} END {print int(s / 1024)}')
  pss=0
  for p in "$APP" $(ps -o pid= --ppid "$APP"); do
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "window run $run: first screen painted after ${painted:-never} ms; app process ${rss} MiB RSS; with WebKit's processes ${total} MiB RSS, $((pss / 1024)) MiB PSS" | tee -a "$W/window.txt"
  kill "$APP"; wait "$APP" 2>/dev/null || true
  # The sidebar must be gone before the next run looks for it.
  sleep 0.5
done
