"""The workdir: where every stage's inputs and outputs are. No other module builds a stage path.

Each stage owns one folder, ``WORKDIR/<stage>/``, and writes only there; it reads the folders of the stages before
it, so no stage writes into the folder it reads. Inside a stage folder, shards are named after the input shard they
come from (``<shard key>-<part>.parquet``): every stage after ingest works one input shard at a time, and a
version's segments are these shards. ``<stage>/_done/<shard key>.json`` records that a shard's output is complete
and which task key made it, so a rerun skips exactly the work whose inputs and settings are unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pairforge.stats import StageStats

ALL = "_all"  # the shard key of a stage's global step (dedup clustering, the BM25 index)


def task_key(stage: str, *parts: Any) -> str:
    """sha256 of the stage name and the JSON of everything its output depends on (upstream task keys, the
    settings that change it, input fingerprints): equal keys mean equal outputs."""
    canonical = json.dumps([stage, *parts], sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return f"{stage}-{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


class Workdir:
    """The named inputs and outputs of every stage under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, name: str) -> Path:
        """A stage's own folder."""
        return self.root / name

    # ingest
    @property
    def ingested(self) -> Path:
        """Passages as windowed and sampled, before dedup."""
        return self.stage("ingest") / "passages"

    @property
    def human_pairs(self) -> Path:
        """Pairs taken over from human-made sets (m3e, SimCLUE, SQuAD …)."""
        return self.stage("ingest") / "human_pairs"

    @property
    def quarantine(self) -> Path:
        """Bad input records, one JSONL file per input shard."""
        return self.stage("ingest") / "quarantine"

    # dedup-passages
    @property
    def passages(self) -> Path:
        """The deduplicated passages: the pool this run adds."""
        return self.stage("dedup-passages") / "passages"

    @property
    def passage_index(self) -> Path:
        """The MinHash index of the kept passages, one folder per input shard (later runs dedup against it)."""
        return self.stage("dedup-passages") / "index"

    @property
    def passage_clusters(self) -> Path:
        """Every passage's cluster, for audit."""
        return self.stage("dedup-passages") / "clusters"

    # index
    @property
    def pool(self) -> Path:
        """The whole passage pool (earlier versions' and this run's): ids, texts, MinHash signatures."""
        return self.stage("index") / "pool"

    @property
    def bm25(self) -> Path:
        """The BM25 index over the pool (round trip and mining)."""
        return self.stage("index") / "bm25"

    @property
    def dense(self) -> Path:
        """Dense embeddings of the pool, when a dense retriever is configured."""
        return self.stage("index") / "dense"

    # generate, filter, dedup-pairs
    @property
    def generated(self) -> Path:
        """Pairs as parsed from the LLM's answers."""
        return self.stage("generate") / "pairs"

    @property
    def filtered(self) -> Path:
        """Pairs that passed the filters (with the round trip's rank and score)."""
        return self.stage("filter") / "pairs"

    @property
    def dropped(self) -> Path:
        """Pairs the filters dropped, with the reason."""
        return self.stage("filter") / "dropped"

    # judge
    @property
    def judged(self) -> Path:
        """Pairs the judge kept, with their rubric scores (every filtered pair, unscored, when the judge is off)."""
        return self.stage("judge") / "pairs"

    @property
    def judge_dropped(self) -> Path:
        """Pairs below the judge's cut, or whose judge answer gave no scores, with the reason."""
        return self.stage("judge") / "dropped"

    @property
    def pairs(self) -> Path:
        """Pairs without near-duplicate queries of the same passage."""
        return self.stage("dedup-pairs") / "pairs"

    @property
    def pair_clusters(self) -> Path:
        return self.stage("dedup-pairs") / "clusters"

    # mine, select
    @property
    def candidates(self) -> Path:
        """Every retriever's candidates with scores, per query ("mine once, select many")."""
        return self.stage("mine") / "candidates"

    @property
    def adjudicated(self) -> Path:
        """Per pair, the candidates the LLM was asked about and those it confirmed as answers (``mine.adjudicate``)."""
        return self.stage("mine") / "adjudicated"

    @property
    def examples(self) -> Path:
        """Training examples: query, positive, selected negatives."""
        return self.stage("select") / "examples"

    @property
    def heldout(self) -> Path:
        """Examples held out of training (``mine.heldout_share``): the version's eval split."""
        return self.stage("select") / "heldout"

    # caches and run records (not stage outputs)
    @property
    def ledger(self) -> Path:
        """The LLM answers, by request key (a cache: every stage output can be rebuilt from it for free)."""
        return self.root / "cache" / "ledger"

    @property
    def judge_ledger(self) -> Path:
        """The judge's answers, by request key (a cache like ``ledger``: a changed cut is rebuilt from it)."""
        return self.root / "cache" / "judge-ledger"

    @property
    def adjudicate_ledger(self) -> Path:
        """False-negative adjudication's answers, by request key (a cache like ``ledger``)."""
        return self.root / "cache" / "adjudicate-ledger"

    @property
    def embeddings(self) -> Path:
        return self.root / "cache" / "embeddings.sqlite"

    @property
    def fetched(self) -> Path:
        """Segments of earlier versions copied from a remote store."""
        return self.root / "cache" / "store"

    @property
    def plan(self) -> Path:
        """The run plan: which input shards this run processes, and the parent version it builds on."""
        return self.root / "run.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def results(self) -> Path:
        """Prefect's task results."""
        return self.root / ".prefect-results"

    def scratch(self, stage: str) -> Path:
        """Temporary files of a stage's global step (removed when it finishes)."""
        return self.root / ".scratch" / stage

    def stats(self, stage: str) -> Path:
        """The stage's StageStats of the last run."""
        return self.stage(stage) / "stats.json"

    # completion records
    def done(self, stage: str, shard: str) -> Path:
        return self.stage(stage) / "_done" / f"{shard}.json"

    def finished(self, stage: str, shard: str, key: str) -> StageStats | None:
        """The stats of ``shard``'s output of ``stage`` if it is complete and was made under task ``key``."""
        path = self.done(stage, shard)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # a damaged record is not a finished shard
        if record.get("key") != key:
            return None
        return StageStats.from_dict(record["stats"])

    def finished_any(self, stage: str, shard: str) -> StageStats | None:
        """The stats of ``shard``'s last finished output of ``stage``, whatever its task key."""
        path = self.done(stage, shard)
        try:
            return StageStats.from_dict(json.loads(path.read_text(encoding="utf-8"))["stats"])
        except (OSError, ValueError, KeyError):
            return None

    def mark_done(self, stage: str, shard: str, key: str, stats: StageStats) -> None:
        """Record ``shard``'s output as complete under ``key`` (written last, after the shard's files)."""
        path = self.done(stage, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"key": key, "stats": stats.to_dict()}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def key_of(self, stage: str, shard: str) -> str:
        """The task key under which ``shard``'s output of ``stage`` was made (what a later stage's key chains on)."""
        path = self.done(stage, shard)
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["key"])
        except (OSError, ValueError, KeyError):
            raise FileNotFoundError(
                f"{self.stage(stage)}: no finished output for input shard {shard}; run `pairforge {stage}` first"
            ) from None

    def forget(self, stage: str, shard: str) -> None:
        """Drop the completion record (before a shard's output is rewritten)."""
        self.done(stage, shard).unlink(missing_ok=True)


def shard_files(folder: Path, shard: str) -> list[Path]:
    """The Parquet files of one input shard in a stage folder, in part order."""
    return sorted(folder.glob(f"{shard}-*.parquet"))


def shard_path(folder: Path, shard: str, part: int = 0, suffix: str = ".parquet") -> Path:
    """The file of part ``part`` of ``shard`` in ``folder``."""
    return folder / f"{shard}-{part:05d}{suffix}"
