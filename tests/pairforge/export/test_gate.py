"""The training-effect gate: planted cases (a student trained on the right passages against one trained on
shuffled positives) decide both ways; a failed gate is recorded and costs no version; an export with a gate
writes its verdict into the manifest and the card and moves ``latest-promoted`` only when it promotes.

The student is the real static one (sentence-transformers StaticEmbedding, trained by ``pairforge train``'s
code) over a character tokenizer built here, so no model is needed; the eval file is the demo's handmade
SQuAD-style set (pairforge/demo_data), under the long-text protocol."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pairforge.config import GateConfig
from pairforge.config_train import TrainConfig
from pairforge.export.gate import compare, run_gate
from pairforge.store import Store, layout
from pairforge.train.datasets import TrainData, add_example

pytest.importorskip("sentence_transformers")

DEMO_EVAL = Path(__file__).resolve().parents[3] / "pairforge" / "demo_data" / "demo_eval.squad.json"


def questions() -> list[tuple[str, str]]:
    """(question, its passage) for every question of the demo eval file."""
    data = json.loads(DEMO_EVAL.read_text(encoding="utf-8"))["data"]
    return [(qa["question"], p["context"]) for a in data for p in a["paragraphs"] for qa in p["qas"]]


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder with a tokenizer.json giving every character of the eval file its own token."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    chars = sorted({c for q, p in questions() for c in q + p})
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **{c: i + 1 for i, c in enumerate(chars)}}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    folder = tmp_path_factory.mktemp("char-tokenizer")
    tokenizer.save(str(folder / "tokenizer.json"))
    return str(folder)


def gate_config(tokenizer: str, **overrides: object) -> GateConfig:
    train = TrainConfig(static_tokenizer=tokenizer, static_dim=64, batch_size=16, max_steps=80, learning_rate=0.1)
    return GateConfig.model_validate({"eval": [str(DEMO_EVAL)], "short_per_long": 1.0, "train": train, **overrides})


def rows(shuffled: bool, seed: int = 1) -> TrainData:
    """MNRL rows (question, positive, a random other passage): the right passage, or a shuffled one."""
    pairs = questions()
    passages = [p for _, p in pairs]
    if shuffled:
        random.Random(seed).shuffle(passages)
    draw = random.Random(seed + 1)
    data = TrainData()
    for (question, _), positive in zip(pairs, passages, strict=True):
        add_example(data, "qp", question, [positive], [draw.choice(passages)], 1)
    return data


def test_the_gate_refuses_shuffled_positives_against_a_good_parent(char_tokenizer: str, tmp_path: Path) -> None:
    gate = gate_config(char_tokenizer)
    verdict = compare(gate, rows(shuffled=True), rows(shuffled=False), tmp_path / "gate")
    assert verdict["steps"] == {"version": 80, "parent": 80}  # the same budget for both
    assert verdict["parent_score"] > verdict["score"] + gate.tolerance
    assert verdict["promoted"] is False
    block = verdict["eval"][str(DEMO_EVAL)]
    assert block["long_queries"] == 38 and block["passages"] == 44
    assert block["version"]["recall_at_5"] == verdict["score"]  # one eval file: its score is the score


def test_the_gate_promotes_good_pairs_over_a_shuffled_parent(char_tokenizer: str, tmp_path: Path) -> None:
    verdict = compare(gate_config(char_tokenizer), rows(shuffled=False), rows(shuffled=True), tmp_path / "gate")
    assert verdict["score"] > verdict["parent_score"]
    assert verdict["promoted"] is True


def test_a_first_version_is_compared_with_the_untrained_student(char_tokenizer: str, tmp_path: Path) -> None:
    verdict = compare(gate_config(char_tokenizer), rows(shuffled=False), None, tmp_path / "gate")
    assert verdict["steps"] == {"version": 80, "parent": 0}
    assert verdict["promoted"] is True and verdict["score"] > verdict["parent_score"]


def test_tolerance_decides_a_small_loss(char_tokenizer: str, tmp_path: Path) -> None:
    """Shuffled against good with a tolerance of 1 (any loss allowed): promoted."""
    verdict = compare(gate_config(char_tokenizer, tolerance=1.0), rows(True), rows(False), tmp_path / "gate")
    assert verdict["score"] < verdict["parent_score"] and verdict["promoted"] is True


def test_a_failed_gate_is_recorded_not_raised(char_tokenizer: str, tmp_path: Path) -> None:
    """No question qualifies (every answer lies before char 100000): the record says why, nothing is promoted."""
    version = tmp_path / "v1"
    (version / layout.EXAMPLES).mkdir(parents=True)  # a version folder without example files
    record = run_gate(gate_config(char_tokenizer, long_chars=100_000), str(version), {}, None, tmp_path / "gate")
    assert record["promoted"] is False
    assert record["error"].startswith("FileNotFoundError") or record["error"].startswith("ValueError")
    assert record["against"] == "untrained"


def test_publish_moves_latest_promoted_only_for_a_promoted_version(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))

    def writer(promoted: bool):  # type: ignore[no-untyped-def]
        def write(folder: str, fs: object) -> bool:
            Path(folder, "manifest.json").write_text("{}", encoding="utf-8")
            return promoted

        return write

    assert store.publish("d", writer(True), parent=None) == 1
    assert store.publish("d", writer(False), parent=1) == 2
    assert store.resolve("d", "latest") == 2
    assert store.resolve("d", "latest-promoted") == 1  # v2 was refused: training jobs that follow it keep v1
    assert store.publish("d", writer(True), parent=2) == 3
    assert store.resolve("d", "latest-promoted") == 3


@pytest.mark.parametrize("failing", [False, True], ids=["gate", "failed-gate"])
def test_export_records_the_verdict_in_manifest_and_card(
    failing: bool, char_tokenizer: str, shared_data: Path, tmp_path: Path
) -> None:
    """A real export of the CMRC workdir with a gate: the manifest and the card carry the verdict, and
    ``latest-promoted`` names the version exactly when it was promoted. A gate that fails (here: no eval question
    qualifies) still publishes the version, unpromoted."""
    from tests.pairforge.export.conftest import publish
    from tests.pairforge.export.workdir import build_workdir, make_config, write_inputs

    gate = gate_config(char_tokenizer, **({"long_chars": 100_000} if failing else {}))
    settings = gate.model_dump(mode="json")
    settings["train"]["max_steps"] = 20
    inputs = write_inputs(tmp_path / "inputs", shared_data)
    config = make_config(tmp_path, str(tmp_path / "store"), inputs, gate=settings)
    built = build_workdir(config, shared_data)
    stats, version = publish(built)
    manifest = json.loads((version / layout.MANIFEST).read_text(encoding="utf-8"))
    record, card = manifest["gate"], (version / "README.md").read_text(encoding="utf-8")
    store = Store(config.store)
    assert stats.details["promoted"] is record["promoted"]
    assert "## Training-effect gate" in card
    if failing:
        assert record["promoted"] is False and "no question qualifies" in record["error"] and "trace" not in record
        log = (built.workdir.logs / "gate.log").read_text(encoding="utf-8")
        assert "Traceback" in log and "no question qualifies" in log  # the traceback in the log, not the manifest
        assert "the gate failed" in card
        assert store.resolve(config.name, "latest") == 1  # published all the same
    else:
        assert record["error"] is None and record["against"] == "untrained"
        assert record["steps"] == {"version": 20, "parent": 0}
        trained = record["rows"]["version"]  # the version's examples (those with a negative) and scored pairs
        assert {"qp", "sp", "human", "scored"} <= set(trained)
        assert all(0 < trained[kind] <= manifest["examples"][kind] for kind in ("qp", "sp", "human"))
        assert f"this version {record['score']:.4f}" in card
    if record["promoted"]:
        assert store.resolve(config.name, "latest-promoted") == 1
        assert "**promoted**" in card
    else:
        with pytest.raises(Exception, match="no latest-promoted"):
            store.resolve(config.name, "latest-promoted")
        assert "**not promoted**" in card


def test_the_gate_scores_on_the_held_out_split_alone(char_tokenizer: str, tmp_path: Path) -> None:
    """With no eval file, the version's held-out split (here: the demo eval's questions as one) decides."""
    from pairforge.evaluate.longtext import select_longtext

    gate = gate_config(char_tokenizer, eval=[])
    heldout = select_longtext(DEMO_EVAL, long_chars=0, short_per_long=0)
    verdict = compare(gate, rows(shuffled=False), rows(shuffled=True), tmp_path / "gate", heldout=heldout)
    assert set(verdict["eval"]) == {"heldout"} and verdict["eval"]["heldout"]["queries"] == len(heldout.queries)
    assert verdict["score"] > verdict["parent_score"] and verdict["promoted"] is True
    with pytest.raises(ValueError, match="nothing to evaluate on"):
        compare(gate, rows(shuffled=False), None, tmp_path / "gate")
