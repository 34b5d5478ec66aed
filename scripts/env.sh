# Shared environment for docchat's scripts (sourced, not run).
export DOCCHAT_CACHE="${DOCCHAT_CACHE:-$HOME/.cache/docchat}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DOCCHAT_CACHE/target}"
export DOCCHAT_MODELS_DIR="${DOCCHAT_MODELS_DIR:-$DOCCHAT_CACHE/models}"
# llama.cpp is built for this machine's CPU (GGML_NATIVE, from `-C target-cpu=native`),
# but without its AMX kernels: on CPUs that report AMX (Sapphire Rapids and later) they
# fault on their first tile configuration under some hypervisors (SIGSEGV in
# ggml_backend_amx_mul_mat on the first chat token); the AVX-512 kernels run instead.
# CMAKE_* variables reach llama.cpp's CMake build; the CXXFLAGS one is tracked by cargo,
# so a change here rebuilds llama.cpp.
if [ "$(uname -m)" = x86_64 ]; then
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG $no_amx"
  export CXXFLAGS_x86_64_unknown_linux_gnu="$no_amx"
fi
