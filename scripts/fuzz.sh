#!/usr/bin/env bash
# Fuzzes docchat's extraction entry points (crates/ingest/fuzz) for a bounded time
# each, seeded from the real documents of ../shared/corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets: extract_pdf extract_docx extract_odt extract_pptx extract_epub
# extract_sheets extract_html extract_text (default: all, 60 s each). Inputs that
# crash, hang (20 s) or take more than 2 GB are written to
# $DOCCHAT_CACHE/fuzz/artifacts/TARGET/ and the script exits 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(extract_pdf extract_docx extract_odt extract_pptx extract_epub extract_sheets extract_html extract_text)

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzzing needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

shared="$(cd "$here/../.." && pwd)/shared/corpus"
work="$DOCCHAT_CACHE/fuzz"

seed() { # seed TARGET EXTENSION...: the corpus files of those types, up to 2 MB each
    local dir="$work/corpus/$1"
    shift
    mkdir -p "$dir"
    for ext in "$@"; do
        find "$shared" -type f -iname "*.$ext" -size -2M -print0 |
            while IFS= read -r -d '' f; do
                cp -n "$f" "$dir/seed-$(basename "$f" | tr -c 'A-Za-z0-9._-' '_')"
            done
    done
}

failed=0
for t in "${targets[@]}"; do
    case "$t" in
        extract_pdf) seed "$t" pdf ;;
        extract_docx) seed "$t" docx ;;
        # No ODT in the corpus: its sibling packages (ODS workbooks, DOCX) seed
        # the ZIP and XML shapes.
        extract_odt) seed "$t" ods docx ;;
        extract_pptx) seed "$t" pptx ;;
        extract_epub) seed "$t" epub ;;
        extract_sheets) seed "$t" xlsx xls xlsb ods ;;
        extract_html | extract_text)
            seed "$t" md
            printf '<html><head><title>T</title><script>x()</script></head><body><p>Caf&eacute; &#x263A; <b>bold</b></p></body></html>' \
                >"$work/corpus/$t/seed-page.html"
            printf 'plain\ftext\xff\xfe on two pages\r\n' >"$work/corpus/$t/seed-plain.txt"
            ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    mkdir -p "$work/artifacts/$t"
    echo "== $t: $secs s from $(ls "$work/corpus/$t" | wc -l) inputs"
    if ! (cd "$here/../crates/ingest" &&
        CARGO_TARGET_DIR="$DOCCHAT_CACHE/fuzz-target" cargo +nightly fuzz run "$t" "$work/corpus/$t" -- \
            -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=4194304 \
            -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1); then
        echo "== $t: FOUND a crash, hang or memory blow-up; inputs in $work/artifacts/$t/" >&2
        failed=1
    fi
done
exit "$failed"
