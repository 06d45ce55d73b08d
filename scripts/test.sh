#!/usr/bin/env bash
# Runs the whole test suite: format check, clippy, unit tests and the end-to-end tests (the real
# git/ssh clients against the real server binary on 127.0.0.1). Installs missing Debian packages
# (git, openssh-client, a C toolchain) itself. Needs: a Rust toolchain (cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}"
use_shared_target_dir

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace
