"""BM25 at 100k passages of ~300 characters (recombined from ../shared/data sentences): our sparse-matrix
BM25Okapi against rank-bm25's ``get_scores`` + top-10, on the same jieba tokens and the same queries
(CMRC 2018 questions). rank-bm25 is timed on a sample of queries. Prints ``RESULT bm25 ...`` last."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from passages import SHARED, real_passages
from rank_bm25 import BM25Okapi

from pairforge.negatives.bm25 import BM25Index, tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--anchor-queries", type=int, default=20)
    args = parser.parse_args()
    docs = tokenize(real_passages(args.passages, 200, 400))
    data = json.loads((SHARED / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    queries = tokenize([q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]])

    start = time.perf_counter()
    index = BM25Index(docs)
    build = time.perf_counter() - start
    start = time.perf_counter()
    top, _ = index.search(queries, 10)
    ours = len(queries) / (time.perf_counter() - start)

    reference = BM25Okapi(docs)
    sample = queries[: args.anchor_queries]
    start = time.perf_counter()
    ref_scores = [reference.get_scores(q) for q in sample]
    ref_top = [np.argsort(-s, kind="stable")[:10] for s in ref_scores]
    anchor = len(sample) / (time.perf_counter() - start)
    same = sum(list(a) == list(b) for a, b in zip(top[: len(sample)], ref_top, strict=True))
    # Recombined passages share sentences, so equal scores are common; compare the top-10 *scores* too.
    same_scores = sum(
        np.allclose(s[ref], s[ours], atol=1e-6) for s, ref, ours in zip(ref_scores, ref_top, top, strict=False)
    )
    print(f"{len(docs):,} passages, {len(queries):,} queries; index built in {build:.1f} s")
    print(
        f"top-10 identical to rank-bm25 on {same}/{len(sample)} sampled queries, "
        f"identical up to ties (same top-10 scores) on {same_scores}/{len(sample)}"
    )
    print(f"ours {ours:,.0f} queries/s; rank-bm25 {anchor:.2f} queries/s (on {len(sample)} queries)")
    print(f"RESULT bm25 ours={ours:.0f} anchor={anchor:.2f} ratio={ours / anchor:.0f} unit=queries/s")


if __name__ == "__main__":
    main()
