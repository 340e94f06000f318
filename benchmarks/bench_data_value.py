"""What the generated data is worth, measured against human data for the same passages (issue 20, part 7).

CMRC 2018 dev (one paragraph per article) is split by article, seeded, into a generation group and an evaluation
group. Every paragraph of the generation group, in a seeded order, is the corpus: pairforge's pipeline runs over it
with the demo settings (the demo model, ``configs/demo.yaml`` without its gate) into a cached workdir and store
under ``work/bench_data_value/`` (a rerun asks only what its ledger lacks). ``--full`` asks every pool passage, as a
run without ``--limit`` does; ``--passages N`` asks only the first N (``pairforge run --limit``). The whole pool is
mined for negatives, as a user's corpus is. Asking only part of the pool makes most mined negatives passages that
are no row's positive, unlike every in-batch negative; measured so (50 of 264 passages asked), mined negatives did
not beat in-batch ones, asked for every passage they did (docs/quality.md, "Data value"). The version's
own held-out split is off (the benchmark's eval is its own article group). The arms, each the same student with the
same budget, over ``--seeds`` seeds, paired by seed:

- ``untrained``: the student as built;
- ``generated``: trained on the version's qp/sp examples with their first mined hard negative (``--negatives``:
  the first N; default the gate's count);
- ``human``: trained on CMRC's own human questions of the same paragraphs, each with the best other BM25
  paragraph of the same pool as its hard negative (as many as the generated pairs have mined ones);
- ``generated-inbatch``: the generated pairs without their mined negatives (in-batch negatives only).

Every arm is scored by recall@5 under the long-text protocol (``pairforge eval longtext``) on the evaluation
group's questions over the evaluation group's paragraphs: nothing evaluated was generated from or trained on
(checked and printed). Prints, last::

    RESULT data_value ours=<generated gain> anchor=<human gain> ratio=<ours/anchor> unit=recall_at_5
    RESULT negatives_value ours=<generated> anchor=<generated-inbatch> ratio=<ours/anchor> unit=recall_at_5

gains being over the untrained student (a pretrained student's untrained score is the same under every seed and is
measured once), means over seeds; the paired differences are printed with their
standard error. Also printed: kept pairs per passage, seconds per kept pair (generation time over kept pairs),
and the faithfulness share of the kept pairs (``pairforge.evaluate.faithfulness``).

The default is a smoke run for ``make bench`` (16 passages, 2 seeds: its figures are noise); the measured run is
``nice -n 10 timeout 7200 python benchmarks/bench_data_value.py --full`` (every pool passage, 5 seeds), best with
``--prepare-only`` first (the generation, about 45 minutes of vLLM on a 2-core CPU, cached for every later run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import math
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from passages import SHARED

from pairforge.config import GateConfig
from pairforge.evaluate.longtext import LongTextSet, bm25_top_k, model_top_k, recall_block, select_longtext
from pairforge.text import normalize_text
from pairforge.train import TrainConfig, train_student
from pairforge.train.datasets import TrainData, add_example, read_versions
from pairforge.train.students import build_student

REPO = Path(__file__).resolve().parents[1]
CMRC = SHARED / "cmrc2018" / "cmrc2018_dev.squad.json"
WORK = REPO / "work" / "bench_data_value"
# (passages, seeds): `make bench`'s smoke run, and the measured run (--full; passages None: every pool passage)
QUICK, FULL = (16, 2), (None, 5)
SPAN = 20  # a training text sharing this many characters with an eval passage counts as a leak


def split_articles(articles: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The articles in two seeded halves: (generation group, evaluation group)."""
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return [articles[i] for i in sorted(order[:half])], [articles[i] for i in sorted(order[half:])]


def order_paragraphs(articles: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Every paragraph of ``articles`` in a seeded order (the corpus: its first passages get requests)."""
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    random.Random(seed).shuffle(paragraphs)
    return paragraphs


def write_inputs(paragraphs: list[dict[str, Any]], eval_articles: list[dict[str, Any]], folder: Path) -> Path:
    """The corpus (JSONL, one document per paragraph), the eval group's SQuAD file, and the run's
    config (the demo's settings, no gate) under ``folder``; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "passages.jsonl").open("w", encoding="utf-8") as out:
        for p in paragraphs:
            out.write(json.dumps({"id": p["id"], "title": "", "text": p["context"]}, ensure_ascii=False) + "\n")
    eval_file = folder / "eval.squad.json"
    eval_file.write_text(json.dumps({"data": eval_articles}, ensure_ascii=False), encoding="utf-8")
    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    config.pop("gate", None)  # the benchmark is the gate here
    # It evaluates on its own article group: a held-out split of the version would keep a fifth of the generated
    # pairs out of training while the human arm trains on every paragraph's questions.
    config.setdefault("mine", {})["heldout_share"] = 0.0
    config.update(
        name="cmrc-gen",
        workdir=str(folder / "workdir"),
        store=str(folder / "store"),
        corpora=[{"format": "jsonl", "path": str(folder / "passages.jsonl")}],
    )
    config["generate"]["model"] = "demo"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def generate_version(config: Path, folder: Path, limit: int | None) -> tuple[Path, float]:
    """The latest version of the run over ``config`` (only the first ``limit`` pool passages get requests; every one
    with None) and the wall seconds of every run that published a version so far. The pipeline runs every
    time: the workdir and the ledger make a rerun cheap (nothing new publishes nothing; a changed setting after
    generation asks only what the ledger lacks, e.g. the failed answers it asks again, up to
    ``generate.max_attempts``)."""
    latest = folder / "store" / "cmrc-gen" / "latest"
    timing = folder / "run_seconds.json"
    before = latest.resolve() if latest.exists() else None
    started = time.perf_counter()
    command = [sys.executable, "-m", "pairforge.cli", "run", str(config)]
    command += ["--limit", str(limit)] if limit is not None else []
    print(f"pipeline (answers cached in its ledger): {' '.join(command)}", flush=True)
    subprocess.run(command, check=True, env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"})
    runs = json.loads(timing.read_text(encoding="utf-8")).get("runs", []) if timing.exists() else []
    if latest.resolve() != before:
        runs.append({"version": latest.resolve().name, "seconds": round(time.perf_counter() - started, 1)})
        timing.write_text(json.dumps({"runs": runs}), encoding="utf-8")
    return latest.resolve(), sum(run["seconds"] for run in runs)


def prepare(passages: int | None, split_seed: int) -> tuple[list[dict[str, Any]], Path, Path, float]:
    """The corpus's paragraphs (in its order), the eval file, the version and the generation seconds."""
    articles = json.loads(CMRC.read_text(encoding="utf-8"))["data"]
    gen_articles, eval_articles = split_articles(articles, split_seed)
    paragraphs = order_paragraphs(gen_articles, split_seed)
    folder = WORK / f"split{split_seed}-pool-{'all' if passages is None else f'p{passages}'}"
    config = write_inputs(paragraphs, eval_articles, folder)
    version, seconds = generate_version(config, folder, passages)
    return paragraphs, folder / "eval.squad.json", version, seconds


def pool_texts(version: Path) -> list[str]:
    """The version's pool passages in the pool's order (window sampling may leave short paragraphs out)."""
    import pyarrow.parquet as pq

    files = sorted((version / "data" / "passages").glob("*.parquet"))
    return [t for f in files for t in pq.read_table(f)["text"].to_pylist()]


def generated_paragraphs(pool: list[str], paragraphs: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The paragraphs that got requests: those of the first ``limit`` ``pool`` passages (every one with None), in
    the corpus's order."""
    asked = set(pool[:limit])
    return [p for p in paragraphs if normalize_text(p["context"], t2s=True) in asked]


def human_data(
    paragraphs: list[dict[str, Any]], pool: list[str], prompts: dict[str, str], negatives: int
) -> TrainData:
    """CMRC's own questions of ``paragraphs`` as ``qp`` rows (the generated questions' kind, so both get the same
    query instruction), their positive the paragraph's pool passage, their ``negatives`` the best BM25 matches among
    the other passages of ``pool`` (as pairforge's BM25 mining would pick them)."""
    passages = [normalize_text(p["context"], t2s=True) for p in paragraphs]
    questions = [(normalize_text(qa["question"]), passages[i]) for i, p in enumerate(paragraphs) for qa in p["qas"]]
    data = TrainData(prompts=dict(prompts))
    top = bm25_top_k(pool, [q for q, _ in questions], negatives + 4) if negatives else [[] for _ in questions]
    for (question, gold), ranked in zip(questions, top, strict=True):
        add_example(data, "qp", question, [gold], [pool[i] for i in ranked if pool[i] != gold], negatives)
    return data


def without_negatives(data: TrainData) -> TrainData:
    """The same rows with in-batch negatives only (the mined ``negative_*`` columns removed)."""
    rows = {
        kind: {k: v for k, v in columns.items() if not k.startswith("negative_")}
        for kind, columns in data.rows.items()
    }
    return TrainData(rows, dict(data.prompts), dict(data.dropped), list(data.sources))


def shared_spans(data: TrainData, eval_set: LongTextSet) -> tuple[int, int]:
    """Training texts sharing a ``SPAN``-character span with an eval passage, and eval queries trained on."""
    grams = {p[i : i + SPAN] for p in eval_set.passages for i in range(len(p) - SPAN + 1)}
    texts = {t for columns in data.rows.values() for name, v in columns.items() if name != "score" for t in v}
    overlapping = sum(any(t[i : i + SPAN] in grams for i in range(len(t) - SPAN + 1)) for t in texts)
    return overlapping, len(set(eval_set.queries) & texts)


def recall_at_5(model: Any, eval_set: LongTextSet) -> float:
    block = recall_block(model_top_k(model, eval_set.passages, eval_set.queries, 10), eval_set)
    return float(block["recall_at_5"])


def run_seed(
    arms: dict[str, TrainData], config: TrainConfig, eval_set: LongTextSet, untrained: float | None, seed: int
) -> dict[str, float]:
    """recall@5 of every arm (``untrained`` included: scored now unless given) for one seed, each arm trained
    with the same config."""
    seeded = config.model_copy(update={"seed": seed})
    if untrained is None:
        untrained = recall_at_5(build_student(seeded, "cpu"), eval_set)
    scores = {"untrained": untrained}
    print(f"seed {seed} untrained: recall@5 {scores['untrained']:.4f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-data-value-") as scratch:
        for name, data in arms.items():
            summary = train_student(data, seeded, f"{scratch}/{name}-{seed}", log=lambda _: None)
            scores[name] = recall_at_5(summary.model_path, eval_set)
            print(f"seed {seed} {name}: {summary.steps} steps, {summary.seconds:.0f} s, "
                  f"recall@5 {scores[name]:.4f}", flush=True)  # fmt: skip
    return scores


def run_arms(
    arms: dict[str, TrainData], config: TrainConfig, seeds: int, eval_set: LongTextSet, jobs: int
) -> dict[str, list[float]]:
    """recall@5 per arm and seed (``untrained`` included); ``jobs`` seeds at once, in separate processes."""
    # A pretrained student is the same model under every seed: its untrained score is measured once.
    untrained = None if config.is_static() else recall_at_5(build_student(config, "cpu"), eval_set)
    if jobs > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            per_seed = list(pool.map(functools.partial(run_seed, arms, config, eval_set, untrained), range(seeds)))
    else:
        per_seed = [run_seed(arms, config, eval_set, untrained, seed) for seed in range(seeds)]
    return {name: [scores[name] for scores in per_seed] for name in per_seed[0]}


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and standard error of the per-seed differences a - b."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    error = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return statistics.fmean(diffs), error


def judge_costs(version: Path, seconds: float) -> str:
    """Kept pairs and seconds per kept pair with the judge and without it, from the funnels of every version up
    to ``version`` (the runs ``seconds`` sums): without the judge, the filter's output is kept and none of the
    judge's seconds are spent."""
    funnels = [
        json.loads((version.parent / f"v{n}" / "manifest.json").read_text(encoding="utf-8"))["funnel"]
        for n in range(1, int(version.name.removeprefix("v")) + 1)
    ]
    judge_seconds = sum(s["seconds"] for funnel in funnels for s in funnel if s["stage"] == "judge")
    stages = {s["stage"]: s for s in funnels[-1]}
    judge, filtered = stages.get("judge", {}), stages["filter"]["out"]
    judged = judge.get("out", filtered) if judge.get("details", {}).get("enabled") else filtered
    return (f"with the judge {judged} kept, {seconds / max(judged, 1):.1f} s per kept pair (its {judge_seconds:.0f} "
            f"s included); without it {filtered} kept, {(seconds - judge_seconds) / max(filtered, 1):.1f} s per kept "
            "pair")  # fmt: skip


def faithfulness_share(version: Path) -> str:
    """The share of the version's generated pairs (``data/pairs``, with their recorded evidence) that
    ``score_faithfulness`` passes: no number or Latin word absent from the passage; sp restates its evidence."""
    import pyarrow.parquet as pq

    from pairforge.evaluate.faithfulness import score_faithfulness

    files = sorted((version / "data" / "pairs").glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist() if r["kind"] in ("qp", "sp")]
    score = score_faithfulness(rows)
    by_kind = ", ".join(
        f"{k} {score.faithful_by_kind[k]}/{score.pairs_by_kind[k]}" for k in sorted(score.pairs_by_kind)
    )
    return f"{score.faithful}/{score.pairs} = {score.share():.2f} ({by_kind})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--full", action="store_true", help=f"The measured run: every pool passage, {FULL[1]} seeds (an hour or more)."
    )
    parser.add_argument(
        "--passages",
        type=int,
        help=f"Pool passages that get requests (default {QUICK[0]}; 0 or --full: every one).",
    )
    parser.add_argument("--seeds", type=int, help=f"Seeds (default {QUICK[1]}; --full {FULL[1]}).")
    parser.add_argument("--student", default=None, help="The student (default: the gate's default student).")
    parser.add_argument("--negatives", type=int, help="Mined negatives per row (default: the gate's).")
    parser.add_argument("--epochs", type=float, default=None, help="Default: the gate's budget.")
    parser.add_argument("--jobs", type=int, default=1, help="Seeds trained at once (one process each).")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--prepare-only", action="store_true", help="Only make the cached version.")
    args = parser.parse_args()
    # `make bench` runs the quick default (a smoke run whose figures are noise); the measured figures need --full.
    if args.passages is None:
        args.passages = (FULL if args.full else QUICK)[0]
    elif args.passages < 0:
        parser.error("--passages: a count of pool passages, or 0 for every one")
    elif args.passages == 0:
        args.passages = None  # every pool passage
    args.seeds = args.seeds or (FULL if args.full else QUICK)[1]
    corpus, eval_file, version, seconds = prepare(args.passages, args.split_seed)
    if args.prepare_only:
        print(f"version: {version} ({seconds} s of pipeline)")
        return
    config = GateConfig(eval=[str(eval_file)]).train
    update: dict[str, Any] = {}
    if args.negatives is not None:
        update["num_negatives"] = args.negatives
    if args.student:
        update["student"] = args.student
    if args.epochs:
        update.update(epochs=args.epochs, max_steps=None)
    config = config.model_copy(update=update)
    eval_set = select_longtext(eval_file, long_chars=512, short_per_long=2.0)
    generated = read_versions([str(version)], config.num_negatives)
    generated = generated.only([k for k in ("qp", "sp") if k in generated.rows])
    kept = sum(read_versions([str(version)], 0).only(["qp", "sp"]).counts().values())
    pool = pool_texts(version)
    paragraphs = generated_paragraphs(pool, corpus, args.passages)
    arms = {
        "generated": generated,
        "human": human_data(paragraphs, pool, generated.prompts, config.num_negatives),
        "generated-inbatch": without_negatives(generated),
    }
    settings = config.model_dump(exclude_none=True)
    print(f"eval: {len(eval_set.queries)} queries ({sum(eval_set.long)} long) over {len(eval_set.passages)} "
          f"paragraphs of the evaluation group; student {config.student}, {settings}")  # fmt: skip
    print(f"generation: {len(paragraphs)} of the pool's {len(pool)} paragraphs, {kept} kept pairs "
          f"({kept / len(paragraphs):.2f} per paragraph), {seconds / max(kept, 1):.1f} s per kept pair (the wall "
          f"time of every pipeline run that published, {seconds:.0f} s)")  # fmt: skip
    print(f"judge: {judge_costs(version, seconds)}")
    print(f"faithfulness: {faithfulness_share(version)}")
    for name, data in arms.items():
        spans, queries = shared_spans(data, eval_set)
        print(f"{name}: rows {data.counts()}; {spans} training texts share a {SPAN}-char span with an eval paragraph, "
              f"{queries} eval queries are training texts")  # fmt: skip
    scores = run_arms(arms, config, args.seeds, eval_set, args.jobs)
    print("\n| arm | recall@5 (mean over seeds) | gain over untrained (paired ± s.e.) |\n|---|---|---|")
    for name, values in scores.items():
        gain, error = paired(values, scores["untrained"])
        print(f"| {name} | {statistics.fmean(values):.4f} | {gain:+.4f} ± {error:.4f} |")
    ours, _ = paired(scores["generated"], scores["untrained"])
    anchor, _ = paired(scores["human"], scores["untrained"])
    neg_gain, neg_error = paired(scores["generated"], scores["generated-inbatch"])
    with_neg, without = statistics.fmean(scores["generated"]), statistics.fmean(scores["generated-inbatch"])
    print(f"mined negatives vs in-batch only, paired over {args.seeds} seeds: {neg_gain:+.4f} ± {neg_error:.4f}")
    print(f"RESULT data_value ours={ours:.4f} anchor={anchor:.4f} ratio={ours / anchor if anchor else math.nan:.3f} "
          f"unit=recall_at_5")  # fmt: skip
    print(f"RESULT negatives_value ours={with_neg:.4f} anchor={without:.4f} ratio={with_neg / without:.3f} "
          f"unit=recall_at_5")  # fmt: skip


if __name__ == "__main__":
    main()
