"""Selection from candidate rows, one guard at a time (pure: no retrieval)."""

from __future__ import annotations

from pairforge.config import MineConfig
from pairforge.negatives.policy import select_all

POOL = [f"p{i}" for i in range(30)]
TEXT = {pid: f"段落{pid}" for pid in POOL} | {"p7": "答案是长江的段落"}


def row(pair_id: str = "a", query: str = "q", positive: str = "p0", **extra: object) -> dict:
    ids = [f"p{i}" for i in range(10)]
    base = {"pair_id": pair_id, "query": query, "positive_id": positive, "bm25_ids": ids,
            "bm25_scores": [10.0 - i for i in range(10)], "bm25_positive_score": 10.0, "answers": []}  # fmt: skip
    return base | extra


def select(rows: list[dict], twins: frozenset[str] = frozenset(), **policy: object) -> tuple[list, dict]:
    config = MineConfig(**({"relative_margin": None, "num_negatives": 3} | policy))  # type: ignore[arg-type]
    chosen, summary = select_all(rows, POOL, config, lambda pid, _pair: pid in twins, TEXT.__getitem__)
    return [[pid for pid, _, _ in c] for c in chosen], summary.to_dict()


def test_top_skips_the_positive_and_counts_it() -> None:
    chosen, s = select([row()])
    assert chosen == [["p1", "p2", "p3"]] and s["skipped"]["positive"] == 1


def test_another_positive_of_the_same_query_is_never_a_negative() -> None:
    chosen, s = select([row("a", positive="p0"), row("b", positive="p1")])
    assert chosen == [["p2", "p3", "p4"], ["p2", "p3", "p4"]]
    assert s["skipped"]["other_positive"] == 2 and s["skipped"]["positive"] == 2


def test_near_duplicates_of_a_positive_and_answers_are_guarded() -> None:
    chosen, s = select([row(answers=["长江", "x"])], twins=frozenset({"p2"}), num_negatives=7)
    assert "p2" not in chosen[0] and "p7" not in chosen[0]  # a twin; contains the answer 长江 ("x" is too short)
    assert s["skipped"]["near_duplicate_of_positive"] == 1 and s["skipped"]["contains_answer"] == 1


def test_margins_and_max_score() -> None:
    assert select([row()], relative_margin=0.25)[0] == [["p3", "p4", "p5"]]  # <= 7.5
    assert select([row()], absolute_margin=4.0)[0] == [["p4", "p5", "p6"]]  # <= 6
    assert select([row()], max_score=5.0)[0] == [["p5", "p6", "p7"]]


def test_range_min_random_sampling_is_seeded() -> None:
    a, _ = select([row()], range_min=2, sampling_strategy="random", seed=1)
    b, _ = select([row()], range_min=2, sampling_strategy="random", seed=1)
    assert a == b and set(a[0]) <= {f"p{i}" for i in range(2, 10)}


def test_shortfall_is_topped_up_from_non_positives_or_counted() -> None:
    short = row(bm25_ids=["p0", "p1"], bm25_scores=[10.0, 9.0])
    chosen, s = select([short, row("b", positive="p5")], num_negatives=5)
    assert len(chosen[0]) == 5 and not {"p0", "p5"} & set(chosen[0][1:])  # random picks avoid both positives
    assert s["topped_up"] == 4 and s["shortfall"] == 0
    chosen, s = select([short], num_negatives=5, top_up="none")
    assert chosen == [["p1"]] and s["shortfall"] == 4 and s["with_full_negatives"] == 0


def test_bm25_dense_mix_takes_each_share_then_fills_from_the_other() -> None:
    dense = {"dense_ids": [f"p{i}" for i in range(20, 30)], "dense_scores": [0.9] * 10, "dense_positive_score": 1.0}
    chosen, s = select([row(**dense)], num_negatives=4, bm25_share=0.25)
    assert chosen == [["p1", "p20", "p21", "p22"]] and s["by_source"] == {"bm25": 1, "dense": 3}
    few = dense | {"dense_ids": ["p20"], "dense_scores": [0.9]}
    chosen, _ = select([row(**few)], num_negatives=4, bm25_share=0.25)
    assert chosen == [["p1", "p20", "p2", "p3"]]
