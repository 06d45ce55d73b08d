#!/usr/bin/env bash
# The Debian package as an operator installs it: build it with cargo-deb (around the dev
# profile's binary, so the test needs no release build), check the unit with
# `systemd-analyze verify`, install it with `dpkg -i`, then as the package's `whispercms` user:
# `init` (the admin key on stdin), `serve` with the unit's one capability (a port below 1024),
# a clone and a push with git, the page served. Purges the package and what the test made.
# Needs root (dpkg, a system user); refuses to touch a machine with WhisperCMS installed.
# Usage: scripts/test-package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" adduser systemd util-linux python3
use_shared_target_dir
ensure_cargo_deb
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "test-package: needs root (dpkg -i, a system user)" >&2; exit 1; }
if dpkg-query -W whispercms-server > /dev/null 2>&1 || [ -e /etc/whispercms ] || [ -e /var/lib/whispercms ]; then
  echo "test-package: WhisperCMS is installed on this machine (package, /etc/whispercms or /var/lib/whispercms); not touching it" >&2
  exit 1
fi
W=$(mktemp -d /tmp/whispercms-package.XXXXXX)
cleanup() {
  [ -f "$W/server.pid" ] && kill "$(cat "$W/server.pid")" 2> /dev/null || true
  dpkg --purge whispercms-server > /dev/null 2>&1 || true
  rm -rf /etc/whispercms /var/lib/whispercms "$W"
}
trap cleanup EXIT

echo "== build the package"
cargo build --quiet --bin whispercms-server
DEB=$(cargo deb --no-build --profile dev --fast --no-strip --output "$W/" | tail -1)
dpkg-deb --info "$DEB" | grep -E "Package|Depends" >&2
CONTENTS=$(dpkg-deb --contents "$DEB")  # whole, not piped into grep -q (dpkg-deb dies of SIGPIPE)
for f in ./usr/bin/whispercms-server ./lib/systemd/system/whispercms.service \
         ./usr/share/doc/whispercms-server/settings.example.toml; do
  grep -q " $f\$" <<< "$CONTENTS" || { echo "missing from the package: $f" >&2; exit 1; }
done

echo "== install"
dpkg -i "$DEB" > "$W/dpkg.log" 2>&1 || { cat "$W/dpkg.log" >&2; exit 1; }
getent passwd whispercms > /dev/null || { echo "no whispercms user" >&2; exit 1; }
[ "$(stat -c '%U %a' /var/lib/whispercms)" = "whispercms 750" ] || { stat /var/lib/whispercms >&2; exit 1; }
[ "$(stat -c '%U %a' /etc/whispercms)" = "whispercms 750" ] || { stat /etc/whispercms >&2; exit 1; }
echo "== systemd-analyze verify"
# Silent when the unit is sound: an unknown key, a bad value or a missing binary is printed.
VERIFY=$(systemd-analyze verify /lib/systemd/system/whispercms.service 2>&1) || true
[ -z "$VERIFY" ] || { echo "the unit has problems: $VERIFY" >&2; exit 1; }

echo "== init and serve as the whispercms user"
ssh-keygen -q -t ed25519 -N "" -C operator -f "$W/admin"
SSH_PORT=$(free_port)
HTTP_PORT=$(python3 -c '
import socket
for p in range(900, 1000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass')
runuser -u whispercms -- whispercms-server --config /etc/whispercms/settings.toml init --admin-key - \
  --admin-id operator --data-dir /var/lib/whispercms --ssh-listen "127.0.0.1:$SSH_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" < "$W/admin.pub" > "$W/init.out"
cat "$W/init.out" >&2
[ "$(stat -c '%U %a' /var/lib/whispercms/keys/ssh_host_ed25519)" = "whispercms 600" ]
# What the unit grants: the whispercms user with CAP_NET_BIND_SERVICE only (a port below 1024).
setpriv --reuid whispercms --regid whispercms --init-groups --inh-caps +net_bind_service \
  --ambient-caps +net_bind_service -- env WHISPERCMS_LOG=info JOURNAL_STREAM=8:1 \
  whispercms-server --config /etc/whispercms/settings.toml serve > "$W/server.out" 2> "$W/server.log" &
echo $! > "$W/server.pid"
for _ in $(seq 200); do grep -q "http listening" "$W/server.out" 2> /dev/null && break; sleep 0.05; done
grep -q "http listening on 127.0.0.1:$HTTP_PORT" "$W/server.out" || { cat "$W/server.out" "$W/server.log" >&2; exit 1; }
[ "$(ps -o user= -p "$(cat "$W/server.pid")")" = whispercms ]

echo "== clone, push, served"
grep -m1 "known_hosts line:" "$W/init.out" | sed 's/.*known_hosts line: //' > "$W/known_hosts"
export GIT_SSH_COMMAND="ssh -F /dev/null -i $W/admin -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$W/known_hosts -o StrictHostKeyChecking=yes"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
git clone -q "ssh://git@127.0.0.1:$SSH_PORT/site.git" "$W/site"
printf '+++\ntitle = "Packaged"\n+++\nInstalled from the Debian package.\n' > "$W/site/content/packaged.md"
git -C "$W/site" add -A
git -C "$W/site" -c user.name=Op -c user.email=op@example.org commit -qm "a page"
git -C "$W/site" push -q origin main
curl -sf "http://127.0.0.1:$HTTP_PORT/packaged/" | grep -q "Installed from the Debian package."
# Under the journal (JOURNAL_STREAM) log lines carry no time stamp of their own.
grep -q "INFO" "$W/server.log" || { echo "no log lines to check" >&2; exit 1; }
if grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T" "$W/server.log"; then echo "time stamps under the journal" >&2; exit 1; fi

echo "== purge"
kill "$(cat "$W/server.pid")"; wait "$(cat "$W/server.pid")" 2> /dev/null || true; rm -f "$W/server.pid"
dpkg --purge whispercms-server > /dev/null
! getent passwd whispercms > /dev/null || { echo "the user is left after purge" >&2; exit 1; }
echo "package: ok"
