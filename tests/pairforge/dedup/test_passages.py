"""The dedup-passages stage on planted near-duplicates of real CMRC passages: within a run, across input shards,
against earlier versions' index parts, and its contract (inputs untouched, schema, counts, idempotent rerun)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.config import RunConfig
from pairforge.dedup.index import dedup_signatures, read_index
from pairforge.dedup.passages import DedupInputs, run_dedup_passages
from pairforge.records import PASSAGE_SCHEMA
from pairforge.shards import ShardWriter
from pairforge.stats import StageStats
from pairforge.workdir import Workdir, shard_files
from tests.pairforge.dedup.planted import planted_set


def ingested(workdir: Workdir, shards: dict[str, list[str]], first_id: int = 0) -> None:
    """Write ``shards`` as the ingest stage would (ids p0000..), and record them as ingested."""
    n = first_id
    for shard, texts in shards.items():
        writer = ShardWriter(workdir.ingested, shard, PASSAGE_SCHEMA, 1000)
        for text in texts:
            writer.add({"id": f"p{n:04d}", "doc_id": f"d{n}", "source": "test", "text": text, "start": 0,
                        "end": len(text), "char_len": len(text)})  # fmt: skip
            n += 1
        writer.close()
        workdir.mark_done("ingest", shard, f"ingest-{shard}", StageStats("ingest", "records", len(texts), len(texts)))


def config_for(workdir: Path, **dedup: object) -> RunConfig:
    return RunConfig.model_validate({"workdir": str(workdir), "corpora": [{"format": "jsonl", "path": "x"}],
                                     "dedup": dedup})  # fmt: skip


def kept_ids(workdir: Workdir, shards: list[str]) -> set[str]:
    return {i for s in shards for f in shard_files(workdir.passages, s) for i in pq.read_table(f)["id"].to_pylist()}


def test_keeps_the_smallest_id_of_each_cluster_across_shards(shared_data: Path, tmp_path: Path) -> None:
    texts = planted_set(shared_data, 40)  # 40 originals, 20 near copies (p0040..p0059), 10 far variants
    workdir = Workdir(tmp_path / "w")
    ingested(workdir, {"aaaa": texts[:35], "bbbb": texts[35:]})  # copies sit in the other shard than their source
    before = {p: p.read_bytes() for p in workdir.ingested.glob("*.parquet")}
    stats = run_dedup_passages(config_for(workdir.root), DedupInputs(["aaaa", "bbbb"]), workdir)
    assert (stats.input, stats.output, stats.dropped) == (70, 50, {"near_duplicate_passage": 20})
    assert stats.details["clusters"] == 50
    expected = {f"p{i:04d}" for i in range(40)} | {f"p{i:04d}" for i in range(60, 70)}
    assert kept_ids(workdir, ["aaaa", "bbbb"]) == expected
    audit = {r["id"]: r["cluster"] for r in pq.read_table(workdir.passage_clusters).to_pylist()}
    assert audit["p0045"] == "p0005"
    assert {p: p.read_bytes() for p in workdir.ingested.glob("*.parquet")} == before  # its input is untouched
    for f in workdir.passages.glob("*.parquet"):
        assert pq.read_schema(f).remove_metadata().equals(PASSAGE_SCHEMA)
    outputs = {p: p.read_bytes() for p in workdir.passages.glob("*.parquet")}
    again = run_dedup_passages(config_for(workdir.root), DedupInputs(["aaaa", "bbbb"]), workdir)
    assert again.to_dict()["out"] == 50 and {p: p.read_bytes() for p in workdir.passages.glob("*.parquet")} == outputs


def test_a_later_run_drops_what_an_earlier_version_holds(shared_data: Path, tmp_path: Path) -> None:
    texts = planted_set(shared_data, 40)  # originals p0000..p0039, near copies of p0000..p0019 as p0040..p0059
    first, second = Workdir(tmp_path / "v1"), Workdir(tmp_path / "v2")
    ingested(first, {"aaaa": texts[:30]})
    assert run_dedup_passages(config_for(first.root), DedupInputs(["aaaa"]), first).output == 30
    # the second run brings 10 new originals, near copies of 20 texts the first holds, and one exact repeat
    ingested(second, {"bbbb": [*texts[30:60], texts[5]]}, first_id=100)
    prior = [first.passage_index / "aaaa"]
    stats = run_dedup_passages(config_for(second.root), DedupInputs(["bbbb"], prior), second)
    assert (stats.input, stats.output, stats.dropped) == (31, 10, {"seen_in_earlier_version": 21})
    assert len(kept_ids(second, ["bbbb"])) == 10


def test_an_index_with_other_minhash_settings_is_refused(shared_data: Path, tmp_path: Path) -> None:
    first, second = Workdir(tmp_path / "v1"), Workdir(tmp_path / "v2")
    ingested(first, {"aaaa": planted_set(shared_data, 10)[:4]})
    ingested(second, {"bbbb": planted_set(shared_data, 10)[4:8]})
    run_dedup_passages(config_for(first.root), DedupInputs(["aaaa"]), first)
    with pytest.raises(ValueError, match="MinHash settings"):
        run_dedup_passages(config_for(second.root, ngram=3), DedupInputs(["bbbb"], [first.passage_index / "aaaa"]),
                           second)  # fmt: skip


def test_dedup_cli_follows_the_run_plan(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    texts = planted_set(shared_data, 20)
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(texts)), encoding="utf-8")  # fmt: skip
    config = tmp_path / "run.yaml"
    config.write_text(f"workdir: {tmp_path / 'w'}\nstore: {tmp_path / 'store'}\ncorpora:\n"
                      f"  - {{format: jsonl, path: {corpus}}}\nwindow: {{long_short_ratio: null}}\n")  # fmt: skip
    assert CliRunner().invoke(app, ["ingest", str(config)]).exit_code == 0
    result = CliRunner().invoke(app, ["dedup", str(config), "--target", "passages", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["stage"] == "dedup-passages" and stats["in"] == 35 and stats["out"] == 25  # 20 + 10 copies + 5
    assert stats["dropped"] == {"near_duplicate_passage": 10}


def test_a_shard_without_passages_keeps_nothing_and_still_has_an_index_part(shared_data: Path, tmp_path: Path) -> None:
    """A pairs-only corpus file (AFQMC, STS-B) is an input shard with no passage; it must not break the stage."""
    workdir = Workdir(tmp_path / "w")
    ingested(workdir, {"aaaa": planted_set(shared_data, 10)[:6], "bbbb": []})
    stats = run_dedup_passages(config_for(workdir.root), DedupInputs(["aaaa", "bbbb"]), workdir)
    assert (stats.input, stats.output) == (6, 6) and kept_ids(workdir, ["bbbb"]) == set()
    ids, sigs = read_index(workdir.passage_index / "bbbb", config_for(workdir.root).dedup)
    assert len(ids) == 0 and sigs.shape == (0, config_for(workdir.root).dedup.num_perm)
    assert [pq.read_metadata(f).num_rows for f in shard_files(workdir.passages, "bbbb")] == [0]  # the schema, no rows


def test_signatures_are_removed_once_kept_and_signed_again_when_the_clustering_reruns(
    shared_data: Path, tmp_path: Path
) -> None:
    """The shard's signatures are no second copy on disk (the index part keeps the kept rows'); a clustering that
    must run again (here: a new earlier version to dedup against) signs the shard again and gets it right."""
    texts = planted_set(shared_data, 40)
    first, second = Workdir(tmp_path / "v1"), Workdir(tmp_path / "v2")
    ingested(first, {"aaaa": texts[:30]})
    run_dedup_passages(config_for(first.root), DedupInputs(["aaaa"]), first)
    ingested(second, {"bbbb": [*texts[30:60], texts[5]]}, first_id=100)
    alone = run_dedup_passages(config_for(second.root), DedupInputs(["bbbb"]), second)
    assert alone.output == 30  # texts[45] is a near copy of texts[5]
    assert not list((second.stage("dedup-passages") / "signatures").glob("*"))
    stats = run_dedup_passages(config_for(second.root), DedupInputs(["bbbb"], [first.passage_index / "aaaa"]), second)
    assert (stats.input, stats.output, stats.dropped) == (31, 10, {"seen_in_earlier_version": 21})
    config = config_for(second.root).dedup
    ids, sigs = read_index(second.passage_index / "bbbb", config)
    by_id = {f"p{100 + i:04d}": t for i, t in enumerate([*texts[30:60], texts[5]])}
    assert np.array_equal(sigs, dedup_signatures([by_id[i] for i in ids.to_pylist()], config))
