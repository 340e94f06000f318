"""The documentation stays true to the code: the generated config reference is current, its sample validates,
the README stays short, and every relative link in README.md and docs/*.md points at a file (and heading) that
exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pairforge.config import MineConfig, RunConfig, VllmConfig
from pairforge.config_train import TrainConfig
from pairforge.docs_config import COMMAND, render_config_reference
from tests.conftest import REPO

README_MAX_LINES = 250
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) outside code; a target may carry a #heading; titles ("...") are not used in these docs.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def test_config_reference_is_current() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == render_config_reference(), f"docs/config.md is stale: run `{COMMAND}`"


def test_config_reference_has_every_key() -> None:
    """Every field of every section (nested ones included) is a row under its section's heading."""
    reference = render_config_reference()
    sections = dict(re.findall(r"^## `([\w.]+)`\n(.*?)(?=^## |\Z)", reference, flags=re.S | re.M))
    missing = []
    for path, model in [("generate.vllm", VllmConfig), ("mine", MineConfig), ("gate.train", TrainConfig)]:
        missing += [f"{path}.{name}" for name in model.model_fields if f"| `{name}` |" not in sections[path]]
    for name in RunConfig.model_fields:
        if name != "corpora" and f"| `{name}` |" not in reference:
            missing.append(name)
    assert not missing, f"not in the generated reference: {missing}"


def test_config_reference_sample_validates() -> None:
    reference = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    (sample,) = re.findall(r"^```yaml\n(.*?)^```$", reference, flags=re.S | re.M)
    config = RunConfig.model_validate(yaml.safe_load(sample))
    assert config.generate.prompt_versions == {"qp": "v2", "sp": "v2"} and config.judge.enabled


def test_readme_config_validates() -> None:
    """The config a newcomer copies from "Pointing it at your own corpus" is one RunConfig accepts."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (sample,) = re.findall(r"^```yaml\n(.*?)^```$", readme, flags=re.S | re.M)
    config = RunConfig.model_validate(yaml.safe_load(sample))
    assert [c.format for c in config.corpora] == ["wudao", "jsonl"] and config.generate.backend == "openai"


def test_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail to docs/"


def slugs(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", markdown), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def links(markdown: str) -> list[str]:
    return LINK.findall(CODE_SPAN.sub("", FENCE.sub("", markdown)))


def test_slugs_and_links_are_read_as_github_does() -> None:
    text = "# A `b`, c's d\n```\n# not a heading [x](nowhere.md)\n```\nsee [e](f.md#g) and `[h](i.md)`\n"
    assert slugs(text) == {"a-b-cs-d"}
    assert links(text) == ["f.md#g"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target} (no {path})")
        elif anchor and file.suffix == ".md" and anchor not in slugs(file.read_text(encoding="utf-8")):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not broken, f"{doc.relative_to(REPO)}: broken links: {', '.join(broken)}"
