"""The dataset card: Hugging Face front matter whose configs point at real files, the funnel table, four PNG
histograms, ten seeded random examples with the data's text kept as text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from pairforge.export.card import _files_section, funnel_table, sample_examples
from pairforge.human_counts import HUMAN_ROW
from pairforge.stages import STAGE_NAMES
from tests.pairforge.export.conftest import Published
from tests.pairforge.export.workdir import COPIES


def card_of(version: Path) -> tuple[dict, str]:
    text = (version / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?\n)---\n", text, re.S)
    assert match, "the card starts with YAML front matter"
    return yaml.safe_load(match.group(1)), text[match.end() :]


def test_front_matter(published: Published) -> None:
    meta, _ = card_of(published.version)
    assert meta["language"] == ["zh"] and meta["size_categories"] == ["n<1K"]
    assert {"sentence-similarity", "text-retrieval"} <= set(meta["task_categories"]) and "synthetic" in meta["tags"]
    # the files of each Parquet folder (a version holds a file per segment), as the manifest lists them, never a
    # glob; JSONL formats load by path, not by name
    folders = {c["config_name"]: c["data_files"][0]["path"] for c in meta["configs"]}
    assert list(folders) == ["sentence-transformers", "cosent", "examples", "pairs", "human_pairs"]
    listed = sorted(f["path"] for f in published.manifest["files"] if f["path"].endswith(".parquet"))
    for folder, paths in zip(["sentence-transformers", "cosent", "data/examples", "data/pairs", "data/human_pairs"],
                             folders.values(), strict=True):  # fmt: skip
        assert paths == [p for p in listed if p.rsplit("/", 1)[0] == folder] and paths
        assert (
            sorted(p.relative_to(published.version).as_posix() for p in published.version.glob(f"{folder}/*")) == paths
        )
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == ["sentence-transformers"]


def test_funnel_section_matches_the_manifest(published: Published) -> None:
    _, body = card_of(published.version)
    manifest = published.manifest
    funnel = body.split("## Funnel\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in funnel.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == [s["stage"] for s in manifest["funnel"]]
    # every stage, in order, export last; the human pairs' row (pairforge.human_counts) before it
    assert [s["stage"] for s in manifest["funnel"]] == [*STAGE_NAMES[:-1], HUMAN_ROW, "export"]
    dedup = next(s for s in published.built.funnel if s.stage == "dedup-passages")
    assert dedup.dropped == {"near_duplicate_passage": COPIES}  # the planted near-copies
    assert (
        f"| dedup-passages | passages | {dedup.input} | {dedup.input - COPIES} | near\\_duplicate\\_passage 3 |"
        in rows
    )
    export = rows[-1]  # what the formats left out is in export's row, per format
    assert (
        "flagembedding: no\\_negatives 1" in export
        and "sentence\\_transformers: fewer\\_than\\_4\\_negatives 2" in export
    )


def test_funnel_table_escapes_reasons_and_adds_format_drops() -> None:
    table = funnel_table([
        {"stage": "filter", "unit": "pairs", "in": 1200, "out": 1000, "dropped": {"query_too_short": 200}},
        {"stage": "export", "unit": "examples", "in": 10, "out": 10, "dropped": {},
         "details": {"format_drops": {"uniem": {"no_negatives": 2}}}},
    ])  # fmt: skip
    assert table.splitlines()[2:] == [
        "| filter | pairs | 1,200 | 1,000 | query\\_too\\_short 200 |",
        "| export | examples | 10 | 10 | uniem: no\\_negatives 2 |",
    ]


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
    examples = published.example_files()
    expected = sample_examples(examples, 10, published.config.export.seed)
    assert [h[2] for h in headings] == [e["pair_id"] for e in expected] and len(headings) == 10
    assert [e["pair_id"] for e in sample_examples(examples, 10, 1)] != [h[2] for h in headings]  # the seed matters
    limit = published.config.export.card_text_chars
    for line in re.findall(r"^- \*\*(?:query|positive|negative \d+)\*\*[^:]*: (.*)$", body, re.M):
        assert len(line.replace("\\", "")) <= limit + 1  # cut, with the ellipsis


def test_segments_section_lists_every_segment(published: Published) -> None:
    _, body = card_of(published.version)
    section = body.split("## Segments\n", 1)[1].split("\n## ", 1)[0]
    for segment in published.manifest["segments"]:
        line = next(r for r in section.splitlines() if r.startswith(f"| `{segment['key']}` |"))
        assert f"| {Path(segment['input']['path']).name} | v1 | yes | {sum(segment['examples'].values())} |" in line


@pytest.mark.parametrize(
    ("formats", "mentioned"),
    [
        ({"flagembedding/qp-abc.jsonl": 3}, False),
        ({"flagembedding/qp-abc.jsonl": 3, "flagembedding/by_length/qp_len-0-512-abc.jsonl": 3}, True),
    ],
)
def test_the_card_names_by_length_only_when_it_was_written(formats: dict[str, int], mentioned: bool) -> None:
    section = _files_section({"formats": formats})
    assert ("flagembedding/by_length/" in section) is mentioned
    assert "`--train_data flagembedding/`" in section
