from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from filters.dedup import run_dedup
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.config import load_config
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


def test_a_later_run_drops_what_an_earlier_version_holds(shared_data: Path, tmp_path: Path) -> None:
    texts = planted_set(shared_data, 40)  # originals p0000..p0039, near copies of p0000..p0019 as p0040..p0059
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    write_passages(v1, texts[:30])
    (tmp_path / "v1.yaml").write_text(f"workdir: {v1}\ncorpora:\n  - {{format: jsonl, path: x}}\n")
    first = run_dedup(load_config(tmp_path / "v1.yaml"))
    assert first.kept == 30 and (v1 / "dedup" / "passages-index" / "meta.json").is_file()
    # v2 brings 10 new originals, near copies of 20 texts v1 already holds, and one exact repeat of v1
    write_passages(v2, [*texts[30:60], texts[5]])
    (tmp_path / "v2.yaml").write_text(
        f"workdir: {v2}\ncorpora:\n  - {{format: jsonl, path: x}}\ndedup:\n  against: ['{v1}/dedup/*-index']\n"
    )
    second = run_dedup(load_config(tmp_path / "v2.yaml"))
    assert second.input == 31 and second.kept == 10
    assert second.dropped == {"seen_in_earlier_version": 21}
    assert len(pq.read_table(v2 / "passages")) == 10


def test_an_index_with_other_minhash_settings_is_refused(shared_data: Path, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    write_passages(v1, planted_set(shared_data, 10)[:4])
    write_passages(v2, planted_set(shared_data, 10)[4:8])
    (tmp_path / "v1.yaml").write_text(f"workdir: {v1}\ncorpora:\n  - {{format: jsonl, path: x}}\n")
    run_dedup(load_config(tmp_path / "v1.yaml"))
    (tmp_path / "v2.yaml").write_text(
        f"workdir: {v2}\ncorpora:\n  - {{format: jsonl, path: x}}\n"
        f"dedup: {{ngram: 3, against: ['{v1}/dedup/passages-index']}}\n"
    )
    with pytest.raises(ValueError, match="MinHash settings"):
        run_dedup(load_config(tmp_path / "v2.yaml"))


@pytest.mark.parametrize("store_url", ["local", "memory://pairforge-test-store"])
def test_v2_drops_what_published_v1_holds(shared_data: Path, tmp_path: Path, store_url: str) -> None:
    from pairforge.store import Store

    store_url = str(tmp_path / "store") if store_url == "local" else store_url
    texts = planted_set(shared_data, 40)
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    for run, chunk in ((run1, texts[:30]), (run2, [*texts[30:60], texts[5]])):
        write_passages(run, chunk)
        (run / "run.yaml").write_text(
            f"name: zh-pairs\nworkdir: {run}\nstore: '{store_url}'\ncorpora:\n  - {{format: jsonl, path: x}}\n"
        )
    assert run_dedup(load_config(run1 / "run.yaml")).kept == 30
    store = Store(store_url)
    index = run1 / "dedup" / "passages-index"
    v1 = store.publish("zh-pairs", lambda folder, fs: fs.put(str(index), f"{folder}/index/passages", recursive=True))
    assert v1 == 1 and store.latest("zh-pairs") == 1
    second = run_dedup(load_config(run2 / "run.yaml"))
    assert (second.input, second.kept, second.dropped) == (31, 10, {"seen_in_earlier_version": 21})
