"""BM25 top-10 at 100k passages of 200-400 characters (recombined from ../shared/data sentences), CMRC 2018
dev questions as queries, the same ``analyze(.., "jieba")`` terms for every engine:

- ours: ``build_bm25_index`` (on disk, 2 workers) and ``BM25Index.search_terms`` / ``search`` (numba, both
  cores); exact top-10 checked against rank-bm25 on 50 sampled queries (indices and scores, ties included);
- rank-bm25 ``BM25Okapi.get_scores`` + stable sort, timed on the 50 sampled queries;
- bm25s 0.3 with its numba backend, ``method="lucene"`` and ``"robertson"``, ``retrieve(n_threads=2)``.

Also prints the postings each query reads and our cycles per posting next to the read-bandwidth bound in
notes/perf-anchors.md (8.6k queries/s per core for 224k float32 postings). Medians of 3 runs.
The last lines are ``RESULT bm25`` (against rank-bm25) and ``RESULT bm25_bm25s`` (against the faster bm25s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import bm25s
import numpy as np
from passages import SHARED, real_passages
from rank_bm25 import BM25Okapi

from pairforge.analysis.analyze import analyze
from pairforge.negatives.bm25 import build_bm25_index

BOUND_POSTINGS_PER_S = 8.6e3 * 224e3  # notes: float32 read-bandwidth cap per core, in postings/s


def median_rate(count: int, run, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def ghz() -> float:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1e3
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--anchor-queries", type=int, default=50)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f}")
    texts = real_passages(args.passages, 200, 400)
    data = json.loads((SHARED / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    questions = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
    q_terms = analyze(questions, "jieba")
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        run(Path(tmp) / "index", texts, questions, q_terms, args.anchor_queries)


def run(folder: Path, texts: list[str], questions: list[str], q_terms: list[list[str]], n_sample: int) -> None:
    batches = [([str(i) for i in range(lo, min(lo + 20_000, len(texts)))], texts[lo : lo + 20_000])
               for lo in range(0, len(texts), 20_000)]  # fmt: skip
    start = time.perf_counter()
    index = build_bm25_index(batches, folder, workers=2)
    build = time.perf_counter() - start
    index.search_terms(q_terms[:64], 10)  # compile / load the kernels and map the files before timing
    top, scores = index.search_terms(q_terms, 10)
    ours = median_rate(len(q_terms), lambda: index.search_terms(q_terms, 10))
    end_to_end = median_rate(len(questions), lambda: index.search(questions, 10))
    print(f"{index.n_docs:,} passages, {len(questions):,} queries; our index built in {build:.1f} s (2 workers)")

    doc_terms = analyze(texts, "jieba")
    reference = BM25Okapi(doc_terms)
    sample = random.Random(0).sample(range(len(q_terms)), n_sample)
    start = time.perf_counter()
    ref_scores = [reference.get_scores(q_terms[i]) for i in sample]
    anchor = len(sample) / (time.perf_counter() - start)
    exact = ties = 0
    for i, s in zip(sample, ref_scores, strict=True):
        order = np.argsort(-s, kind="stable")[:10]
        order = order[s[order] > 0]
        got = top[i][top[i] >= 0]
        exact += list(got) == list(order) and np.array_equal(scores[i][: len(order)], s[order])
        kth = s[order[-1]] if len(order) else 0.0
        ties += len(order) > 0 and (np.unique(s[order]).size < len(order) or np.count_nonzero(s == kth) > 1)
    print(f"exact top-10 (indices and float64 scores) equal to rank-bm25 on {exact}/{len(sample)} sampled queries; "
          f"{ties} of them have tied scores in or at the edge of the top 10")  # fmt: skip

    postings = np.array([index.doc_freq(sorted(set(q))).sum() for q in q_terms])  # what the float32 pass reads
    per_core = ours * postings.mean() / 2
    print(f"postings read per query: mean {postings.mean():,.0f}, median {np.median(postings):,.0f}")
    print(f"ours: {ghz() * 1e9 / per_core:.2f} cycles per posting per core at {ghz():.2f} GHz; "
          f"bandwidth bound {ghz() * 1e9 / BOUND_POSTINGS_PER_S:.2f} cycles per posting")  # fmt: skip

    rates = {}
    for method in ("lucene", "robertson"):
        start = time.perf_counter()
        engine = bm25s.BM25(method=method, k1=1.5, b=0.75, backend="numba")
        engine.index(doc_terms, show_progress=False)
        built = time.perf_counter() - start
        engine.retrieve(q_terms[:64], k=10, n_threads=2, show_progress=False)
        docs, _ = engine.retrieve(q_terms, k=10, n_threads=2, show_progress=False)
        rates[method] = median_rate(
            len(q_terms), lambda e=engine: e.retrieve(q_terms, k=10, n_threads=2, show_progress=False)
        )
        overlap = np.mean([len(set(docs[i]) & set(top[i])) / 10 for i in sample])
        print(f"bm25s {method}: built in {built:.1f} s, {rates[method]:,.0f} queries/s, overlap@10 {overlap:.3f}")
    anchor_bm25s = max(rates.values())
    print(f"ours {ours:,.0f} queries/s on analyzed terms, {end_to_end:,.0f} queries/s from raw text; "
          f"rank-bm25 {anchor:.2f} queries/s; bm25s best {anchor_bm25s:,.0f} queries/s")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"RESULT bm25 ours={ours:.0f} anchor={anchor:.2f} ratio={ours / anchor:.0f} unit=queries/s")
    ratio = ours / anchor_bm25s
    print(f"RESULT bm25_bm25s ours={ours:.0f} anchor={anchor_bm25s:.0f} ratio={ratio:.2f} unit=queries/s")


if __name__ == "__main__":
    main()
