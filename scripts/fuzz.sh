#!/usr/bin/env bash
# Fuzzes everything the server parses from outside: each target of fuzz/fuzz_targets/ (listed in
# fuzz/src/lib.rs) runs under libFuzzer for SECONDS (default 60), growing its corpus in
# fuzz/corpus/<target>/ (from the seeds in fuzz/seeds/<target>/), which is then minimized (`cargo fuzz cmin`) so only inputs that add
# coverage are kept and committed. An input that breaks a property is left in
# fuzz/artifacts/<target>/ and named at the end: fix it, and move it to fuzz/regressions/<target>/
# so the corpus replay test (fuzz/tests/corpora.rs, part of scripts/test.sh) keeps it fixed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs what it needs (git for the protocol targets, cargo-fuzz); libFuzzer wants a nightly
# rustc's flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}"
use_shared_target_dir
ensure_cargo_fuzz
export RUSTC_BOOTSTRAP=1

seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
# No sanitizer: the code is Rust (ASan finds nothing safe Rust can do, at twice the time per
# run); set FUZZ_SANITIZER=address for the C underneath (SQLite, Oniguruma).
sanitizer=${FUZZ_SANITIZER:-none}
fuzz=(--features libfuzzer --sanitizer "$sanitizer")

echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build "${fuzz[@]}"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  before=$(find "fuzz/corpus/$target" -type f | wc -l)
  echo "== $target: ${seconds}s from $before inputs"
  # -timeout: an input slower than this is a finding (a hang); -rss_limit_mb: so is one that
  # needs more memory than the server's limits allow.
  # New inputs go to the first directory (the corpus); the seeds are read, never rewritten.
  if ! cargo fuzz run "${fuzz[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=262144 \
      -print_final_stats=1 2>&1 | tail -n 25; then
    failed+=("$target")
  fi
  cargo fuzz cmin "${fuzz[@]}" "$target" "fuzz/corpus/$target" > /dev/null 2>&1 || true
  echo "   corpus: $before -> $(find "fuzz/corpus/$target" -type f | wc -l) inputs"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "findings (inputs in fuzz/artifacts/<target>/):"
  printf '  %s\n' "${failed[@]}" | sort -u
  exit 1
fi
echo "no findings"
