"""The dataset card (README.md of a version): Hugging Face front matter, the files and how to train on them,
the funnel, four histograms and seeded random examples. ``pairforge report`` renders the same card as HTML."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pairforge.adjudicate.card import adjudication_section
from pairforge.export.notes import describe_human_pairs, describe_left_out
from pairforge.export.plots import PLOTS
from pairforge.judge.card import judge_section
from pairforge.store import layout

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~])")
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))  # fmt: skip
_HF_CONFIGS = (("sentence-transformers", "sentence-transformers"), ("cosent", "cosent"), (layout.EXAMPLES, "examples"),
               (layout.PAIRS, "pairs"), (layout.HUMAN_PAIRS, "human_pairs"))  # fmt: skip


def sample_examples(examples: list[Path], k: int, seed: int) -> list[dict[str, Any]]:
    """``k`` examples drawn with ``seed`` from the version's example files, reading only the row groups that hold
    them."""
    files = [pq.ParquetFile(path) for path in examples]
    n = sum(f.metadata.num_rows for f in files)
    if k <= 0 or n == 0:
        return []
    wanted = sorted(random.Random(seed).sample(range(n), min(k, n)))
    picked, offset = [], 0
    for parquet in files:
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            inside = [i - offset for i in wanted if offset <= i < offset + size]
            if inside:
                picked.extend(parquet.read_row_group(group).take(pa.array(inside)).to_pylist())
            offset += size
    return picked


def front_matter(manifest: dict[str, Any]) -> dict[str, Any]:
    """Hugging Face card metadata: language, task, size, tags, and one config per Parquet folder of the version.
    Only Parquet: ``datasets`` chooses one builder for all of a card's configs, so a JSONL config beside Parquet
    ones would not load by name (the JSONL formats load by path, see the card's Files section)."""
    total = sum(manifest["examples"].values())
    parquet = sorted(path for path in manifest["formats"] if path.endswith(".parquet"))
    # the files themselves, not a glob: a deleted file is an error naming it, not a smaller dataset
    configs: list[dict[str, Any]] = [
        {"config_name": name, "data_files": [{"split": "train", "path": in_folder}]}
        for folder, name in _HF_CONFIGS
        if (in_folder := [p for p in parquet if p.rsplit("/", 1)[0] == folder])
    ]
    if configs:
        configs[0]["default"] = True
    tags = ["pairforge", "text-embedding", "hard-negatives"] + (
        ["synthetic"] if manifest["generation"]["model"] else []
    )
    return {
        "language": ["zh"],
        "pretty_name": f"{manifest['dataset']} v{manifest['version']}",
        "task_categories": ["sentence-similarity", "text-retrieval"],
        "size_categories": [next((label for limit, label in _SIZES if total < limit), "n>100M")],
        "tags": tags,
        "configs": configs,
    }


def render_card(manifest: dict[str, Any], examples: list[dict[str, Any]], text_chars: int) -> str:
    """The card's Markdown, front matter first."""
    meta = yaml.safe_dump(front_matter(manifest), allow_unicode=True, sort_keys=False)
    gen = manifest["generation"]
    kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(manifest["examples"].items())) or "none"
    parts = [
        f"---\n{meta}---\n",
        f"# {manifest['dataset']} v{manifest['version']}\n",
        "Training data for a Chinese text-embedding model, made by pairforge: "
        f"{sum(manifest['examples'].values()):,} examples ({kinds}), each a query with its positive passage and "
        "hard negatives mined by BM25 and/or a dense retriever.\n",
        _files_section(manifest),
        "## Funnel\n\n" + funnel_table(manifest["funnel"]) + _human_line(manifest),
        *filter(None, [judge_section(manifest["funnel"])]),  # only when the judge ran
        *filter(None, [adjudication_section(manifest["funnel"])]),  # only when mine.adjudicate ran
        _left_out_section(manifest),
        "## Lengths and scores\n\n" + "\n".join(f"![{title}]({path})\n" for path, title in PLOTS.values()),
        _examples_section(examples, text_chars, manifest),
        _segments_section(manifest),
        _gate_section(manifest),
        "## Lineage\n\n"
        f"- parent version: {'v' + str(manifest['parent']) if manifest['parent'] else 'none'}"
        f" (added {manifest['delta']['added']:,} examples, removed {manifest['delta']['removed']:,})\n"
        f"- model: {_md(gen['model'] or 'none (no LLM stage)')}, backend {_md(gen['backend'] or '-')}\n"
        f"- prompts: {', '.join(_md(p['id']) + ' `' + str(p['sha256'])[:12] + '`' for p in gen['prompts']) or '-'}\n"
        f"- config fingerprint: `{manifest['config_fingerprint']}`\n"
        f"- code: pairforge {manifest['code_version']['package']}, git `{manifest['code_version']['git_sha']}`\n"
        "- every file's sha256 is in `manifest.json`\n",
    ]
    return "\n".join(parts)


def funnel_table(funnel: list[dict[str, Any]]) -> str:
    """The funnel as a Markdown table: stage, unit, in, out, dropped by reason."""
    lines = ["| stage | unit | in | out | dropped |", "| --- | --- | ---: | ---: | --- |"]
    for row in funnel:
        drops = dict(row["dropped"])
        for fmt, reasons in (row.get("details", {}).get("format_drops") or {}).items():  # export: left out of a format
            drops.update({f"{fmt}: {reason}": n for reason, n in reasons.items()})
        dropped = ", ".join(f"{_md(reason)} {n:,}" for reason, n in drops.items()) or "-"
        lines.append(f"| {row['stage']} | {row['unit']} | {row['in']:,} | {row['out']:,} | {dropped} |")
    return "\n".join(lines) + "\n"


def _human_line(manifest: dict[str, Any]) -> str:
    line = describe_human_pairs(manifest)
    return f"\n{line}\n" if line else ""


def _left_out_section(manifest: dict[str, Any]) -> str:
    """Held-out human questions and rows a training format left out, with the setting to change (none: no text)."""
    lines = describe_left_out(manifest)
    return "## Left out\n\n" + "".join(f"- {line}\n" for line in lines) if lines else ""


def _files_section(manifest: dict[str, Any]) -> str:
    groups: dict[str, int] = {}
    for path, n in manifest["formats"].items():
        folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
        stem = name.rsplit("-", 1)[0] if folder in ("flagembedding", "flagembedding/by_length") else "*"
        pattern = f"{folder}/{stem}-*{Path(name).suffix}" if stem != "*" else f"{folder}/*{Path(name).suffix}"
        groups[pattern] = groups.get(pattern, 0) + n
    rows = "\n".join(f"| `{pattern}` | {n:,} |" for pattern, n in sorted(groups.items()))
    by_length = any(path.startswith("flagembedding/by_length/") for path in manifest["formats"])
    return (
        "## Files\n\nOne file per segment (input shard) in each folder; the folder is the unit to train on.\n\n"
        "| files | rows |\n| --- | ---: |\n" + rows + "\n\n"
        "FlagEmbedding: `--train_data flagembedding/` (files named by kind, the `prompt` field is the query "
        "instruction"
        + ("; `flagembedding/by_length/` holds the same rows split by length" if by_length else "")
        + "). sentence-transformers: "
        '`load_dataset(VERSION, "sentence-transformers")` with MultipleNegativesRankingLoss; CoSENT pairs: '
        '`load_dataset(VERSION, "cosent")` with CoSENTLoss (every Parquet folder is a config). Lineage: '
        "`manifest.json`.\n"
    )


def _gate_section(manifest: dict[str, Any]) -> str:
    """The training-effect gate's verdict (``gate`` config), or one line saying none ran."""
    gate = manifest.get("gate")
    if not gate:
        return "## Training-effect gate\n\nNo gate configured: this version was not trained on before publishing.\n"
    return "## Training-effect gate\n\n" + "\n".join(gate_lines(gate, manifest["parent"])) + "\n"


def gate_lines(gate: dict[str, Any], parent: int | None) -> list[str]:
    """The card's lines for a gate record."""
    metric = gate["metric"].replace("recall_at_", "recall@")
    if gate.get("error"):
        return [f"- **not promoted**: the gate failed ({_md(gate['error'])}); the version is published unchanged"]
    against = f"parent v{parent}" if parent else "the untrained student"
    steps = gate["steps"]
    lines = [
        f"- student: {_md(gate['student'])}, seed {gate['seed']}, {steps['version']} steps on this version"
        + (f", {steps['parent']} on the parent" if parent else ""),
        f"- {metric}: this version {gate['score']:.4f}, {against} {gate['parent_score']:.4f}"
        f" (tolerance {gate['tolerance']})",
    ]
    for file, block in gate["eval"].items():
        lines.append(
            f"- {_md(Path(file).name)}: {block['queries']:,} queries ({block['long_queries']:,} long) over "
            f"{block['passages']:,} passages; {metric} this version {block['version'][gate['metric']]:.4f}, "
            f"{against} {block['parent'][gate['metric']]:.4f}, BM25 {block['bm25'][gate['metric']]:.4f}"
        )
    if gate["promoted"]:
        lines.append("- **promoted**: `latest-promoted` names this version")
    else:
        lines.append("- **not promoted**: `latest-promoted` stays where it was")
    return lines


def _segments_section(manifest: dict[str, Any]) -> str:
    lines = [
        "## Segments\n",
        "| segment | input | made in | complete | examples |",
        "| --- | --- | ---: | --- | ---: |",
    ]
    for s in manifest["segments"]:
        missing = ", ".join(f"{_md(k)} {v:,}" for k, v in s.get("incomplete", {}).items())
        state = "yes" if s["complete"] else f"no ({missing})"
        lines.append(f"| `{s['key']}` | {_md(Path(s['input']['path']).name)} | v{s['version']} | {state} |"
                     f" {sum(s['examples'].values()):,} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _examples_section(examples: list[dict[str, Any]], text_chars: int, manifest: dict[str, Any]) -> str:
    seed = manifest["config"]["export"]["seed"]
    intro = f"{len(examples)} examples drawn at random (seed {seed}); texts are cut at {text_chars} characters."
    out = [f"## Examples\n\n{intro}\n"]
    for i, e in enumerate(examples, 1):
        out.append(f"### {i}. {e['kind']} · `{e['pair_id']}`\n")
        out.append(f"- **query**: {_cut(e['query'], text_chars)}")
        for pos, score in zip(e["pos"], e["pos_scores"], strict=False):
            out.append(f"- **positive** ({_score(score)}): {_cut(pos, text_chars)}")
        for j, (neg, score, source) in enumerate(zip(e["neg"], e["neg_scores"], e["neg_sources"], strict=False), 1):
            out.append(f"- **negative {j}** ({source}, {_score(score)}): {_cut(neg, text_chars)}")
        out.append("")
    return "\n".join(out)


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.3g}"


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return _md(flat if len(flat) <= limit else flat[:limit] + "…")


def _md(text: str) -> str:
    """Plain text inside Markdown: special characters escaped (no links, HTML or tables from the data)."""
    return _MD_SPECIAL.sub(r"\\\1", text)
