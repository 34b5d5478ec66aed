#!/usr/bin/env bash
# Summaries of parts of R-ints (81 pages) by the default chat model:
#
# 1. "Summarize chapter N" for chapters 1 (26 pages, read in windows) and 6
#    (15 pages), judged by the chapter's section titles: a title is covered when
#    the summary holds most of its words (those of four letters or more). The
#    section titles are taken from the manual's text by a pattern ("N.M Title"
#    lines outside the table of contents).
# 2. The same 20 pages (6-25) summarized twice: in one prompt (a context of
#    20,480 tokens, where they fit) and read in windows then merged (the default
#    4,096): the section titles each covers, how far the two agree (titles covered
#    by both of those covered by either) and the time of each.
#
#   scripts/bench-summary.sh [CHAT_MODEL.gguf]
#
# KEEP=DIR keeps the answers and the index there. Each run starts without kept
# notes, so every window is read.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/bench-r-ints.sh"

# ask NAME QUESTION [CTX]: the answer in NAME.json, the time and peak RSS in NAME.time.
ask() {
    rm -rf "$DOCCHAT_DATA_DIR/notes"
    DOCCHAT_CTX_SIZE="${3:-4096}" /usr/bin/time -f "%e %M" -o "$work/$1.time" \
        "$docchat" ask --json --document "$work/docs/R-ints.pdf" "$2" \
        > "$work/$1.json" 2>/dev/null
}
ask chapter1 "Summarize chapter 1"
ask chapter6 "Summarize chapter 6"
ask pages-whole "Summarize pages 6-25" 20480
ask pages-windows "Summarize pages 6-25"

pdftotext "$manual" "$work/text.txt"
python3 - "$work" <<'EOF'
import json, re, sys
work = sys.argv[1]
text = open(f"{work}/text.txt").read()
pages = text.split("\f")

def sections(chapter=None, first=None, last=None):
    """The "N.M Title" headings outside the table of contents (pages with dot leaders)."""
    out = []
    for i, page in enumerate(pages, 1):
        if page.count(". . .") >= 3 or (first and not first <= i <= last):
            continue
        for line in page.splitlines():
            m = re.fullmatch(r"(\d+)\.(\d+) (\S.{0,60})", line.strip())
            if m and (chapter is None or int(m.group(1)) == chapter):
                out.append(m.group(3))
    return list(dict.fromkeys(out))

def covered(titles, answer):
    low = answer.lower()
    out = set()
    for t in titles:
        words = [w for w in re.findall(r"[a-z0-9_]+", t.lower()) if len(w) >= 4] or [t.lower()]
        if sum(w in low for w in words) * 2 >= len(words) + (len(words) > 1):
            out.add(t)
    return out

def run(name):
    d = json.load(open(f"{work}/{name}.json"))
    secs, kb = open(f"{work}/{name}.time").read().split()
    return d, float(secs), int(kb) // 1024

for n in (1, 6):
    d, secs, mb = run(f"chapter{n}")
    titles = sections(chapter=n)
    got = covered(titles, d["answer"])
    r = d.get("reading") or {}
    print(f"chapter {n}: {secs:.0f} s, peak RSS {mb} MB, windows {r.get('windows_total')}, "
          f"pages {r.get('pages_read')} of {r.get('pages_total')}; section titles covered "
          f"{len(got)} of {len(titles)} ({len(got) / max(len(titles), 1):.2f})")
    print("  not covered:", sorted(set(titles) - got))

titles = sections(first=6, last=25)
res = {}
for name in ("pages-whole", "pages-windows"):
    d, secs, mb = run(name)
    r = d.get("reading") or {}
    res[name] = covered(titles, d["answer"])
    print(f"{name}: {secs:.0f} s, peak RSS {mb} MB, windows {r.get('windows_total')}; "
          f"section titles covered {len(res[name])} of {len(titles)}")
both = res["pages-whole"] & res["pages-windows"]
either = res["pages-whole"] | res["pages-windows"]
print(f"agreement: {len(both)} of the {len(either)} titles covered by either are covered by "
      f"both ({len(both) / max(len(either), 1):.2f})")
for n in ("chapter1", "chapter6", "pages-whole", "pages-windows"):
    a = json.load(open(f"{work}/{n}.json"))["answer"]
    print(f"--- {n}\n{a}\n")
EOF
