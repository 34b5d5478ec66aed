#!/usr/bin/env bash
# Sets up (system packages, default models), builds, and runs the whole test suite:
# unit tests of every crate and the end-to-end tests in tests/. Prints the time of each
# phase; DOCCHAT_BUILD_TIMINGS=1 also has cargo write its per-crate timing reports to
# $CARGO_TARGET_DIR/cargo-timings/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
timings=()
[ "${DOCCHAT_BUILD_TIMINGS:-0}" = 1 ] && timings=(--timings)

phase_start=$(date +%s)
phase() { # name: prints the time since the previous phase ended
  local now
  now=$(date +%s)
  echo "test.sh: phase $1 took $((now - phase_start)) s"
  phase_start=$now
}

bash "$here/setup.sh"
# The Italian manuals of the Italian question set (tests/retrieval.rs).
DOCCHAT_CORPUS_IT="$(bash "$here/corpus-it.sh")"
export DOCCHAT_CORPUS_IT
phase setup
bash "$here/build.sh" "${timings[@]}"
phase build
cd "$here/.."
cargo test --locked --workspace --no-run "${timings[@]}"
phase test-build
# One test at a time: each end-to-end test runs a server whose llama.cpp threads take
# every core, and two such servers side by side slow each other far more than they
# overlap (the suite took 681 s with two test threads, 450 s with one: BENCHMARKS.md).
# --show-output: the corpus, crash and retrieval tests print their counts and figures.
cargo test --locked --workspace -- --test-threads "${DOCCHAT_TEST_THREADS:-1}" --show-output
phase suite
