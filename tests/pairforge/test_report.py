"""`pairforge report`: the card as one self-contained HTML file: the funnel table, the four plots inline, the
data's text escaped; written outside the (immutable) version."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.report import render_report
from tests.pairforge.export.conftest import publish
from tests.pairforge.export.workdir import COPIES, HOSTILE, build_workdir, make_config, write_inputs

runner = CliRunner()


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A version whose card shows every example, the one with HTML and Markdown in its query among them."""
    tmp = tmp_path_factory.mktemp("report")
    inputs = write_inputs(tmp / "inputs", shared_data, n_pool=60)
    config = make_config(tmp, str(tmp / "store"), inputs, export={"card_examples": 200})
    _, version = publish(build_workdir(config, shared_data))
    return version


def test_report_cli_writes_one_self_contained_file(version: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(version), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    page = out.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4 and all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch from elsewhere
    funnel = page.split("<h2>Funnel</h2>", 1)[1].split("<h2>", 1)[0]
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert funnel.count("<tr>") == len(manifest["funnel"]) + 1  # header + one row per stage
    assert "<td>dedup-passages</td>" in funnel and f"<td>near_duplicate_passage {COPIES}</td>" in funnel


def test_report_escapes_the_data(version: Path) -> None:
    page = render_report(str(version))
    assert "<script>" not in page and 'href="http://x"' not in page and "<strong>bold</strong>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; | **bold** [link](http://x)" in page
    assert HOSTILE in (version / "README.md").read_text(encoding="utf-8").replace("\\", "")


def test_report_default_path_is_outside_the_version(
    version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in version.rglob("*"))
    result = runner.invoke(app, ["report", str(version)])
    assert result.exit_code == 0 and (tmp_path / "report-cmrc-test-v1.html").is_file()
    assert sorted(p.name for p in version.rglob("*")) == before


def test_report_of_a_missing_version_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "error" in result.output
