"""Scale-out of every CPU stage under Prefect with Dask: 1 worker vs 2.

A corpus of real passages (built from ../shared/data) in 8 shards; each run gets a fresh workdir and a LocalCluster
started before the clock (a standing cluster, as in production), then the pipeline's stage flows run their shard
tasks on it: ingest, dedup-passages, index, generate (the fake LLM, for a fixed subset; not counted), filter,
dedup-pairs, mine, select. The two runs' outputs must be identical, byte for byte. Prints
``RESULT scaleout ours=<s, 2 workers> anchor=<s, 1 worker> ratio=<anchor/ours> unit=speedup`` last.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

from bench_scale import passages

CPU_STAGES = ("ingest", "dedup-passages", "index", "filter", "dedup-pairs", "mine", "select")
SHARDS = 8


def write_corpus(folder: Path, count: int) -> None:
    import json

    folder.mkdir(parents=True)
    handles = [(folder / f"part-{i:02d}.jsonl").open("w", encoding="utf-8") for i in range(SHARDS)]
    for n, text in enumerate(passages(count)):
        handles[n % SHARDS].write(json.dumps({"id": f"doc-{n}", "title": "", "text": text}, ensure_ascii=False) + "\n")
    for handle in handles:
        handle.close()


def run_stages(corpus: Path, workdir: Path, address: str, base_url: str, generate: int) -> dict[str, float]:
    from flows.pipeline import run_stages as pipeline_stages
    from pairforge.config import RunConfig
    from pairforge.plan import plan_run
    from pairforge.stats import StageStats

    config = RunConfig.model_validate({
        "name": "scaleout", "workdir": str(workdir), "store": str(workdir.parent / f"{workdir.name}-store"),
        "corpora": [{"format": "wudao", "path": str(corpus / "*.jsonl")}],
        "window": {"max_length": 1024, "min_length": 64, "long_short_ratio": None},
        "generate": {"backend": "openai", "model": "fake", "kinds": ["qp"],
                     "openai": {"base_url": base_url, "api_key_env": "PAIRFORGE_BENCH_KEY", "concurrency": 32}},
        "filter": {"max_copy_chars": 40, "max_copy_share": 1.0},
        "flow": {"task_runner": "dask", "dask_address": address},
    })  # fmt: skip
    plan = plan_run(config, limit=generate)
    pipeline_stages(config, plan, address)
    seconds = {}
    for stage in CPU_STAGES:
        seconds[stage] = StageStats.load(workdir / stage / "stats.json").seconds
    return seconds


def digest(workdir: Path) -> str:
    """sha256 over every stage output file (not the timing records)."""
    h = hashlib.sha256()
    for path in sorted(workdir.rglob("*.parquet")):
        if "/.scratch/" not in str(path):
            h.update(path.relative_to(workdir).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=40_000)
    parser.add_argument("--generate", type=int, default=2_000)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PAIRFORGE_BENCH_KEY"] = "bench"
    from distributed import LocalCluster

    from flows.runtime import temporary_server
    from pairforge.testing.process import spawn_fake_llm

    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_server(),
        spawn_fake_llm("--api-key-env", "PAIRFORGE_BENCH_KEY") as (url, _),
    ):
        write_corpus(Path(tmp) / "corpus", args.passages)
        timings, digests = {}, {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1") as cluster:  # fmt: skip
                seconds = run_stages(Path(tmp) / "corpus", Path(tmp) / f"work-{workers}", cluster.scheduler_address,
                                     url, args.generate)  # fmt: skip
            timings[workers] = sum(seconds.values())
            digests[workers] = digest(Path(tmp) / f"work-{workers}")
            per_stage = ", ".join(f"{s} {t:.1f}" for s, t in seconds.items())
            print(f"{workers} worker(s): {timings[workers]:.1f} s over the CPU stages ({per_stage})", flush=True)
    assert digests[1] == digests[2], "1 and 2 workers gave different outputs"
    print(f"{args.passages:,} passages in {SHARDS} shards; every stage output identical (sha256 {digests[1][:16]})")
    ratio = timings[1] / timings[2]
    print(f"RESULT scaleout ours={timings[2]:.2f} anchor={timings[1]:.2f} ratio={ratio:.2f} unit=speedup")


if __name__ == "__main__":
    main()
