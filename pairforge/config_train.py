"""TrainConfig: how ``pairforge train`` trains a student on published versions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

STATIC_BATCH, STATIC_LR = 128, 0.05  # the field trials' static student (notes/field-trials.md, "Trainers")
MODEL_BATCH, MODEL_LR = 32, 2e-5  # a usual fine-tuning start for a BERT-sized encoder


class TrainConfig(BaseModel):
    """Student, budget and losses of one training run; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    student: str = Field(
        default="static",
        description="`static` (a random StaticEmbedding over a tokenizer), `demo-layers[:N]` (the demo model's "
        "first N transformer layers, mean pooled; N defaults to 1), or a sentence-transformers model path.",
    )
    static_tokenizer: str | None = Field(
        default=None, description="Folder with tokenizer.json for `static`; default: the demo model's folder."
    )
    static_dim: int = Field(default=256, ge=8, description="Embedding size of the `static` student.")
    max_seq_length: int = Field(default=512, ge=8, description="Token limit of a transformer student.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training rows (max_steps wins when set).")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps (overrides epochs).")
    batch_size: int | None = Field(
        default=None, ge=2, description=f"Default {STATIC_BATCH} static, else {MODEL_BATCH}."
    )
    learning_rate: float | None = Field(
        default=None, gt=0, description=f"Default {STATIC_LR} static, else {MODEL_LR}."
    )
    seed: int = Field(default=0, description="Seeds the student's initialisation, the batch order and the EWC sample.")
    num_negatives: int = Field(
        default=1,
        ge=0,
        description="Hard negatives per MNRL row (columns negative_1..n); rows with fewer are left out.",
    )
    sampler: Literal["proportional", "round_robin"] = Field(
        default="proportional",
        description="Order of the per-kind batches: in proportion to each dataset's size (all rows used), or "
        "round robin (equal turns until the smallest dataset runs out).",
    )
    query_prompts: bool | None = Field(
        default=None,
        description="Prepend each kind's query instruction to its anchors (and save it as the model's `query` "
        "prompt). Default: on, except for `static`: a bag of tokens only adds the instruction's vectors to every "
        "query, and measured on CMRC dev that cost 0.14 recall@5 (0.62 against 0.76).",
    )
    kinds: list[str] | None = Field(default=None, description="Train only these kinds (qp, sp, human, scored).")
    ewc_lambda: float = Field(
        default=0.0,
        ge=0,
        description="EWC strength λ: each loss gets λ/2 Σ F_i (θ_i − θ*_i)², F the diagonal Fisher normalised to "
        "sum 1 (so the penalty is λ/2 × the importance-weighted mean squared move); 0 turns EWC off.",
    )
    ewc_samples: int = Field(default=256, ge=2, description="Reference pairs for the Fisher estimate.")
    ewc_reference: list[str] | None = Field(
        default=None, description="Versions whose pairs form the EWC reference sample (default: the training data)."
    )

    def is_static(self) -> bool:
        return self.student == "static"

    def uses_prompts(self) -> bool:
        return self.query_prompts if self.query_prompts is not None else not self.is_static()

    def resolved_batch_size(self) -> int:
        return self.batch_size or (STATIC_BATCH if self.is_static() else MODEL_BATCH)

    def resolved_learning_rate(self) -> float:
        return self.learning_rate or (STATIC_LR if self.is_static() else MODEL_LR)
