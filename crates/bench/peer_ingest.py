"""The Python ingestion pipeline docchat's benchmarks compare against.

What a user would otherwise assemble from PyPI, written the way the common
tutorials write it: pypdf reads each page, each page's text is split into
1,000-character chunks overlapping by 200, llama-cpp-python embeds them with the
same GGUF embedding model docchat uses (same threads, 512-token batches), and
lancedb's Python package stores them, one table add per file. It has no
incremental update: a changed file is deleted from the table and ingested again.

    peer_ingest.py --model M.gguf --db DIR ingest PATH...   # folders or files
    peer_ingest.py --model M.gguf --db DIR reingest FILE    # after an edit

Prints one JSON object: files, pages, chunks, wall_s, embed_s, extract_s, write_s
(the wall time counts from the first file read to the last write; loading the
model and importing the packages are not counted, as docchat's server has its
models loaded too).
"""

import argparse
import json
import os
import sys
import time

import lancedb
import pyarrow as pa
from llama_cpp import Llama
from pypdf import PdfReader

CHUNK_CHARS = 1000
OVERLAP_CHARS = 200
EMBED_BATCH = 32


def split(text, size=CHUNK_CHARS, overlap=OVERLAP_CHARS):
    """Fixed-size character windows, cut at the last space when there is one."""
    text = " ".join(text.split())
    out = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            if space > start:
                end = space
        out.append(text[start:end])
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return out


def pdf_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for n in sorted(names):
                    if n.lower().endswith(".pdf"):
                        yield os.path.join(root, n)
        elif p.lower().endswith(".pdf"):
            yield p


class Peer:
    def __init__(self, model, db, threads):
        self.llm = Llama(
            model_path=model,
            embedding=True,
            n_ctx=512,
            n_batch=512,
            n_ubatch=512,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.dim = self.llm.n_embd()
        self.db = lancedb.connect(db)
        self.schema = pa.schema(
            [
                pa.field("path", pa.string()),
                pa.field("page", pa.int32()),
                pa.field("text", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), self.dim)),
            ]
        )
        self.table = self.db.create_table("chunks", schema=self.schema, exist_ok=True)
        self.figures = dict(files=0, failed=0, pages=0, chunks=0, embed_s=0.0, extract_s=0.0, write_s=0.0)

    def ingest_file(self, path):
        f = self.figures
        t = time.perf_counter()
        try:
            reader = PdfReader(path)
            pages = [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
        except Exception as e:  # a broken file is skipped, as a user's script would
            print(f"{path}: {e}", file=sys.stderr)
            f["failed"] += 1
            f["extract_s"] += time.perf_counter() - t
            return
        chunks = [(n, c) for n, text in pages for c in split(text)]
        f["extract_s"] += time.perf_counter() - t
        rows = []
        t = time.perf_counter()
        for i in range(0, len(chunks), EMBED_BATCH):
            part = chunks[i : i + EMBED_BATCH]
            vectors = self.llm.embed([c for _, c in part])
            rows.extend(
                {"path": path, "page": n, "text": c, "vector": v} for (n, c), v in zip(part, vectors)
            )
        f["embed_s"] += time.perf_counter() - t
        t = time.perf_counter()
        if rows:
            self.table.add(rows)
        f["write_s"] += time.perf_counter() - t
        f["files"] += 1
        f["pages"] += len(pages)
        f["chunks"] += len(chunks)

    def delete(self, path):
        t = time.perf_counter()
        escaped = path.replace("'", "''")
        self.table.delete(f"path = '{escaped}'")
        self.figures["write_s"] += time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("command", choices=["ingest", "reingest"])
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    peer = Peer(a.model, a.db, a.threads)
    started = time.perf_counter()
    if a.command == "reingest":
        for p in a.paths:
            peer.delete(p)
            peer.ingest_file(p)
    else:
        for p in pdf_files(a.paths):
            peer.ingest_file(p)
    wall = time.perf_counter() - started
    out = dict(peer.figures, wall_s=wall, rows=peer.table.count_rows())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
