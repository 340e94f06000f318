"""Every stage at the size users run: N passages of about 600 characters rebuilt from ../shared/data sentences (5%
planted near-copies), through ingest → dedup → index → generate → filter → dedup → mine → select → export, with
the project's fake OpenAI-compatible LLM. Generation is limited to ``--generate`` passages; the round trip and
mining run over the whole pool.

Each stage runs as its own ``pairforge <stage>`` process (the same stage code ``pairforge run`` drives under
Prefect), so each stage's peak RSS is its own process's, from ``os.wait4``. Prints one line per stage and last
``RESULT scale ours=<seconds> peak_rss_mb=<max over stages> passages=<N> unit=s``. Beside each peak RSS, the
largest anonymous RSS sampled from /proc (the part that is not mapped file pages, which the memory-mapped pool and
index add to RSS and the kernel can drop).

The round trip's drop share (``not_retrievable`` among the pairs that reach it) is printed too, with the run's
settings (a cut relative to the pool) and, from one extra filter run on the same pairs before the real one, with
a fixed top k (``consistency_max_rank_share: null``, the rule before issue 20):
``RESULT round_trip_drop ours=<share> fixed_top_k=<share> passages=<N> unit=share``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from passages import _sentences

REPO = Path(__file__).resolve().parents[1]
STAGES = (
    ("ingest", []),
    ("dedup", ["--target", "passages"]),
    ("index", []),
    ("generate", None),  # --limit comes from --generate
    ("filter", []),
    ("judge", []),
    ("dedup", ["--target", "pairs"]),
    ("mine", []),
    ("select", []),
    ("export", []),
)
DOCS_PER_SHARD = 50_000


def passages(count: int, seed: int = 0) -> Iterator[str]:
    """``count`` passages of 550-650 characters made of real sentences drawn at random (so they stay distinct at
    any count, however small the sentence pool); 5% are near copies (about 1% of the characters changed) of a
    recent passage."""
    sentences = [s for s in _sentences() if 8 <= len(s.strip()) <= 200]
    rng = random.Random(seed)
    recent: list[str] = []
    for _ in range(count):
        if recent and rng.random() < 0.05:
            chars = list(rng.choice(recent))
            for j in rng.sample(range(len(chars)), max(1, len(chars) // 100)):
                chars[j] = rng.choice(chars)
            yield "".join(chars)
            continue
        target, buf = rng.randint(550, 650), ""
        while len(buf) < target:
            buf += sentences[rng.randrange(len(sentences))]
        text = buf[:target]
        recent = [*recent, text][-1000:]
        yield text


def write_corpus(folder: Path, count: int) -> int:
    """WuDao-style JSONL shards of one passage per document; returns the bytes written."""
    folder.mkdir(parents=True)
    written, handle = 0, None
    for n, text in enumerate(passages(count)):
        if n % DOCS_PER_SHARD == 0:
            if handle:
                handle.close()
            handle = (folder / f"part-{n // DOCS_PER_SHARD:04d}.jsonl").open("w", encoding="utf-8")
        line = json.dumps({"id": f"doc-{n}", "title": "", "text": text}, ensure_ascii=False) + "\n"
        handle.write(line)  # type: ignore[union-attr]
        written += len(line.encode())
    if handle:
        handle.close()
    return written


def write_config(tmp: Path, base_url: str) -> Path:
    config = {
        "name": "scale",
        "workdir": str(tmp / "work"),
        "store": str(tmp / "store"),
        "corpora": [{"format": "wudao", "path": str(tmp / "corpus" / "*.jsonl")}],
        "window": {"max_length": 1024, "min_length": 64, "long_short_ratio": None},
        "ingest": {"shard_rows": DOCS_PER_SHARD},
        "generate": {"backend": "openai", "model": "fake", "kinds": ["qp", "sp"],
                     "openai": {"base_url": base_url, "api_key_env": "PAIRFORGE_BENCH_KEY", "concurrency": 64}},
        "filter": {"max_copy_chars": 40, "max_copy_share": 1.0},  # the fake LLM's queries quote the passage
    }  # fmt: skip
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def write_fixed_top_k(config: Path) -> Path:
    """A copy of ``config`` (same workdir) whose round trip keeps a fixed top k, whatever the pool size."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["filter"] = {**data.get("filter", {}), "consistency_max_rank_share": None}
    path = config.with_name("run-fixed-top-k.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def round_trip_drop(stats: dict) -> float:
    """``not_retrievable`` as a share of the pairs that reached the round trip (the last filter)."""
    dropped = stats["dropped"]
    reached = stats["in"] - sum(n for reason, n in dropped.items() if reason != "not_retrievable")
    return dropped.get("not_retrievable", 0) / reached if reached else 0.0


def _anon_kb(pid: int) -> int:
    """RssAnon of ``pid`` and its descendants, in kB (heap and other anonymous memory: not the mapped files whose
    pages ``ru_maxrss`` also counts); 0 for a process that is gone."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _anon_kb(int(child))
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return total


class AnonPeak(threading.Thread):
    """Samples a process tree's anonymous RSS every 50 ms until ``stop``; ``peak_mb`` is the largest sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak_kb = max(self.peak_kb, _anon_kb(self.pid))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak_kb / 1024


def run_stage(config: Path, name: str, args: list[str], env: dict[str, str]) -> tuple[float, float, float, dict]:
    """One stage as its own process: (seconds, peak RSS in MB from ``os.wait4``, peak anonymous RSS in MB sampled
    from /proc, its stats)."""
    command = [sys.executable, "-m", "pairforge.cli", name, str(config), *args, "--json"]
    logs = config.parent / "logs"
    logs.mkdir(exist_ok=True)
    out_path, err_path = logs / f"{name}{'-'.join(args)}.out", logs / f"{name}{'-'.join(args)}.err"
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        sampler = AnonPeak(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        anon = sampler.stop()
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"pairforge {name} failed:\n{err_path.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, anon, json.loads(out_path.read_text().strip().splitlines()[-1])


def folder_bytes(folder: Path, seen: set[tuple[int, int]] | None = None) -> dict[str, int]:
    """Bytes on disk (``st_blocks`` × 512: what the files occupy, not their apparent size) under each folder two
    levels below ``folder`` (``ingest/passages``, ``cache/ledger`` …); files directly in a top folder count under
    it."""
    sizes: dict[str, int] = {}
    seen = set() if seen is None else seen  # shared between calls: a file linked into the store counts once
    for path, _, files in os.walk(folder):
        rel = Path(path).relative_to(folder).parts
        if not rel:
            continue
        key = "/".join(rel[:2])
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                stat = os.lstat(os.path.join(path, name))
                if (stat.st_dev, stat.st_ino) not in seen:  # a hard-linked file takes its blocks once
                    seen.add((stat.st_dev, stat.st_ino))
                    sizes[key] = sizes.get(key, 0) + stat.st_blocks * 512
    return sizes


def print_disk(rows: list[tuple[str, int, int, int]], final: dict[str, int], corpus_bytes: int) -> None:
    """The disk table: each stage's own folder after it ran, the workdir's growth during it and its total; then the
    largest folders of the finished workdir."""
    print(f"\n{'stage':<16}{'own MB':>9}{'+ MB':>9}{'total MB':>10}  (workdir on disk after each stage)")
    for label, own, grown, total in rows:
        print(f"{label:<16}{own / 1e6:>9.0f}{grown / 1e6:>9.0f}{total / 1e6:>10.0f}")
    print(f"largest folders (the corpus JSONL: {corpus_bytes / 1e6:,.0f} MB):")
    for key, size in sorted(final.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {key:<32}{size / 1e6:>9.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--generate", type=int, default=2_000, help="passages that get LLM requests")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temp folder)")
    args = parser.parse_args()
    from pairforge.testing.process import spawn_fake_llm

    env = {**os.environ, "PAIRFORGE_BENCH_KEY": "bench", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.keep.parent if args.keep else None) as scratch:
        tmp = args.keep or Path(scratch)
        started = time.perf_counter()
        size = write_corpus(tmp / "corpus", args.passages)
        print(f"corpus: {args.passages:,} passages, {size / 1e6:,.0f} MB in {time.perf_counter() - started:.0f} s")
        with spawn_fake_llm("--api-key-env", "PAIRFORGE_BENCH_KEY", env=env) as (url, _):
            config = write_config(tmp, url)
            total, peaks, anons = 0.0, [], []
            print(f"{'stage':<16}{'seconds':>9}{'peak MB':>9}{'anon MB':>9}  in → out")
            drops, disk, before = {}, [], 0
            for name, extra in STAGES:
                extra = ["--limit", str(args.generate)] if extra is None else extra
                if name == "filter":  # the same pairs under the fixed top k first (its outputs are then replaced)
                    drops["fixed"] = round_trip_drop(run_stage(write_fixed_top_k(config), name, extra, env)[3])
                seconds, peak, anon, stats = run_stage(config, name, extra, env)
                if name == "filter":
                    drops["ours"] = round_trip_drop(stats)
                total += seconds
                peaks.append(peak)
                anons.append(anon)
                label = stats["stage"]
                linked: set[tuple[int, int]] = set()
                sizes = folder_bytes(tmp / "work", linked)
                sizes |= {f"store/{k}": v for k, v in folder_bytes(tmp / "store", linked).items()}
                own = sum(v for k, v in sizes.items() if k.split("/")[0] == ("store" if label == "export" else label))
                disk.append((label, own, sum(sizes.values()) - before, sum(sizes.values())))
                before = sum(sizes.values())
                print(f"{label:<16}{seconds:>9.1f}{peak:>9.0f}{anon:>9.0f}  {stats['in']:,} → {stats['out']:,} "
                      f"{stats['unit']}", flush=True)  # fmt: skip
        print_disk(disk, sizes, size)
    print(f"peak MB: ru_maxrss of the stage process (mapped file pages included); anon MB: the largest sampled "
          f"RssAnon of its process tree (heap, no file pages). Largest anon: {max(anons):.0f} MB")  # fmt: skip
    print(f"round trip: {drops['ours']:.1%} of the pairs it judged dropped as not_retrievable (a fixed top k would "
          f"drop {drops['fixed']:.1%})")  # fmt: skip
    print(f"RESULT scale ours={total:.1f} peak_rss_mb={max(peaks):.0f} passages={args.passages} unit=s")
    print(f"RESULT round_trip_drop ours={drops['ours']:.4f} fixed_top_k={drops['fixed']:.4f} "
          f"passages={args.passages} unit=share")  # fmt: skip


if __name__ == "__main__":
    main()
