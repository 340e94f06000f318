"""The on-disk BM25 index against rank-bm25's BM25Okapi on the same analyzed terms of CMRC 2018 dev."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from pairforge.analysis.analyze import analyze
from pairforge.negatives.bm25 import BM25Index, build_bm25_index


def _batches(texts: list[str], size: int) -> list[tuple[list[str], list[str]]]:
    return [([f"p{i}" for i in range(lo, min(lo + size, len(texts)))], texts[lo : lo + size])
            for lo in range(0, len(texts), size)]  # fmt: skip


def _reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")[:k]
    return order[scores[order] > 0]


@pytest.fixture(scope="module")
def cmrc(shared_data: Path) -> tuple[list[str], list[str], list[int]]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
    questions = [(q["question"], i) for i, p in enumerate(paragraphs) for q in p["qas"]]
    return [p["context"] for p in paragraphs], [q for q, _ in questions], [i for _, i in questions]


@pytest.fixture(scope="module")
def index(cmrc, tmp_path_factory: pytest.TempPathFactory) -> BM25Index:
    return build_bm25_index(_batches(cmrc[0], 300), tmp_path_factory.mktemp("bm25") / "jieba", workers=1)


@pytest.mark.parametrize("analyzer", ["jieba", "bigram", "jieba_bigram"])
def test_scores_and_top10_are_rank_bm25s_bit_for_bit(cmrc, tmp_path: Path, analyzer: str) -> None:
    passages, questions, _ = cmrc
    index = build_bm25_index(_batches(passages, 300), tmp_path / "index", analyzer=analyzer, workers=1)
    reference = BM25Okapi(analyze(passages, analyzer))
    sample = questions[::40]
    top, scores = index.search(sample, 10)
    for row, (question, terms) in enumerate(zip(sample, analyze(sample, analyzer), strict=True)):
        expected = reference.get_scores(terms)
        assert np.array_equal(index.get_scores(question), expected)
        want = _reference_top(expected, 10)
        assert list(top[row][: len(want)]) == list(want) and np.all(top[row][len(want) :] == -1)
        assert np.array_equal(scores[row][: len(want)], expected[want])


def test_ties_go_to_the_lower_index_like_a_stable_sort(cmrc, tmp_path: Path) -> None:
    passages, questions, _ = cmrc
    corpus = passages[:200] + passages[:200] + passages[100:150]  # every passage 2-3 times: exact ties
    index = build_bm25_index(_batches(corpus, 120), tmp_path / "index", workers=1)
    reference = BM25Okapi(analyze(corpus, "jieba"))
    tied = 0
    for question, terms in zip(questions[:400:8], analyze(questions[:400:8], "jieba"), strict=True):
        expected = reference.get_scores(terms)
        want = _reference_top(expected, 25)
        tied += len(np.unique(expected[want])) < len(want)
        top, scores = index.search([question], 25)
        assert list(top[0][: len(want)]) == list(want)
        assert np.array_equal(scores[0][: len(want)], expected[want])
    assert tied >= 40  # the check above really ran on ties


def test_maxscore_pruning_keeps_top_k_and_ranks_exact(cmrc, tmp_path: Path) -> None:
    """Passages recombined from CMRC sentences repeat their words, so frequent terms have long postings: here
    MaxScore skips the weak terms' postings for about 15% of the questions at k <= 3 (measured when written)."""
    passages, questions, _ = cmrc
    sentences = [s + "。" for p in passages for s in p.split("。") if s.strip()]
    corpus: list[str] = []
    buf, i = "", 0
    while len(corpus) < 3000:
        buf, i = buf + sentences[(i * 7919) % len(sentences)], i + 1
        if len(buf) >= 300:
            corpus.append(buf)
            buf = ""
    index = build_bm25_index(_batches(corpus, 1000), tmp_path / "index", workers=1)
    reference = BM25Okapi(analyze(corpus, "jieba"))
    sample = questions[::10]
    expected_scores = [reference.get_scores(terms) for terms in analyze(sample, "jieba")]
    for k in (1, 3):
        top, scores = index.search(sample, k)
        ranks, own = index.rank_of(sample, np.maximum(top[:, 0], 0))
        for row, expected in enumerate(expected_scores):
            want = _reference_top(expected, k)
            assert list(top[row][: len(want)]) == list(want)
            assert np.array_equal(scores[row][: len(want)], expected[want])
            doc = max(top[row][0], 0)
            assert ranks[row] == 1 + np.count_nonzero(expected > expected[doc]) and own[row] == expected[doc]


def test_sharded_build_on_two_workers_equals_one_batch_in_process(cmrc, tmp_path: Path) -> None:
    passages = cmrc[0][:500]
    one = build_bm25_index(_batches(passages, 500), tmp_path / "one", workers=1)
    sharded = build_bm25_index(_batches(passages, 37), tmp_path / "sharded", workers=2)
    names = sorted(p.name for p in one.folder.iterdir())
    assert names == sorted(p.name for p in sharded.folder.iterdir())
    for name in names:
        assert (one.folder / name).read_bytes() == (sharded.folder / name).read_bytes(), name
    assert sharded.ids[:3] == ["p0", "p1", "p2"] and len(sharded.ids) == sharded.n_docs == 500


def test_rank_of_agrees_with_the_full_score_vector(cmrc, index: BM25Index) -> None:
    _, questions, gold = cmrc
    sample = list(range(0, len(questions), 25))
    docs = [gold[i] if j % 2 else (7 * i) % index.n_docs for j, i in enumerate(sample)]  # own and random docs
    ranks, scores = index.rank_of([questions[i] for i in sample], docs)
    for i, doc, rank, score in zip(sample, docs, ranks, scores, strict=True):
        full = index.get_scores(questions[i])
        assert score == full[doc] and rank == 1 + np.count_nonzero(full > full[doc])
    assert np.mean(ranks[1::2] <= 5) >= 0.97  # the questions' own paragraphs rank high


def test_search_recall_on_cmrc(cmrc, index: BM25Index) -> None:
    _, questions, gold = cmrc
    top, scores = index.search(questions, 10)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert np.mean([g in row[:5] for g, row in zip(gold, top, strict=True)]) >= 0.98


def test_empty_queries_unknown_terms_and_k_beyond_the_pool(index: BM25Index, tmp_path: Path) -> None:
    top, scores = index.search(["", "？！。", "zzqxjwv qqzzy"], 3)
    assert np.all(top == -1) and np.all(scores == 0)
    ranks, own = index.rank_of(["", "zzqxj"], [0, 5])
    assert list(ranks) == [1, 1] and list(own) == [0.0, 0.0]
    assert index.search([], 5)[0].shape == (0, 5)
    small = build_bm25_index([(["a", "b", "c"], ["长江 大桥", "黄河", "淮河"])], tmp_path / "small", workers=1)
    top, scores = small.search(["长江"], 5)
    assert list(top[0]) == [0, -1, -1, -1, -1] and scores[0][0] > 0
    empty = build_bm25_index([], tmp_path / "empty", workers=1)
    assert empty.n_docs == 0 and list(empty.search(["长江"], 2)[0][0]) == [-1, -1]
    with pytest.raises(IndexError):
        small.rank_of(["长江"], [3])


@pytest.mark.parametrize(
    "texts",
    [
        ["长江大桥", "长江黄河", "长江珠江", "淮河"],  # 长江 in 3 of 4: idf floored to a positive epsilon * mean
        ["长江黄河", "长江黄河", "长江黄河淮河"],  # the mean idf is negative, so is the floor: dense path
    ],
)
def test_epsilon_floor_for_terms_in_most_documents(texts: list[str], tmp_path: Path) -> None:
    index = build_bm25_index([([str(i) for i in range(len(texts))], texts)], tmp_path / "index", workers=1)
    reference = BM25Okapi(analyze(texts, "jieba"))
    for query in ["长江", "长江长江淮河", "黄河淮河", "珠江长江"]:
        expected = reference.get_scores(analyze([query], "jieba")[0])
        assert np.array_equal(index.get_scores(query), expected)
        top, scores = index.search([query], 3)
        want = _reference_top(expected, 3)
        assert list(top[0][: len(want)]) == list(want) and np.array_equal(scores[0][: len(want)], expected[want])
        ranks, own = index.rank_of([query] * len(texts), list(range(len(texts))))
        assert list(ranks) == [1 + np.count_nonzero(expected > s) for s in expected] and np.array_equal(own, expected)


def test_a_failed_build_leaves_no_index_and_keeps_the_old_one(cmrc, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    old = build_bm25_index(_batches(cmrc[0][:50], 25), folder, workers=1)

    def broken():  # type: ignore[no-untyped-def]
        yield from _batches(cmrc[0][:50], 25)
        raise OSError("shard unreadable")

    with pytest.raises(OSError, match="shard unreadable"):
        build_bm25_index(broken(), folder, workers=2)
    with pytest.raises(ValueError, match="batch 0: 2 ids but 1 texts"):
        build_bm25_index([(["a", "b"], ["x"])], folder, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    assert BM25Index.open(folder).n_docs == old.n_docs == 50


def test_a_killed_build_never_looks_whole(cmrc, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from pairforge.negatives.bm25 import build_bm25_index
        def batches():
            for i in range(1000):
                yield [str(i)], ["长江大桥"]
                if i == 3:
                    print("started", flush=True)
                    time.sleep(60)
        build_bm25_index(batches(), Path({str(folder)!r}), workers=1)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert not folder.exists() and len(list(tmp_path.iterdir())) == 1  # only the hidden .tmp folder
    with pytest.raises(FileNotFoundError):
        BM25Index.open(folder)
    time.sleep(0.01)
    build_bm25_index(_batches(cmrc[0][:20], 10), folder, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # the dead build's leftovers are gone


def test_eval_retrieval_cli_on_cmrc_trial(shared_data: Path) -> None:
    from typer.testing import CliRunner

    from pairforge.cli import app

    squad = shared_data / "cmrc2018" / "cmrc2018_trial.squad.json"
    result = CliRunner().invoke(app, ["eval", "retrieval", "--squad", str(squad), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["passages"], report["queries"]) == (256, 1000)  # 2 of the 1,002 questions are empty
    assert report["recall_at_1"] <= report["recall_at_5"] <= report["recall_at_10"]
    assert report["recall_at_5"] >= 0.95


def test_segments_written_elsewhere_give_the_in_process_index(cmrc, tmp_path: Path) -> None:
    """Issue 23: the index stage's segments as shard tasks (here: written in any order by a callback, as workers
    would) merge to the bytes of the in-process build; a segment with the wrong doc count is refused."""
    from pairforge.negatives.bm25_build import build_folder_from_segments
    from pairforge.negatives.bm25_segment import write_segment

    batches = _batches(cmrc[0][:300], 70)
    in_process = build_bm25_index(batches, tmp_path / "one", workers=1)
    params = {"k1": 1.5, "b": 0.75, "epsilon": 0.25}

    def write_segments(segments: Path) -> None:
        for number in reversed(range(len(batches))):
            write_segment(segments / f"{number:06d}", batches[number][1], "jieba")

    build_folder_from_segments((ids for ids, _ in batches), write_segments, tmp_path / "tasks", analyzer="jieba",
                               params=params)  # fmt: skip
    names = sorted(p.name for p in in_process.folder.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "tasks").iterdir())
    for name in names:
        assert (in_process.folder / name).read_bytes() == (tmp_path / "tasks" / name).read_bytes(), name

    def short_segment(segments: Path) -> None:
        for number, (_, texts) in enumerate(batches):
            write_segment(segments / f"{number:06d}", texts[:-1] if number == 2 else texts, "jieba")

    with pytest.raises(ValueError, match="batch 2: 70 ids but 69 texts"):
        build_folder_from_segments((ids for ids, _ in batches), short_segment, tmp_path / "bad", analyzer="jieba",
                                   params=params)  # fmt: skip
    assert not (tmp_path / "bad").exists()
