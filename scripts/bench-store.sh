#!/usr/bin/env bash
# A shared store on a real S3-compatible object store (SeaweedFS on loopback)
# against a local folder, same documents, same questions, in one run: indexing
# throughput, and retrieval latency p50/p95 per mode as a reader searches.
#
#   scripts/bench-store.sh [PATHS…]   (default: the R manuals of the corpus)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/objectstore.sh" ""
trap 'kill $DOCCHAT_OBJECTSTORE_PID 2>/dev/null || true' EXIT
paths=("$@")
[ "${#paths[@]}" -gt 0 ] || paths=("$here/../../shared/corpus/manuals/R-ints.pdf")
cd "$here/.."
"$CARGO_TARGET_DIR/debug/docchat" bench store --store s3://docchat/bench \
  --questions tests/eval/qa.jsonl "${paths[@]}"
