from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from pairforge.cli import app
from tests.filters.planted import planted_set


def write_passages(workdir: Path, texts: list[str]) -> None:
    (workdir / "passages").mkdir(parents=True)
    rows = [
        {
            "id": f"p{i:04d}",
            "doc_id": f"d{i}",
            "source": "test",
            "text": t,
            "start": 0,
            "end": len(t),
            "char_len": len(t),
        }
        for i, t in enumerate(texts)
    ]
    pq.write_table(pa.Table.from_pylist(rows[: len(rows) // 2]), workdir / "passages" / "passages-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[len(rows) // 2 :]), workdir / "passages" / "passages-00001.parquet")


def test_dedup_passages_cli_keeps_the_smallest_id_of_each_cluster(shared_data: Path, tmp_path: Path) -> None:
    texts = planted_set(shared_data, 40)  # 40 originals, 20 near copies (ids p0040..p0059), 10 far variants
    workdir = tmp_path / "w"
    write_passages(workdir, texts)
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {workdir}\ncorpora:\n  - {{format: jsonl, path: x}}\n")
    result = CliRunner().invoke(app, ["dedup", str(config), "--target", "passages", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["input"] == 70 and summary["kept"] == 50
    assert summary["dropped"] == {"near_duplicate_passage": 20} and summary["clusters"] == 50
    kept = set(pq.read_table(workdir / "passages")["id"].to_pylist())
    assert kept == {f"p{i:04d}" for i in range(40)} | {f"p{i:04d}" for i in range(60, 70)}
    audit = pq.read_table(workdir / "dedup" / "passages-clusters.parquet").to_pylist()
    assert {r["id"]: r["cluster"] for r in audit}["p0045"] == "p0005"
