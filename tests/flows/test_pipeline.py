"""The pipeline flow end to end (LLM stage against a local OpenAI-compatible test server that answers
well; the real vLLM engine has its own tests): versions, caching, resume, increments, plan, deployment."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from flows.pipeline import run_pipeline
from pairforge.cli import app
from pairforge.testing.fake_llm import FakeLLM
from tests.flows.conftest import split_wudao, write_pipeline_config

KEY_ENV = "PAIRFORGE_TEST_FLOW_KEY"
SENTINEL = "sk-flow-sentinel-3f9c1d"


@pytest.fixture(scope="module")
def llm(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    monkeypatch_module.setenv(KEY_ENV, SENTINEL)
    with FakeLLM(api_key=SENTINEL) as server:
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def write_config(tmp_path: Path, corpus: Path, base_url: str, **flow: object) -> Path:
    openai = {"concurrency": 4, "timeout_s": 5}
    return write_pipeline_config(tmp_path, corpus, base_url, KEY_ENV, name="flowtest", openai=openai, flow=flow)


def stage_mtimes(workdir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in workdir.glob("*_summary.json")}


def test_pipeline_publishes_resumes_and_increments(shared_data: Path, tmp_path: Path, llm: FakeLLM) -> None:
    corpus = tmp_path / "corpus"
    first, second = split_wudao(shared_data, tmp_path / "parts")
    corpus.mkdir()
    shutil.copy(first, corpus)
    config = write_config(tmp_path, corpus, llm.base_url)
    (tmp_path / "store").write_text("not a folder")  # export fails: the run stops after mining

    with pytest.raises(Exception):  # noqa: B017 - whatever the filesystem raises
        run_pipeline(config)
    sent = llm.received
    assert sent > 0 and (tmp_path / "work" / "mine_summary.json").is_file()
    before = stage_mtimes(tmp_path / "work")

    (tmp_path / "store").unlink()
    result = run_pipeline(config)  # resumes: no stage before export runs again, nothing is re-generated
    assert llm.received == sent
    assert stage_mtimes(tmp_path / "work") == before
    assert result["version"] == 1 and Path(result["path"]).name == "v1"
    assert result["funnel"]["generate"]["out"] > 0 and result["funnel"]["mine"]["in"] > 0
    assert Path(result["report"]).is_file()
    manifest = json.loads((Path(result["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert [w["path"] for w in manifest["watermark"]] == [str(corpus / first.name)]
    assert SENTINEL not in json.dumps(manifest)

    again = run_pipeline(config)  # nothing new: no stage work, no new version
    assert again["version"] == 1 and again["new_shards"] == 0 and llm.received == sent

    shutil.copy(second, corpus)  # the nightly case: a new shard arrives
    third = run_pipeline(config)
    assert third["version"] == 2
    ingest = json.loads((tmp_path / "work" / "ingest_summary.json").read_text(encoding="utf-8"))
    assert [Path(i["path"]).name for i in ingest["inputs"]] == [second.name] and ingest["skipped_inputs"] == 1
    manifest = json.loads((Path(third["path"]) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["parent"] == 1 and len(manifest["watermark"]) == 2


def test_dask_local_cluster_gives_the_thread_runners_output(shared_data: Path, tmp_path: Path) -> None:
    from flows.runtime import result_settings
    from flows.stages import dedup_passages_flow, ingest_flow
    from pairforge.config import load_config

    corpus = tmp_path / "corpus"
    split_wudao(shared_data, corpus, parts=4)
    outputs = []
    for runner in ("thread", "dask"):
        folder = tmp_path / runner
        folder.mkdir()
        config = load_config(write_config(folder, corpus, "http://127.0.0.1:9/v1", task_runner=runner, dask_workers=2))
        from flows.runtime import create_task_runner

        data = config.model_dump(mode="json")
        with result_settings(Path(config.workdir)):
            step = ingest_flow.with_options(task_runner=create_task_runner(config.flow))(data, [])
            dedup_passages_flow(data, step["key"])
        passages = pq.read_table(sorted((Path(config.workdir) / "passages").glob("*.parquet")))
        outputs.append(passages.to_pylist())
    assert outputs[0] == outputs[1] and len(outputs[0]) > 10


def test_dry_run_prints_the_plan_without_running(shared_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    split_wudao(shared_data, corpus, parts=2)
    config = write_config(tmp_path, corpus, "http://127.0.0.1:9/v1")
    result = CliRunner().invoke(app, ["run", str(config), "--dry-run", "--limit", "5", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout.strip().splitlines()[-1])
    assert plan["shards"] == 2 and plan["new_shards"] == 2 and plan["llm_requests"] == 10
    assert plan["stages"][0] == "ingest" and plan["stages"][-1] == "export"
    assert not (tmp_path / "work").exists()


def test_deploy_builds_a_cron_deployment_of_the_pipeline(tmp_path: Path) -> None:
    from flows.deploy import build_deployment

    config = tmp_path / "run.yaml"
    config.write_text("corpora: [{format: jsonl, path: x}]\n")
    deployment = build_deployment(config, "0 2 * * *")
    assert deployment.name == "nightly" and deployment.parameters == {"config_path": str(config.resolve())}
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    project = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())
    names = {d["name"]: d for d in project["deployments"]}
    assert set(names) == {"nightly", "adhoc"} and names["nightly"]["schedules"][0]["cron"] == "0 2 * * *"
    assert all(d["entrypoint"] == "flows/pipeline.py:pipeline" for d in names.values())


def test_api_key_comes_from_a_prefect_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from flows.stages import load_api_key
    from pairforge.config import load_config

    Secret(value="sk-secret-sentinel-77").save("pairforge-test-key", overwrite=True)
    config = write_config(tmp_path, tmp_path, "http://127.0.0.1:9/v1")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["generate"]["openai"]["api_key_secret"] = "pairforge-test-key"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.delenv(KEY_ENV, raising=False)
    load_api_key(load_config(config))
    assert os.environ[KEY_ENV] == "sk-secret-sentinel-77"
    monkeypatch.setenv(KEY_ENV, "from-the-environment")  # the environment wins over the secret
    load_api_key(load_config(config))
    assert os.environ[KEY_ENV] == "from-the-environment"
