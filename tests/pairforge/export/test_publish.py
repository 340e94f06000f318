"""Publishing: the manifest's hashes match the files, its lineage matches the run, nothing secret is stored,
a failed export leaves nothing visible, memory:// works, parents and watermarks chain across versions."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import fsspec
import pytest
from filters.dedup import _prior_indexes

from pairforge.export import publish, read_watermark, run_export
from pairforge.negatives.reselect import run_reselect
from pairforge.store import Store
from prompts import load_prompt
from tests.pairforge.export.conftest import Published
from tests.pairforge.export.workdir import MODEL, build_workdir, make_config


def manifest_of(version: str | Path) -> dict:
    fs, root = fsspec.core.url_to_fs(str(version))
    return json.loads(fs.cat(f"{root}/manifest.json"))


def rehash(version: str | Path) -> dict[str, tuple[int, str]]:
    """Every file of a version but the manifest: (bytes, sha256), computed from what is stored."""
    fs, root = fsspec.core.url_to_fs(str(version))
    root = root.rstrip("/")
    found = {}
    for path in fs.find(root):
        relative = path[len(root) :].lstrip("/")
        if relative != "manifest.json":
            data = fs.cat(path)
            found[relative] = (len(data), hashlib.sha256(data).hexdigest())
    return found


def test_manifest_hashes_every_file(published: Published) -> None:
    manifest = manifest_of(published.version)
    recorded = {f["path"]: (f["bytes"], f["sha256"]) for f in manifest["files"]}
    assert recorded == rehash(published.version)
    assert {"README.md", "data/examples.parquet", "index/passages/meta.json", "plots/query_length.png"} <= set(
        recorded
    )


def test_manifest_lineage(published: Published) -> None:
    manifest = manifest_of(published.version)
    config, workdir = published.config, published.workdir
    ingest = json.loads((workdir / "ingest_summary.json").read_text(encoding="utf-8"))
    assert (manifest["dataset"], manifest["version"], manifest["parent"]) == ("cmrc-test", 1, None)
    assert manifest["inputs"] == ingest["inputs"]
    assert manifest["watermark"] == [{k: i[k] for k in ("path", "sha256", "bytes")} for i in ingest["inputs"][:2]]
    assert manifest["config_fingerprint"] == config.fingerprint()
    assert manifest["config"] == config.model_dump(mode="json")
    assert manifest["generation"]["prompts"] == [
        {"id": "qp/v1.zh", "sha256": load_prompt("qp").sha256},
        {"id": "sp/v1.zh", "sha256": load_prompt("sp").sha256},
    ]
    assert (manifest["generation"]["model"], manifest["generation"]["backend"]) == (MODEL, "vllm")
    assert manifest["generation"]["sampling"] == [{"n": 1, "temperature": 0.7}]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    if head.returncode == 0:
        assert manifest["code_version"]["git_sha"] == head.stdout.strip()
    assert manifest["code_version"]["package"]
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert manifest["examples"] == published.summary.examples == {"human": 10, "qp": 30, "sp": 10}
    stages = [row["stage"] for row in manifest["funnel"]]
    assert stages == [
        "read",
        "window",
        "dedup passages",
        "generate",
        "filter",
        "dedup pairs",
        "mine",
        "export flagembedding",
        "export sentence-transformers",
        "export uniem",
        "export cosent",
    ]
    funnel = {row["stage"]: row for row in manifest["funnel"]}
    assert funnel["filter"] == {
        "stage": "filter",
        "unit": "pairs",
        "in": 44,
        "out": 41,
        "dropped": {"copied_from_passage": 3},
        "detail": {},
    }
    assert funnel["export sentence-transformers"]["out"] == published.summary_rows(
        "sentence-transformers/train.parquet"
    )


def test_no_secrets_in_the_manifest(published: Published, tmp_path: Path) -> None:
    openai = published.config.generate.openai.model_copy(
        update={"api_key_env": "sk-live-0123456789abcdef", "base_url": "https://alice:s3cret@llm.example/v1"}
    )
    generate = published.config.generate.model_copy(update={"openai": openai})
    config = published.config.model_copy(update={"store": str(tmp_path / "store"), "generate": generate})
    summary = run_export(config)
    text = (Path(summary.path) / "manifest.json").read_text(encoding="utf-8")
    assert "sk-live-0123456789abcdef" not in text and "s3cret" not in text and "alice" not in text
    assert manifest_of(summary.path)["config"]["generate"]["openai"]["base_url"] == "https://***@llm.example/v1"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_failed_export_leaves_nothing_visible(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    url = str(tmp_path / "store") if kind == "local" else f"memory://fail-{uuid.uuid4().hex[:8]}"
    config = published.config.model_copy(update={"store": url})
    written: list[str] = []

    def crash(*_args: object, **_kwargs: object) -> str:
        written.extend(store.fs.find(store.root))  # data and formats are already in the staging folder
        raise RuntimeError("killed while writing the card")

    store = Store(url)
    monkeypatch.setattr(publish, "render_card", crash)
    with pytest.raises(RuntimeError, match="killed"):
        run_export(config)
    assert any("/.staging-" in p and p.endswith("examples.parquet") for p in written)
    assert store.versions("cmrc-test") == []
    assert [p for p in store.fs.find(store.root) if "cmrc-test" in p] == []  # no staging dir, no latest, no lock


def test_memory_store_end_to_end(published: Published) -> None:
    url = f"memory://store-{uuid.uuid4().hex[:8]}"
    summary = run_export(published.config.model_copy(update={"store": url}))
    version = summary.path
    assert version == f"memory:///{url.split('://')[1]}/cmrc-test/v1"
    recorded = {f["path"]: (f["bytes"], f["sha256"]) for f in manifest_of(version)["files"]}
    assert recorded == rehash(version) and "index/passages/signatures.u32" in recorded
    assert read_watermark(url, "cmrc-test") == {w["sha256"] for w in manifest_of(version)["watermark"]}


def test_parent_and_watermark_chain_across_versions(published: Published, shared_data: Path, tmp_path: Path) -> None:
    store_url = str(tmp_path / "store")
    assert read_watermark(store_url, "cmrc-test") == set()
    first = run_export(published.config.model_copy(update={"store": store_url}))
    covered = read_watermark(store_url, "cmrc-test")
    assert len(covered) == 2
    before = rehash(first.path)

    # the next (incremental) run: other passages, one new input shard read whole, one already covered
    config = make_config(tmp_path / "second", store_url)
    workdir = build_workdir(config, shared_data, start=120, n_pool=60)
    ingest = json.loads((workdir / "ingest_summary.json").read_text(encoding="utf-8"))
    ingest["inputs"][2]["complete"] = True  # STS-B, cut short the first time
    (workdir / "ingest_summary.json").write_text(json.dumps(ingest), encoding="utf-8")
    second = run_export(config)
    assert (first.version, second.version, second.parent) == (1, 2, 1)
    manifest = manifest_of(second.path)
    assert [w["sha256"] for w in manifest["watermark"]] == [i["sha256"] for i in ingest["inputs"]]  # no repeats
    assert read_watermark(store_url, "cmrc-test") == covered | {ingest["inputs"][2]["sha256"]}
    assert rehash(first.path) == before  # v1 is never rewritten
    assert _prior_indexes(config) == [Path(first.path) / "index/passages", Path(second.path) / "index/passages"]

    extra = [{"path": "new.jsonl", "sha256": "f" * 64, "bytes": 3}]  # an explicit parent and watermark
    third = run_export(config, parent=1, watermark=extra)
    assert third.parent == 1 and [w["sha256"] for w in manifest_of(third.path)["watermark"]][-1] == "f" * 64
    assert len(manifest_of(third.path)["watermark"]) == 3  # v1's two plus the explicit one


def test_a_concurrent_publisher_makes_the_export_write_again(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = published.config.model_copy(update={"store": str(tmp_path / "store")})
    original = Store.publish
    calls: list[int | None] = []

    def racing(self: Store, dataset: str, write, lock_timeout_s: float = 600, expect: int | None = None) -> int:
        calls.append(expect)
        if len(calls) == 1:  # someone else publishes v1 while we write
            original(self, dataset, lambda folder, fs: fs.pipe(f"{folder}/manifest.json", b'{"watermark": []}'))
        return original(self, dataset, write, lock_timeout_s, expect)

    monkeypatch.setattr(Store, "publish", racing)
    summary = run_export(config)
    assert calls == [1, 2] and (summary.version, summary.parent) == (2, 1)
    manifest = manifest_of(summary.path)
    assert (manifest["version"], manifest["parent"]) == (2, 1)
    assert Store(config.store).versions("cmrc-test") == [1, 2]


def test_reselect_reads_a_published_version(published: Published, tmp_path: Path) -> None:
    workdir = tmp_path / "reselect"
    workdir.mkdir()
    config = published.config.model_copy(update={"workdir": str(workdir)})
    summary = run_reselect(config, published.version)
    assert summary.queries == sum(published.summary.examples.values())
    assert (workdir / "examples" / "examples.parquet").is_file()


def test_funnel_counts_llm_failures_by_kind() -> None:
    from pairforge.export.funnel import build_funnel

    from pairforge.export.formats import FormatCounts

    summaries = {
        "generate": {
            "requests": 10,
            "pairs": 12,
            "backend_errors": {"http_500": 2, "timeout": 1},
            "failures": {"invalid_json": 1, "truncated": 2},
            "dropped_items": {"schema": 3},
            "passages": 5,
        }
    }
    (row,) = build_funnel(summaries, 0, FormatCounts())
    assert row["stage"] == "generate" and (row["in"], row["out"]) == (10, 12)
    assert row["dropped"] == {
        "backend_http_500": 2,
        "backend_timeout": 1,
        "invalid_json": 1,
        "truncated": 2,
        "item_schema": 3,
    }
