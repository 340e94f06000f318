"""Rebuilding pairs from a full ledger (what every generate run does): the parser with validators compiled once
per schema (ours) against the same rebuild validating each item with ``jsonschema.validate`` (the former
parser: the schema re-checked per item), side by side on one ledger.

The ledger holds one answer per evidence-first request planned over CMRC 2018 dev passages (the demo config's
counts), written as a model would answer (valid, so every item reaches the copy and target checks). Prints
ms per request and last ``RESULT rebuild ours=<ms/request> anchor=<ms/request> ratio=<ours/anchor> unit=ms``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
from bench_generate_quality import REPO, cmrc_passages

from pairforge.config import RunConfig, load_config
from pairforge.generation import parse
from pairforge.generation.build import build_shard
from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.generation.requests import PlannedRequest, plan_requests
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def model_like_answer(p: PlannedRequest) -> str:
    """A schema-valid answer built from the target's own words."""
    assert p.target is not None
    words = _CJK_RUN.findall(p.target.text) or ["长江"]
    if p.kind == "sp":
        return json.dumps({"sentence": f"{words[0][:20]}的说法换了一种表达。"}, ensure_ascii=False)
    if p.query_type == "keyword":
        return json.dumps({"query": " ".join(w[:6] for w in (words * 2)[:2])}, ensure_ascii=False)
    return json.dumps({"query": f"{words[0][:12]}指的是什么？"}, ensure_ascii=False)


class _PerItemValidate:
    """The former parser's cost: ``jsonschema.validate`` (schema check, validator build) for every item."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def is_valid(self, item: Any) -> bool:
        try:
            jsonschema.validate(item, self.schema)
        except jsonschema.ValidationError:
            return False
        return True


def rebuild(config: RunConfig, planned: list[PlannedRequest], workdir: Workdir) -> tuple[float, StageStats]:
    """The generate stage's build step over ``planned`` (one shard), timed."""
    start = time.perf_counter()
    stats = build_shard(config, workdir, "bench", planned)
    return time.perf_counter() - start, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=400, help="CMRC dev passages (half of them long)")
    args = parser.parse_args()
    config = load_config(REPO / "configs" / "demo.yaml")
    passages = cmrc_passages(args.passages // 2, args.passages - args.passages // 2, config.window.long_chars)
    planned = plan_requests(passages, config.generate, "bench", long_chars=config.window.long_chars)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Workdir(Path(tmp))
        ledger = Ledger(workdir.ledger)
        sampling = config.generate.sampling.model_dump()
        rows = [
            LedgerRow(
                p.key,
                p.kind,
                p.passage["id"],
                p.prompt.id,
                p.prompt.sha256,
                "bench",
                sampling,
                [model_like_answer(p)],
                ["stop"],
                1600,
                30,
                "bench",
            )
            for p in planned
        ]
        ledger.add(rows)
        ledger.close()
        rebuild(config, planned[:50], workdir)  # warm the caches: OpenCC, compiled validators, sqlite pages
        ours_s, summary = rebuild(config, planned, workdir)
        with mock.patch.object(parse, "_validator", lambda schema_json: _PerItemValidate(json.loads(schema_json))):
            anchor_s, anchor_summary = rebuild(config, planned, workdir)
    assert (summary.output, summary.details["failures"]) == (anchor_summary.output, anchor_summary.details["failures"])
    ours, anchor = ours_s * 1000 / len(planned), anchor_s * 1000 / len(planned)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    failures = summary.details["failures"]
    print(f"ledger rows {len(planned)} ({len(passages)} passages); pairs {summary.output}; failures {failures}")
    print(f"compiled validators: {ours_s:.2f} s ({ours:.3f} ms/request)")
    print(f"jsonschema.validate per item: {anchor_s:.2f} s ({anchor:.3f} ms/request); peak RSS {peak_mb:.0f} MB")
    print(f"RESULT rebuild ours={ours:.4f} anchor={anchor:.4f} ratio={ours / anchor:.3f} unit=ms")


if __name__ == "__main__":
    main()
