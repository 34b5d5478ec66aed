#!/usr/bin/env bash
# Concurrent questions through one reader against two readers of the same shared
# store, both sending generation to one remote generator (another docchat), on
# loopback, in one run: requests/s and time to first token (p50/p95).
#
#   scripts/bench-team.sh [QUESTIONS_AT_ONCE] [ROUNDS]   (default 4 at once, 3 rounds)
#
# The store is SeaweedFS (scripts/objectstore.sh); the writer indexes R-ints.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
at_once="${1:-4}"
rounds="${2:-3}"
source "$here/objectstore.sh" ""
cd "$here/.."
docchat="$CARGO_TARGET_DIR/debug/docchat"
work="$(mktemp -d -t docchat-team-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$DOCCHAT_OBJECTSTORE_PID" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/docs"
cp "$here/../../shared/corpus/manuals/R-ints.pdf" "$work/docs/"
echo "$work/docs = manuals" > "$work/watch"
: > "$work/none"
store="s3://docchat/team-$(date +%s)"

start() { # name, args… : starts a docchat serve, waits for its address
  local name=$1; shift
  "$docchat" serve --host 127.0.0.1 --port 0 --data-dir "$work/$name" "$@" \
    > "$work/$name.out" 2> "$work/$name.log" &
  pids+=($!)
  for _ in $(seq 1 600); do
    grep -q '^listening on ' "$work/$name.out" 2>/dev/null && break
    sleep 0.2
  done
  sed -n 's/^listening on //p' "$work/$name.out"
}

writer=$(start writer --store "$store" --watch-dirs "$work/watch")
echo "writer $writer: indexing R-ints into $store …" >&2
python3 - "$writer" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
while True:
    s = json.load(urllib.request.urlopen(base + "/api/status"))
    docs = s["documents"]
    if s["reconciled"] and s["queue"] == 0 and docs and all(d["state"] == "indexed" for d in docs):
        break
    time.sleep(1)
PY
generator=$(start generator --watch-dirs "$work/none")
r1=$(start reader1 --role reader --store "$store" --generator "$generator/v1" --watch-dirs "$work/none")
r2=$(start reader2 --role reader --store "$store" --generator "$generator/v1" --watch-dirs "$work/none")
echo "generator $generator, readers $r1 $r2" >&2

python3 - "$at_once" "$rounds" "$r1" "$r2" <<'PY'
import http.client, json, statistics, sys, threading, time, urllib.parse
at_once, rounds, r1, r2 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
questions = [json.loads(l)["question"] for l in open("tests/eval/qa.jsonl") if "R-ints" in l]

def ask(base, q, out):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"question": q, "save": False, "max_tokens": 32})
    t0 = time.monotonic()
    c.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    ttft = None
    # The body, chunk-decoded, line by line to its end.
    for line in r:
        if ttft is None and line.startswith(b"event: token"):
            ttft = time.monotonic() - t0
    out.append((r.status, ttft, time.monotonic() - t0))

def run(bases):
    results, n = [], 0
    start = time.monotonic()
    for _ in range(rounds):
        threads = []
        for i in range(at_once):
            q = questions[n % len(questions)]; n += 1
            t = threading.Thread(target=ask, args=(bases[i % len(bases)], q, results))
            t.start(); threads.append(t)
        for t in threads:
            t.join()
    wall = time.monotonic() - start
    ok = [r for r in results if r[0] == 200 and r[1] is not None]
    ttfts = sorted(r[1] for r in ok)
    p = lambda q: ttfts[min(len(ttfts) - 1, int(q * len(ttfts)))] if ttfts else float("nan")
    return len(results), len(ok), len(results) / wall, p(0.5), p(0.95)

# Warm both readers and the generator once.
for b in (r1, r2):
    ask(b, questions[0], [])
print(f"{at_once} questions at once, {rounds} rounds, 32 tokens each; one remote generator\n")
print("readers  requests  ok  requests/s  ttft p50 s  ttft p95 s")
for name, bases in (("1", [r1]), ("2", [r1, r2])):
    n, ok, rps, p50, p95 = run(bases)
    print(f"{name:<8} {n:>8}  {ok:>2}  {rps:>10.3f}  {p50:>10.2f}  {p95:>10.2f}")
PY
