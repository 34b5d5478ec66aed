#!/usr/bin/env bash
# Sets up (system packages, default models), builds, and runs docchat on the folders
# in watch-dirs.example. Extra arguments go to `docchat serve`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
bash "$here/setup.sh"
bash "$here/build.sh"
cd "$here/.."
mkdir -p "$HOME/docchat-inbox"
exec "$CARGO_TARGET_DIR/debug/docchat" serve \
  --watch-dirs "${DOCCHAT_WATCH_DIRS:-watch-dirs.example}" \
  --port "${DOCCHAT_PORT:-8080}" "$@"
