from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from pairforge.config import DedupConfig
from pairforge.dedup.cluster import cluster_signatures
from pairforge.dedup.index import dedup_signatures
from pairforge.dedup.lsh import optimal_bands
from pairforge.dedup.minhash import char_shingles, estimate_jaccard, shingle_hash, signatures, word_hash
from tests.pairforge.dedup.planted import exact_jaccard, planted_set, real_passages, true_pairs


def test_signatures_equal_datasketch_bit_for_bit(shared_data: Path) -> None:
    texts = [*real_passages(shared_data, 40), "短", "", "正好五个字"]
    ours = signatures(texts, num_perm=128, n=5, seed=1)
    for text, sig in zip(texts, ours, strict=True):
        reference = MinHash(num_perm=128, seed=1, hashfunc=shingle_hash)
        reference.update_batch(char_shingles(text, 5))
        assert np.array_equal(reference.hashvalues, sig)


def test_word_ngrams_equal_datasketch() -> None:
    tokens = [["长江", "是", "中国", "第一", "长河"], ["北京", "是", "首都"]]
    ours = signatures(["", ""], num_perm=64, n=2, tokens=tokens)
    for words, sig in zip(tokens, ours, strict=True):
        reference = MinHash(num_perm=64, seed=1, hashfunc=shingle_hash)
        reference.update_batch([tuple(words[i : i + 2]) for i in range(len(words) - 1)])
        assert np.array_equal(reference.hashvalues, sig)
    assert word_hash("长江") == shingle_hash("长江")


def test_estimates_track_exact_jaccard(shared_data: Path) -> None:
    texts = planted_set(shared_data, 40)
    sigs = signatures(texts)
    errors = [abs(estimate_jaccard(sigs[i], sigs[40 + i]) - exact_jaccard(texts[i], texts[40 + i])) for i in range(30)]
    assert np.mean(errors) < 0.03 and max(errors) < 0.12


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9])
def test_bands_and_rows_are_datasketchs(threshold: float) -> None:
    assert optimal_bands(threshold, 128) == _optimal_param(threshold, 128, 0.5, 0.5)
    assert optimal_bands(threshold, 256, 0.2, 0.8) == _optimal_param(threshold, 256, 0.2, 0.8)


def test_planted_duplicates_recall_and_precision(shared_data: Path, tmp_path: Path) -> None:
    texts = planted_set(shared_data, 200)
    truth = true_pairs(texts, 0.8)
    config = DedupConfig(threshold=0.8)
    half = len(texts) // 2  # the production path: parts (shards) clustered together through bucket files
    parts = [dedup_signatures(texts[:half], config), dedup_signatures(texts[half:], config)]
    clusters = cluster_signatures(parts, config, tmp_path / "scratch", partitions=4).tolist()
    members = defaultdict(list)
    for i, c in enumerate(clusters):
        members[int(c)].append(i)
    predicted = {pair for group in members.values() for pair in combinations(sorted(group), 2)}
    assert len(truth) >= 90
    recall = len(predicted & truth) / len(truth)
    precision = len(predicted & truth) / max(len(predicted), 1)
    assert recall >= 0.95 and precision >= 0.99, (recall, precision)
    assert all(c <= i for i, c in enumerate(clusters))  # a cluster's root is its first (smallest) row
