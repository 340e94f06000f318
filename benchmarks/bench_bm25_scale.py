"""BM25 at pool scale: build and query time, peak memory and disk for our on-disk index against bm25s
(numba backend, saved and loaded with ``mmap=True``) and tantivy (on-disk, whitespace tokenizer), on
``--passages`` passages of 400-800 characters (about 600) recombined from ../shared/data sentences,
streamed in batches of 20,000 (the pool is never a Python list), every engine fed the same
``analyze(.., "jieba")`` terms. Queries: the 3,219 CMRC 2018 dev questions, top-10; ours also ``rank_of``.

Each engine's build and query run in a fresh child process; peak RSS is the child's ``ru_maxrss`` (for our
build, plus ``workers`` times the largest worker's, an upper bound on their sum). RSS counts the pages of
memory-mapped index files a query touched, so the anonymous peak (``RssAnon``, sampled every 50 ms) is
printed beside it. A child whose RSS passes ``--limit-mb`` stops and reports that instead.
Prints a table, then ``RESULT bm25_scale ours=<peak MB> anchor=<bm25s peak MB> ratio=<r> unit=MB``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from passages import SHARED, _sentences

BATCH = 20_000


def passage_batches(count: int, min_chars: int = 400, max_chars: int = 800) -> Iterator[tuple[list[str], list[str]]]:
    """``count`` passages of consecutive real sentences (cycling with a shifted start), ``BATCH`` at a time."""
    sentences = [s for s in _sentences() if s.strip()]
    made, offset, batch = 0, 0, []
    while made < count:
        buf = ""
        for sentence in sentences[offset:] + sentences[:offset]:
            if len(buf) + len(sentence) > max_chars:
                buf = ""
            buf += sentence
            if len(buf) >= min_chars + (made * 37) % (max_chars - min_chars):
                batch.append(buf)
                buf, made = "", made + 1
                if len(batch) == BATCH or made == count:
                    yield [str(i) for i in range(made - len(batch), made)], batch
                    batch = []
                if made == count:
                    return
        offset += 7


def questions() -> list[str]:
    data = json.loads((SHARED / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    return [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]


class Memory(threading.Thread):
    """Samples this process's VmRSS and RssAnon; ends the process past ``limit_mb``."""

    def __init__(self, limit_mb: float) -> None:
        super().__init__(daemon=True)
        self.limit_mb, self.peak_anon = limit_mb, 0.0

    def run(self) -> None:
        while True:
            fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
            rss, anon = (float(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon"))
            self.peak_anon = max(self.peak_anon, anon)
            if rss > self.limit_mb:
                print(json.dumps({"aborted": f"RSS {rss:,.0f} MB passed the {self.limit_mb:,.0f} MB limit"}))
                sys.stdout.flush()
                os._exit(3)
            time.sleep(0.05)


def median_seconds(run, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child(engine: str, phase: str, folder: Path, passages: int, limit_mb: float) -> dict:
    memory = Memory(limit_mb)
    memory.start()
    start = time.perf_counter()
    out = {"build": BUILD, "query": QUERY}[phase][engine](folder, passages)
    out["seconds"] = out.get("seconds", time.perf_counter() - start)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + out.pop("extra_mb", 0.0)
    out["peak_anon_mb"] = memory.peak_anon
    return out


def build_ours(folder: Path, passages: int) -> dict:
    from pairforge.negatives.bm25 import build_bm25_index

    build_bm25_index(passage_batches(passages), folder / "index", workers=2)
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"extra_mb": 2 * worker, "worker_peak_mb": worker}


def query_ours(folder: Path, passages: int) -> dict:
    from pairforge.analysis.analyze import analyze
    from pairforge.negatives.bm25 import BM25Index

    index, qs = BM25Index.open(folder / "index"), questions()
    terms = analyze(qs, "jieba")  # the engines are timed on analyzed queries; from raw text is printed beside
    index.search_terms(terms[:64], 10)
    search = median_seconds(lambda: index.search_terms(terms, 10))
    raw = median_seconds(lambda: index.search(qs, 10))
    own = np.random.default_rng(0).integers(0, index.n_docs, len(qs))
    rank = median_seconds(lambda: index.rank_of(qs, own))
    return {"queries_per_s": len(qs) / search, "from_text_per_s": len(qs) / raw, "rank_of_per_s": len(qs) / rank,
            "seconds": search}  # fmt: skip


def _vocab_ids(passages: int) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, int]]]:
    """Per batch: (term ids, doc offsets) with one growing vocabulary (term hash as str -> id), for bm25s."""
    from pairforge.analysis.terms import analyze_arrays

    vocab: dict[str, int] = {}
    for _, texts in passage_batches(passages):
        t = analyze_arrays(texts, "jieba")
        uniq, inverse = np.unique(t.hashes, return_inverse=True)
        ids = np.array([vocab.setdefault(str(h), len(vocab)) for h in uniq], np.int32)[inverse]
        yield ids, t.doc_ptr, vocab


def build_bm25s(folder: Path, passages: int) -> dict:
    import bm25s

    docs: list[np.ndarray] = []
    vocab: dict[str, int] = {}
    for ids, ptr, grown in _vocab_ids(passages):
        docs.extend(ids[ptr[i] : ptr[i + 1]].copy() for i in range(ptr.shape[0] - 1))
        vocab = grown
    engine = bm25s.BM25(method="lucene", k1=1.5, b=0.75, backend="numba")
    engine.index((docs, vocab), show_progress=False)
    engine.save(str(folder / "bm25s"), show_progress=False)
    return {}


def query_bm25s(folder: Path, passages: int) -> dict:
    import bm25s

    from pairforge.analysis.terms import analyze_arrays

    engine = bm25s.BM25.load(str(folder / "bm25s"), mmap=True, backend="numba", show_progress=False)
    vocab = engine.vocab_dict
    t = analyze_arrays(questions(), "jieba")
    q_ids = [[vocab[str(h)] for h in t.hashes[t.doc_ptr[i] : t.doc_ptr[i + 1]] if str(h) in vocab]
             for i in range(t.doc_ptr.shape[0] - 1)]  # fmt: skip
    q_ids = [q for q in q_ids if q]  # bm25s refuses a query without a known token
    engine.retrieve(q_ids[:64], k=10, n_threads=2, show_progress=False)
    search = median_seconds(lambda: engine.retrieve(q_ids, k=10, n_threads=2, show_progress=False))
    return {"queries_per_s": len(q_ids) / search, "seconds": search}


def build_tantivy(folder: Path, passages: int) -> dict:
    import tantivy

    from pairforge.analysis.terms import analyze_arrays

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    (folder / "tantivy").mkdir()
    index = tantivy.Index(builder.build(), path=str(folder / "tantivy"))
    writer = index.writer(heap_size=256_000_000, num_threads=2)
    for _, texts in passage_batches(passages):
        t = analyze_arrays(texts, "jieba")
        for i in range(len(texts)):
            writer.add_document(tantivy.Document(body=" ".join(t.strings(i))))
    writer.commit()
    writer.wait_merging_threads()
    return {}


def query_tantivy(folder: Path, passages: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import tantivy

    from pairforge.analysis.analyze import analyze

    index = tantivy.Index.open(str(folder / "tantivy"))
    searcher, schema = index.searcher(), index.schema
    queries = [
        tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in q])
        for q in analyze(questions(), "jieba")
        if q
    ]

    def run(chunk: list) -> None:  # type: ignore[type-arg]
        for q in chunk:
            searcher.search(q, 10)

    halves = [queries[::2], queries[1::2]]
    with ThreadPoolExecutor(2) as pool:
        search = median_seconds(lambda: list(pool.map(run, halves)))
    return {"queries_per_s": len(queries) / search, "seconds": search}


BUILD = {"ours": build_ours, "bm25s": build_bm25s, "tantivy": build_tantivy}
QUERY = {"ours": query_ours, "bm25s": query_bm25s, "tantivy": query_tantivy}


def run_child(engine: str, phase: str, folder: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, phase, str(folder), "--passages", str(args.passages),
           "--limit-mb", str(args.limit_mb)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"aborted": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--engines", default="ours,bm25s,tantivy")
    parser.add_argument("--limit-mb", type=float, default=7_500)
    parser.add_argument("--workdir", type=Path, default=None, help="where the indexes go (default: a temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "PHASE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, phase, folder = args.child
        print(json.dumps(child(engine, phase, Path(folder), args.passages, args.limit_mb)))
        return
    print(f"{args.passages:,} passages; load before: {os.getloadavg()[0]:.2f}")
    rows = {}
    for engine in args.engines.split(","):
        folder = Path(tempfile.mkdtemp(prefix=f"bm25-scale-{engine}-", dir=args.workdir))
        try:
            build = run_child(engine, "build", folder, args)
            query = run_child(engine, "query", folder, args) if "aborted" not in build else {"aborted": "no index"}
            rows[engine] = (build, query, disk_mb(folder))
            print(engine, json.dumps({"build": build, "query": query, "disk_mb": rows[engine][2]}), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{'engine':8} {'build s':>9} {'build MB':>9} {'query/s':>9} {'query MB':>9} {'anon MB':>8} {'disk MB':>9}")
    nan = float("nan")
    for engine, (b, q, disk) in rows.items():
        why = b.get("aborted", "") + q.get("aborted", "")
        cells = [b.get("seconds", nan), b.get("peak_mb", nan), q.get("queries_per_s", nan), q.get("peak_mb", nan)]
        cells += [q.get("peak_anon_mb", nan), disk]
        print(f"{engine:8} {cells[0]:9.1f} " + " ".join(f"{c:9.0f}" for c in cells[1:]) + f"  {why}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    peak = {e: max(b.get("peak_mb", float("nan")), q.get("peak_mb", float("nan"))) for e, (b, q, _) in rows.items()}
    ours, anchor = peak.get("ours", float("nan")), peak.get("bm25s", float("nan"))
    print(f"RESULT bm25_scale ours={ours:.0f} anchor={anchor:.0f} ratio={ours / anchor:.2f} unit=MB")


if __name__ == "__main__":
    main()
