"""Elastic weight consolidation (Kirkpatrick et al. 2017), one of the stella recipe's parts: a pull toward the
starting weights θ*, strongest on the weights that mattered most for a reference sample.

    penalty = λ/2 · Σ_i F_i (θ_i − θ*_i)²

F is the diagonal empirical Fisher: the squared gradient of the MultipleNegativesRankingLoss on reference
(anchor, positive) batches, summed over batches, then **normalised to sum 1**. So the penalty is λ/2 times the
importance-weighted mean squared move of the weights, and λ means the same whatever the model's size or the
loss's scale: at λ = 2 the penalty is the weighted mean squared move itself, in units of the loss. EWC protects
what a *trained* starting model knows (a GPU model, an earlier ``pairforge train`` output); a random-initialised
student has nothing to protect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class ElasticWeightConsolidation(nn.Module):
    """The EWC penalty of a model's trainable weights, anchored at their values when this is built."""

    def __init__(self, model: nn.Module, fisher: dict[str, torch.Tensor], strength: float) -> None:
        super().__init__()
        self.strength = strength
        # a plain list, not submodules: the trainer must not see (or swap) a second copy of the model here
        named = [(name, p) for name, p in model.named_parameters() if name in fisher]
        self.params = [p for _, p in named]
        for i, (name, param) in enumerate(named):
            self.register_buffer(f"anchor_{i}", param.detach().clone())
            self.register_buffer(f"fisher_{i}", fisher[name].to(param.device))
        self.last = 0.0

    def forward(self) -> torch.Tensor:
        total = self.params[0].new_zeros(()) if self.params else torch.zeros(())
        for i, param in enumerate(self.params):
            anchor, fisher = getattr(self, f"anchor_{i}"), getattr(self, f"fisher_{i}")
            total = total + (fisher * (param - anchor) ** 2).sum()
        penalty = 0.5 * self.strength * total
        self.last = float(penalty.detach())
        return penalty


class EWCLoss(nn.Module):
    """A loss with the EWC penalty added: ``loss(features, labels) + ewc()``."""

    def __init__(self, loss: nn.Module, ewc: ElasticWeightConsolidation) -> None:
        super().__init__()
        self.loss, self.ewc = loss, ewc

    @property
    def model(self) -> Any:
        """The wrapped loss's model (the trainer swaps in its wrapped model through this)."""
        return self.loss.model

    def forward(self, features: Any, labels: Any) -> torch.Tensor:
        return self.loss(features, labels) + self.ewc()


def estimate_fisher(
    model: Any, pairs: Sequence[tuple[str, str]], batch_size: int, prompt: str | None = None
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the trainable weights on ``pairs`` (anchor, positive): the squared gradient of
    MultipleNegativesRankingLoss summed over batches, normalised to sum 1. The model is left unchanged."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if len(pairs) < 2:
        raise ValueError("EWC needs at least 2 reference pairs (in-batch negatives)")
    loss = MultipleNegativesRankingLoss(model)
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    squares = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()  # no dropout: the estimate should not depend on the mask drawn
    for start in range(0, len(pairs) - 1, batch_size):
        chunk = pairs[start : start + batch_size]
        if len(chunk) < 2:
            break
        model.zero_grad(set_to_none=True)
        features = [_to(model.preprocess([a for a, _ in chunk], prompt=prompt), model.device)]
        features.append(_to(model.preprocess([p for _, p in chunk]), model.device))
        loss(features, None).backward()
        for name, p in params.items():
            if p.grad is not None:
                squares[name] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    total = sum(float(s.sum()) for s in squares.values())
    if total == 0:
        raise ValueError("EWC: the reference pairs gave zero gradients (nothing to weigh the penalty by)")
    return {name: s / total for name, s in squares.items()}


def _to(features: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
