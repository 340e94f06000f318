"""Contamination guard: generated pairs must not reproduce evaluation data (its passages or questions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from filters.lsh import bucket_keys, optimal_bands
from pairforge.config import CorpusConfig
from pairforge.corpora import expand_paths, read_shard
from pairforge.minhash import signatures
from pairforge.records import Document, HumanPair
from pairforge.text import normalize_text


class ContaminationIndex:
    """MinHash LSH over the evaluation texts; ``matches`` says which texts nearly equal one of them."""

    def __init__(self, texts: Sequence[str], threshold: float = 0.8, ngram: int = 5, num_perm: int = 128):
        self.threshold, self.ngram, self.num_perm = threshold, ngram, num_perm
        self.bands, self.rows = optimal_bands(threshold, num_perm, 0.1, 0.9)
        self.signatures = signatures(list(texts), num_perm=num_perm, n=ngram)
        self.buckets: dict[int, list[int]] = defaultdict(list)
        for i, keys in enumerate(bucket_keys(self.signatures, self.bands, self.rows)):
            for key in keys:
                self.buckets[int(key)].append(i)
        self.size = len(texts)

    def matches(self, texts: Sequence[str]) -> np.ndarray:
        """True where a text's estimated Jaccard with some evaluation text is at least the threshold."""
        sigs = signatures(list(texts), num_perm=self.num_perm, n=self.ngram)
        need = int(np.ceil(self.threshold * self.num_perm - 1e-9))
        hit = np.zeros(len(texts), dtype=bool)
        for i, keys in enumerate(bucket_keys(sigs, self.bands, self.rows)):
            candidates = {j for key in keys for j in self.buckets.get(int(key), ())}
            hit[i] = any(np.count_nonzero(self.signatures[j] == sigs[i]) >= need for j in candidates)
        return hit


def load_evaluation_texts(corpora: Sequence[CorpusConfig]) -> list[str]:
    """Every passage and question of the configured evaluation sets, normalised like ingested text."""
    texts: list[str] = []
    for corpus in corpora:
        for path in expand_paths(corpus.path):
            for record in read_shard(path, corpus):
                if isinstance(record, Document):
                    texts.append(record.text)
                elif isinstance(record, HumanPair):
                    texts.extend([record.text1, record.text2])
    return sorted({t for t in (normalize_text(x) for x in texts) if t})
