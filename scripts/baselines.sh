#!/usr/bin/env bash
# Builds the baselines docchat's benchmarks compare against, from PyPI, into
# $DOCCHAT_CACHE/bench (idempotent):
#   - llama.cpp's own tools (llama-bench, llama-server, llama-embedding) from the
#     source distribution of llama-cpp-python, which carries a full llama.cpp;
#     built like docchat's copy: Release, native instruction set, OpenMP, no CURL;
#   - the Python peer pipeline a user would otherwise assemble (pypdf +
#     llama-cpp-python built from that same source + lancedb), in a venv at
#     $DOCCHAT_CACHE/bench/peer-venv, run by crates/bench/peer_ingest.py;
#   - R's reference manual (Debian package r-doc-pdf: fullrefman.pdf, 2,415
#     pages), unpacked into $DOCCHAT_CACHE/bench/r-doc-pdf.
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
# Built as docchat's llama.cpp is (scripts/env.sh): native instruction set, and the
# same release flags (on x86-64, without the AMX kernels).
native=(-DGGML_NATIVE=ON)
[ -n "${CMAKE_CXX_FLAGS_RELEASE:-}" ] && native+=("-DCMAKE_CXX_FLAGS_RELEASE=$CMAKE_CXX_FLAGS_RELEASE")
if [ ! -x "$build/bin/llama-embedding" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release "${native[@]}" \
        -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF >&2
    cmake --build "$build" --config Release -j "$(nproc)" --target "${tools[@]}" >&2
fi

# The same tools built on docchat's own llama.cpp (the copy inside the
# llama-cpp-sys-2 crate, which has no tool sources): that tree with the tools'
# sources taken from the source distribution above. Against these, a difference
# is docchat's wrapping alone, not a difference between llama.cpp versions.
sys_manifest="$(cd "$here/.." && cargo metadata --format-version 1 --locked 2>/dev/null |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "llama-cpp-sys-2"))')"
sys_src="$(dirname "$sys_manifest")/llama.cpp"
sys_version="$(basename "$(dirname "$sys_manifest")")"
same_src="$bench/$sys_version-tools-src"
same="$bench/$sys_version-tools-build"
if [ ! -x "$same/bin/llama-embedding" ]; then
    rm -rf "$same_src"
    cp -r "$sys_src" "$same_src"
    mkdir -p "$same_src/tools/llama-bench" "$same_src/examples/embedding"
    cp "$src"/tools/llama-bench/* "$same_src/tools/llama-bench/"
    cp "$src"/examples/embedding/* "$same_src/examples/embedding/"
    printf 'llama_add_compile_flags()\nadd_subdirectory(llama-bench)\n' >"$same_src/tools/CMakeLists.txt"
    printf 'add_subdirectory(embedding)\n' >"$same_src/examples/CMakeLists.txt"
    cmake -S "$same_src" -B "$same" -DCMAKE_BUILD_TYPE=Release "${native[@]}" \
        -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_MTMD=OFF -DLLAMA_BUILD_APP=OFF >&2
    cmake --build "$same" --config Release -j "$(nproc)" --target llama-bench llama-embedding >&2
fi

peer="$bench/peer-venv"
if ! "$peer/bin/python" -c "import llama_cpp, lancedb, pypdf" 2>/dev/null; then
    python3 -m venv "$peer"
    "$peer/bin/pip" install --quiet "pypdf==${PYPDF_VERSION:-7.1.0}" "lancedb==${LANCEDB_VERSION:-0.40.0}" >&2
    CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF${CMAKE_CXX_FLAGS_RELEASE:+ '-DCMAKE_CXX_FLAGS_RELEASE=$CMAKE_CXX_FLAGS_RELEASE'}" \
        "$peer/bin/pip" install --quiet "$bench/llama_cpp_python-$version.tar.gz" >&2
fi

rdoc="$bench/r-doc-pdf"
if [ ! -f "$rdoc/fullrefman.pdf" ]; then
    mkdir -p "$rdoc/deb"
    (cd "$rdoc/deb" && apt-get download r-doc-pdf >&2)
    dpkg-deb -x "$rdoc"/deb/r-doc-pdf_*.deb "$rdoc/unpacked"
    cp "$rdoc/unpacked/usr/share/R/doc/manual/fullrefman.pdf" "$rdoc/fullrefman.pdf"
fi

echo "tools: $build/bin"
echo "tools on docchat's llama.cpp: $same/bin"
echo "peer python: $peer/bin/python"
echo "fullrefman: $rdoc/fullrefman.pdf"
echo "baseline llama.cpp: $("$build/bin/llama-bench" --version 2>&1 | head -1)"
echo "docchat's llama.cpp ($sys_version): $("$same/bin/llama-bench" --version 2>&1 | head -1)"
