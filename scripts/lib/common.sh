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
    fi
  fi
}

# A free TCP port on 127.0.0.1 (benchmarks start their own servers).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The packages every build and test needs.
BASE_PACKAGES=(git openssh-client ca-certificates pkg-config gcc g++ libc6-dev bc cmake)
