"""RunConfig: the validated YAML that drives a run.

Unknown keys are errors (a typo must not silently fall back to a default), relative paths resolve against the
config file's folder, and ``fingerprint()`` names the config's content for caching and lineage.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CorpusBase(_Strict):
    path: str = Field(description="A file or a glob of shards; .gz and .zst are read transparently.")
    name: str | None = Field(default=None, description="Source label on every record; defaults to the format.")

    @property
    def source(self) -> str:
        return self.name or self.format  # type: ignore[attr-defined]


class WudaoCorpus(_CorpusBase):
    format: Literal["wudao"]
    records_key: str = Field(
        default="RECORDS", description="Key of the record array in dump files shaped {KEY: [...]}"
    )


class M3eCorpus(_CorpusBase):
    format: Literal["m3e"]
    documents: bool = Field(default=True, description="Also turn the passage-side texts into documents.")


class SimclueCorpus(_CorpusBase):
    format: Literal["simclue"]
    documents: bool = True


class PairsTsvCorpus(_CorpusBase):
    format: Literal["pairs_tsv"]
    documents: bool = False


class SquadCorpus(_CorpusBase):
    format: Literal["squad"]
    role: Literal["train", "eval"] = Field(default="eval", description="Human questions are held out by default.")


class JsonlCorpus(_CorpusBase):
    format: Literal["jsonl"]
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"


class ParquetCorpus(_CorpusBase):
    format: Literal["parquet"]
    text_field: str = "text"
    title_field: str | None = "title"
    id_field: str | None = "id"


CorpusConfig = Annotated[
    WudaoCorpus | M3eCorpus | SimclueCorpus | PairsTsvCorpus | SquadCorpus | JsonlCorpus | ParquetCorpus,
    Field(discriminator="format"),
]


class NormalizeConfig(_Strict):
    t2s: bool = Field(default=False, description="Traditional → simplified Chinese with OpenCC.")
    fold_punctuation: bool = Field(default=False, description="Also fold Chinese full-width punctuation to ASCII.")


class WindowConfig(_Strict):
    max_length: int = Field(default=1024, gt=0, description="Upper bound per passage, in tokens (or characters).")
    min_length: int = Field(default=64, ge=1, description="Shorter windows are dropped (counted as too_short).")
    overlap: int = Field(
        default=0, ge=0, description="Trailing sentences up to this length repeat in the next window."
    )
    tokenizer: str | None = Field(default=None, description="Local Hugging Face tokenizer folder; None = characters.")
    long_chars: int = Field(default=512, gt=0, description="Passages longer than this many characters are 'long'.")
    long_short_ratio: float | None = Field(
        default=2.0, gt=0, description="Keep at most 1 short passage per this many long ones; None keeps all."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _check_bounds(self) -> WindowConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) is larger than max_length ({self.max_length})")
        if self.overlap >= self.max_length:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than max_length ({self.max_length})")
        return self


class IngestConfig(_Strict):
    shard_rows: int = Field(default=20_000, gt=0, description="Passages per Parquet shard.")
    max_document_chars: int = Field(default=2_000_000, gt=0, description="Longer documents are quarantined.")


class SamplingConfig(_Strict):
    n: int = Field(default=1, ge=1, description="Completions per request (several samples share one prefill).")
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_tokens: int = Field(default=384, gt=0)
    seed: int = Field(default=0, description="Per request on GPU; engine-wide on the CPU build (see README).")


class VllmConfig(_Strict):
    dtype: str = "auto"
    max_model_len: int | None = 4096
    max_num_seqs: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    enable_prefix_caching: bool = True
    block_size: int | None = Field(default=None, description="None: 32 on CPU (caches the shared prompt head).")
    enforce_eager: bool = False
    kv_cache_gib: int | None = Field(default=None, ge=1, description="CPU only: KV cache GiB; default 2.")
    structured_outputs_backend: Literal["xgrammar", "guidance", "outlines", "auto"] = "xgrammar"
    disable_any_whitespace: bool = Field(default=True, description="Grammar without free whitespace runs.")


class OpenAIConfig(_Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Name of the variable holding the key.")
    api_key_secret: str | None = Field(
        default=None,
        description="Prefect Secret block holding the key (read by `pairforge run` when the variable is unset).",
    )
    concurrency: int = Field(default=16, ge=1)
    timeout_s: float = Field(default=300, gt=0)
    max_retries: int = Field(default=5, ge=0)
    json_schema: bool = Field(default=True, description="Send response_format json_schema.")
    send_seed: bool = Field(default=True, description="Send sampling.seed per request; false for a vLLM CPU server.")


class TransformersConfig(_Strict):
    batch_size: int = Field(default=8, ge=1)
    dtype: str = "bfloat16"
    device: str | None = Field(default=None, description="torch device; default cuda when present, else cpu.")


QueryType = Literal["factoid", "keyword", "natural"]


class GenerateConfig(_Strict):
    backend: Literal["vllm", "openai", "transformers"] = "vllm"
    model: str = Field(default="demo", description="Model folder or hub id; 'demo' = the prepared demo model.")
    served_model_name: str | None = Field(default=None, description="openai: model name the server knows.")
    kinds: list[Literal["qp", "sp"]] = Field(default=["qp", "sp"], min_length=1)
    prompt_versions: dict[str, str] = Field(
        default={"qp": "v1", "sp": "v1"},
        description="Prompt version per kind: v1 asks for `counts` items and the model quotes its evidence; "
        "v2 is evidence-first (the pipeline picks target sentences, one request each).",
    )
    counts: dict[str, int] = Field(
        default={"qp": 3, "sp": 1},
        description="Items per passage, by kind: asked in one request (v1), or target sentences (v2).",
    )
    long_tail_share: float = Field(
        default=0.5, ge=0, le=1, description="Evidence-first: share of a long passage's targets past long_chars."
    )
    query_types: dict[QueryType, float] = Field(
        default={"factoid": 1.0, "keyword": 1.0, "natural": 1.0},
        description="Evidence-first qp: the query-type mix (weights); each target gets one type.",
    )
    target_min_chars: int = Field(default=12, ge=1, description="Shorter sentences are not chosen as targets.")
    target_max_chars: int = Field(default=80, ge=1, description="Longer sentences are not chosen as targets.")
    structured_output: bool = True
    chunk_size: int = Field(default=256, ge=1, description="Requests per engine call and ledger commit.")
    sampling: SamplingConfig = SamplingConfig()
    vllm: VllmConfig = VllmConfig()
    openai: OpenAIConfig = OpenAIConfig()
    transformers: TransformersConfig = TransformersConfig()

    @model_validator(mode="after")
    def _check_targets(self) -> GenerateConfig:
        if self.target_min_chars > self.target_max_chars:
            raise ValueError(f"target_min_chars ({self.target_min_chars}) is larger than target_max_chars")
        if not any(w > 0 for w in self.query_types.values()):
            raise ValueError("query_types needs at least one positive weight")
        if any(w < 0 for w in self.query_types.values()):
            raise ValueError("query_types weights must not be negative")
        return self


class DedupConfig(_Strict):
    num_perm: int = Field(default=128, ge=16, le=1024)
    threshold: float = Field(default=0.8, gt=0, lt=1, description="Jaccard at which two texts are duplicates.")
    ngram: int = Field(default=5, ge=1, description="Shingle size, in characters or words.")
    unit: Literal["char", "word"] = Field(default="char", description="char n-grams, or jieba word n-grams.")
    # Bucket collisions are verified against the signatures before two texts are joined, so a false positive
    # of the banding costs a comparison, not a wrong drop: the defaults favour recall (14 bands x 9 rows at 0.8).
    false_positive_weight: float = Field(default=0.1, ge=0, le=1)
    false_negative_weight: float = Field(default=0.9, ge=0, le=1)
    seed: int = 1
    against: list[str] = Field(
        default=[], description="Index folders (or globs) of earlier versions; texts they hold are dropped."
    )
    against_store: bool = Field(default=True, description="Also dedup against every published version of the dataset.")


class FilterConfig(_Strict):
    query_min_chars: int = Field(default=4, ge=1)
    query_max_chars: int = Field(default=64, ge=1)
    passage_min_chars: int = Field(default=50, ge=1)
    passage_max_chars: int = Field(default=4000, ge=1)
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
        default=20, ge=1, description="Round trip: the query must retrieve its passage in BM25's top k (None: off)."
    )
    contamination: list[CorpusConfig] = Field(
        default=[], description="Evaluation sets; pairs whose query or passage nearly matches them are dropped."
    )
    contamination_threshold: float = Field(default=0.8, gt=0, lt=1)
    contamination_ngram: int = Field(default=5, ge=1)


class MineConfig(_Strict):
    """Hard-negative mining, with sentence-transformers' parameter names."""

    range_min: int = Field(default=0, ge=0, description="Skip this many top-ranked candidates.")
    range_max: int = Field(default=50, ge=1, description="Candidates kept per query and retriever.")
    num_negatives: int = Field(default=7, ge=1)
    sampling_strategy: Literal["top", "random"] = "top"
    relative_margin: float | None = Field(default=0.05, ge=0, lt=1, description="neg <= (1 - m) * pos score.")
    absolute_margin: float | None = Field(default=None, description="neg <= pos score - m.")
    max_score: float | None = None
    retriever: Literal["bm25", "dense", "both"] = "bm25"
    bm25_share: float = Field(default=0.5, ge=0, le=1, description="With both retrievers: share of BM25 negatives.")
    analyzer: Literal["jieba", "bigram", "jieba_bigram"] = Field(default="jieba", description="BM25 terms.")
    dense_model: str | None = Field(default=None, description="sentence-transformers model folder for dense.")
    dense_batch_size: int = Field(default=64, ge=1)
    dense_index: Literal["exact", "faiss"] = Field(default="exact", description="faiss for large pools (extra).")
    dense_device: str | None = Field(default=None, description="torch device; default cuda when present.")
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1, description="MinHash J of a positive's twin.")
    answer_guard: bool = Field(
        default=True, description="Skip negatives containing the pair's answer (human sets) or quoted evidence."
    )
    top_up: Literal["random", "none"] = Field(
        default="random", description="Fill a shortfall with random pool passages that pass the guards."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _check_dense(self) -> MineConfig:
        if self.retriever != "bm25" and not self.dense_model:
            raise ValueError(f"mine.retriever is {self.retriever!r} but mine.dense_model is not set")
        return self


class ExportConfig(_Strict):
    """What a published version holds besides ``data/`` (each format optional)."""

    flagembedding: bool = Field(default=True, description="flagembedding/<kind>.jsonl, one file per kind.")
    length_buckets: list[int] = Field(
        default_factory=list,
        description="Length bucket edges for flagembedding/by_length/, as FlagEmbedding's split_data_by_length: "
        "an example's longest text, in tokens of window.tokenizer (characters without one).",
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
    card_examples: int = Field(default=10, ge=0, description="Seeded random examples shown in the dataset card.")
    card_text_chars: int = Field(default=200, ge=20, description="Longer texts are cut in the card.")
    seed: int = 0


class FlowConfig(_Strict):
    """How ``pairforge run`` executes the pipeline flow."""

    task_runner: Literal["thread", "process", "dask"] = "thread"
    dask_address: str | None = Field(default=None, description="An existing Dask scheduler; none: a LocalCluster.")
    dask_workers: int = Field(default=2, ge=1)
    llm_concurrency: int = Field(default=1, ge=1, description="LLM tasks running at once (global limit).")
    retries: int = Field(default=2, ge=0, description="Retries of I/O and LLM tasks.")


class RunConfig(_Strict):
    name: str = Field(default="pairforge", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Dataset name.")
    workdir: str = "work"
    store: str = Field(default="store", description="Versioned dataset store: a folder or an fsspec URL (s3://...).")
    corpora: list[CorpusConfig] = Field(min_length=1)
    normalize: NormalizeConfig = NormalizeConfig()
    window: WindowConfig = WindowConfig()
    ingest: IngestConfig = IngestConfig()
    generate: GenerateConfig = GenerateConfig()
    dedup: DedupConfig = DedupConfig()
    filter: FilterConfig = FilterConfig()
    mine: MineConfig = MineConfig()
    export: ExportConfig = ExportConfig()
    flow: FlowConfig = FlowConfig()

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON dump: equal configs give equal fingerprints."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML RunConfig; relative paths resolve against the file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    return _resolve_paths(config, path.resolve().parent)


def _describe(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p)) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{key}'")
        else:
            lines.append(f"{path}: {key}: {err['msg']}")
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the discriminator value into the error location (corpora.0.wudao.foo); drop it.
    return part in {"wudao", "m3e", "simclue", "pairs_tsv", "squad", "jsonl", "parquet"}


def _resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    def resolve(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else os.path.normpath(base / p)

    corpora = [c.model_copy(update={"path": resolve(c.path)}) for c in config.corpora]
    window = config.window
    if window.tokenizer and (base / window.tokenizer).exists():
        window = window.model_copy(update={"tokenizer": resolve(window.tokenizer)})
    filter_ = config.filter.model_copy(
        update={"contamination": [c.model_copy(update={"path": resolve(c.path)}) for c in config.filter.contamination]}
    )
    dedup = config.dedup.model_copy(update={"against": [resolve(p) for p in config.dedup.against]})
    mine = config.mine
    if mine.dense_model and (base / mine.dense_model).exists():
        mine = mine.model_copy(update={"dense_model": resolve(mine.dense_model)})
    generate = config.generate
    if (base / generate.model).exists():
        generate = generate.model_copy(update={"model": resolve(generate.model)})
    return config.model_copy(
        update={
            "corpora": corpora,
            "workdir": resolve(config.workdir),
            "store": resolve(config.store),
            "window": window,
            "generate": generate,
            "filter": filter_,
            "dedup": dedup,
            "mine": mine,
        }
    )
