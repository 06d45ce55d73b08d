#!/usr/bin/env bash
# Starts WhisperCMS Desktop (the Tauri window). On a machine without its settings yet it opens
# the first-run wizard; with --demo it first starts the demo server (scripts/demo.sh's data in
# ./whispercms-demo) and sets the app up on a clone of the demo site in ./whispercms-demo-site,
# so the whole loop — edit, preview, publish, see it live on http://127.0.0.1:8080 — works at once.
# Installs missing Debian packages (WebKitGTK) itself. Needs: a Rust toolchain (cargo) and a
# display (under Xvfb: xvfb-run scripts/desktop.sh --demo).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}"
use_shared_target_dir
TARGET="${CARGO_TARGET_DIR:-target}/release"
# Both binaries in one build: built apart, cargo resolves their shared dependencies' features
# differently and each alternation rebuilds them.
cargo build --release --quiet -p whispercms-desktop -p whispercms-server
ARGS=()
if [ "${1:-}" = "--demo" ]; then
  DATA="$PWD/whispercms-demo"
  "$TARGET/whispercms-server" demo --data-dir "$DATA" > "$DATA.out" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 200); do grep -q "^ssh listening" "$DATA.out" 2>/dev/null && break; sleep 0.05; done
  SSH=$(awk '/^ssh listening/ {print $4}' "$DATA.out")
  FP=$(ssh-keygen -lf "$DATA/keys/ssh_host_ed25519.pub" | awk '{print $2}')
  SETTINGS="$PWD/whispercms-demo-desktop.toml"
  if [ ! -d whispercms-demo-site/.git ]; then
    # The first run of the demo: the wizard's answers, given here.
    cat > "$SETTINGS" <<TOML
remote = "ssh://git@$SSH/site.git"
key = "$DATA/keys/demo_ed25519"
host_key_fingerprint = "$FP"
name = "Demo writer"
email = "writer@example.org"
TOML
    echo "In the app: Setup → Folder for the site: $PWD/whispercms-demo-site → Get the site." >&2
  fi
  ARGS=(--settings "$SETTINGS")
  echo "the live site: http://127.0.0.1:8080/" >&2
  "$TARGET/whispercms-desktop" "${ARGS[@]}"
else
  exec "$TARGET/whispercms-desktop" "$@"
fi
