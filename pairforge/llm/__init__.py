"""LLM backends behind one batch interface, chosen by name in the config and imported lazily."""

from __future__ import annotations

from pathlib import Path

from pairforge.config import GenerateConfig
from pairforge.llm.base import Backend, ChatRequest, Completion

__all__ = ["Backend", "ChatRequest", "Completion", "create_backend"]


def create_backend(
    config: GenerateConfig, model_path: str, endpoint: int = 0, *, log_path: Path | None = None
) -> Backend:
    """The backend ``config.backend`` names, for the model at ``model_path`` (a folder or a hub id); with several
    OpenAI-compatible endpoints, the one numbered ``endpoint`` (modulo their count). An in-process engine's own log
    lines go to ``log_path`` (None: where the engine sends them)."""
    if config.backend == "vllm":
        from pairforge.llm.vllm_backend import VllmBackend

        return VllmBackend(config, model_path, log_path=log_path)
    if config.backend == "vllm-ray":
        from pairforge.llm.ray_actors import RayVllmBackend

        return RayVllmBackend(config, model_path, log_path=log_path)
    if config.backend == "openai":
        from pairforge.llm.openai_backend import OpenAIBackend, endpoints

        urls = endpoints(config)
        return OpenAIBackend(config, config.served_model_name or model_path, urls[endpoint % len(urls)])
    from pairforge.llm.transformers_backend import TransformersBackend

    return TransformersBackend(config, model_path)
