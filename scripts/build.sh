#!/usr/bin/env bash
# Builds docchat (the one build profile everything uses) and makes sure the default
# embedding model exists as GGUF, imported by docchat's own importer.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/.."

cargo build --locked --workspace "$@"
docchat_bin="$CARGO_TARGET_DIR/debug/docchat"
gguf="$DOCCHAT_MODELS_DIR/all-MiniLM-L6-v2.gguf"
if [ ! -f "$gguf" ]; then
  "$docchat_bin" models import "$DOCCHAT_MODELS_DIR/all-MiniLM-L6-v2" --out "$gguf"
fi
