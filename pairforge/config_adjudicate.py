"""The ``mine.adjudicate`` section of the config: which mined candidates the LLM is asked about, and by which LLM.

False-negative adjudication asks, for each mined candidate that outranks a pair's positive or comes within
``margin`` of its score, whether the candidate answers the query (qp) or states the sentence (sp). A confirmed
candidate never becomes a negative and can be exported as an extra positive. What is asked (the model, the prompt,
sampling, structured output) keys every request in its ledger; ``margin``, ``max_candidates`` and ``kinds`` only
choose which candidates are asked, so widening them sends only the new questions and narrowing them sends none.
Engine settings left unset are generate's, as the judge's are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pairforge.config_generate import GenerateConfig, OpenAIConfig, SamplingConfig, TransformersConfig, VllmConfig
from pairforge.config_inputs import Strict
from pairforge.config_judge import ENGINE_FIELDS
from prompts import PROMPTS_DIR


class AdjudicateConfig(Strict):
    """False-negative adjudication of mined candidates by an LLM (opt-in)."""

    enabled: bool = Field(
        default=False,
        description="Ask the LLM whether mined candidates that outrank the positive, or come within `margin` of its "
        "score, answer the query (qp) or state the sentence (sp); confirmed ones never become negatives.",
    )
    margin: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Relative score margin: a candidate is asked about when its score is at least the positive's "
        "score minus margin x |positive's score| (per retriever: BM25 or cosine). 0: only candidates scoring at "
        "least as high as the positive.",
    )
    max_candidates: int = Field(
        default=5, ge=1, description="At most this many candidates asked per pair (the highest-scoring first)."
    )
    kinds: list[Literal["qp", "sp", "human"]] = Field(
        default=["qp", "sp"], description="Pair kinds whose candidates are adjudicated."
    )
    export_positives: bool = Field(
        default=True,
        description="Add confirmed candidates to the example's `pos` list after its own positive (FlagEmbedding's "
        "pos list; formats with one positive keep the pair's own).",
    )
    backend: Literal["vllm", "openai", "transformers"] | None = Field(
        default=None, description="None: generate's backend and its engine settings."
    )
    model: str | None = Field(default=None, description="Model folder or hub id; None: generate.model.")
    served_model_name: str | None = Field(default=None, description="openai: the model's name on its server.")
    prompt_version: str = Field(default="v1", description="prompts/adjudicate/<version>.zh.j2")
    sampling: SamplingConfig = Field(
        default=SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=16),
        description="Sampling of the adjudication answers (greedy: one short JSON verdict).",
    )
    structured_output: bool = Field(default=True, description="Constrain answers to the prompt's JSON schema.")
    chunk_size: int = Field(default=256, ge=1, description="Requests in the engine at once (vllm's window).")
    send_tasks: int | None = Field(default=None, ge=1, le=16, description="Send tasks; as generate.send_tasks.")
    vllm: VllmConfig | None = Field(default=None, description="vllm engine settings; None: generate's.")
    openai: OpenAIConfig | None = Field(default=None, description="OpenAI-compatible endpoint(s); None: generate's.")
    transformers: TransformersConfig | None = Field(
        default=None, description="transformers settings; None: generate's."
    )

    @field_validator("prompt_version")
    @classmethod
    def _check_prompt_version(cls, version: str) -> str:
        if not (PROMPTS_DIR / "adjudicate" / f"{version}.zh.j2").is_file():
            known = sorted(p.name.split(".")[0] for p in (PROMPTS_DIR / "adjudicate").glob("*.zh.j2"))
            raise ValueError(f"no adjudication prompt {version!r}; known: {', '.join(known)}")
        return version

    def engine(self, generate: GenerateConfig) -> GenerateConfig:
        """The engine settings the adjudicating backend is made from: generate's, with these where set."""
        own = {name: getattr(self, name) for name in ENGINE_FIELDS if getattr(self, name) is not None}
        if "model" in own and "served_model_name" not in own:
            own["served_model_name"] = None  # another model: generate's served name would name the wrong one
        update = {"sampling": self.sampling, "structured_output": self.structured_output}
        update.update(chunk_size=self.chunk_size, send_tasks=self.send_tasks)
        return generate.model_copy(update={**own, **update})
