#!/usr/bin/env bash
# Builds the baselines docchat's benchmarks compare against, from PyPI, into
# $DOCCHAT_CACHE/bench (idempotent):
#   - llama.cpp's own tools (llama-bench, llama-server, llama-embedding) from the
#     source distribution of llama-cpp-python, which carries a full llama.cpp;
#     built like docchat's copy: Release, native instruction set, OpenMP, no CURL.
# Prints the directory of the tools and the llama.cpp version of each side.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
bench="$DOCCHAT_CACHE/bench"
src="$bench/llama_cpp_python-$version/vendor/llama.cpp"
build="$bench/llama.cpp-build-$version"
mkdir -p "$bench"

if [ ! -f "$src/CMakeLists.txt" ]; then
    python3 -m pip download "llama-cpp-python==$version" --no-binary :all: --no-deps -d "$bench" >&2
    tar -xzf "$bench/llama_cpp_python-$version.tar.gz" -C "$bench"
fi
tools=(llama-bench llama-server llama-embedding)
if [ ! -x "$build/bin/llama-embedding" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF >&2
    cmake --build "$build" --config Release -j "$(nproc)" --target "${tools[@]}" >&2
fi
echo "tools: $build/bin"
echo "baseline llama.cpp: $("$build/bin/llama-bench" --version 2>&1 | head -1)"
