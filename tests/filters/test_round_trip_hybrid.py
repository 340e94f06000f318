"""The round trip beyond BM25 (filters/hybrid.py): reciprocal rank fusion, the score margin, the dense rank by
table; and the filter over a real 8-passage pool, where BM25 has no statistics: skipped with BM25 alone, judged by
the dense rank when a dense retriever is configured, and judged by margin when asked to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from filters.consistency import DenseRanker, RoundTripFilter
from filters.hybrid import hybrid_rank, judge_margin, rank_dense, rrf_score, score_margin
from pairforge.config import RunConfig
from pairforge.negatives.bm25 import BM25Index
from pairforge.negatives.index import index_passages
from pairforge.pool import Pool
from pairforge.workdir import Workdir

K = 60


@pytest.mark.parametrize(
    ("ranks", "score"),
    [((1, 1), 2 / 61), ((1, None), 1 / 61), ((None, None), 0.0), ((10, 40), 1 / 70 + 1 / 100)],
)
def test_rrf_score(ranks: tuple[int | None, int | None], score: float) -> None:
    assert rrf_score(ranks, K) == pytest.approx(score)


HYBRID = [
    # bm25 top, dense top, positive, its (bm25, dense) ranks, expected hybrid rank
    ([7, 1, 2], [7, 2, 1], 7, (1, 1), 1),  # first in both
    ([1, 7, 2], [7, 1, 2], 7, (2, 1), 1),  # 1 is at (1, 2): a tie is not higher
    ([1, 7, 2], [1, 3, 7], 7, (2, 3), 2),  # 1 is first in both: fuses higher; 3 and 2 are in one list only
    ([1, 2, 3], [7, 4, 5], 7, (9, 1), 4),  # 1/69 + 1/61 < 2/64: with lists of 3, an unlisted passage could beat it
    ([1, 2, 3], [1, 2, 3], 7, (50, 50), 4),  # in neither top list and below what an unlisted passage could score
    ([1, 2, 3], [2, 1, 3], 7, (None, 9), 4),  # BM25 does not find it; dense at 9: past the lists
]


@pytest.mark.parametrize(("bm25", "dense", "positive", "own", "rank"), HYBRID)
def test_hybrid_rank(bm25: list[int], dense: list[int], positive: int, own: tuple[int, int], rank: int) -> None:
    got, fused = hybrid_rank(bm25, dense, positive, own, K)
    assert got == rank and fused == pytest.approx(rrf_score(own, K))


@pytest.mark.parametrize(
    ("own", "best", "margin", "max_margin", "reason"),
    [
        (10.0, 8.0, -0.25, 0.2, None),  # the positive is the best
        (9.0, 10.0, 0.1, 0.2, None),  # 10% below the best other
        (7.0, 10.0, 0.3, 0.2, "not_retrievable"),
        (-0.3, -0.2, 0.5, 0.2, "not_retrievable"),  # cosines below 0: relative to |best|
        (0.5, None, -1.0, 0.0, None),  # no other passage
    ],
)
def test_score_margin(own: float, best: float | None, margin: float, max_margin: float, reason: str | None) -> None:
    assert score_margin(own, best) == pytest.approx(margin)
    assert judge_margin(score_margin(own, best), max_margin) == reason


def test_rank_dense_ranks_by_cosine_over_the_whole_pool() -> None:
    docs = np.eye(4, dtype=np.float32)
    queries = np.array([[0.9, 0.1, 0, 0], [0.6, 0.8, 0, 0]], dtype=np.float32)
    ranks, own, best, top = rank_dense(queries, docs, [0, 0], depth=2)
    assert ranks.tolist() == [1, 2] and own.tolist() == pytest.approx([0.9, 0.6])
    assert best.tolist() == pytest.approx([0.1, 0.8]) and top.tolist() == [[0, 1], [1, 0]]


PASSAGES = [
    "赵州桥位于河北省石家庄市赵县的洨河之上，建于隋朝，由工匠李春设计建造。",
    "卢沟桥位于北京市丰台区永定河上，是北京现存最古老的石造联拱桥。",
    "大熊猫主要栖息在四川、陕西和甘肃的山区，以竹子为主要食物。",
    "长江是中国第一长河，全长约六千三百公里，流经青海、西藏、四川等省区。",
    "故宫位于北京中轴线的中心，是明清两代的皇家宫殿，旧称紫禁城。",
    "敦煌莫高窟始建于十六国的前秦时期，以精美的壁画和塑像闻名于世。",
    "西湖位于浙江省杭州市西面，是中国主要的观赏性淡水湖泊之一。",
    "黄山位于安徽省南部黄山市境内，以奇松、怪石、云海、温泉闻名。",
]


class FixedEmbeddings(DenseRanker):
    """The dense ranker with the encoder replaced by fixed vectors (the real model cannot be loaded in a unit test):
    query i points at passage ``aim[i]``; the ranking is the real ``rank_dense``."""

    def __init__(self, aim: list[int]) -> None:
        self.aim = aim

    def rank(self, queries: list[str], positives: np.ndarray, depth: int):  # type: ignore[no-untyped-def]
        docs = np.eye(len(PASSAGES), dtype=np.float32)
        encoded = np.stack([0.9 * docs[a] + 0.1 * docs[(a + 1) % len(PASSAGES)] for a in self.aim[: len(queries)]])
        return rank_dense(encoded, docs, positives.tolist(), depth)


def config_of(root: Path) -> dict[str, object]:
    return {"workdir": str(root), "corpora": [{"format": "jsonl", "path": str(root / "corpus.jsonl")}]}


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    work = Workdir(tmp_path_factory.mktemp("pool"))
    config = RunConfig.model_validate({**config_of(work.root), "mine": {"analyzer": "bigram"}})
    index_passages(config, [f"p{i}" for i in range(len(PASSAGES))], PASSAGES, work)
    return work


def round_trip(work: Workdir, dense: DenseRanker | None, **settings: object) -> RoundTripFilter:
    base = {"consistency_top_k": 1, "consistency_max_rank_share": None, "consistency_retriever": "hybrid"}
    config = RunConfig.model_validate({**config_of(work.root), "filter": {**base, **settings},
                                       "mine": {"retriever": "both", "dense_model": "unused"}})  # fmt: skip
    return RoundTripFilter(Pool(work.pool), BM25Index.open(work.bm25), config.filter, dense)


def pairs() -> list[dict[str, object]]:
    return [
        {"query": "赵州桥是哪位工匠设计建造的？", "passage_id": "p0"},
        {"query": "大熊猫以什么为主要食物？", "passage_id": "p2"},
        {"query": "西湖在哪个城市？", "passage_id": "p6"},
    ]


def test_a_small_pool_is_skipped_with_bm25_alone(small_pool: Workdir) -> None:
    f = round_trip(small_pool, None)  # no dense ranker: BM25 alone, and the pool is under consistency_min_pool
    batch = pairs()
    assert f.check(batch) == [None, None, None] and f.skipped == 3
    assert all(p["consistency_rank"] >= 1 and p["consistency_margin"] is None for p in batch)


def test_a_small_pool_is_judged_by_the_dense_rank(small_pool: Workdir) -> None:
    f = round_trip(small_pool, FixedEmbeddings([0, 2, 3]))  # the third query's vector points at another passage
    batch = pairs()
    assert f.check(batch) == [None, None, "not_retrievable"] and f.skipped == 0
    assert [p["consistency_rank"] for p in batch] == [1, 1, 3]  # the third: below its aim and the aim's neighbour
    assert batch[0]["consistency_score"] == pytest.approx(0.9) and batch[0]["consistency_margin"] < 0


def test_hybrid_fuses_bm25_and_dense_where_the_pool_has_statistics(small_pool: Workdir) -> None:
    f = round_trip(small_pool, FixedEmbeddings([0, 2, 3]), consistency_min_pool=2, consistency_top_k=2)
    batch = pairs()
    reasons = f.check(batch)
    assert f.mode == "hybrid" and f.skipped == 0
    assert batch[0]["consistency_rank"] == 1 and reasons[0] is None  # first by both
    assert batch[0]["consistency_score"] == pytest.approx(2 / 61)  # the fused score is what is stored
    # The third query: dense ranks its passage 3rd (it fails the dense round trip above), BM25 finds it first
    # ("西湖" is in no other passage); fused, it is first: 1/61 + 1/63 beats the dense-only 1/61 and 1/62.
    assert batch[2]["consistency_rank"] == 1 and reasons[2] is None
    assert batch[2]["consistency_score"] == pytest.approx(1 / 61 + 1 / 63)


def test_the_margin_criterion_judges_by_the_best_other_passage(small_pool: Workdir) -> None:
    strict = round_trip(small_pool, FixedEmbeddings([0, 2, 3]), consistency_retriever="dense",
                        consistency_criterion="margin", consistency_max_margin=0.0)  # fmt: skip
    batch = pairs()
    assert strict.check(batch) == [None, None, "not_retrievable"]
    assert batch[2]["consistency_margin"] == pytest.approx((0.9 - 0.0) / 0.9)
    lenient = round_trip(small_pool, FixedEmbeddings([0, 2, 3]), consistency_retriever="dense",
                         consistency_criterion="margin", consistency_max_margin=1.0)  # fmt: skip
    assert lenient.check(pairs()) == [None, None, None]


def test_a_dense_round_trip_needs_dense_embeddings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"consistency_retriever is 'hybrid' but mine\.retriever is 'bm25'"):
        RunConfig.model_validate({**config_of(tmp_path), "filter": {"consistency_retriever": "hybrid"}})


def test_the_margin_criterion_with_bm25_alone(small_pool: Workdir) -> None:
    f = round_trip(
        small_pool, None, consistency_min_pool=2, consistency_criterion="margin", consistency_max_margin=0.0
    )
    batch = pairs()
    reasons = f.check(batch)
    assert f.mode == "bm25" and f.skipped == 0
    for pair, reason in zip(batch, reasons, strict=True):  # each positive is BM25's first here: margin below 0
        assert pair["consistency_rank"] == 1 and pair["consistency_margin"] < 0 and reason is None
