#!/usr/bin/env bash
# Builds WhisperCMS Desktop as a Debian package (cargo-deb, installed with cargo install if missing)
# and checks it as an installer would: its contents, the desktop entry valid, `dpkg -i` on this
# machine (as root), every shared library of the installed binary found, the installed app's
# window up under Xvfb, then `dpkg -r`.
# Prints the package's path. Usage: scripts/package-desktop.sh [--no-install-check]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}" desktop-file-utils
use_shared_target_dir
ensure_cargo_deb
export PATH="$HOME/.cargo/bin:$PATH"
# Stripped: the release profile keeps line tables for backtraces (330 MB with them, for a
# package that has no use for them).
DEB=$(cargo deb -p whispercms-desktop --strip --quiet 2>/dev/null | tail -1)
[ -f "$DEB" ] || { echo "cargo deb made no package" >&2; exit 1; }
echo "== $DEB" >&2
dpkg-deb --info "$DEB" | sed -n '/Package:/,/Description:/p' >&2
CONTENTS=$(dpkg-deb --contents "$DEB")
for f in ./usr/bin/whispercms-desktop ./usr/share/applications/org.whispercms.desktop.desktop \
         ./usr/share/icons/hicolor/256x256/apps/org.whispercms.desktop.png; do
  grep -q " $f\$" <<<"$CONTENTS" || { echo "missing from the package: $f" >&2; exit 1; }
done
desktop-file-validate desktop/app/packaging/org.whispercms.desktop.desktop
if [ "${1:-}" != "--no-install-check" ] && [ "$(id -u)" = 0 ]; then
  dpkg -i "$DEB" > /dev/null
  trap 'dpkg -r whispercms-desktop > /dev/null 2>&1 || true' EXIT
  missing=$(ldd /usr/bin/whispercms-desktop | grep "not found" || true)
  [ -z "$missing" ] || { echo "the installed app lacks libraries: $missing" >&2; exit 1; }
  # The installed app starts and keeps its window up (under a private Xvfb display).
  DISPLAY_NUM=":$((150 + RANDOM % 50))"
  Xvfb "$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp > /dev/null 2>&1 &
  XVFB=$!
  sleep 1
  SETTINGS=$(mktemp -d)/desktop.toml
  DISPLAY="$DISPLAY_NUM" WEBKIT_DISABLE_COMPOSITING_MODE=1 /usr/bin/whispercms-desktop --settings "$SETTINGS" > /dev/null 2>&1 &
  APP=$!
  sleep 4
  if ! kill -0 "$APP" 2>/dev/null; then kill "$XVFB"; echo "the installed app did not stay up" >&2; exit 1; fi
  kill "$APP" "$XVFB" 2>/dev/null || true
  echo "installed and checked: /usr/bin/whispercms-desktop (every library found, the window up), then removed" >&2
fi
echo "$DEB"
