"""RunConfig: the validated YAML that drives a run.

Unknown keys are errors (a typo must not silently fall back to a default), relative paths resolve against the
config file's folder, and ``fingerprint()`` names the config's content for caching and lineage.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pairforge.config_rules import (
    EXPORT_KINDS,
    KINDS,
    canonical_encoding,
    check_block_name,
    check_env_name,
    check_flagembedding_types,
    check_kinds,
    check_no_credentials,
    check_prompt_versions,
)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    # hide_input_in_errors: a rejected value (a key pasted into api_key_env) never reaches an error message.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class _CorpusBase(_Strict):
    path: str = Field(description="A file or a glob of shards; .gz and .zst are read transparently.")
    name: str | None = Field(default=None, description="Source label on every record; defaults to the format.")
    encoding: str = Field(
        default="utf-8", description="Text encoding of the files: utf-8, or gb18030 for GBK corpora (see README)."
    )

    @property
    def source(self) -> str:
        return self.name or self.format  # type: ignore[attr-defined]

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        return canonical_encoding(value)


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

    @model_validator(mode="after")
    def _check_no_encoding(self) -> ParquetCorpus:
        if self.encoding != "utf-8":
            raise ValueError("encoding does not apply to Parquet: its strings are always UTF-8")
        return self


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
    base_url: str | list[str] = Field(
        default="http://127.0.0.1:8000/v1",
        description="One endpoint, or a list: generation's send tasks are spread over them, each request sent once.",
    )
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

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, urls: str | list[str]) -> str | list[str]:
        for url in [urls] if isinstance(urls, str) else urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL with a host, such as http://127.0.0.1:8000/v1")
            check_no_credentials(url)
        if isinstance(urls, list) and not urls:
            raise ValueError("needs at least one endpoint")
        return urls

    _check_api_key_env = field_validator("api_key_env")(check_env_name)
    _check_api_key_secret = field_validator("api_key_secret")(check_block_name)


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
    chunk_size: int = Field(default=256, ge=1, description="Requests in the engine at once (vllm's window).")
    send_tasks: int | None = Field(
        default=None, ge=1, le=16,
        description="Send tasks (partitions of the request keys); default one per OpenAI endpoint, else one.",
    )
    sampling: SamplingConfig = SamplingConfig()
    vllm: VllmConfig = VllmConfig()
    openai: OpenAIConfig = OpenAIConfig()
    transformers: TransformersConfig = TransformersConfig()

    @field_validator("kinds")
    @classmethod
    def _check_unique_kinds(cls, kinds: list[str]) -> list[str]:
        repeated = sorted({k for k in kinds if kinds.count(k) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed twice: each kind is generated once per passage")
        return kinds

    @field_validator("counts")
    @classmethod
    def _check_counts(cls, counts: dict[str, int]) -> dict[str, int]:
        check_kinds(counts, KINDS)
        for kind, count in counts.items():
            if count < 1:  # a schema asking for 0 or fewer items makes every paid request fail
                raise ValueError(f"{kind} asks for {count} items per request: every count must be at least 1")
        return counts

    _check_prompts = field_validator("prompt_versions")(check_prompt_versions)

    @model_validator(mode="after")
    def _check_answer_room(self) -> GenerateConfig:
        room = self.vllm.max_model_len
        if self.backend == "vllm" and room is not None and self.sampling.max_tokens >= room:
            raise ValueError(
                f"sampling.max_tokens ({self.sampling.max_tokens}) leaves no room for the prompt in "
                f"vllm.max_model_len ({room})"
            )
        return self

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
    scheme: Literal["affine32", "oph"] = Field(
        default="affine32", description="affine32: datasketch-identical signatures; oph: faster, as accurate."
    )
    against: list[str] = Field(
        default=[], description="Index folders (or globs) of earlier versions; texts they hold are dropped."
    )
    against_store: bool = Field(default=True, description="Also dedup against every published version of the dataset.")

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
    require_evidence: bool = Field(
        default=True, description="Drop pairs whose evidence cannot be located in their passage (evidence_not_found)."
    )
    contamination_ngram: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> FilterConfig:
        for low, high in (("query_min_chars", "query_max_chars"), ("passage_min_chars", "passage_max_chars")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) is larger than {high} ({getattr(self, high)}): nothing could pass"
                )
        return self


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


class ExportConfig(_Strict):
    """What a published version holds besides ``data/`` (each format optional)."""

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
    teacher_batch_size: int = Field(default=32, ge=1)
    card_examples: int = Field(default=10, ge=0, description="Seeded random examples shown in the dataset card.")
    card_text_chars: int = Field(default=200, ge=20, description="Longer texts are cut in the card.")
    seed: int = 0

    @field_validator("query_instructions")
    @classmethod
    def _check_instruction_kinds(cls, instructions: dict[str, str]) -> dict[str, str]:
        check_kinds(instructions, EXPORT_KINDS)
        return instructions

    _check_types = field_validator("flagembedding_types")(check_flagembedding_types)


class FlowConfig(_Strict):
    """How ``pairforge run`` executes the pipeline flow."""

    task_runner: Literal["thread", "process", "dask"] = "thread"
    dask_address: str | None = Field(default=None, description="An existing Dask scheduler; none: a LocalCluster.")
    dask_workers: int = Field(default=2, ge=1)
    llm_concurrency: int = Field(default=1, ge=1, description="LLM tasks running at once (global limit).")
    retries: int = Field(default=2, ge=0, description="Retries of I/O and LLM tasks.")

    @model_validator(mode="after")
    def _check_dask(self) -> FlowConfig:
        if self.dask_address and self.task_runner != "dask":
            raise ValueError(f"dask_address is set but task_runner is {self.task_runner!r}: it would be ignored")
        return self


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

    def redacted(self) -> dict[str, Any]:
        """The config as JSON with nothing secret in it (what flows, manifests and Prefect's database receive): a
        value in ``api_key_env`` that is not a variable name is replaced, credentials in URLs are cut."""
        dump = _strip_userinfo(self.model_dump(mode="json"))
        openai = dump["generate"]["openai"]
        if not _ENV_NAME.fullmatch(openai["api_key_env"]):
            openai["api_key_env"] = "<redacted: not a variable name>"
        return dump

    @field_validator("store")
    @classmethod
    def _check_store(cls, store: str) -> str:
        return check_no_credentials(store) if "://" in store else store

    @field_validator("corpora")
    @classmethod
    def _check_distinct_corpora(cls, corpora: list[Any]) -> list[Any]:
        seen: dict[str, int] = {}
        for i, corpus in enumerate(corpora):
            if corpus.path in seen:  # the path itself is not quoted: an object-store URL may be private
                raise ValueError(f"corpora {seen[corpus.path]} and {i} name the same path: it would be read twice")
            seen[corpus.path] = i
        return corpora

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON dump: equal configs give equal fingerprints."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _strip_userinfo(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_userinfo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_userinfo(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _USERINFO.sub("***@", value)
    return value


def check_locations(config: RunConfig, source: str = "config") -> None:
    """``store`` and ``workdir`` must not contain each other: a run rewrites its workdir, and a version must never
    be inside it (nor the workdir inside a version)."""
    if "://" in config.store:
        return
    store, workdir = Path(config.store).resolve(), Path(config.workdir).resolve()
    if store == workdir or store in workdir.parents or workdir in store.parents:
        raise ConfigError(f"{source}: store ({store}) and workdir ({workdir}) must not contain each other")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML RunConfig; relative paths resolve against the file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        # Located, not quoted: PyYAML's message repeats the line, which may hold a pasted key.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or 'unreadable'}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    config = _resolve_paths(config, path.resolve().parent)
    check_locations(config, str(path))
    return config


def _describe(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p)) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{key}'")
        else:
            lines.append(f"{path}: {key}: {err['msg'].removeprefix('Value error, ')}")
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
    export = config.export
    if export.teacher and (base / export.teacher).exists():
        export = export.model_copy(update={"teacher": resolve(export.teacher)})
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
            "export": export,
        }
    )
