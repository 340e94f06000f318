"""The dataset card: Hugging Face front matter whose configs point at real files, the funnel table, four PNG
histograms, ten seeded random examples with the data's text kept as text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import yaml

from pairforge.export.card import sample_examples
from tests.pairforge.export.conftest import Published


def card_of(version: Path) -> tuple[dict, str]:
    text = (version / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?\n)---\n", text, re.S)
    assert match, "the card starts with YAML front matter"
    return yaml.safe_load(match.group(1)), text[match.end() :]


def test_front_matter(published: Published) -> None:
    meta, _ = card_of(published.version)
    assert meta["language"] == ["zh"] and meta["size_categories"] == ["n<1K"]
    assert {"sentence-similarity", "text-retrieval"} <= set(meta["task_categories"]) and "synthetic" in meta["tags"]
    paths = [f["path"] for c in meta["configs"] for f in c["data_files"]]
    assert "sentence-transformers/train.parquet" in paths and "flagembedding/qp.jsonl" in paths
    assert all((published.version / p).is_file() for p in paths)
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["sentence-transformers"]


def test_funnel_section_matches_the_manifest(published: Published) -> None:
    _, body = card_of(published.version)
    manifest = json.loads((published.version / "manifest.json").read_text(encoding="utf-8"))
    funnel = body.split("## Funnel\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in funnel.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == [s["stage"] for s in manifest["funnel"]]
    assert "| dedup passages | passages | 124 | 120 | near\\_duplicate 3, seen\\_in\\_earlier\\_version 1 |" in rows


def test_four_png_histograms(published: Published) -> None:
    _, body = card_of(published.version)
    images = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", body)
    assert len(images) == 4 and sorted(images) == sorted(
        p.relative_to(published.version).as_posix() for p in (published.version / "plots").glob("*.png")
    )
    from matplotlib.image import imread

    for image in images:
        pixels = imread(published.version / image)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 2  # drawn, not blank


def test_ten_seeded_random_examples(published: Published) -> None:
    _, body = card_of(published.version)
    headings = re.findall(r"^### (\d+)\. (\w+) · `([^`]+)`$", body, re.M)
    examples = published.workdir / "examples" / "examples.parquet"
    expected = sample_examples(examples, 10, published.config.export.seed)
    assert [h[2] for h in headings] == [e["pair_id"] for e in expected] and len(headings) == 10
    assert [e["pair_id"] for e in sample_examples(examples, 10, 1)] != [h[2] for h in headings]  # the seed matters
    limit = published.config.export.card_text_chars
    for line in re.findall(r"^- \*\*(?:query|positive|negative \d+)\*\*[^:]*: (.*)$", body, re.M):
        assert len(line.replace("\\", "")) <= limit + 1  # cut, with the ellipsis
