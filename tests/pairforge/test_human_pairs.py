"""Human pairs (issue 24): every text field of a record is normalised like the passages (an answer with its converted
paragraph), and a run over a SQuAD-style file says what became of its questions: read, held out for evaluation (by
role), matched to a pool passage, kept as examples; the funnel, the manifest, the card and the run's closing lines
say so, and a training format that wrote fewer rows than there are examples says so too, with the setting to
change.

The stages run for real on CMRC 2018 paragraphs (no LLM: the human pairs are the examples), export publishes to a
store under ``tmp_path``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import opencc
import pyarrow.parquet as pq
import pytest

from pairforge.export import ExportInputs, run_export
from pairforge.export.notes import describe_human_pairs, describe_left_out
from pairforge.export.publish import why_empty
from pairforge.human_counts import HUMAN_ROW, count_human_pairs
from pairforge.negatives.policy import MIN_ANSWER_CHARS
from pairforge.stats import StageStats
from pairforge.store import layout
from pairforge.text import normalize_text
from tests.pairforge.export.workdir import Built, build_workdir, make_config, paragraphs

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _squad(path: Path, paras: list[dict]) -> Path:
    path.write_text(json.dumps({"data": [{"title": "", "paragraphs": paras}]}, ensure_ascii=False), "utf-8")
    return path


def _traditional(paras: list[dict]) -> list[dict]:
    """The paragraphs, questions and answers in traditional characters (OpenCC s2t); answers' digits full-width, so
    NFKC has something to fold too."""
    s2t = opencc.OpenCC("s2t")
    out = []
    for p in paras:
        qas = [{"id": qa["id"], "question": s2t.convert(qa["question"]),
                "answers": [{"text": s2t.convert(a["text"]).translate(FULL_WIDTH), "answer_start": a["answer_start"]}
                            for a in qa["answers"]]} for qa in p["qas"]]  # fmt: skip
        out.append({"id": p["id"], "context": s2t.convert(p["context"]), "qas": qas})
    return out


@pytest.fixture(scope="module")
def traditional(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Built, list[dict]]:
    """40 CMRC paragraphs in traditional characters, every question a training pair, ``normalize.t2s: true``."""
    tmp = tmp_path_factory.mktemp("traditional")
    raw = _traditional(paragraphs(shared_data, 0, 40))
    corpus = _squad(tmp / "cmrc-hant.json", raw)
    config = make_config(tmp, str(tmp / "store"), [{"format": "squad", "path": str(corpus), "role": "train"}],
                         normalize={"t2s": True}, mine={"num_negatives": 3})  # fmt: skip
    return build_workdir(config, shared_data, with_llm=False, plant=False), raw


def _human_pairs(built: Built) -> list[dict]:
    return [r for f in sorted(built.workdir.human_pairs.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_answers_are_normalised_with_their_passages(traditional: tuple[Built, list[dict]]) -> None:
    built, raw = traditional
    t2s = opencc.OpenCC("t2s")
    pairs = _human_pairs(built)
    assert len(pairs) == sum(len(p["qas"]) for p in raw) > 100
    kept_traditional, outside = [], 0
    for pair in pairs:
        for answer in pair["answers"]:
            # a character OpenCC would convert is traditional: none may stay unless the converted passage holds it
            kept_traditional += [c for c in answer if t2s.convert(c) != c and c not in pair["text2"]]
            assert not set(answer) & set("０１２３４５６７８９"), answer  # NFKC folded, like the passage's digits
            outside += answer not in pair["text2"]
    assert kept_traditional == []
    # CMRC's own answers are not all verbatim spans of their paragraph; converting must not lose any that are
    verbatim = sum(a["text"].translate(FULL_WIDTH) in p["context"].translate(FULL_WIDTH)
                   for p in raw for qa in p["qas"] for a in qa["answers"])  # fmt: skip
    assert outside == sum(len(p["answers"]) for p in pairs) - verbatim


def test_no_negative_contains_its_converted_answer(traditional: tuple[Built, list[dict]]) -> None:
    built, raw = traditional
    expected = {  # the answers as they read after normalisation, computed here from the raw file
        qa["id"]: [normalize_text(a["text"], t2s=True) for a in qa["answers"]] for p in raw for qa in p["qas"]
    }
    examples = [r for f in sorted(built.workdir.examples.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    human = [e for e in examples if e["kind"] == "human"]
    assert len(human) == len(expected) and sum(len(e["neg"]) for e in human) > 0
    leaks = [(e["pair_id"], a) for e in human for a in expected[e["pair_id"].split(":", 1)[1]]
             if len(a) >= MIN_ANSWER_CHARS and any(a in neg for neg in e["neg"])]  # fmt: skip
    assert leaks == []


@dataclass
class Published:
    built: Built
    version: Path
    train_questions: list[str]
    eval_questions: int

    @property
    def manifest(self) -> dict:
        return json.loads((self.version / layout.MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Published:
    """A training SQuAD file whose paragraphs include some too short to be a passage (no window), a repeated one
    (dedup drops it from the pool) and long ones, beside an eval file; ``mine.num_negatives`` above what the small
    pool can give, so sentence-transformers writes no row."""
    tmp = tmp_path_factory.mktemp("humans")
    paras = paragraphs(shared_data, 0, 18)
    short = [{"id": f"SHORT_{i}", "context": p["context"][:40], "qas": p["qas"][:1]} for i, p in enumerate(paras[:3])]
    repeated = [{**paras[3], "id": "AGAIN", "qas": [{**qa, "id": f"AGAIN_{qa['id']}"} for qa in paras[3]["qas"]]}]
    train = [*paras[:12], *short, *repeated]
    train_file = _squad(tmp / "cmrc-train.json", train)
    eval_file = _squad(tmp / "cmrc-eval.json", paras[12:])
    inputs = [
        {"format": "squad", "path": str(train_file), "role": "train"},
        {"format": "squad", "path": str(eval_file)},
    ]  # fmt: skip  (role defaults to eval)
    config = make_config(tmp, str(tmp / "store"), inputs, mine={"range_max": 30, "num_negatives": 25})
    built = build_workdir(config, shared_data, with_llm=False, plant=False)
    stats = run_export(config, ExportInputs(built.plan, built.funnel), built.workdir)
    questions = [f"cmrc-train.json:{qa['id']}" for p in train for qa in p["qas"]]
    return Published(built, Path(stats.details["path"]), questions, sum(len(p["qas"]) for p in paras[12:]))


def test_role_train_keeps_every_question_whose_paragraph_is_in_the_file(published: Published) -> None:
    examples = [
        r for f in (published.version / layout.EXAMPLES).glob("*.parquet") for r in pq.read_table(f).to_pylist()
    ]
    assert sorted(e["pair_id"] for e in examples if e["kind"] == "human") == sorted(published.train_questions)


def test_the_funnel_counts_the_human_pairs(published: Published) -> None:
    row = count_human_pairs(published.built.funnel)
    assert row is not None and row.stage == HUMAN_ROW
    n_train, n_eval = len(published.train_questions), published.eval_questions
    assert (row.input, row.output, row.dropped) == (n_train + n_eval, n_train, {"held_out_eval": n_eval})
    details = row.details
    assert details["train"] == n_train and details["eval"] == n_eval and details["kept_as_examples"] == n_train
    # short paragraphs are no passage, the repeated one is a near-duplicate: their questions keep their own text
    assert 0 < details["matched_to_pool_passage"] < n_train
    assert details["matched_to_pool_passage"] + details["positive_outside_pool"] == n_train
    manifest = published.manifest
    assert [s["stage"] for s in manifest["funnel"]][-2:] == [HUMAN_ROW, "export"]
    assert next(s for s in manifest["funnel"] if s["stage"] == HUMAN_ROW) == row.to_dict() | {"seconds": 0.0}
    card = (published.version / "README.md").read_text(encoding="utf-8")
    assert f"| human-pairs | pairs → examples | {n_train + n_eval} | {n_train} | held\\_out\\_eval {n_eval} |" in card


def test_closing_lines_say_what_was_held_out_and_what_a_format_dropped(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.pipeline import _result
    from pairforge.cli import _print_funnel

    lines = describe_left_out(published.manifest)
    n_eval = published.eval_questions
    held = [line for line in lines if "held out" in line]
    assert len(held) == 1 and f"{n_eval} human" in held[0] and "role: train" in held[0]
    n = len(published.train_questions)
    dropped = [line for line in lines if "sentence-transformers" in line]
    assert len(dropped) == 1 and f"0 of {n}" in dropped[0]
    assert "fewer_than_25_negatives" in dropped[0] and "mine.num_negatives" in dropped[0]
    assert not (published.version / "sentence-transformers").exists()
    card = (published.version / "README.md").read_text(encoding="utf-8")
    assert all(line in card for line in lines)  # the card lists them (Markdown-escaped text aside: none here)
    human = describe_human_pairs(published.manifest)
    row = count_human_pairs(published.built.funnel)
    assert row is not None
    pooled = row.details["matched_to_pool_passage"]
    assert human == (f"human pairs: {n + n_eval} read, {n} kept as examples ({pooled} with a pool passage as "
                     f"positive, {n - pooled} with their own paragraph); dropped: {n_eval} held_out_eval")  # fmt: skip
    assert human in card
    result = _result(published.built.config, 1, str(published.version), 0.0)
    assert result["notes"] == [human, *lines]
    _print_funnel(result)
    printed = " ".join(capsys.readouterr().err.split())
    assert "human-pairs" in printed and all(" ".join(line.split()) in printed for line in result["notes"])


@pytest.mark.parametrize(
    ("funnel", "formats", "dropped", "expected"),
    [
        ([], {}, {}, []),
        ([{"stage": HUMAN_ROW, "dropped": {}, "details": {"eval": 0, "kept_as_examples": 5}}], {}, {}, []),
        (
            [{"stage": HUMAN_ROW, "dropped": {"held_out_eval": 3}, "details": {"eval": 3, "kept_as_examples": 0}}],
            {},
            {},
            ["held out"],
        ),
        (
            [{"stage": "export", "in": 10, "dropped": {}, "details": {}}],
            {"flagembedding/qp-a.jsonl": 9},
            {"flagembedding": {"no_negatives": 1}},
            ["flagembedding: 9 of 10", "`no_negatives` 1", "mine.range_max"],
        ),
        (
            [{"stage": "export", "in": 10, "dropped": {}, "details": {}}],
            {"cosent/train-a.parquet": 4},
            {"cosent": {"held_out": 2, "unlabelled": 1}},
            ["cosent: 4 rows written", "`held_out` 2", "role: eval", "`unlabelled` 1"],
        ),
    ],
)
def test_describe_left_out(funnel: list, formats: dict, dropped: dict, expected: list[str]) -> None:
    manifest = {"funnel": funnel, "formats": formats, "dropped": dropped, "config": {"mine": {"num_negatives": 7}}}
    text = "\n".join(describe_left_out(manifest))
    assert all(part in text for part in expected) and (bool(text) == bool(expected))


def test_nothing_to_publish_says_the_questions_were_held_out() -> None:
    ingest = StageStats("ingest", "records → passages", input=48, output=3,
                        details={"human": {"read": 36, "train": 0, "eval": 36}})  # fmt: skip
    generate = StageStats("generate", "requests → pairs", input=6, output=0, dropped={"unparseable": 6})
    why = why_empty([ingest, generate])
    assert why.startswith("0 pairs survived generate (unparseable 6)")
    assert "36 human questions held out as evaluation data" in why and "`role: train`" in why
    assert "held out" not in why_empty([generate])


def test_describe_human_pairs_counts_scored_pairs_and_says_nothing_without_a_row() -> None:
    row = {"stage": HUMAN_ROW, "in": 12, "out": 10, "dropped": {"held_out_eval": 2},
           "details": {"kept_as_examples": 10, "matched_to_pool_passage": 9, "positive_outside_pool": 1,
                       "scored_pairs": 41}}  # fmt: skip
    assert describe_human_pairs({"funnel": [row]}) == (
        "human pairs: 12 read, 10 kept as examples (9 with a pool passage as positive, 1 with their own paragraph); "
        "dropped: 2 held_out_eval; 41 scored pairs for the cosent format"
    )
    assert describe_human_pairs({"funnel": [{**row, "stage": "select"}]}) is None
