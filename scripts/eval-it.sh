#!/usr/bin/env bash
# Retrieval on Italian documents: the Italian question set (tests/eval/qa-it.jsonl)
# over the two Italian Debian manuals (scripts/corpus-it.sh), page recall@1/5/10 and
# MRR per search mode, as `docchat eval` reports them.
#
#   scripts/eval-it.sh [--answers ...]    extra arguments go to `docchat eval`
#
# KEEP=DIR keeps the index there (and reuses it when it is there).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
docchat="${DOCCHAT_BIN:-$CARGO_TARGET_DIR/debug/docchat}"
[ -x "$docchat" ] || (cd "$here/.." && cargo build --offline -p docchat -p docchat-bench)
corpus="$("$here/corpus-it.sh")"

if [ -n "${KEEP:-}" ]; then
    work="$KEEP"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/manuali"
cp -n "$corpus"/*.pdf "$work/manuali/"
export DOCCHAT_DATA_DIR="$work/data"
"$docchat" index "$work/manuali" >/dev/null
"$docchat" eval "$here/../tests/eval/qa-it.jsonl" "$@"
