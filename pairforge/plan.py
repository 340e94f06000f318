"""``pairforge run --dry-run``: what a run would do, computed without running anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pairforge.config import RunConfig
from pairforge.ingest import file_sha256, list_shards

STAGES = ("ingest", "dedup-passages", "generate", "filter", "dedup-pairs", "mine", "export")
PROMPT_OVERHEAD_TOKENS = 350  # the template around the passage (measured on prompts/qp/v1: ~330 tokens)
TOKENS_PER_CHAR = 0.75  # Qwen-family tokenizers on Chinese text


def plan_run(config: RunConfig, covered: set[str], limit: int | None = None) -> dict[str, Any]:
    """Stages, input shards (new / already covered by the newest version), and the LLM work: requests,
    prompt tokens (estimated) and the output-token ceiling. Passages are counted if this workdir already
    holds an ingest of exactly these shards, otherwise estimated from the input bytes."""
    shards = list_shards(config)
    digests = [file_sha256(path) for _, path in shards]
    new = [(path, d) for (_, path), d in zip(shards, digests, strict=True) if d not in covered]
    new_bytes = sum(Path(path).stat().st_size for path, _ in new)
    passages, counted = _passages(config, {d for _, d in new}, new_bytes)
    if limit is not None:
        passages = min(passages, limit)
    gen = config.generate
    requests = passages * len(gen.kinds)
    avg_chars = (config.window.max_length + config.window.min_length) / 2
    return {
        "stages": list(STAGES),
        "shards": len(shards),
        "new_shards": len(new),
        "covered_shards": len(shards) - len(new),
        "new_input_bytes": new_bytes,
        "passages": passages,
        "passages_counted": counted,
        "llm_requests": requests,
        "prompt_tokens_estimate": int(requests * (avg_chars * TOKENS_PER_CHAR + PROMPT_OVERHEAD_TOKENS)),
        "max_output_tokens": requests * gen.sampling.n * gen.sampling.max_tokens,
        "backend": gen.backend,
        "model": gen.model,
    }


def _passages(config: RunConfig, new_digests: set[str], new_bytes: int) -> tuple[int, bool]:
    summary = Path(config.workdir) / "ingest_summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        if {i["sha256"] for i in data.get("inputs", [])} == new_digests:
            return int(data["passages"]), True
    chars = new_bytes / 3  # UTF-8 Chinese: ~3 bytes a character
    return int(chars / max(config.window.max_length * 0.8, 1)), False
