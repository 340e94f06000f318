"""Scale-out of the CPU stages (ingest → dedup passages) under Prefect with Dask: 1 worker vs 2.

A WuDao-style corpus of distinct real passages (built from ../shared/data) in 8 shards; each run gets a fresh
workdir and a LocalCluster started before the clock (a standing cluster, as in production), then the ingest
flow (a task per shard) and the passage dedup flow run on it. The two outputs must be identical. Prints
``RESULT scaleout ours=<s, 2 workers> anchor=<s, 1 worker> ratio=<anchor/ours> unit=speedup`` last.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from passages import real_passages


def write_corpus(folder: Path, target_mb: float, shards: int) -> int:
    """Distinct documents of 3 real passages each, spread over ``shards`` JSONL files."""
    folder.mkdir(parents=True)
    docs_needed = int(target_mb * 1e6 / 3 / 1800)  # ~600 characters a passage, 3 bytes a character
    passages = real_passages(docs_needed * 3)
    handles = [(folder / f"part-{i:02d}.jsonl").open("w", encoding="utf-8") for i in range(shards)]
    written = 0
    for n in range(docs_needed):
        text = "".join(passages[3 * n : 3 * n + 3])
        line = json.dumps({"id": f"doc-{n}", "title": "", "text": text}, ensure_ascii=False) + "\n"
        handles[n % shards].write(line)
        written += len(line.encode())
    for handle in handles:
        handle.close()
    return written


def run_cpu_stages(corpus: Path, workdir: Path, address: str) -> tuple[float, list[dict]]:
    from flows.runtime import create_task_runner, result_settings
    from flows.stages import dedup_passages_flow, ingest_flow
    from pairforge.config import RunConfig

    config = RunConfig.model_validate(
        {
            "workdir": str(workdir),
            "store": str(workdir / "store"),
            "corpora": [{"format": "wudao", "path": str(corpus / "*.jsonl")}],
            "normalize": {"t2s": False},
            "window": {"max_length": 1024, "min_length": 64},
            "flow": {"task_runner": "dask", "dask_address": address},
        }
    )
    data = config.model_dump(mode="json")
    with result_settings(workdir, fresh=True):
        start = time.perf_counter()
        step = ingest_flow.with_options(task_runner=create_task_runner(config.flow))(data, [])
        dedup_passages_flow(data, step["key"])
        seconds = time.perf_counter() - start
    rows = pq.read_table(sorted((workdir / "passages").glob("*.parquet")), columns=["id", "text"]).to_pylist()
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=80.0, help="corpus size in MB")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from distributed import LocalCluster

    from flows.runtime import temporary_server

    with tempfile.TemporaryDirectory() as tmp, temporary_server():
        size = write_corpus(Path(tmp) / "corpus", args.mb, shards=8)
        timings, outputs = {}, {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c:
                timings[workers], outputs[workers] = run_cpu_stages(
                    Path(tmp) / "corpus", Path(tmp) / f"work-{workers}", c.scheduler_address
                )
            print(f"{workers} worker(s): {timings[workers]:.1f} s, {len(outputs[workers]):,} passages", flush=True)
    assert outputs[1] == outputs[2], "1 and 2 workers gave different passages"
    print(f"{size / 1e6:.1f} MB in 8 shards; outputs identical")
    ratio = timings[1] / timings[2]
    print(f"RESULT scaleout ours={timings[2]:.2f} anchor={timings[1]:.2f} ratio={ratio:.2f} unit=speedup")


if __name__ == "__main__":
    main()
