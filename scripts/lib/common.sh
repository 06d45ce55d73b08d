# Shared helpers for the scripts in scripts/. Source it; it changes nothing by itself.

# Install Debian packages that are not installed yet (as root, or with sudo).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Fail with a clear message if the Rust toolchain is missing.
ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install the Rust toolchain (rustup, stable) and run this again" >&2
    exit 1
  fi
}

# Build output outside the work tree when the machine allows it, so fresh clones reuse builds.
use_shared_target_dir() {
  if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    local dir=/var/cache/whispercms-target
    if mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; then
      export CARGO_TARGET_DIR="$dir"
      prune_target_dir "$dir"
    fi
  fi
}

# The shared target dir grows with every dependency, feature or profile change (a new hash beside
# the old one; a fresh clone of an unchanged tree reuses what is there) and with incremental
# caches. A disk that fills mid-build kills
# the linker (SIGBUS on its mapped output), so prune before building when space is short or the
# directory is large: the incremental caches, test and example executables not rebuilt in the last
# hour (a fresh clone rebuilds its own anyway), and of each library every build but the four most
# recently written (older ones belong to dependency versions and feature sets no longer used).
# Four, not two: one crate has several live builds at once (clippy's check build, the test build,
# feature sets that differ between workspace members); keeping two deleted live ones, and the next
# run rebuilt half the dependency tree from cold (about 20 minutes here).
prune_target_dir() {
  local dir="$1" free size
  free=$(df -Pk "$dir" | awk 'NR==2 {print int($4 / 1048576)}')
  size=$(du -sk "$dir" 2>/dev/null | awk '{print int($1 / 1048576)}')
  if [ "${free:-0}" -lt 25 ] || [ "${size:-0}" -gt 60 ]; then
    echo "${free} GiB free, ${size} GiB in $dir: pruning (incremental caches, old executables, superseded libraries)" >&2
    rm -rf "$dir"/*/incremental
    find "$dir"/*/deps "$dir"/*/examples -maxdepth 1 -type f -mmin +60 -regextype posix-extended -regex '.*-[0-9a-f]{16}' \
      -delete 2>/dev/null || true
    python3 - "$dir" <<'PRUNE'
import collections, os, re, sys
for deps in (os.path.join(sys.argv[1], p, "deps") for p in ("debug", "release")):
    if not os.path.isdir(deps):
        continue
    builds = collections.defaultdict(list)
    for name in os.listdir(deps):
        m = re.match(r"(.+)-[0-9a-f]{16}\.(rlib|rmeta|so|d)$", name)
        if m:
            path = os.path.join(deps, name)
            builds[m.groups()].append((os.path.getmtime(path), path))
    for found in builds.values():
        for _, path in sorted(found, reverse=True)[4:]:
            os.remove(path)
PRUNE
  fi
}

# A free TCP port on 127.0.0.1 (benchmarks start their own servers).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The packages every build and test needs.
BASE_PACKAGES=(git openssh-client ca-certificates pkg-config gcc g++ libc6-dev bc cmake curl openssl)
# tauri-driver (cargo install): the WebDriver server in front of WebKitWebDriver for the desktop
# window's test.
ensure_tauri_driver() {
  command -v tauri-driver > /dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/tauri-driver" ] && return 0
  cargo install --quiet --locked tauri-driver
}

# cargo-deb (cargo install): builds the Debian packages (scripts/test-package.sh, package-desktop.sh).
ensure_cargo_deb() {
  command -v cargo-deb > /dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/cargo-deb" ] && return 0
  cargo install --quiet --locked cargo-deb --version 3.8.0  # the version the scripts were tried with
}

# What the desktop app (Tauri 2, WebKitGTK) builds against, and what its window tests run on.
# cargo-fuzz (cargo install): libFuzzer builds and runs of fuzz/ (scripts/fuzz.sh).
ensure_cargo_fuzz() {
  command -v cargo-fuzz > /dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/cargo-fuzz" ] && return 0
  cargo install --quiet --locked cargo-fuzz --version 0.13.2  # the version the script was tried with
}

DESKTOP_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev xvfb webkit2gtk-driver x11-apps imagemagick)

# A work directory under /tmp for a benchmark, removed on exit with the server and nginx it
# started (their pids in server.pid / nginx.pid). Sets W.
bench_workdir() {
  W=$(mktemp -d "/tmp/whispercms-$1.XXXXXX")
  trap 'bench_cleanup' EXIT
}
bench_cleanup() {
  [ -f "$W/server.pid" ] && kill "$(cat "$W/server.pid")" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  # BENCH_KEEP=1 keeps the work directory (data dir, generated site, logs) for a closer look.
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}

# Start nginx as the current user serving directory $1 on 127.0.0.1:$2 (config and temp files
# under $W; nothing else is touched).
start_nginx() {
  mkdir -p "$W/nginx"
  cat > "$W/nginx.conf" <<CFG
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  server { listen 127.0.0.1:$2; root $1; etag on; }
}
CFG
  # nginx's workers run as an unprivileged user when started as root: they must be able to
  # read the files (mktemp -d makes a private directory).
  chmod a+rx "$W"
  chmod -R a+rX "$1"
  nginx -c "$W/nginx.conf"
  sleep 0.3
  local probe
  probe=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/")
  case "$probe" in 200|403|404) ;; *) echo "nginx did not start (got $probe)" >&2; exit 1 ;; esac
}

# Fail unless $1 answers 200 (a benchmark must not measure error responses).
require_200() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "$1")
  [ "$code" = 200 ] || { echo "$1 answered $code, not 200: not measuring that" >&2; exit 1; }
}

# The benchmark repository of scripts/bench-git.sh and scripts/bench-follow.sh, as a work tree
# at $1: a 4000-file site, then 1500 commits of 5 files each (~20k objects), packed.
bench_repo() {
  local dir=$1
  git init -q -b main "$dir"
  python3 - "$dir/.stream" <<'PY'
import sys
out = open(sys.argv[1], "w")
t = 1_700_000_000
def blob(path, text):
    out.write(f"M 100644 inline {path}\ndata {len(text.encode())}\n{text}\n")
out.write(f"commit refs/heads/main\ncommitter Bench <b@e> {t} +0000\ndata 7\ninitial\n")
for d in range(100):
    for f in range(40):
        blob(f"content/section{d}/page{f}.md", f"+++\ntitle = \"Page {d}/{f}\"\n+++\n\n" + f"Body of page {d}/{f}.\n" * 20)
for c in range(1, 1501):
    out.write(f"commit refs/heads/main\ncommitter Bench <b@e> {t + c} +0000\ndata {len(str(c)) + 5}\nedit {c}\n")
    for k in range(5):
        n = (c * 7 + k * 13) % 4000
        blob(f"content/section{n // 40}/page{n % 40}.md", f"+++\ntitle = \"Page {n} v{c}\"\n+++\n\n" + f"Edited in commit {c}.\n" * 20)
PY
  git -C "$dir" fast-import --quiet < "$dir/.stream"
  rm -f "$dir/.stream"
  git -C "$dir" repack -adq
  git -C "$dir" checkout -q main
}

# Start OpenSSH's sshd as the current user on a free 127.0.0.1 port with its own host key and
# config under $W, accepting the public key $1 (and GIT_PROTOCOL, for protocol v2). Sets
# SSHD_PORT; the pid is in $W/sshd.pid.
start_sshd() {
  SSHD_PORT=$(free_port)
  ssh-keygen -q -t ed25519 -N "" -f "$W/sshd_host"
  cp "$1" "$W/authorized_keys"
  mkdir -p /run/sshd 2>/dev/null || true
  cat > "$W/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $W/sshd_host
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin yes
AcceptEnv GIT_PROTOCOL
CFG
  "$(command -v sshd || echo /usr/sbin/sshd)" -f "$W/sshd_config" -E "$W/sshd.log"
  for _ in $(seq 100); do [ -f "$W/sshd.pid" ] && return 0; sleep 0.05; done
  echo "sshd did not start" >&2; cat "$W/sshd.log" >&2; exit 1
}
