# Sourced by the whole-document benchmarks (bench-read.sh, bench-summary.sh), after
# `set -euo pipefail` and `here=`: a work folder ($work; KEEP=DIR keeps it there,
# else a temporary one removed at exit) holding R-ints in docs/ and its index in
# data/ (DOCCHAT_DATA_DIR), the docchat binary ($docchat, built when missing), and
# the chat model from the script's first argument when there is one.
source "$here/env.sh"
manual="$(cd "$here/../.." && pwd)/shared/corpus/manuals/R-ints.pdf"
docchat="${DOCCHAT_BIN:-$CARGO_TARGET_DIR/debug/docchat}"
[ -x "$docchat" ] || (cd "$here/.." && cargo build --offline -p docchat -p docchat-bench)

if [ -n "${KEEP:-}" ]; then
    work="$KEEP"
    rm -rf "$work"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/docs"
cp "$manual" "$work/docs/"
export DOCCHAT_DATA_DIR="$work/data"
if [ $# -gt 0 ]; then export DOCCHAT_CHAT_MODEL="$1"; fi
"$docchat" index "$work/docs" >/dev/null
