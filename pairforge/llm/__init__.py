"""LLM backends behind one batch interface, chosen by name in the config and imported lazily."""

from __future__ import annotations

from pairforge.config import GenerateConfig
from pairforge.llm.base import Backend, ChatRequest, Completion

__all__ = ["Backend", "ChatRequest", "Completion", "create_backend"]


def create_backend(config: GenerateConfig, model_path: str) -> Backend:
    """The backend ``config.backend`` names, for the model at ``model_path`` (a folder or a hub id)."""
    if config.backend == "vllm":
        from pairforge.llm.vllm_backend import VllmBackend

        return VllmBackend(config, model_path)
    if config.backend == "openai":
        from pairforge.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config, config.served_model_name or model_path)
    from pairforge.llm.transformers_backend import TransformersBackend

    return TransformersBackend(config, model_path)
