from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.config import RunConfig
from pairforge.export import ExportSummary, run_export
from tests.pairforge.export.workdir import build_workdir, make_config


@dataclass
class Published:
    """One export of the CMRC workdir to a local store (read-only for the tests that share it)."""

    config: RunConfig
    summary: ExportSummary
    version: Path

    @property
    def workdir(self) -> Path:
        return Path(self.config.workdir)

    def summary_rows(self, relative: str) -> int:
        """Rows the manifest records for a file of the version."""
        manifest = json.loads((self.version / "manifest.json").read_text(encoding="utf-8"))
        return int(manifest["formats"][relative])

    def queries(self, kind: str) -> list[str]:
        """The queries of the examples of one kind with at least one negative (the FlagEmbedding rows)."""
        table = pq.read_table(self.workdir / "examples" / "examples.parquet").to_pylist()
        return [e["query"] for e in table if e["kind"] == kind and e["neg"]]


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Published:
    tmp = tmp_path_factory.mktemp("published")
    config = make_config(tmp, str(tmp / "store"), export={"length_buckets": [300, 600], "uniem": True})
    build_workdir(config, shared_data)
    summary = run_export(config)
    return Published(config, summary, Path(summary.path))
