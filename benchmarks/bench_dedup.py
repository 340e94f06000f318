"""Near-duplicate removal at scale: 1M passages recombined from ../shared/data sentences, 5% of them
planted near-copies (0.3-1.2% of characters replaced) of earlier passages, deduplicated shard by shard.

The corpus is written by a child process, so the peak RSS reported is the dedup's alone. Recall: planted
pairs with exact Jaccard >= 0.8 that land in one cluster; precision: pairs sharing a cluster whose exact
Jaccard is >= 0.8. Prints ``RESULT dedup_1m ours=<seconds> peak_rss_mb=<mb> recall=<r> precision=<p> unit=s``.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SHARD_ROWS = 100_000


def make_corpus(folder: Path, count: int, seed: int = 0) -> None:
    """Write ``count`` passages as Parquet shards plus ``planted.parquet`` (copy id, original id)."""
    from passages import _sentences

    rng = random.Random(seed)
    pool = [s for s in _sentences() if 8 <= len(s) <= 200]
    rows: list[dict[str, str]] = []
    recent: list[str] = []
    planted = {"copy": [], "original": []}
    shard = 0
    for i in range(count):
        pid = f"p{i:07d}"
        if i % 20 == 19 and recent:
            original_id, original = recent[rng.randrange(len(recent))].split("\x1f")
            chars = list(original)
            for k in rng.sample(range(len(chars)), k=max(1, int(len(chars) * rng.uniform(0.003, 0.012)))):
                chars[k] = rng.choice(original)
            text = "".join(chars)
            planted["copy"].append(pid)
            planted["original"].append(original_id)
        else:
            text = "".join(rng.choice(pool) for _ in range(rng.randint(5, 10)))
            recent = [*recent[-999:], f"{pid}\x1f{text}"]
        rows.append({"id": pid, "text": text})
        if len(rows) == SHARD_ROWS:
            pq.write_table(pa.Table.from_pylist(rows), folder / f"passages-{shard:05d}.parquet")
            rows, shard = [], shard + 1
    if rows:
        pq.write_table(pa.Table.from_pylist(rows), folder / f"passages-{shard:05d}.parquet")
    pq.write_table(pa.table(planted), folder.parent / "planted.parquet")


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    sa = {a[i : i + n] for i in range(max(1, len(a) - n + 1))}
    sb = {b[i : i + n] for i in range(max(1, len(b) - n + 1))}
    return len(sa & sb) / len(sa | sb)


def cluster_shards(shards: list[Path], config: Any, scratch: Path) -> pa.Table:
    """Each passage's cluster as the dedup-passages stage finds it: each shard signed and its signatures kept in a
    memory-mapped file, LSH buckets on disk, one union-find (``pairforge.dedup.cluster``)."""
    import numpy as np

    from pairforge.dedup.cluster import cluster_of, cluster_representatives, cluster_signatures
    from pairforge.dedup.index import dedup_signatures

    signed = scratch / "signed"
    signed.mkdir(parents=True)
    parts = []
    for n, shard in enumerate(shards):
        path = signed / f"{n:05d}.u32"
        dedup_signatures(pq.read_table(shard, columns=["text"])["text"].to_pylist(), config).tofile(path)
        rows = path.stat().st_size // (4 * config.num_perm)
        parts.append(np.memmap(path, dtype=np.uint32, mode="r", shape=(rows, config.num_perm)))
    ids = pa.concat_arrays([pq.read_table(s, columns=["id"])["id"].combine_chunks() for s in shards])
    roots = cluster_signatures(parts, config, scratch / "lsh")
    representatives = cluster_representatives(roots, lambda rows: ids.take(pa.array(rows)))
    return pa.table({"id": ids, "cluster": cluster_of(roots, ids, representatives)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_corpus(Path(args.make), args.passages)
        return
    from pairforge.config import DedupConfig

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "passages"
        corpus.mkdir()
        subprocess.run([sys.executable, __file__, "--passages", str(args.passages), "--make", str(corpus)], check=True)
        shards = sorted(corpus.glob("*.parquet"))
        start = time.perf_counter()
        clusters = cluster_shards(shards, DedupConfig(threshold=0.8), Path(tmp) / "scratch")
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        cluster_of = dict(zip(clusters["id"].to_pylist(), clusters["cluster"].to_pylist(), strict=True))
        counts = pc.value_counts(clusters["cluster"])
        in_multi = {
            v
            for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
            if c > 1
        }
        members: dict[str, list[str]] = defaultdict(list)
        for pid, cid in cluster_of.items():
            if cid in in_multi:
                members[cid].append(pid)
        planted = pq.read_table(Path(tmp) / "planted.parquet").to_pylist()
        need = {r["copy"] for r in planted} | {r["original"] for r in planted} | set().union(*members.values())
        texts = {}
        for shard in shards:
            table = pq.read_table(shard)
            table = table.filter(pc.is_in(table["id"], value_set=pa.array(sorted(need))))
            texts.update(zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True))
    true_pairs = [
        (r["copy"], r["original"]) for r in planted if exact_jaccard(texts[r["copy"]], texts[r["original"]]) >= 0.8
    ]
    recall = sum(cluster_of[a] == cluster_of[b] for a, b in true_pairs) / max(len(true_pairs), 1)
    predicted = [pair for group in members.values() for pair in combinations(group, 2)]
    correct = sum(exact_jaccard(texts[a], texts[b]) >= 0.8 for a, b in predicted)
    precision = correct / max(len(predicted), 1)
    dropped = len(clusters) - len(set(cluster_of.values()))
    print(
        f"{len(clusters):,} passages, {len(planted):,} planted copies ({len(true_pairs):,} with J >= 0.8); "
        f"{dropped:,} dropped as near-duplicates; {len(predicted):,} clustered pairs"
    )
    print(f"dedup {seconds:.1f} s, peak RSS {peak_mb:.0f} MB, recall {recall:.4f}, precision {precision:.4f}")
    print(
        f"RESULT dedup_1m ours={seconds:.1f} peak_rss_mb={peak_mb:.0f} recall={recall:.4f} "
        f"precision={precision:.4f} unit=s"
    )


if __name__ == "__main__":
    main()
