"""Scale-out of every CPU stage under Prefect with Dask: 1 worker vs 2.

A corpus of real passages (built from ../shared/data) in 8 shards; each run gets a fresh workdir and a LocalCluster
started before the clock (a standing cluster, as in production), then the pipeline's stage flows run their shard
tasks on it: ingest, dedup-passages, index, generate (the fake LLM; not counted), filter, dedup-pairs, mine,
select. Every passage gets a request by default, as in a run without ``--limit``: ``--generate N`` asks only the
first N pool passages, which lie in the first shards, so filter, mine and select then have one shard's work. The
two runs' outputs must be identical, byte for byte. Prints a per-stage table (1-worker s, 2-worker s, speedup;
with ``--repeat N`` each stage's fastest of N runs) and
``RESULT scaleout ours=<s, 2 workers> anchor=<s, 1 worker> ratio=<anchor/ours> unit=speedup`` last.

``--pinned`` pins each worker to one core with one numba/OpenMP/BLAS thread and its helper processes inside the
pin (``pairforge.pinning``, what ``flow.pin_workers`` does in a run), so 1 worker uses one core and 2 workers two:
the honest scale-out measure on a 2-core machine, where an unpinned worker already uses both cores. It checks the
pin in every worker before the clock and prints ``RESULT scaleout_pinned ...`` instead.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


def run_stages(corpus: Path, workdir: Path, address: str, base_url: str, generate: int | None) -> dict[str, float]:
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


def check_pins(client: object, workers: int) -> str:
    """Each worker's pin as the worker sees it; fails unless every worker has its own single core and one numba
    thread (asked of the worker process itself, after the preload ran)."""
    from pairforge.pinning import usable_cores

    def probe() -> tuple[int, ...]:
        import numba

        return (*sorted(os.sched_getaffinity(0)), usable_cores(), numba.config.NUMBA_NUM_THREADS)

    pins = client.run(probe)  # type: ignore[attr-defined]
    cores = [p[0] for p in pins.values()]
    assert len(pins) == workers and all(len(p) == 3 and p[1:] == (1, 1) for p in pins.values()), pins
    assert len(set(cores)) == workers, f"two workers share a core: {pins}"
    return ", ".join(f"worker on core {c}" for c in sorted(cores))


@contextmanager
def driver_pinned(core: int | None) -> Iterator[None]:
    """The flow's own process (where the global steps run: the index build, the dedup clustering, select's repeated
    queries) on one core while the stages run, so a global step is serial in both runs rather than borrowing the
    core a pinned worker owns; every thread's affinity is restored after."""
    if core is None:
        yield
        return
    from pairforge.pinning import pin_process

    tasks = {int(t.name): os.sched_getaffinity(int(t.name)) for t in Path("/proc/self/task").glob("*")}
    pin_process(core)
    try:
        yield
    finally:
        for tid, cores in tasks.items():
            with suppress(ProcessLookupError):
                os.sched_setaffinity(tid, cores)
        for t in Path("/proc/self/task").glob("*"):  # threads started meanwhile
            with suppress(ProcessLookupError):
                os.sched_setaffinity(int(t.name), tasks[os.getpid()])


def print_table(seconds: dict[int, dict[str, float]]) -> None:
    """Per stage: 1-worker s, 2-worker s and the speedup, so a stage that does not scale stands out."""
    print(f"{'stage':<16}{'1 worker s':>12}{'2 workers s':>13}{'speedup':>9}")
    for stage in CPU_STAGES:
        one, two = seconds[1][stage], seconds[2][stage]
        print(f"{stage:<16}{one:>12.2f}{two:>13.2f}{one / two if two else float('nan'):>9.2f}")
    one, two = sum(seconds[1].values()), sum(seconds[2].values())
    print(f"{'all CPU stages':<16}{one:>12.2f}{two:>13.2f}{one / two:>9.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=40_000)
    parser.add_argument(
        "--generate", type=int, default=None, help="pool passages that get requests (default: all, in every shard)"
    )
    parser.add_argument("--warmup", type=int, default=800, help="passages of the untimed run each cluster does first")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per worker count; a stage's fastest counts")
    parser.add_argument("--pinned", action="store_true", help="each worker on one core, one thread (see above)")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PAIRFORGE_BENCH_KEY"] = "bench"
    from distributed import Client, LocalCluster

    from flows.runtime import temporary_server
    from pairforge.testing.process import spawn_fake_llm

    pin = {"preload": ["pairforge.pinning"]} if args.pinned else {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_server(),
        spawn_fake_llm("--api-key-env", "PAIRFORGE_BENCH_KEY") as (url, _),
    ):
        write_corpus(Path(tmp) / "corpus", args.passages)
        write_corpus(Path(tmp) / "warm-corpus", args.warmup)
        seconds: dict[int, dict[str, float]] = {}
        digests: set[str] = set()
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1", **pin) as cluster:  # fmt: skip
                if args.pinned:
                    with Client(cluster) as client:
                        print(f"{workers} pinned worker(s): {check_pins(client, workers)}", flush=True)
                # untimed: every worker imports the stages and loads numba's cached kernels, as a standing cluster has
                run_stages(Path(tmp) / "warm-corpus", Path(tmp) / f"warm-{workers}", cluster.scheduler_address, url,
                           args.generate)  # fmt: skip
                for rep in range(args.repeat):  # on a shared machine the fastest run is the least disturbed
                    work = Path(tmp) / f"work-{workers}-{rep}"
                    with driver_pinned(0 if args.pinned else None):
                        run = run_stages(Path(tmp) / "corpus", work, cluster.scheduler_address, url, args.generate)
                    seconds[workers] = {s: min(t, seconds.get(workers, run)[s]) for s, t in run.items()}
                    digests.add(digest(work))
                    total = sum(run.values())
                    print(f"{workers} worker(s), run {rep + 1}: {total:.1f} s over the CPU stages", flush=True)
    assert len(digests) == 1, "the runs gave different outputs"
    digest_hex = digests.pop()
    print_table(seconds)
    print(f"{args.passages:,} passages in {SHARDS} shards; every stage output identical (sha256 {digest_hex[:16]})")
    ours, anchor = sum(seconds[2].values()), sum(seconds[1].values())
    name = "scaleout_pinned" if args.pinned else "scaleout"
    print(f"RESULT {name} ours={ours:.2f} anchor={anchor:.2f} ratio={anchor / ours:.2f} unit=speedup")


if __name__ == "__main__":
    main()
