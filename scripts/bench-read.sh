#!/usr/bin/env bash
# Whole-document reading on R-ints (81 pages): "list every environment variable
# this manual mentions", read to the last page by the default chat model, against
# the list a pattern makes from the manual's text (R_… and _R_…_ names, the way the
# manual writes its variables); then the same question again (the kept notes).
#
#   scripts/bench-read.sh [CHAT_MODEL.gguf]
#
# KEEP=DIR keeps the answers (first.json, second.json) and the index there.
# Prints the time, peak memory (RSS of the docchat process), the windows, the
# items' recall and precision against the pattern's list, and the second run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/bench-r-ints.sh"
question="List every environment variable this manual mentions"

for run in first second; do
    /usr/bin/time -f "%e %M" -o "$work/time" \
        "$docchat" ask --json --document "$work/docs/R-ints.pdf" "$question" \
        > "$work/$run.json" 2>/dev/null
    read -r secs kb < "$work/time"
    echo "$run run: $secs s, peak RSS $((kb / 1024)) MB"
done

pdftotext "$manual" "$work/text.txt"
python3 - "$work" <<'EOF'
import json, re, sys
work = sys.argv[1]
text = open(f"{work}/text.txt").read()
expected = {w for w in re.findall(r"[A-Za-z0-9_]+", text)
            if re.fullmatch(r"_?R_[A-Z0-9_]+", w) and len(w.lstrip("_")) > 3}
first = json.load(open(f"{work}/first.json"))
second = json.load(open(f"{work}/second.json"))
items = [l[2:].split(" (p")[0] for l in first["answer"].splitlines() if l.startswith("- ")]
found = {i for i in items if i in expected}
r = first["reading"]
print(f"windows {r['windows_total']}, pages {r['pages_read']} of {r['pages_total']}, "
      f"passages {r['passages_read']}")
print(f"items {len(items)}, in the pattern's list {len(found)} of {len(expected)}: "
      f"recall {len(found) / len(expected):.2f}, precision {len(found) / max(len(items), 1):.2f}")
# The answers without their last line (the coverage, which names the time taken).
same = first["answer"].rsplit("\n\n", 1)[0] == second["answer"].rsplit("\n\n", 1)[0]
print(f"second run: {second['reading']['from_cache']} of {second['reading']['windows_total']} "
      f"windows from the kept notes, same items: {same}")
print("items not in the pattern's list:", sorted(set(items) - expected)[:40])
EOF
