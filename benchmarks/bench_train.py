"""Training effect of the data, measured: the static student (a random 256-dim StaticEmbedding over the demo
model's tokenizer) untrained, trained on the human pairs of ../shared/data (m3e_style, SimCLUE train files,
read with the project's corpus readers), trained on a demo-model version, and trained on both; each scored
with the long-text protocol (``pairforge eval longtext``) on CMRC 2018 dev, which is eval only (checked below:
no training text shares a 20-character span with it). BM25 on the same queries is printed for reference.

``--version PATH`` names the demo version (default ``store/demo/latest`` under the repo root; ``make demo``
makes it). Prints ``RESULT train ours=<recall@5 trained on both> anchor=<untrained> ...`` last; without a
demo version the rows that need it are skipped and ``ours`` is ``nan``."""

from __future__ import annotations

import argparse
import math
import random
import resource
import tempfile
from pathlib import Path
from typing import Any

from passages import SHARED

from pairforge.config import M3eCorpus, SimclueCorpus
from pairforge.corpora import read_shard
from pairforge.evaluate.longtext import LongTextSet, bm25_top_k, model_top_k, recall_block, select_longtext
from pairforge.records import HumanPair, Rejected
from pairforge.train import TrainConfig, train_student
from pairforge.train.datasets import TrainData, read_human_pairs, read_versions
from pairforge.train.students import build_student

REPO = Path(__file__).resolve().parents[1]
HUMAN_FILES = [
    ("m3e", "m3e_style/bge_finetune_data.jsonl"),  # query, pos, neg
    ("m3e", "m3e_style/snli_zh_50.jsonl"),  # scored
    ("m3e", "m3e_style/uniem_riddle.jsonl"),  # instruction, output
    ("simclue", "simclue/train_pair_1w.json"),  # scored 0/1
    ("simclue", "simclue/train_pair_postive_1w.json"),  # query, title
    ("simclue", "simclue/train_rank_1w.json"),  # query, title, neg_title
]  # SimCLUE's test_public.json is its test split and corpus_1w.txt has no pairs: neither is used
SPAN = 20


def human_data(max_rows: int | None, seed: int) -> TrainData:
    """The human pairs: those shipping a negative as ``human`` (MNRL with it), the others as ``human_inbatch``
    (MNRL with in-batch negatives only), graded ones as ``scored`` (CoSENT)."""
    pairs: list[HumanPair] = []
    for fmt, relative in HUMAN_FILES:
        path = str(SHARED / relative)
        corpus = M3eCorpus(format="m3e", path=path) if fmt == "m3e" else SimclueCorpus(format="simclue", path=path)
        for record in read_shard(path, corpus):
            if isinstance(record, Rejected):
                raise ValueError(f"{record.where()}: {record.reason}")
            if isinstance(record, HumanPair):
                pairs.append(record)
    if max_rows:
        pairs = random.Random(seed).sample(pairs, min(max_rows, len(pairs)))
    data = read_human_pairs([p for p in pairs if p.negatives or p.kind == "scored"], 1)
    return read_human_pairs([p for p in pairs if not p.negatives and p.kind == "positive"], 0, "human_inbatch", data)


def shared_spans(data: TrainData, eval_set: LongTextSet) -> tuple[int, int]:
    """Training texts sharing a ``SPAN``-character span with an eval passage, and eval queries trained on."""
    grams = {p[i : i + SPAN] for p in eval_set.passages for i in range(len(p) - SPAN + 1)}
    queries = set(eval_set.queries)
    texts = [t for columns in data.rows.values() for name, v in columns.items() if name != "score" for t in v]
    overlapping = sum(any(t[i : i + SPAN] in grams for i in range(len(t) - SPAN + 1)) for t in set(texts))
    return overlapping, len(queries & set(texts))


def score(model: Any, eval_set: LongTextSet) -> dict[str, Any]:
    return recall_block(model_top_k(model, eval_set.passages, eval_set.queries, 10), eval_set)


def trained(name: str, data: TrainData, config: TrainConfig, eval_set: LongTextSet, scratch: Path) -> dict[str, Any]:
    summary = train_student(data, config, str(scratch / name), log=lambda _: None)
    rows_seen = summary.steps * config.resolved_batch_size()
    return {
        "name": name,
        "rows": sum(summary.datasets.values()),
        "datasets": summary.datasets,
        "steps": summary.steps,
        "seconds": summary.seconds,
        "ms_per_row": 1000 * summary.seconds / max(rows_seen, 1),
        "recall": score(summary.model_path, eval_set),
    }


def find_version(given: str | None) -> str | None:
    if given:
        return given
    latest = REPO / "store" / "demo" / "latest"  # a symlink to the version folder (a text file on object stores)
    return str(latest) if latest.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", help="A demo-model version (default: store/demo/latest).")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, help="Use at most N human pairs (a quick check).")
    args = parser.parse_args()
    eval_set = select_longtext(SHARED / "cmrc2018" / "cmrc2018_dev.squad.json", long_chars=512, short_per_long=2)
    print(
        f"eval: CMRC 2018 dev, {len(eval_set.queries)} queries ({sum(eval_set.long)} long), "
        f"{len(eval_set.passages)} passages"
    )
    config = TrainConfig(epochs=args.epochs, seed=args.seed)
    bm25 = recall_block(bm25_top_k(eval_set.passages, eval_set.queries, 10), eval_set)
    rows = [{"name": "untrained", "rows": 0, "steps": 0, "seconds": 0.0, "ms_per_row": 0.0}]
    rows[0]["recall"] = score(build_student(config, "cpu"), eval_set)
    version = find_version(args.version)
    human = human_data(args.max_rows, args.seed)
    sets = {"human pairs": human}
    if version:
        sets["demo version"] = read_versions([version], 1)
        sets["both"] = read_versions([version], 1, human_data(args.max_rows, args.seed))  # a fresh copy to add to
    else:
        print("demo version: skipped (no --version and no store/demo/latest); make one with `make demo`")
    for name, data in sets.items():
        spans, queries = shared_spans(data, eval_set)
        print(f"{name}: {data.counts()} rows; {spans} texts share a {SPAN}-char span with CMRC dev, {queries} queries")
    with tempfile.TemporaryDirectory() as scratch:
        for name, data in sets.items():
            rows.append(trained(name.replace(" ", "-"), data, config, eval_set, Path(scratch)))
    print("\n| student | rows | steps | train s | ms/row | recall@1 | recall@5 | recall@10 | long r@5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in [{"name": "BM25 (reference)", "recall": bm25}, *rows]:
        r = row["recall"]
        cost = "- | - | - | -"
        if "steps" in row:
            cost = f"{row['rows']:,} | {row['steps']} | {row['seconds']:.1f} | {row['ms_per_row']:.2f}"
        print(
            f"| {row['name']} | {cost} | {r['recall_at_1']:.4f} | {r['recall_at_5']:.4f} | "
            f"{r['recall_at_10']:.4f} | {r['long']['recall_at_5']:.4f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = {**config.model_dump(exclude_none=True), "query_prompts": config.uses_prompts()}
    print(f"\nconfig: {settings}; peak RSS {peak:,.0f} MB")
    anchor = rows[0]["recall"]["recall_at_5"]
    ours = next((r["recall"]["recall_at_5"] for r in rows if r["name"] == "both"), math.nan)
    print(f"RESULT train ours={ours:.4f} anchor={anchor:.4f} ratio={ours / anchor:.3f} unit=recall")


if __name__ == "__main__":
    main()
