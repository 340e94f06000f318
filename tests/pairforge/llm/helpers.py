from __future__ import annotations

from pathlib import Path

from pairforge.config import RunConfig
from pairforge.ingest import run_ingest


def ingest_cmrc(shared_data: Path, workdir: Path, limit: int, *, generate: dict | None = None) -> RunConfig:
    """Real CMRC 2018 passages (cut to at most 300 characters to keep the tiny model's prompts short)."""
    config = RunConfig.model_validate(
        {
            "workdir": str(workdir),
            "corpora": [{"format": "squad", "path": str(shared_data / "cmrc2018" / "cmrc2018_trial.squad.json")}],
            "window": {"max_length": 300, "min_length": 50, "long_short_ratio": None},
            "generate": generate or {},
        }
    )
    run_ingest(config, limit=limit)
    return config
