"""EWC: λ/2 Σ F_i (θ_i − θ*_i)², zero at the start, growing with the distance moved, weighted by the Fisher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pairforge.train import TrainConfig
from pairforge.train.ewc import ElasticWeightConsolidation, EWCLoss, estimate_fisher
from pairforge.train.students import build_student

PAIRS = [
    ("长江发源于哪里？", "长江是中国第一长河，发源于青藏高原，注入东海。"),
    ("中国的首都是哪里？", "北京是中华人民共和国的首都，也是全国的政治和文化中心。"),
    ("什么是光合作用？", "光合作用是植物利用光能把二氧化碳和水合成有机物的过程。"),
    ("大熊猫吃什么？", "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为食。"),
]


@pytest.fixture()
def student(tiny_model_dir: Path):
    return build_student(TrainConfig(static_tokenizer=str(tiny_model_dir), static_dim=16), "cpu")


def penalty(ewc: ElasticWeightConsolidation) -> float:
    return float(ewc().detach())


def weights(model) -> torch.nn.Parameter:
    return next(model.parameters())


def test_penalty_is_zero_at_the_start_and_grows_with_distance(student) -> None:
    fisher = {name: torch.rand_like(p) for name, p in student.named_parameters()}
    ewc = ElasticWeightConsolidation(student, fisher, strength=3.0)
    assert penalty(ewc) == 0.0
    direction = torch.randn_like(weights(student))
    start = weights(student).detach().clone()
    penalties = []
    for distance in (0.01, 0.1, 1.0, 10.0):
        with torch.no_grad():
            weights(student).copy_(start + distance * direction)
        penalties.append(penalty(ewc))
        expected = 0.5 * 3.0 * float((next(iter(fisher.values())) * (distance * direction) ** 2).sum())
        assert penalties[-1] == pytest.approx(expected, rel=1e-4)
    assert penalties == sorted(penalties) and penalties[0] > 0
    assert penalties[-1] / penalties[-2] == pytest.approx(100.0, rel=1e-3)  # quadratic in the distance


def test_the_penalty_pulls_only_where_the_fisher_is_nonzero(student) -> None:
    name, param = next(iter(student.named_parameters()))
    fisher = {name: torch.zeros_like(param)}
    fisher[name][0] = 1.0  # only the first row (token 0) matters
    ewc = ElasticWeightConsolidation(student, fisher, strength=1.0)
    with torch.no_grad():
        param[1:] += 5.0
    assert penalty(ewc) == 0.0
    with torch.no_grad():
        param[0] += 2.0
    assert penalty(ewc) == pytest.approx(0.5 * 4.0 * param.shape[1])
    ewc().backward()
    assert param.grad is not None and bool((param.grad[1:] == 0).all()) and bool((param.grad[0] > 0).all())


def test_fisher_sums_to_one_and_covers_only_the_reference_tokens(student) -> None:
    fisher = estimate_fisher(student, PAIRS, batch_size=2)
    (f,) = fisher.values()
    assert float(f.sum()) == pytest.approx(1.0, rel=1e-5) and bool((f >= 0).all())
    seen = {i for text in (t for pair in PAIRS for t in pair) for i in student[0].tokenizer.encode(text).ids}
    rows = f.sum(dim=1)
    assert {int(i) for i in torch.nonzero(rows).flatten()} <= seen  # a token no reference text has weighs 0
    assert int((rows > 0).sum()) > 10
    assert weights(student).grad is None  # the estimate leaves no gradient behind


def test_the_wrapper_adds_the_penalty_to_the_loss(student) -> None:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    fisher = estimate_fisher(student, PAIRS, batch_size=4)
    ewc = ElasticWeightConsolidation(student, fisher, strength=1000.0)
    with torch.no_grad():
        weights(student).add_(0.5)
    base = MultipleNegativesRankingLoss(student)
    features = [student.preprocess([a for a, _ in PAIRS]), student.preprocess([p for _, p in PAIRS])]
    wrapped = EWCLoss(base, ewc)
    assert wrapped.model is student
    total = float(wrapped(features, None).detach())
    assert penalty(ewc) == pytest.approx(0.5 * 1000.0 * 0.5**2, rel=1e-4)  # F sums to 1: λ/2 × the mean square move
    assert total == pytest.approx(float(base(features, None).detach()) + penalty(ewc), rel=1e-5)
