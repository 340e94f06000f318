"""The judge section of the config: which LLM scores the kept pairs, and the cut.

The settings split in two. What is asked (the model, the prompt, sampling, structured output) keys every judge
request in the ledger; the cut (``min_score``, ``min_scores``) only decides which scored pairs are kept, so
changing it sends no request. An engine setting left unset (``backend``, ``model``, ``served_model_name``,
``vllm``, ``openai``, ``transformers``) is generate's: by default the judge is the generation model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pairforge.config_generate import GenerateConfig, OpenAIConfig, SamplingConfig, TransformersConfig, VllmConfig
from pairforge.config_inputs import Strict
from prompts import PROMPTS_DIR

Criterion = Literal["relevance", "faithfulness", "clarity"]
ENGINE_FIELDS = ("backend", "model", "served_model_name", "vllm", "openai", "transformers")


class JudgeConfig(Strict):
    """The LLM judge (opt-in): it scores every pair the filters kept on relevance, faithfulness and clarity
    (integers 1-5), and the cut keeps the good ones. What is asked (model, prompt, sampling, structured output)
    keys its ledger; the cut (``min_score``, ``min_scores``) does not, so a new cut sends no request. An engine
    setting left unset is generate's: by default the judge is the generation model."""

    enabled: bool = Field(default=False, description="Score every kept pair with the LLM judge (the judge stage).")
    backend: Literal["vllm", "openai", "transformers"] | None = Field(
        default=None, description="None: generate's backend and its engine settings."
    )
    model: str | None = Field(default=None, description="Model folder or hub id; None: generate.model.")
    served_model_name: str | None = Field(default=None, description="openai: the judge model's name on its server.")
    prompt_version: str = Field(default="v1", description="prompts/judge/<version>.zh.j2")
    min_score: float | None = Field(
        default=3.0, ge=1, le=5, description="The cut: pairs whose mean score is below it are dropped (None: no cut)."
    )
    min_scores: dict[Criterion, int] = Field(
        default={}, description="The cut per criterion (e.g. faithfulness: 4), besides min_score."
    )
    sampling: SamplingConfig = Field(
        default=SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=48),
        description="The judge's own sampling (greedy, 48 tokens).",
    )
    structured_output: bool = Field(default=True, description="JSON-schema constrained decoding of the scores.")
    chunk_size: int = Field(default=256, ge=1, description="Requests in the engine at once (vllm's window).")
    send_tasks: int | None = Field(default=None, ge=1, le=16, description="Send tasks; as generate.send_tasks.")
    vllm: VllmConfig | None = Field(
        default=None, description="None: generate's; or the whole block for the judge's own engine."
    )
    openai: OpenAIConfig | None = Field(default=None, description="None: generate's; or an endpoint of its own.")
    transformers: TransformersConfig | None = Field(default=None, description="None: generate's.")

    @field_validator("min_scores")
    @classmethod
    def _check_min_scores(cls, minima: dict[str, int]) -> dict[str, int]:
        for name, score in minima.items():
            if not 1 <= score <= 5:
                raise ValueError(f"{name}: {score} is not a score (scores are integers 1 to 5)")
        return minima

    @field_validator("prompt_version")
    @classmethod
    def _check_prompt_version(cls, version: str) -> str:
        if not (PROMPTS_DIR / "judge" / f"{version}.zh.j2").is_file():
            known = sorted(p.name.split(".")[0] for p in (PROMPTS_DIR / "judge").glob("*.zh.j2"))
            raise ValueError(f"no judge prompt {version!r}; known: {', '.join(known)}")
        return version

    def engine(self, generate: GenerateConfig) -> GenerateConfig:
        """The engine settings the judge's backend is made from: generate's, with the judge's own where set."""
        own = {name: getattr(self, name) for name in ENGINE_FIELDS if getattr(self, name) is not None}
        if "model" in own and "served_model_name" not in own:
            own["served_model_name"] = None  # another model: generate's served name would name the wrong one
        return generate.model_copy(
            update={
                **own,
                "sampling": self.sampling,
                "structured_output": self.structured_output,
                "chunk_size": self.chunk_size,
                "send_tasks": self.send_tasks,
            }
        )
