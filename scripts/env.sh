# Shared environment for docchat's scripts (sourced, not run).
export DOCCHAT_CACHE="${DOCCHAT_CACHE:-$HOME/.cache/docchat}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DOCCHAT_CACHE/target}"
export DOCCHAT_MODELS_DIR="${DOCCHAT_MODELS_DIR:-$DOCCHAT_CACHE/models}"
