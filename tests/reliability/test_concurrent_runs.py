"""Two configs with the same dataset name run at once on one store (issue 13, defect 7): both build on the empty
store, meet at publish, and the one that loses the race re-plans against the winner's version and redoes its
passage dedup against it, so no version repeats the other's passages. The store holds a garbage ``.publish.lock``
left by a long-dead publisher (defect 8): it counts as stale by its age, and nobody waits for it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from pairforge.store import Store
from pairforge.testing.fake_llm import FakeLLM
from pairforge.workdir import Workdir
from tests.flows.conftest import write_pipeline_config
from tests.reliability.runs import Driver

KEY_ENV = "PAIRFORGE_TEST_RACE_KEY"
SENTINEL = "sk-race-sentinel-9e04b2"
NAME = "shared"
SLICES = {"a": (0, 10), "b": (4, 14)}  # WuDao documents of each config: 4 to 9 are in both


def write_config(folder: Path, corpus: Path, base_url: str, store: Path) -> Path:
    path = write_pipeline_config(folder, corpus, base_url, KEY_ENV, name=NAME, openai={"concurrency": 2})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["store"] = str(store)  # one store for both
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def passage_texts(version: Path, files: list[str] | None = None) -> list[str]:
    names = (
        files if files is not None else [p.relative_to(version).as_posix() for p in version.glob("data/passages/*")]
    )
    paths = [version / f for f in names if f.startswith("data/passages/") and f.endswith(".parquet")]
    return [t for p in paths for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]


def pair_ids(version: Path) -> list[str]:
    return [
        i for p in sorted(version.glob("data/examples/*.parquet")) for i in pq.read_table(p)["pair_id"].to_pylist()
    ]


def manifest(version: Path) -> dict[str, Any]:
    return dict(json.loads((version / "manifest.json").read_text(encoding="utf-8")))


def test_two_configs_with_one_name_at_once_never_repeat_passages(shared_data: Path, tmp_path: Path) -> None:
    lines = (shared_data / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    store = tmp_path / "store"
    lock = store / NAME / ".publish.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"\x00not a time")  # what a publisher killed mid-write could leave
    os.utime(lock, (time.time() - 600, time.time() - 600))
    with FakeLLM(api_key=SENTINEL) as llm:
        configs = {}
        for name, (start, end) in SLICES.items():
            corpus = tmp_path / name / "corpus"
            corpus.mkdir(parents=True)
            (corpus / "part-0.jsonl").write_text("".join(lines[start:end]), encoding="utf-8")
            configs[name] = write_config(tmp_path / name, corpus, llm.base_url, store)
        meet = f"meet:2/{tmp_path / 'meet'}"  # both runs reach publish before either publishes
        drivers = {
            name: Driver(path, tmp_path / name / "home", meet, {KEY_ENV: SENTINEL}) for name, path in configs.items()
        }
        try:
            results = {name: driver.result() for name, driver in drivers.items()}
        finally:
            for driver in drivers.values():
                driver.kill()

    assert sorted(r["version"] for r in results.values()) == [1, 2]
    assert Store(str(store)).versions(NAME) == [1, 2] and not lock.exists()  # the stale lock was broken
    loser = next(name for name, r in results.items() if r["version"] == 2)
    v1, v2 = Path(results[next(n for n in results if n != loser)]["path"]), Path(results[loser]["path"])
    m1, m2 = manifest(v1), manifest(v2)
    assert m2["parent"] == 1 and len(m1["segments"]) == 1 and len(m2["segments"]) == 2

    # v2 is v1 plus the loser's new segment, whose passages are only those v1 does not hold.
    (carried,) = [s for s in m2["segments"] if s["key"] == m1["segments"][0]["key"]]
    (new,) = [s for s in m2["segments"] if s is not carried]
    first, added = passage_texts(v1), passage_texts(v2, new["files"])
    assert first and added and not set(first) & set(added)
    everything = passage_texts(v2)
    assert len(everything) == len(set(everything)) and set(everything) == set(first) | set(added)
    ids = pair_ids(v2)
    assert len(ids) == len(set(ids)) and set(pair_ids(v1)) <= set(ids)

    # The loser redid its dedup against v1: the passages of the shared documents were dropped as seen there.
    dedup = json.loads(Workdir(tmp_path / loser / "work").stats("dedup-passages").read_text(encoding="utf-8"))
    assert dedup["dropped"].get("seen_in_earlier_version", 0) > 0
    assert dedup["out"] == len(added)
