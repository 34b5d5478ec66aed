#!/usr/bin/env bash
# Fetches the Italian documents of the Italian question set (tests/eval/qa-it.jsonl):
# two Debian manuals in Italian, from the Debian packages maint-guide-it and
# debian-reference-it, unpacked (not installed) into $DOCCHAT_CACHE/corpus-it and
# sha256-checked (the questions' pages are those of these exact files). Idempotent:
# when the files are there and verified, no network.
#
#   scripts/corpus-it.sh    prints the folder that holds the two PDFs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
dir="$DOCCHAT_CACHE/corpus-it"
mkdir -p "$dir"

# package version file-in-package sha256
files=(
  "maint-guide-it 1.2.53 usr/share/doc/maint-guide-it/maint-guide.it.pdf dbb6ef70c791a45d18e78d2108abe4586ba6b5a24ce7f5105058c53249e267a1"
  "debian-reference-it 2.100 usr/share/debian-reference/debian-reference.it.pdf 39fa71e20da584f04e4cc530f469f0314846ce497d3312a6017f2d79f1847848"
)
for entry in "${files[@]}"; do
  read -r package version inside sha <<<"$entry"
  out="$dir/$(basename "$inside")"
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum --check --status; then
    continue
  fi
  echo "corpus-it: fetching $package $version from Debian" >&2
  tmp="$(mktemp -d)"
  # The package lists may be missing or stale on a machine whose system packages
  # were all there already: refresh them once and try again.
  download() { (cd "$tmp" && apt-get download -q "$package=$version" >/dev/null 2>&1); }
  download || {
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
    download
  } || {
    echo "corpus-it: cannot download $package=$version (apt-get download; is the Debian archive reachable?)" >&2
    rm -rf "$tmp"
    exit 1
  }
  dpkg-deb -x "$tmp"/"${package}"_*.deb "$tmp/x"
  if ! echo "$sha  $tmp/x/$inside" | sha256sum --check --status; then
    echo "corpus-it: $inside of $package $version does not match its checksum" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mv "$tmp/x/$inside" "$out"
  rm -rf "$tmp"
done
echo "$dir"
