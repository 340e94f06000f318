"""Contamination guard: generated pairs must not reproduce evaluation data (its passages or questions)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from filters.base import Pair, PairFilter
from pairforge.config import CorpusConfig, FilterConfig
from pairforge.corpora import expand_paths, read_shard
from pairforge.dedup.lsh import bucket_keys, optimal_bands
from pairforge.dedup.minhash import signatures
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


class ContaminationFilter(PairFilter):
    """``contaminated``: the query or the passage nearly matches a text of a configured evaluation set."""

    reasons = ("contaminated",)

    def __init__(self, config: FilterConfig) -> None:
        super().__init__()
        self.index = _index(json.dumps([c.model_dump(mode="json") for c in config.contamination], sort_keys=True),
                            config.contamination_threshold, config.contamination_ngram)  # fmt: skip

    def check(self, pairs: Sequence[Pair]) -> list[str | None]:
        if not pairs:
            return []
        hits = self.index.matches([p["query"] for p in pairs]) | self.index.matches([p["positive"] for p in pairs])
        return ["contaminated" if hit else None for hit in hits]


@lru_cache(maxsize=4)
def _index(corpora_json: str, threshold: float, ngram: int) -> ContaminationIndex:
    """One index per process and evaluation sets (every shard task of a run shares it)."""
    from pydantic import TypeAdapter

    corpora = TypeAdapter(list[CorpusConfig]).validate_python(json.loads(corpora_json))
    return ContaminationIndex(load_evaluation_texts(corpora), threshold, ngram)


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
