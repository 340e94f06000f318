"""The round trip's criterion: the cut as a share of the pool (tables), and, over synthetic pools of 1,000 and
10,000 passages indexed by the project's BM25, a drop share that stays put where a fixed top k's grows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from filters.consistency import judge_round_trip, rank_cut
from pairforge.negatives.bm25 import build_bm25_index

CUTS = [
    # pool size, top_k, share, cut
    (2, 20, 0.002, 20),
    (10_000, 20, 0.002, 20),
    (100_000, 20, 0.002, 200),
    (1_000_000, 20, 0.002, 2000),
    (150_000, 20, 0.002, 300),
    (1_000_000, 20, None, 20),  # no share: a fixed top k
    (999, 1, 0.01, 9),  # a share rounds down
    (0, 5, 0.5, 5),
]


@pytest.mark.parametrize(("pool", "top_k", "share", "cut"), CUTS)
def test_the_cut_is_top_k_or_a_share_of_the_pool(pool: int, top_k: int, share: float | None, cut: int) -> None:
    assert rank_cut(pool, top_k, share) == cut


VERDICTS = [
    (1, 3.2, 20, None),
    (20, 0.5, 20, None),
    (21, 0.5, 20, "not_retrievable"),
    (1, 0.0, 20, "not_retrievable"),  # first among passages that all score 0: nothing was found
    (1, -0.4, 20, "not_retrievable"),  # negative IDFs only
]


@pytest.mark.parametrize(("rank", "score", "cut", "reason"), VERDICTS)
def test_a_pair_passes_within_the_cut_with_a_positive_score(
    rank: int, score: float, cut: int, reason: str | None
) -> None:
    assert judge_round_trip(rank, score, cut) == reason


def synthetic_pool(size: int, rng: random.Random, vocabulary: list[str], weights: list[float]) -> list[str]:
    """Passages of 40 words drawn by a Zipf law from ``vocabulary`` (the same law at every pool size)."""
    return ["".join(rng.choices(vocabulary, weights, k=40)) for _ in range(size)]


def drop_shares(folder: Path, size: int, queries: int = 300) -> tuple[float, float]:
    """(drop share with the cut at 1% of the pool, drop share with a fixed top 10) for ``queries`` queries of 3
    words, two from their passage and one from anywhere."""
    rng = random.Random(7)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    vocabulary = list(dict.fromkeys(rng.choice(chars) + rng.choice(chars) for _ in range(6000)))
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    passages = synthetic_pool(size, rng, vocabulary, weights)
    index = build_bm25_index([([str(i) for i in range(size)], passages)], folder, analyzer="bigram", workers=1)
    own = rng.sample(range(size), queries)
    texts = []
    for i in own:
        words = [passages[i][j : j + 2] for j in range(0, len(passages[i]), 2)]
        texts.append("".join([*rng.sample(words, 2), rng.choices(vocabulary, weights)[0]]))
    ranks, scores = index.rank_of(texts, own)
    shared = rank_cut(size, 1, 0.01)
    relative = np.mean([judge_round_trip(r, s, shared) is not None for r, s in zip(ranks, scores, strict=True)])
    fixed = np.mean([judge_round_trip(r, s, 10) is not None for r, s in zip(ranks, scores, strict=True)])
    return float(relative), float(fixed)


def test_the_drop_share_does_not_grow_with_the_pool(tmp_path: Path) -> None:
    small, small_fixed = drop_shares(tmp_path / "small", 1_000)
    large, large_fixed = drop_shares(tmp_path / "large", 10_000)
    print(f"drop share: 1% of the pool {small:.3f} → {large:.3f}; fixed top 10 {small_fixed:.3f} → {large_fixed:.3f}")
    assert 0.05 < small < 0.95  # the criterion drops some and keeps some: the comparison means something
    assert abs(large - small) <= 0.05
    assert large_fixed - small_fixed > 0.1  # what a fixed top k does on the same pools


def test_a_run_over_8_real_documents_publishes_a_version(shared_data: Path, tmp_path: Path) -> None:
    """Issue 20: the first 8 WuDao documents, the shipped configs' evidence-first prompts, the round trip at its
    defaults and the fake LLM: the pool is too small for BM25 statistics, so the round trip ranks the pairs but
    skips its verdict (counted), and export publishes both kinds."""
    from pairforge.config import RunConfig
    from pairforge.export import ExportInputs, run_export
    from pairforge.plan import plan_run
    from pairforge.shards import read_shard_table
    from pairforge.testing.fake_llm import FakeLLM
    from pairforge.workdir import Workdir
    from tests.pairforge.test_stage_contract import STAGES, run_stage

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (corpus / "eight.jsonl").write_text("".join(lines[:8]), encoding="utf-8")
    with FakeLLM() as llm:
        config = RunConfig.model_validate({
            "name": "eight", "workdir": str(tmp_path / "work"), "store": str(tmp_path / "store"),
            "corpora": [{"format": "wudao", "path": str(corpus / "eight.jsonl")}],
            "window": {"max_length": 1024, "min_length": 64},
            "generate": {"backend": "openai", "model": "test-model", "prompt_versions": {"qp": "v2", "sp": "v2"},
                         "openai": {"base_url": llm.base_url, "concurrency": 4, "timeout_s": 10}},
            "filter": {"max_copy_chars": 40, "max_copy_share": 1.0},  # the fake LLM's queries quote the passage
            "mine": {"range_max": 20, "num_negatives": 3},
        })  # fmt: skip
        plan = plan_run(config)
        plan.save(Workdir(config.workdir).plan)
        funnel = [run_stage(stage, config, plan) for stage in STAGES]
    stats = {s.stage: s for s in funnel}
    pool = stats["index"].output
    assert 0 < pool < config.filter.consistency_min_pool
    filtered = stats["filter"]
    assert "not_retrievable" not in filtered.dropped and filtered.details["round_trip_skipped"] == filtered.output > 0
    keys = plan.keys
    kept = [r for key in keys for r in read_shard_table(Workdir(config.workdir).filtered, key).to_pylist()]
    assert all(1 <= r["consistency_rank"] <= pool for r in kept)  # ranked all the same: the cut can be retuned
    published = run_export(config, ExportInputs(plan, funnel), Workdir(config.workdir))
    manifest = json.loads((Path(published.details["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert published.details["version"] == 1 and manifest["examples"].get("qp", 0) > 0
    assert manifest["examples"].get("sp", 0) > 0, manifest["examples"]
