"""The stage list, defined once: names, units, and the settings each stage's output depends on.

The pipeline runs the stages in this order; the funnel, the dry run and the cache keys all read this list. A
stage's ``settings`` are dotted config paths (a leading ``-`` excludes a path under an included one): they key the
stage's shard tasks, so changing a filter threshold reruns filter and what follows, never generate; their union is
the fingerprint under which a version covers an input shard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pairforge.config import RunConfig


class StageError(RuntimeError):
    """A stage that failed for a reason other than bad input or config: the message names the stage."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its name (also its workdir folder), what it counts, and its settings."""

    name: str
    unit: str
    settings: tuple[str, ...]
    summary: str
    enabled_by: str | None = None  # an opt-in stage's switch: when off, its settings are only that it is off


# What mining's stored candidates depend on; everything else in ``mine`` only changes the selection.
MINED_WITH = ("mine.retriever", "mine.range_max", "mine.analyzer", "mine.dense_model")
# The judge's output depends on what is asked and on the cut; engine settings (like generate's) change neither.
JUDGED_WITH = (
    "judge",
    "-judge.vllm",
    "-judge.openai",
    "-judge.transformers",
    "-judge.chunk_size",
    "-judge.send_tasks",
)

STAGES: tuple[Stage, ...] = (
    Stage("ingest", "records → passages", ("normalize", "window", "ingest.max_document_chars"),
          "read, normalise, window and sample the input shards"),
    Stage("dedup-passages", "passages", ("dedup",), "drop near-duplicate passages, against earlier versions too"),
    Stage("index", "passages", ("mine.analyzer", "mine.retriever", "mine.dense_model"),
          "the whole pool: texts, MinHash signatures, BM25 (and dense) index"),
    Stage("generate", "requests → pairs", ("generate", "window.long_chars", "-generate.chunk_size",
                                           "-generate.vllm", "-generate.openai", "-generate.transformers",
                                           "-generate.max_attempts"),
          "ask the LLM for (query, passage) pairs; answers go to the ledger"),
    Stage("filter", "pairs", ("filter", "window.long_chars", "mine.analyzer"),
          "quality, copying, evidence, contamination and round-trip filters"),
    Stage("judge", "pairs", JUDGED_WITH, "an LLM scores each kept pair on a rubric; the cut is a setting",
          enabled_by="judge.enabled"),
    Stage("dedup-pairs", "pairs", ("dedup",), "drop near-duplicate queries of the same passage"),
    Stage("mine", "queries", MINED_WITH, "BM25 / dense candidates with scores, stored in full"),
    Stage("select", "examples", ("mine", "-mine.dense_batch_size", "-mine.dense_device"),
          "positive-aware choice of hard negatives from the stored candidates"),
    Stage("export", "examples", ("export", "name"), "publish the next version: data, training formats, card"),
)  # fmt: skip
STAGE_NAMES = tuple(s.name for s in STAGES)


def get_stage(name: str) -> Stage:
    """The stage called ``name``."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def stage_settings(config: RunConfig, name: str) -> dict[str, Any]:
    """The settings stage ``name``'s output depends on, as JSON (an opt-in stage that is off: only that)."""
    dump = config.model_dump(mode="json")
    switch = get_stage(name).enabled_by
    if switch is not None and not _lookup(dump, switch):
        return {switch: False}
    chosen: dict[str, Any] = {}
    for path in get_stage(name).settings:
        if not path.startswith("-"):
            chosen[path] = _lookup(dump, path)
    for path in [*get_stage(name).settings, *(f"-{p}" for p in idle_settings(config))]:
        if path.startswith("-"):
            head, _, tail = path[1:].rpartition(".")
            if head in chosen and isinstance(chosen[head], dict):
                chosen[head] = {k: v for k, v in chosen[head].items() if k != tail}
    return chosen


def idle_settings(config: RunConfig) -> list[str]:
    """Settings that change no output as configured (an opt-in part that is off, a mode's knobs in another mode):
    left out of the stage settings, so adding such a part changes no fingerprint of a config that does not use it."""
    f = config.filter
    idle = [] if config.mine.adjudicate.enabled else ["mine.adjudicate"]
    idle += ["filter.consistency_retriever"] * (f.consistency_retriever == "bm25")
    idle += ["filter.consistency_rrf_k"] * (f.consistency_retriever != "hybrid")
    idle += ["filter.consistency_depth"] * (
        f.consistency_retriever != "hybrid" and f.consistency_criterion != "margin"
    )
    idle += ["filter.consistency_criterion", "filter.consistency_max_margin"] * (f.consistency_criterion != "margin")
    return idle


def output_fingerprint(config: RunConfig, corpus_index: int, prompts: dict[str, str]) -> str:
    """What a version's coverage of one input shard is keyed by: every setting that changes output (the union of
    the stages' settings), the corpus entry's reading options, and the sha256 of the prompts used."""
    corpus = config.corpora[corpus_index].model_dump(mode="json")
    corpus.pop("path", None)  # the shard's content is keyed by its sha256, not where it lies
    dump = config.model_dump(mode="json")
    # An opt-in stage that is off leaves the fingerprint as it was before the stage existed: no re-run of old data.
    on = [stage for stage in STAGES if stage.enabled_by is None or _lookup(dump, stage.enabled_by)]
    material = {
        "stages": {stage.name: stage_settings(config, stage.name) for stage in on},
        "corpus": corpus,
        "prompts": prompts,
    }
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lookup(dump: dict[str, Any], path: str) -> Any:
    value: Any = dump
    for part in path.split("."):
        value = value[part]
    return value
