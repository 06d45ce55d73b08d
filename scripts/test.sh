#!/usr/bin/env bash
# Runs the whole test suite: format check, clippy, unit tests and the end-to-end tests (the real
# git/ssh clients against the real server binary on 127.0.0.1). Installs missing Debian packages
# (git, openssh-client, openssh-server for the Git client tests, a C toolchain, the WebKitGTK -dev
# packages the desktop app builds against) itself. Needs: a Rust toolchain (cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" openssh-server  # sshd: the reference server of the Git client tests
ensure_packages "${DESKTOP_PACKAGES[@]}"
use_shared_target_dir
ensure_tauri_driver

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# No doc tests in the workspace: test libraries, binaries and test targets.
set +e
cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | paste -sd+ - | bc)
failed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | paste -sd+ - | bc)
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
[ "$status" = 0 ] || exit "$status"
echo "== the Debian package, installed"
scripts/test-package.sh
