#!/usr/bin/env bash
# Sets up (system packages, default models), builds, and runs the whole test suite:
# unit tests of every crate and the end-to-end tests in tests/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
bash "$here/setup.sh"
bash "$here/build.sh"
cd "$here/.."
# --show-output: the corpus, crash and retrieval tests print their counts and figures.
cargo test --locked --workspace -- --test-threads "${DOCCHAT_TEST_THREADS:-2}" --show-output
