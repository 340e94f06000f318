"""The config sections of the stages after generation (dedup, filter, mine, export) and of the flow."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from pairforge.config_adjudicate import AdjudicateConfig
from pairforge.config_inputs import CorpusConfig, Strict
from pairforge.config_rules import (
    EXPORT_KINDS,
    check_flagembedding_types,
    check_kinds,
)
from pairforge.config_train import TrainConfig


class DedupConfig(Strict):
    """Near-duplicate removal with MinHash LSH, of passages before generation and of pairs after it.

    Checked: ``false_positive_weight + false_negative_weight`` is 1 (datasketch's MinHashLSH weights), and
    ``threshold <= 1 - 1/num_perm``: above that, the Jaccard estimate (in steps of ``1/num_perm``) could only
    count identical signatures, whatever the threshold says."""

    num_perm: int = Field(default=128, ge=16, le=1024, description="Permutations (signature length).")
    threshold: float = Field(default=0.8, gt=0, lt=1, description="Jaccard at which two texts are duplicates.")
    ngram: int = Field(default=5, ge=1, description="Shingle size, in characters or words.")
    unit: Literal["char", "word"] = Field(default="char", description="char n-grams, or jieba word n-grams.")
    # Bucket collisions are verified against the signatures before two texts are joined, so a false positive
    # of the banding costs a comparison, not a wrong drop: the defaults favour recall (14 bands x 9 rows at 0.8).
    false_positive_weight: float = Field(
        default=0.1, ge=0, le=1, description="Banding's weight on false positives (verified on the signatures)."
    )
    false_negative_weight: float = Field(default=0.9, ge=0, le=1, description="Banding's weight on misses.")
    seed: int = Field(default=1, description="Seeds the permutations.")
    scheme: Literal["affine32", "oph"] = Field(
        default="affine32", description="affine32: datasketch-identical signatures; oph: faster, as accurate."
    )
    against: list[str] = Field(
        default=[], description="Index folders (or globs) of earlier versions; texts they hold are dropped."
    )

    @model_validator(mode="after")
    def _check_lsh(self) -> DedupConfig:
        fp, fn = self.false_positive_weight, self.false_negative_weight
        if not math.isclose(fp + fn, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"false_positive_weight + false_negative_weight must sum to 1, as datasketch's MinHashLSH weights "
                f"do; got {fp:g} + {fn:g} = {fp + fn:g}"
            )
        # The Jaccard estimate moves in steps of 1/num_perm: above the last step, only identical signatures
        # would count, whatever the threshold says.
        if self.threshold > 1 - 1 / self.num_perm:
            needed = math.ceil(1 / (1 - self.threshold))
            raise ValueError(
                f"threshold {self.threshold:g} is finer than num_perm {self.num_perm} can resolve (steps of "
                f"1/{self.num_perm}): raise num_perm to at least {needed}, or lower the threshold"
            )
        return self


class FilterConfig(Strict):
    """The pair filters (docs/quality.md has each drop reason). Checked: every minimum is at most its maximum."""

    query_min_chars: int = Field(default=4, ge=1, description="Shorter queries are query_too_short.")
    query_max_chars: int = Field(default=64, ge=1, description="Longer queries are query_too_long.")
    passage_min_chars: int = Field(default=50, ge=1, description="Shorter passages are passage_too_short.")
    passage_max_chars: int = Field(default=4000, ge=1, description="Longer passages are passage_too_long.")
    min_cjk_share: float = Field(default=0.5, ge=0, le=1, description="CJK characters / (CJK + Latin words).")
    max_copy_chars: int = Field(
        default=12, ge=4, description="A query sharing a longer span with its passage is a copy."
    )
    max_copy_share: float = Field(default=0.8, gt=0, le=1, description="... or one this share of which is copied.")
    copy_share_min_chars: int = Field(
        default=6, ge=1, description="max_copy_share applies to queries of at least this many characters."
    )
    sp_ngram: int = Field(default=2, ge=1, description="sp: character n-gram size of the overlap with the target.")
    sp_max_ngram_overlap: float = Field(
        default=0.7, gt=0, le=1, description="sp: a restatement with a larger n-gram overlap is a copy."
    )
    max_char_run: int = Field(default=4, ge=2, description="Longer runs of one repeated character are degenerate.")
    consistency_top_k: int | None = Field(
        default=20,
        ge=1,
        description="Round trip: a BM25 rank of the query's own passage that passes in any pool "
        "(None: round trip off).",
    )
    consistency_max_rank_share: float | None = Field(
        default=0.002,
        gt=0,
        le=1,
        description="Round trip: ranks up to this share of the pool pass too, so the "
        "drop share does not grow with the pool (None: the top k only).",
    )
    consistency_min_pool: int = Field(
        default=50,
        ge=2,
        description="Round trip: a smaller pool is too small for BM25 statistics; its pairs are "
        "ranked but not judged (round_trip_skipped), unless a dense rank judges them (consistency_retriever).",
    )
    consistency_retriever: Literal["bm25", "dense", "hybrid"] = Field(
        default="bm25",
        description="Round trip: rank the positive by BM25, by the dense retriever (mine.dense_model, whose pool "
        "embeddings the index stage builds when mine.retriever is dense or both), or hybrid: reciprocal rank fusion "
        "of both. With dense or hybrid, a pool under consistency_min_pool is judged by the dense rank instead of "
        "skipped.",
    )
    consistency_rrf_k: int = Field(
        default=60, ge=1, description="Round trip, hybrid: RRF's k (a passage scores 1/(k + rank) per retriever)."
    )
    consistency_depth: int = Field(
        default=100,
        ge=1,
        description="Round trip, hybrid: each retriever's top list the fused rank is computed over (at least the "
        "rank cut).",
    )
    consistency_criterion: Literal["rank_share", "margin"] = Field(
        default="rank_share",
        description="Round trip: judge by the positive's rank (consistency_top_k / consistency_max_rank_share) or by "
        "its score margin against the best other passage (consistency_max_margin). Rank, score and margin are "
        "stored on every ranked pair either way.",
    )
    consistency_max_margin: float = Field(
        default=0.2,
        ge=0,
        description="Round trip, margin criterion: the positive may score at most this share below the best other "
        "passage ((best - own) / |best|), under the round trip's retriever (BM25 score, cosine, or fused RRF score).",
    )
    contamination: list[CorpusConfig] = Field(
        default=[],
        description="Evaluation sets, as corpus entries (e.g. {format: squad, path: cmrc2018_dev.json}); pairs "
        "whose query or passage nearly matches them are dropped (contaminated).",
    )
    contamination_threshold: float = Field(
        default=0.8, gt=0, lt=1, description="MinHash Jaccard at which a text matches an evaluation text."
    )
    require_evidence: bool = Field(
        default=True, description="Drop pairs whose evidence cannot be located in their passage (evidence_not_found)."
    )
    contamination_ngram: int = Field(default=5, ge=1, description="Character n-gram size of that comparison.")
    unsupported: bool = Field(
        default=True,
        description="Drop pairs whose query holds a number, Latin word or quoted name their passage lacks.",
    )
    locate_evidence: Literal["relocate", "drop", "off"] = Field(
        default="relocate",
        description="sp: evidence is the sentence restated; off the target: keep it there (relocate) or off_target.",
    )
    qp_off_target: bool = Field(
        default=True, description="qp: drop a query sharing no character bigram with its target sentence (off_target)."
    )
    sp_min_evidence_overlap: float = Field(
        default=0.3, ge=0, le=1, description="sp: a smaller bigram overlap with its evidence is not_restated."
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> FilterConfig:
        for low, high in (("query_min_chars", "query_max_chars"), ("passage_min_chars", "passage_max_chars")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) is larger than {high} ({getattr(self, high)}): nothing could pass"
                )
        return self


class MineConfig(Strict):
    """Hard-negative mining, with sentence-transformers' parameter names.

    Checked: ``range_min < range_max``, and ``num_negatives <= range_max - range_min``: the negatives must fit
    in the candidate window of one retriever, as sentence-transformers' ``mine_hard_negatives`` requires
    (``top_up`` fills a shortfall left by the guards; it is no way to ask for more negatives than the window).
    ``retriever: dense`` or ``both`` needs ``dense_model``."""

    range_min: int = Field(default=0, ge=0, description="Skip this many top-ranked candidates.")
    range_max: int = Field(default=50, ge=1, description="Candidates kept per query and retriever.")
    num_negatives: int = Field(default=7, ge=1, description="Hard negatives per example.")
    sampling_strategy: Literal["top", "random"] = Field(
        default="top", description="The top candidates that pass, or a seeded random choice among them."
    )
    relative_margin: float | None = Field(default=0.05, ge=0, lt=1, description="neg <= (1 - m) * pos score.")
    absolute_margin: float | None = Field(default=None, description="neg <= pos score - m.")
    max_score: float | None = Field(default=None, description="Candidates scoring above this are skipped.")
    retriever: Literal["bm25", "dense", "both"] = Field(default="bm25", description="Who ranks the candidates.")
    bm25_share: float = Field(default=0.5, ge=0, le=1, description="With both retrievers: share of BM25 negatives.")
    analyzer: Literal["jieba", "bigram", "jieba_bigram"] = Field(
        default="jieba", description="BM25 terms: jieba words (default), character bigrams, or both."
    )
    dense_model: str | None = Field(
        default=None, description="sentence-transformers model folder for dense (relative to the config)."
    )
    dense_batch_size: int = Field(default=64, ge=1, description="Texts per embedding batch.")
    dense_index: Literal["exact", "faiss"] = Field(
        default="exact", description="exact: blocked matrix products; faiss: IndexFlatIP (extra dense)."
    )
    dense_device: str | None = Field(default=None, description="torch device; default cuda when present.")
    near_duplicate_threshold: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="MinHash Jaccard at which a candidate is a positive's twin, never a negative.",
    )
    answer_guard: bool = Field(
        default=True, description="Skip negatives containing the pair's answer (human sets) or quoted evidence."
    )
    top_up: Literal["random", "none"] = Field(
        default="random", description="Fill a shortfall with random pool passages that pass the guards."
    )
    heldout_share: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Share of pool passages held out of training, chosen by a seeded hash of the passage id (each "
        "passage stands for its MinHash cluster after passage dedup): their generated examples become the "
        "version's eval split (BEIR files under heldout/), and they are never anyone's negative.",
    )
    seed: int = Field(default=0, description="Seeds random sampling and top-up.")
    adjudicate: AdjudicateConfig = Field(
        default_factory=AdjudicateConfig,
        description="False-negative adjudication: an LLM asked about candidates that outrank or come close to the "
        "positive (opt-in; answers ledgered under cache/adjudicate-ledger).",
    )

    @model_validator(mode="after")
    def _check_dense(self) -> MineConfig:
        if self.retriever != "bm25" and not self.dense_model:
            raise ValueError(f"mine.retriever is {self.retriever!r} but mine.dense_model is not set")
        return self

    @model_validator(mode="after")
    def _check_range(self) -> MineConfig:
        """Ranks range_min..range_max-1 of each retriever are the candidates, and num_negatives must fit in
        them, as sentence-transformers' mine_hard_negatives requires (a random top-up is for the few queries
        whose candidates the guards thin out, not a way to ask for more negatives than the window holds)."""
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be smaller than range_max ({self.range_max})")
        window = self.range_max - self.range_min
        if self.num_negatives > window:
            raise ValueError(
                f"num_negatives ({self.num_negatives}) does not fit: only {window} candidates remain after skipping "
                f"range_min={self.range_min} of range_max={self.range_max}; lower num_negatives or range_min, or "
                "raise range_max"
            )
        return self


class ExportConfig(Strict):
    """What a published version holds besides ``data/`` (each format optional).

    Checked: ``length_buckets`` edges are >= 0; ``query_instructions`` and ``flagembedding_types`` name only
    qp, sp, human, and each type is one FlagEmbedding knows (normal, only_1neg, symmetric_sts,
    symmetric_clustering, symmetric_class; FlagEmbedding would silently read a typo as normal)."""

    flagembedding: bool = Field(default=True, description="flagembedding/<kind>.jsonl, one file per kind.")
    length_buckets: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list,
        description="Length bucket edges for flagembedding/by_length/: an example's query plus its positive (not "
        "its negatives, which would put nearly every row in the last bucket), in tokens of window.tokenizer "
        "(characters without one).",
    )
    sentence_transformers: bool = Field(default=True, description="anchor, positive, negative_1..n Parquet.")
    uniem: bool = Field(default=False, description="uniem / m3e {text, text_pos, text_neg} JSONL.")
    cosent: bool = Field(default=True, description="(sentence1, sentence2, score) from scored human pairs.")
    query_instructions: dict[str, str] = Field(
        default_factory=lambda: {
            "qp": "为这个句子生成表示以用于检索相关文章：",
            "sp": "为这个句子生成表示以用于检索相关文章：",
            "human": "为这个句子生成表示以用于检索相关文章：",
        },
        description="FlagEmbedding's `prompt` field per kind (stella's retrieval instruction).",
    )
    flagembedding_types: dict[str, str] = Field(
        default_factory=lambda: {"qp": "normal", "sp": "normal", "human": "normal"},
        description="FlagEmbedding's `type` field per kind (symmetric_sts, only_1neg, ... change its sampling).",
    )
    teacher: str | None = Field(
        default=None,
        description="A cross-encoder or embedding model folder that scores each positive and negative: "
        "FlagEmbedding's pos_scores / neg_scores for --knowledge_distillation. None: no score fields are written "
        "(the mined BM25 scores are no teacher; they stay in data/examples).",
    )
    teacher_kind: Literal["auto", "cross-encoder", "embedding"] = Field(
        default="auto",
        description="auto: a cross-encoder if the folder says so (sentence-transformers' model_type, "
        "or a *ForSequenceClassification architecture without modules.json), else an embedding model.",
    )
    teacher_temperature: float = Field(
        default=0.02,
        gt=0,
        description="An embedding teacher's cosine is divided by this (FlagEmbedding's own "
        "--temperature default), so its softmax is as sharp as the student's; cross-encoder logits are used as is.",
    )
    teacher_batch_size: int = Field(default=32, ge=1, description="Texts per teacher batch.")
    card_examples: int = Field(default=10, ge=0, description="Seeded random examples shown in the dataset card.")
    card_text_chars: int = Field(default=200, ge=20, description="Longer texts are cut in the card.")
    seed: int = Field(default=0, description="Seeds the card's examples.")

    @field_validator("query_instructions")
    @classmethod
    def _check_instruction_kinds(cls, instructions: dict[str, str]) -> dict[str, str]:
        check_kinds(instructions, EXPORT_KINDS)
        return instructions

    _check_types = field_validator("flagembedding_types")(check_flagembedding_types)


# The gate's default student and budget (measured: docs/quality.md, "Data value").
GATE_TRAIN: dict[str, object] = {"student": "minilm", "max_steps": 20, "batch_size": 16, "learning_rate": 5e-5}


class GateConfig(Strict):
    """The training-effect gate: after export, the same student is trained with the same seed and budget on the
    new version and on its parent (no parent: the untrained student is the baseline), and both are evaluated on
    ``eval``. The version is promoted (``latest-promoted`` moves to it) when it scores at least the parent's
    score minus ``tolerance``. A refused or failed gate still publishes the version: it is only not promoted."""

    eval: list[str] = Field(
        default_factory=list,
        description="SQuAD-style files (CMRC 2018's format) to evaluate on, besides the version's held-out split "
        "(mine.heldout_share); at least one of the two is needed.",
    )
    long_chars: int = Field(
        default=512,
        ge=0,
        description="The long-text protocol (`pairforge eval longtext`): queries are the questions answered past "
        "this character of a longer passage, plus short passages' questions; 0 makes every question a query.",
    )
    short_per_long: float = Field(default=2.0, ge=0, description="Short-passage questions per long one.")
    t2s: bool = Field(default=False, description="Convert the eval files to simplified Chinese first.")
    metric: Literal["recall_at_1", "recall_at_5", "recall_at_10"] = Field(
        default="recall_at_5", description="The score compared: the model's, averaged over the eval files."
    )
    tolerance: float = Field(default=0.01, ge=0, description="How far below the parent a promoted version may be.")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig.model_validate(GATE_TRAIN),
        description="Student and budget (`pairforge train`'s settings; both runs use the same). Keys left out "
        f"take the gate's defaults {GATE_TRAIN}: the pretrained MiniLM-L6, which (unlike `static`) benefits from "
        "mined hard negatives, on a budget that keeps the gate in minutes on a CPU; `student: static` is the "
        "seconds-fast bag of tokens.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_gate_defaults(cls, values: object) -> object:
        """A ``train`` mapping without ``student`` gets the gate's student and budget (not `pairforge train`'s
        `static`), so ``train: {max_steps: 50}`` changes only the steps."""
        if isinstance(values, dict) and isinstance(values.get("train"), dict) and "student" not in values["train"]:
            values = {**values, "train": {**GATE_TRAIN, **values["train"]}}
        return values


class FlowConfig(Strict):
    """How ``pairforge run`` executes the pipeline flow (docs/scaleout.md). Checked: ``dask_address`` is set only
    with ``task_runner: dask`` and ``ray_address`` only with ``task_runner: ray`` (elsewhere each would be ignored)."""

    task_runner: Literal["thread", "process", "dask", "ray"] = Field(
        default="thread",
        description="Where shard tasks run: thread (in process), process (a local process pool), dask (a Dask "
        "cluster, `dask` extra) or ray (a Ray cluster, `ray` extra).",
    )
    dask_address: str | None = Field(default=None, description="An existing Dask scheduler; none: a LocalCluster.")
    dask_workers: int = Field(default=2, ge=1, description="Worker processes of the run's own LocalCluster.")
    ray_address: str | None = Field(
        default=None,
        description="With `task_runner: ray`: an existing Ray cluster (`ray://<head>:10001`, or `auto` on a node "
        "that ran `ray start`); none: a local Ray on 127.0.0.1 for the run (needs the `ray` extra).",
    )
    ray_cpus: int = Field(
        default=2, ge=1, description="CPUs of the local Ray started when `ray_address` is unset: shard tasks at once."
    )
    pin_workers: bool = Field(
        default=False,
        description=(
            "Pin each worker of the run's Dask LocalCluster to one core, with one numba/OpenMP/BLAS thread and its "
            "helper processes inside the pin (pairforge.pinning), so N workers use N cores and no more. For a "
            "cluster started by hand, start the workers with `dask worker --nthreads 1 --preload pairforge.pinning`."
        ),
    )
    llm_concurrency: int = Field(default=1, ge=1, description="LLM tasks running at once (global limit).")
    retries: int = Field(default=2, ge=0, description="Retries of I/O and LLM tasks.")

    @model_validator(mode="after")
    def _check_dask(self) -> FlowConfig:
        if self.dask_address and self.task_runner != "dask":
            raise ValueError(f"dask_address is set but task_runner is {self.task_runner!r}: it would be ignored")
        if self.ray_address and self.task_runner != "ray":
            raise ValueError(f"ray_address is set but task_runner is {self.task_runner!r}: it would be ignored")
        if self.pin_workers and (self.task_runner != "dask" or self.dask_address):
            raise ValueError(
                "pin_workers pins the workers of the run's own Dask LocalCluster (task_runner: dask, no dask_address);"
                " pin a cluster started by hand with `dask worker --nthreads 1 --preload pairforge.pinning`"
            )
        return self
