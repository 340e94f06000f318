"""The funnel: one row per stage (records in, out, dropped by reason) from the summaries each stage leaves in
the workdir, plus the export's own rows. It goes into the manifest and the dataset card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pairforge.export.formats import FormatCounts

SUMMARIES = {
    "ingest": "ingest_summary.json",
    "dedup_passages": "dedup_passages_summary.json",
    "generate": "generate_summary.json",
    "filter": "filter_summary.json",
    "dedup_pairs": "dedup_pairs_summary.json",
    "mine": "mine_summary.json",
}
FORMAT_FILES = {
    "flagembedding": "flagembedding/",
    "sentence_transformers": "sentence-transformers/",
    "uniem": "uniem/",
    "cosent": "cosent/",
}


def read_summaries(workdir: Path) -> dict[str, dict[str, Any]]:
    """The stage summaries present in ``workdir`` (a run without an LLM stage has no generate summary)."""
    found = {}
    for stage, name in SUMMARIES.items():
        path = workdir / name
        if path.is_file():
            found[stage] = json.loads(path.read_text(encoding="utf-8"))
    return found


def stage(
    name: str, unit: str, counts: tuple[int, int], dropped: dict[str, int] | None = None, **detail: Any
) -> dict[str, Any]:
    """One funnel row: ``counts`` is (in, out); zero drop counts are left out."""
    kept_drops = {k: v for k, v in (dropped or {}).items() if v}
    return {"stage": name, "unit": unit, "in": counts[0], "out": counts[1], "dropped": kept_drops, "detail": detail}


def build_funnel(summaries: dict[str, dict[str, Any]], examples: int, counts: FormatCounts) -> list[dict[str, Any]]:
    """Rows in pipeline order; stages that did not run are left out."""
    rows = []
    if ingest := summaries.get("ingest"):
        documents, passages = ingest["documents"], ingest["passages"]
        records = documents + ingest.get("quarantined", 0)
        rows.append(stage("read", "records", (records, documents), ingest.get("quarantine_reasons")))
        dropped = {"too_short_window": ingest.get("too_short_windows", 0), "sampled_out": ingest.get("sampled_out", 0)}
        windows = passages + sum(dropped.values())
        rows.append(
            stage("window", "passages", (windows, passages), dropped, human_pairs=ingest.get("human_pairs", 0))
        )
    if dedup := summaries.get("dedup_passages"):
        rows.append(stage("dedup passages", "passages", (dedup["input"], dedup["kept"]), dedup.get("dropped")))
    if gen := summaries.get("generate"):
        failed = {
            **{f"backend_{k}": v for k, v in gen.get("backend_errors", {}).items()},  # requests the LLM never answered
            **gen.get("failures", {}),
            **{f"item_{k}": v for k, v in gen.get("dropped_items", {}).items()},
        }
        detail = {"passages": gen.get("passages", 0), "by_kind": gen.get("pairs_by_kind", {})}
        rows.append(stage("generate", "requests → pairs", (gen["requests"], gen["pairs"]), failed, **detail))
    if filtered := summaries.get("filter"):
        rows.append(stage("filter", "pairs", (filtered["input"], filtered["kept"]), filtered.get("dropped")))
    if dedup := summaries.get("dedup_pairs"):
        rows.append(stage("dedup pairs", "pairs", (dedup["input"], dedup["kept"]), dedup.get("dropped")))
    if mine := summaries.get("mine"):
        detail = {k: mine.get(k, 0) for k in ("with_full_negatives", "shortfall", "topped_up")}
        rows.append(stage("mine", "queries → examples", (mine["queries"], examples), {}, **detail))
    for fmt, prefix in FORMAT_FILES.items():
        written = sum(n for path, n in counts.rows.items() if path.startswith(prefix) and "/by_length/" not in path)
        dropped = counts.dropped.get(fmt, {})
        if written or dropped:
            unit = "scored pairs" if fmt == "cosent" else "examples"
            rows.append(
                stage(f"export {fmt.replace('_', '-')}", unit, (written + sum(dropped.values()), written), dropped)
            )
    return rows
