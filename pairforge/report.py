"""``pairforge report VERSION_PATH``: a version's dataset card as one self-contained HTML file (the plots inline
as base64), for reading without a Markdown viewer. Versions are immutable, so the file goes elsewhere."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import fsspec
from markdown_it import MarkdownIt

_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.S)
_IMAGE_SRC = re.compile(r'src="(plots/[A-Za-z0-9_.-]+\.png)"')
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; } code { background: #f6f6f6; padding: 0 3px; } img { max-width: 100%; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
"""


def render_report(version_path: str) -> str:
    """The HTML page of the version at ``version_path`` (a folder or an fsspec URL)."""
    fs, root = fsspec.core.url_to_fs(version_path)
    root = root.rstrip("/")
    card = fs.cat(f"{root}/README.md").decode("utf-8")
    match = _FRONT_MATTER.match(card)
    meta, body = (match.group(1), card[match.end() :]) if match else ("", card)
    # Raw HTML off: texts from the corpus or the LLM are escaped, never markup.
    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(body)

    def inline(found: re.Match[str]) -> str:
        data = base64.b64encode(fs.cat(f"{root}/{found.group(1)}")).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    rendered = _IMAGE_SRC.sub(inline, rendered)
    title = html.escape(next(iter(re.findall(r"^# (.+)$", body, re.M)), "pairforge dataset"))
    details = f"<details><summary>card metadata</summary><pre>{html.escape(meta)}</pre></details>" if meta else ""
    return (
        f'<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{rendered}{details}\n</body></html>\n"
    )


def write_report(version_path: str, out: Path | None = None) -> Path:
    """Write the report to ``out`` (default ``./report-<dataset>-v<N>.html``); returns the path."""
    if out is None:
        fs, root = fsspec.core.url_to_fs(version_path)
        manifest = json.loads(fs.cat(f"{root.rstrip('/')}/manifest.json"))
        out = Path(f"report-{manifest['dataset']}-v{manifest['version']}.html")
    page = render_report(version_path)
    out.write_text(page, encoding="utf-8")
    return out
