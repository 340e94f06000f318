from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.config import RunConfig
from pairforge.export import ExportInputs, run_export
from pairforge.stats import StageStats
from pairforge.store import layout
from tests.pairforge.export.workdir import Built, build_workdir, make_config, write_inputs


@dataclass
class Published:
    """One export of the CMRC workdir to a local store (read-only for the tests that share it)."""

    built: Built
    stats: StageStats
    version: Path

    @property
    def config(self) -> RunConfig:
        return self.built.config

    @property
    def manifest(self) -> dict:
        return json.loads((self.version / layout.MANIFEST).read_text(encoding="utf-8"))

    def rows(self, relative: str) -> int:
        """Rows the manifest records for a file of the version."""
        return int(self.manifest["formats"][relative])

    def example_files(self) -> list[Path]:
        """The version's example files in segment order (the order export reads them in)."""
        return [self.version / f for s in self.manifest["segments"] for f in s["files"]
                if f.startswith(f"{layout.EXAMPLES}/")]  # fmt: skip

    def examples(self, segment: str | None = None) -> list[dict]:
        """The version's examples (of one segment), in file order."""
        files = [f for f in self.example_files() if segment is None or f.name.startswith(f"{segment}-")]
        return [row for f in files for row in pq.read_table(f).to_pylist()]

    def segments(self) -> list[str]:
        return [s["key"] for s in self.manifest["segments"]]

    def queries(self, kind: str) -> list[str]:
        """The queries of the examples of one kind with at least one negative (the FlagEmbedding rows)."""
        return [e["query"] for e in self.examples() if e["kind"] == kind and e["neg"]]


def publish(built: Built) -> tuple[StageStats, Path]:
    stats = run_export(built.config, ExportInputs(built.plan, built.funnel), built.workdir)
    return stats, Path(stats.details["path"])


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Published:
    tmp = tmp_path_factory.mktemp("published")
    inputs = write_inputs(tmp / "inputs", shared_data)
    config = make_config(tmp, str(tmp / "store"), inputs, export={"length_buckets": [300, 600], "uniem": True})
    built = build_workdir(config, shared_data)
    return Published(built, *publish(built))
