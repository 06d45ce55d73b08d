#!/usr/bin/env bash
# Starts whispercms-server on its embedded demo defaults: data in ./whispercms-demo, generated
# host and user keys, SSH on 127.0.0.1:2222. Prints the exact git clone line to paste.
# Installs missing Debian packages itself. Needs: a Rust toolchain (cargo). Extra arguments go to
# `whispercms-server demo` (e.g. --ssh-listen 127.0.0.1:2223, --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}"
use_shared_target_dir
cargo build --release --quiet --bin whispercms-server
exec "${CARGO_TARGET_DIR:-target}/release/whispercms-server" demo "$@"
