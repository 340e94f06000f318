"""LLM backends behind one batch interface, chosen by name in the config and imported lazily."""

from __future__ import annotations

from pathlib import Path

from pairforge.config import GenerateConfig
from pairforge.llm.base import Backend, ChatRequest, Completion

__all__ = ["Backend", "ChatRequest", "Completion", "create_backend"]


def create_backend(config: GenerateConfig, model_path: str, *, log_path: Path | None = None) -> Backend:
    """The backend ``config.backend`` names, for the model at ``model_path`` (a folder or a hub id); an
    in-process engine's own log lines go to ``log_path`` (None: where the engine sends them)."""
    if config.backend == "vllm":
        from pairforge.llm.vllm_backend import VllmBackend

        return VllmBackend(config, model_path, log_path=log_path)
    if config.backend == "openai":
        from pairforge.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config, config.served_model_name or model_path)
    from pairforge.llm.transformers_backend import TransformersBackend

    return TransformersBackend(config, model_path)
