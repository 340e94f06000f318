"""MinHash signatures: ours (numba) against datasketch 2.0's MinHash.bulk and rensa 0.5's fastest whole path, on
20k real passages of 200-1000 characters (128 permutations, character 5-grams), side by side in one process.

- ours: ``signatures`` with the datasketch-identical ``affine32`` scheme and with ``oph`` (one-permutation
  hashing with rounds), on 1 and on 2 threads.
- datasketch: ``MinHash.bulk`` over the UTF-8 shingles (built outside the timing) of a sample.
- rensa: text in, signatures out. Its fastest input is ``RMinHash.digest_matrix_from_flat_token_hashes`` fed
  64-bit shingle hashes; we give it our own zero-copy front end (the same 5-gram hashes as ours, widened to 64
  bits by a parallel numba kernel), so the two kernels are compared, not two front ends. The timing stops at
  rensa's digest matrix (its ``to_rows`` Python lists are left out). rensa's Rho sketch is shown, not used as the
  anchor: it is faster but far less accurate.
- accuracy: mean absolute error of the estimated against the exact Jaccard, on near-duplicate pairs (1-4% of
  characters replaced) and on random pairs, averaged over 3 seeds.
- cycles: CPU time at 1 thread times the clock, calibrated here on a chain of dependent multiplies, next to the
  bound of the two 512-bit ports: 16 lanes of a*h+b and min cost vpmulld (2 uops) + vpaddd + vpminud, 2 cycles.

Every timing is the median of 3 runs; "foreign" is the other processes' CPU use meanwhile, in cores (from
/proc/stat's busy time minus our own CPU time). The last two lines are the RESULT lines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import rensa
from datasketch import MinHash
from passages import real_passages

from pairforge.dedup.minhash import (
    _parameters,
    _string_views,
    char_shingles,
    estimate_jaccard,
    shingle_hash,
    signatures,
)
from pairforge.dedup.minhash_kernels import _LANES, _affine32, _shingle_hashes

NUM_PERM, NGRAM = 128, 5


@dataclass
class Timing:
    wall: float  # median seconds
    cpu: float  # our CPU seconds in the median run (all threads)
    foreign: float  # other processes' CPU use during the runs, in cores (median)


def _busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(runs: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, Timing]:
    """Each run on its number of numba threads, round-robin (so a change of load hits all alike); medians."""
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (run, threads) in runs.items():
            numba.set_num_threads(threads)
            busy, own, start = _busy_seconds(), _own_seconds(), time.perf_counter()
            run()
            wall = time.perf_counter() - start
            mine = _own_seconds() - own
            samples[name].append((wall, mine, max(0.0, _busy_seconds() - busy - mine) / wall))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    timings = {}
    for name, runs_of in samples.items():
        runs_of.sort()
        wall, cpu, _ = runs_of[len(runs_of) // 2]
        timings[name] = Timing(wall, cpu, float(np.median([r[2] for r in runs_of])))
    return timings


@numba.njit(cache=True)
def _chain(iterations: int, x: np.uint64) -> np.uint64:
    for i in range(iterations):
        x = (x ^ np.uint64(i)) * np.uint64(0x9E3779B97F4A7C15)  # xor (1 cycle) then imul (3 cycles)
    return x


def _clock_ghz() -> float:
    """The core clock while we run, from a dependent xor+imul chain (4 cycles an iteration) timed in CPU time."""
    _chain(10, np.uint64(1))
    best = np.inf
    for _ in range(5):
        own = _own_seconds()
        _chain(50_000_000, np.uint64(1))
        best = min(best, _own_seconds() - own)
    return 4 * 50_000_000 / best / 1e9


@numba.njit(cache=True, parallel=True)
def _flat_hashes(views: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Our 5-gram hashes, written as uint64 into one flat buffer (rensa's input), 32 passages per task."""
    docs = views.shape[0]
    for c in numba.prange((docs + 31) // 32):
        lo, hi = c * 32, min(docs, c * 32 + 32)
        scratch = np.empty(max(views[lo:hi, 1].max(), _LANES), dtype=np.uint32)
        for d in range(lo, hi):
            count = _shingle_hashes(views[d, 0], views[d, 1], views[d, 2], NGRAM, scratch)
            out[offsets[d] : offsets[d] + count] = scratch[:count]


def rensa_signatures(texts: list[str], seed: int = 1, rho: bool = False) -> rensa.RMinHashDigestMatrix:
    """rensa's whole path: texts → 64-bit shingle hashes (our front end) → rensa's digest matrix."""
    views = _string_views(texts)
    counts = np.maximum(views[:, 1] - NGRAM + 1, np.minimum(views[:, 1], 1))
    offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.uint64)
    _flat_hashes(views, offsets.astype(np.int64), flat)
    digest = (
        rensa.RMinHash.digest_matrix_from_flat_token_hashes_rho
        if rho
        else rensa.RMinHash.digest_matrix_from_flat_token_hashes
    )
    return digest(flat, offsets, NUM_PERM, seed)


def _edit(text: str, rate: float, rng: random.Random) -> str:
    chars = list(text)
    for i in rng.sample(range(len(chars)), k=max(1, int(len(chars) * rate))):
        chars[i] = rng.choice(text)
    return "".join(chars)


def _exact(a: str, b: str) -> float:
    sa, sb = set(char_shingles(a, NGRAM)), set(char_shingles(b, NGRAM))
    return len(sa & sb) / len(sa | sb)


def _accuracy(texts: list[str], pairs: int) -> dict[str, tuple[float, float]]:
    """Mean |estimated - exact Jaccard| on near-duplicate and on random pairs, per method, over 3 seeds."""
    rng = random.Random(0)
    originals = texts[:pairs]
    copies = [_edit(t, rng.uniform(0.01, 0.04), rng) for t in originals]
    others = [texts[j] for j in rng.sample(range(pairs, len(texts)), pairs)]
    exact = {"near": np.array([_exact(a, b) for a, b in zip(originals, copies, strict=True)])}
    exact["random"] = np.array([_exact(a, b) for a, b in zip(originals, others, strict=True)])
    methods: dict[str, Callable[[list[str], int], np.ndarray]] = {
        "ours affine32": lambda ts, seed: signatures(ts, seed=seed),
        "ours oph": lambda ts, seed: signatures(ts, seed=seed, scheme="oph"),
        "rensa R-MinHash": lambda ts, seed: np.array(rensa_signatures(ts, seed).to_rows(), dtype=np.uint32),
        "rensa Rho": lambda ts, seed: np.array(rensa_signatures(ts, seed, rho=True).to_rows(), dtype=np.uint32),
        "datasketch (SHA-1)": lambda ts, seed: np.array(
            [
                m.hashvalues
                for m in MinHash.bulk([[s.encode() for s in char_shingles(t, NGRAM)] for t in ts], seed=seed)
            ]
        ),
    }
    errors, estimates = {}, {}
    for name, method in methods.items():
        for kind, partner in (("near", copies), ("random", others)):
            estimates[name, kind] = np.array(
                [
                    [
                        estimate_jaccard(x, y)
                        for x, y in zip(method(originals, seed), method(partner, seed), strict=True)
                    ]
                    for seed in (1, 2, 3)
                ]
            )
        errors[name] = tuple(float(np.abs(estimates[name, k] - exact[k]).mean()) for k in ("near", "random"))
    ideal = np.mean(np.sqrt(exact["near"] * (1 - exact["near"]) / NUM_PERM)) * np.sqrt(2 / np.pi)
    print(
        f"accuracy on {pairs} near-duplicate pairs (exact J mean {exact['near'].mean():.3f}) and {pairs} random pairs "
        f"(exact J mean {exact['random'].mean():.4f}), 3 seeds; the ideal 128-permutation MinHash: {ideal:.4f}"
    )
    print(f"  {'method':<20} {'MAE near-dup':>12} {'within 0.03':>11} {'MAE random':>11}")
    for name, (near, rand) in errors.items():
        within = np.mean(np.abs(estimates[name, "near"] - exact["near"]) <= 0.03)
        print(f"  {name:<20} {near:>12.4f} {within:>11.1%} {rand:>11.4f}")
    diffs = np.abs(estimates["ours affine32", "near"] - estimates["datasketch (SHA-1)", "near"])
    print(
        f"vs datasketch's SHA-1 shingles on {pairs} near-duplicate pairs: mean |dJ| {diffs.mean():.4f}, "
        f"within 0.03: {np.mean(diffs <= 0.03):.1%} (two independent estimators of the same Jaccard)"
    )
    return errors


def _emitted() -> str:
    """What numba emitted for the hot loops, compiled afresh in a child process (cached code can't be shown)."""
    code = (
        "import json, re, collections\nfrom pairforge.dedup import minhash as m\n"
        "texts = ['长江是中国第一长河' * 3] * 200  # enough for the parallel kernel\n"
        "m.signatures(texts); m.signatures(texts, scheme='oph')\n"
        "asm = m._signatures.inspect_asm(m._signatures.signatures[0])\n"
        "def loop(pattern):\n"
        "    for block in re.split(r'\\n(?=\\.LBB)', asm):\n"
        "        if re.search(pattern, block):\n"
        "            ops = [l.split()[0] for l in block.splitlines()[1:] if l.strip() and l.strip()[0] not in '.#']\n"
        "            counts = dict(collections.Counter(o for o in ops if o.startswith('v')))\n"
        "            return {**counts, 'registers': sorted(set(re.findall(r'%([xyz]mm)\\d', block)))}\n"
        "print(json.dumps({'affine32 loop': loop(r'(vpmulld[^\\n]*zmm[\\s\\S]*){8}'),\n"
        "    'fnv loop (2-byte text)': loop(r'vpmovzxwd[^\\n]*zmm'), 'oph buckets': loop(r'vpmuludq[^\\n]*zmm'),\n"
        "    'zmm vpmulld': len(re.findall(r'vpmulld[^\\n]*zmm', asm)), 'vpmullq': asm.count('vpmullq')}))\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        return f"(inspection failed: {done.stderr.strip().splitlines()[-1:]})"
    return json.dumps(json.loads(done.stdout), ensure_ascii=False)


def _throughput(texts: list[str], sample: list[str], threads: int, repeats: int) -> dict[str, Timing]:
    utf8 = [[s.encode("utf-8") for s in char_shingles(t, NGRAM)] for t in sample]
    runs: dict[str, tuple[Callable[[], object], int]] = {}
    for scheme in ("affine32", "oph"):
        for k in sorted({1, threads}):
            runs[f"ours {scheme}, {k} thread{'s' * (k > 1)}"] = (lambda s=scheme: signatures(texts, scheme=s), k)
    runs[f"rensa R-MinHash whole path ({threads} threads)"] = (lambda: rensa_signatures(texts), threads)
    runs[f"rensa Rho whole path ({threads} threads)"] = (lambda: rensa_signatures(texts, rho=True), threads)
    runs["datasketch MinHash.bulk (1 thread)"] = (lambda: MinHash.bulk(utf8, num_perm=NUM_PERM, seed=1), 1)
    timings = _measure(runs, repeats)
    print(
        f"throughput (passages/s, median of {repeats}; per CPU-second ~ per core; foreign = others' cores meanwhile)"
    )
    for name, t in timings.items():
        n = len(sample) if name.startswith("datasketch") else len(texts)
        print(f"  {name:<42} {n / t.wall:>11,.0f}  per CPU-s {n / t.cpu:>11,.0f}  foreign {t.foreign:.2f}")
    for scheme in ("affine32", "oph"):
        one, many = timings[f"ours {scheme}, 1 thread"], timings[f"ours {scheme}, {threads} threads"]
        print(f"scaling {scheme}: {threads} threads / 1 thread = {one.wall / many.wall:.2f}x wall-clock")
    return timings


@numba.njit(cache=True)
def _loop_only(hashes: np.ndarray, a: np.ndarray, b: np.ndarray, sig: np.ndarray, repeats: int) -> int:
    total = 0
    for r in range(repeats):
        _affine32(hashes, hashes.shape[0] - (r & 1), a, b, sig)
        total += sig[r % NUM_PERM]
    return total


def _cycles(one: Timing, oph: Timing, passages: int, shingles: float, ghz: float) -> None:
    cycles, oph_cycles = (t.cpu * ghz * 1e9 / passages for t in (one, oph))
    bound = shingles * NUM_PERM / _LANES * 2  # 2 cycles per 16 lanes of a*h+b and min
    print(
        f"cycles (1 thread, at {ghz:.2f} GHz): affine32 {cycles:,.0f} per passage = "
        f"{cycles / shingles / NUM_PERM:.3f} per shingle x permutation; bound of the two 512-bit ports "
        f"{bound:,.0f} = 0.125 ({ghz * 1e9 / bound:,.0f} passages/s per core; we reach {bound / cycles:.0%}); "
        f"oph {oph_cycles:,.0f} per passage = {oph_cycles / shingles:.1f} per shingle"
    )
    hashes = np.random.RandomState(0).randint(0, 1 << 32, round(shingles), dtype=np.uint32)
    a, b, _ = _parameters(NUM_PERM, 1)
    sig = np.empty(NUM_PERM, dtype=np.uint32)
    _loop_only(hashes, a, b, sig, 10)
    best = np.inf
    for _ in range(5):
        own = _own_seconds()
        _loop_only(hashes, a, b, sig, 20_000)
        best = min(best, _own_seconds() - own)
    per_shingle = best * ghz * 1e9 / 20_000 / (len(hashes) - 0.5)
    print(
        f"the affine32 loop alone (hashes in L1): {per_shingle:.1f} cycles per shingle for 128 permutations, "
        f"bound 16 ({16 / per_shingle:.0%}); the rest of a passage is hashing, reading the text and the Python side"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--anchor-sample", type=int, default=3_000, help="passages timed through datasketch")
    parser.add_argument("--pairs", type=int, default=1_000, help="pairs of each kind for the accuracy table")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    texts = real_passages(args.passages)
    sample, threads = texts[: args.anchor_sample], numba.config.NUMBA_NUM_THREADS
    shingles = float(np.mean([max(len(t) - NGRAM + 1, 1) for t in texts]))
    for scheme in ("affine32", "oph"):  # compile (or load the cached machine code) outside the timings
        signatures(texts[:200], scheme=scheme)
    rensa_signatures(texts[:200])
    rensa_signatures(texts[:200], rho=True)
    ghz = _clock_ghz()
    same_hash = MinHash.bulk([char_shingles(t, NGRAM) for t in texts[:500]], num_perm=NUM_PERM, hashfunc=shingle_hash)
    mine = signatures(texts[:500])
    identical = sum(np.array_equal(m.hashvalues, mine[i]) for i, m in enumerate(same_hash))
    print(
        f"passages {len(texts):,} (mean {np.mean([len(t) for t in texts]):.0f} chars, {shingles:.1f} shingles); "
        f"{NUM_PERM} permutations; datasketch timed on {len(sample):,}; numba threads {threads}; "
        f"clock {ghz:.2f} GHz (calibrated)"
    )
    print(f"signatures identical to datasketch with the same shingle hash: {identical}/{len(same_hash)}")
    timings = _throughput(texts, sample, threads, args.repeats)
    _cycles(timings["ours affine32, 1 thread"], timings["ours oph, 1 thread"], len(texts), shingles, ghz)
    errors = _accuracy(texts, args.pairs)
    print(f"numba emitted: {_emitted()}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores, shared machine)")
    best, fast = (len(texts) / timings[f"ours {s}, {threads} threads"].wall for s in ("affine32", "oph"))
    anchor = len(texts) / timings[f"rensa R-MinHash whole path ({threads} threads)"].wall
    ds = len(sample) / timings["datasketch MinHash.bulk (1 thread)"].wall
    print(
        f"vs rensa's whole path: affine32 {best / anchor:.2f}x (MAE near-dup {errors['ours affine32'][0]:.4f}), "
        f"oph {fast / anchor:.2f}x (MAE {errors['ours oph'][0]:.4f}; rensa {errors['rensa R-MinHash'][0]:.4f}); "
        "minhash_rensa reports oph, the scheme with rensa's accuracy"
    )
    print(f"ours {best:,.0f} passages/s; datasketch MinHash.bulk {ds:,.0f} passages/s")
    print(f"RESULT minhash ours={best:.0f} anchor={ds:.0f} ratio={best / ds:.1f} unit=passages/s")
    print(f"RESULT minhash_rensa ours={fast:.0f} anchor={anchor:.0f} ratio={fast / anchor:.2f} unit=passages/s")


if __name__ == "__main__":
    main()
