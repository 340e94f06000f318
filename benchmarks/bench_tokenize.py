"""Tokenising ~11 MB of real Chinese lines from ../shared/data: jieba (``jieba.lcut`` per line, HMM on, one
core) against ours, ``tokenize_packed``: rjieba over ``\\x01``-joined chunks, jieba's ASCII-run rule in
numba, tokens returned as positions. On both cores (``workers=2``) this process cuts the first half while a
helper process, started once by the warm-up and kept, cuts the second half straight into a memory-mapped
file; only its token count comes back. Also prints our one-core figure and the list-returning ``tokenize``.

Ours: median of 5 runs, one- and two-core runs alternating (so a change of load hits both alike); jieba: one
run. "foreign" is the other processes' CPU use meanwhile, in cores (/proc/stat's busy time minus the CPU
time of this process and its children), beside the load average before and after. Cycles per byte: our
CPU seconds (all processes) times the clock /proc/cpuinfo reports, over the bytes. Checks how many lines
get tokens identical to jieba's and shows lines that differ. Prints
``RESULT tokenize ours=<MB/s> anchor=<MB/s> ratio=<r> unit=MB/s`` last (ours: both cores)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jieba
from passages import _sentences

from pairforge.analysis.tokenize import tokenize, tokenize_packed

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICK  # all but idle and iowait


def own_seconds() -> float:
    """CPU time of this process and its live children (the helper)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total, me = usage.ru_utime + usage.ru_stime, str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # the parent pid
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    return total


def measure(run: Callable[[], object]) -> tuple[float, float, float]:
    """(wall seconds, our CPU seconds, foreign cores) of one run."""
    busy, own, start = busy_seconds(), own_seconds(), time.perf_counter()
    run()
    wall = time.perf_counter() - start
    cpu = own_seconds() - own
    return wall, cpu, max(busy_seconds() - busy - cpu, 0.0) / wall


def clock_hz() -> float:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return float("nan")


def main() -> None:
    load_before = os.getloadavg()
    lines = [s for s in _sentences() if s.strip()]
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    print(f"{len(lines):,} lines, {megabytes:.2f} MB; load before {load_before[0]:.2f} {load_before[1]:.2f}")
    jieba.setLogLevel(60)
    jieba.initialize()
    reference: list[list[str]] = []
    wall, _, foreign = measure(lambda: reference.extend(jieba.lcut(line) for line in lines))
    anchor = megabytes / wall
    print(f"jieba: {anchor:.2f} MB/s (1 core, foreign {foreign:.2f})")
    start = time.perf_counter()
    tokenize_packed(lines[:100], workers=2)  # loads the dictionary and kernels and starts the helper
    print(f"warm-up with the helper's start: {time.perf_counter() - start:.2f} s (not timed below)")
    runs: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    for _ in range(5):
        for workers, samples in runs.items():
            samples.append(measure(partial(tokenize_packed, lines, keep_whitespace=True, workers=workers)))
    clock = clock_hz()
    rates = {}
    for workers, samples in runs.items():
        wall, cpu, foreign = sorted(samples)[len(samples) // 2]
        rates[workers] = megabytes / wall
        each = " ".join(f"{megabytes / s[0]:.1f}" for s in samples)
        cycles = cpu * clock / (megabytes * 1e6)
        print(f"ours, {workers} core{'s' * (workers > 1)}: {rates[workers]:.2f} MB/s (runs {each}); CPU {cpu:.2f} s, "
              f"{cycles:.0f} cycles/byte at {clock / 1e9:.1f} GHz; foreign {foreign:.2f}")  # fmt: skip
    wall, _, foreign = measure(lambda: tokenize(lines, keep_whitespace=True))
    print(f"list-returning tokenize: {megabytes / wall:.2f} MB/s (1 core, one run, foreign {foreign:.2f})")
    print(f"jieba: {clock / (anchor * 1e6):.0f} cycles/byte")
    ours_tokens = tokenize_packed(lines, keep_whitespace=True, workers=2).lists()
    differ = [(line, a, b) for line, a, b in zip(lines, reference, ours_tokens, strict=True) if a != b]
    print(f"identical tokens on {1 - len(differ) / len(lines):.4%} of lines; {len(differ)} differ:")
    for line, a, b in differ[:10]:
        print(f"  {line[:40]!r}: jieba {[t for t in a if t not in b][:4]} / ours {[t for t in b if t not in a][:4]}")
    ours = rates[2]
    print(f"jieba {anchor:.2f} MB/s (1 core); ours {ours:.2f} MB/s (2 cores, {ours / anchor:.1f}x), {rates[1]:.2f} "
          f"MB/s (1 core, {rates[1] / anchor:.1f}x); 2 cores over 1 core {ours / rates[1]:.2f}x")  # fmt: skip
    load_after = os.getloadavg()
    print(f"load before {load_before[0]:.2f} {load_before[1]:.2f}; after {load_after[0]:.2f} {load_after[1]:.2f}")
    print(f"RESULT tokenize ours={ours:.2f} anchor={anchor:.2f} ratio={ours / anchor:.1f} unit=MB/s")


if __name__ == "__main__":
    main()
