"""One loss per kind, each computed on its own kind's batches: MultipleNegativesRankingLoss (in-batch plus the
mined hard negatives) for ``qp``, ``sp``, ``human``; CoSENTLoss for ``scored``; EWC added to each when on.
Every loss records the values it returns, so a run reports each kind's loss, and a test can see each called."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from pairforge.train.datasets import SCORED
from pairforge.train.ewc import ElasticWeightConsolidation, EWCLoss


class RecordedLoss(nn.Module):
    """A loss that keeps the value of every call."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.values: list[float] = []

    @property
    def model(self) -> Any:
        """The wrapped loss's model (the trainer swaps in its wrapped model through this)."""
        return self.loss.model

    def forward(self, features: Any, labels: Any) -> torch.Tensor:
        value: torch.Tensor = self.loss(features, labels)
        self.values.append(float(value.detach()))
        return value

    def summary(self) -> dict[str, Any]:
        """``{loss, calls, first, last, mean}``: the loss's name, how often it ran, and its values."""
        inner = self.loss.loss if isinstance(self.loss, EWCLoss) else self.loss
        name = type(inner).__name__ + ("+EWC" if isinstance(self.loss, EWCLoss) else "")
        values = self.values
        return {
            "loss": name,
            "calls": len(values),
            "first": round(values[0], 4) if values else None,
            "last": round(values[-1], 4) if values else None,
            "mean": round(sum(values) / len(values), 4) if values else None,
        }


def build_losses(
    model: Any, kinds: Iterable[str], ewc: ElasticWeightConsolidation | None = None
) -> dict[str, RecordedLoss]:
    """The loss of each kind, keyed like the training DatasetDict."""
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    out = {}
    for kind in kinds:
        loss: nn.Module = CoSENTLoss(model) if kind == SCORED else MultipleNegativesRankingLoss(model)
        out[kind] = RecordedLoss(EWCLoss(loss, ewc) if ewc is not None else loss)
    return out
