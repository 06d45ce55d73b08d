#!/usr/bin/env bash
# Benchmark of extensions on a generated 10,000-page site (release build, this machine):
#   - a page render with the starter's example filters (reading-time, toc) vs without: uncached
#     (each page rendered once) and cached, through the router in-process;
#   - the time to compile and swap 20 plugins (a publish that changes only plugin files).
# Needs: cargo, git, python3 (Debian packages are installed when missing).
# Usage: scripts/bench-extensions.sh [PAGES]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
ensure_cargo
ensure_packages "${BASE_PACKAGES[@]}" python3
use_shared_target_dir
PAGES="${1:-10000}"
cargo build --release --quiet -p site-runtime --example extensions_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/extensions_bench"

W=$(mktemp -d /tmp/whispercms-ext-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=init.defaultBranch GIT_CONFIG_VALUE_0=main
g() { git -C "$W/work" -c user.name=B -c user.email=b@e "$@"; }

echo "generating a $PAGES-page site…" >&2
python3 scripts/lib/gen_site.py "$W/stream" "$PAGES"
git init -q "$W/work"
g fast-import --quiet < "$W/stream"
g checkout -q main
g branch plain
# The starter's filter plugins, enabled.
mkdir -p "$W/work/plugins"
cp -r site-runtime/starter/plugins/reading-time site-runtime/starter/plugins/toc "$W/work/plugins/"
printf 'plugins = ["reading-time", "toc"]\n' >> "$W/work/site.toml"
g add -A && g commit -qm "filters" && g branch filters
# Twenty plugins (filters, functions and routes), in two versions.
g checkout -q --detach plain
NAMES=()
for i in $(seq -w 1 20); do
  NAMES+=("\"p$i\"")
  mkdir -p "$W/work/plugins/p$i"
  printf 'name = "p%s"\nversion = "1"\ncapabilities = ["http.route"]\nfilters = ["page_html"]\nfunctions = ["f%s"]\n[[route]]\npath = "/p%s"\nhandler = "route"\n' "$i" "$i" "$i" > "$W/work/plugins/p$i/plugin.toml"
  printf 'fn page_html(html, page) { html }\nfn f%s(x) { x }\nfn route(request) { #{ json: "p%s" } }\n' "$i" "$i" > "$W/work/plugins/p$i/main.rhai"
done
(IFS=,; printf 'plugins = [%s]\n' "${NAMES[*]}") >> "$W/work/site.toml"
g add -A && g commit -qm "20 plugins" && g branch plugins20-a
for i in $(seq -w 1 20); do echo "// v2" >> "$W/work/plugins/p$i/main.rhai"; done
g commit -qam "20 plugins v2" && g branch plugins20-b

echo "== measuring (uncached: 2,000 distinct pages; cached: 20,000 requests)" >&2
"$BIN" "$W/work/.git" "$W" 2000 | tee "$W/out"
python3 - "$W/out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def grab(branch, what):
    line = next(l for l in text.splitlines() if l.startswith(branch + ":"))
    return float(re.search(what + r" median ([0-9.]+)", line).group(1))
pu, fu = grab("plain", "uncached render"), grab("filters", "uncached render")
pc, fc = grab("plain", " cached"), grab("filters", " cached")
print(f"\nuncached render: {pu:.0f} µs without plugins, {fu:.0f} µs with the example filters "
      f"(+{fu - pu:.0f} µs, {100 * (fu - pu) / pu:+.1f}%; goal < 1 ms per uncached render)")
print(f"cached page: {pc:.2f} µs without, {fc:.2f} µs with ({100 * (fc - pc) / pc:+.1f}%; goal < 10%)")
print(re.search(r"swap: .*", text).group(0))
PY
