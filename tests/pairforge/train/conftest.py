"""A published version to train on (the export tests' CMRC workdir, exported once per session) and a tiny
static student over the tiny test tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairforge.train import TrainConfig
from tests.pairforge.export.conftest import publish
from tests.pairforge.export.workdir import build_workdir, make_config, write_inputs


@pytest.fixture(scope="session")
def version(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """``store/cmrc-test/v1``: qp, sp and human examples with mined negatives, and scored CoSENT pairs."""
    tmp = tmp_path_factory.mktemp("train-version")
    config = make_config(tmp, str(tmp / "store"), write_inputs(tmp / "inputs", shared_data))
    return publish(build_workdir(config, shared_data))[1]


@pytest.fixture()
def static_config(tiny_model_dir: Path) -> TrainConfig:
    """The static student over the tiny tokenizer, small batches so a few rows make several steps."""
    return TrainConfig(static_tokenizer=str(tiny_model_dir), static_dim=32, batch_size=4)
