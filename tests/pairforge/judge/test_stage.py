"""The judge stage against the fake LLM on a small real workdir (WuDao documents through every stage): every kept
pair asked once, scores stored on the pair, the cut a setting that reruns nothing upstream and sends no request,
backend failures never cached, answers without scores counted, a disabled judge that changes no fingerprint."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.config import RunConfig
from pairforge.export.segments import completeness
from pairforge.generation.ledger import Ledger
from pairforge.judge import run_judge
from pairforge.judge.card import judge_section
from pairforge.judge.rubric import render_judge
from pairforge.mapping import ShardInputs
from pairforge.plan import RunPlan
from pairforge.stages import STAGE_NAMES, output_fingerprint, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import Workdir
from prompts import load_prompt
from tests.pairforge.judge.helpers import ScoringLLM, fake_scores, judge_config, run_all, write_wudao
from tests.pairforge.test_stage_contract import changed, run_stage, same_stats, snapshot

STAGES = STAGE_NAMES[:-1]
JUDGE_PROMPT = load_prompt("judge", "v1")


@dataclass
class Judged:
    config: RunConfig
    plan: RunPlan
    llm: ScoringLLM
    stats: dict[str, StageStats]

    @property
    def workdir(self) -> Workdir:
        return Workdir(self.config.workdir)

    def copy(self, tmp_path: Path, **judge: object) -> RunConfig:
        """The run's workdir copied (times kept), and the config over it with ``judge`` settings changed."""
        shutil.copytree(self.workdir.root, tmp_path / "work")
        update = {"workdir": str(tmp_path / "work"), "judge": self.config.judge.model_copy(update=judge)}
        return self.config.model_copy(update=update)


def answers(folder: Path) -> int:
    """The rows of the ledger at ``folder`` (its connections closed again: a snapshot sees no open database)."""
    ledger = Ledger(folder)
    try:
        return ledger.count()
    finally:
        ledger.close()


def table(folder: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in sorted(folder.glob("*.parquet")))


@pytest.fixture(scope="module")
def judged(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judged]:
    tmp = tmp_path_factory.mktemp("judged")
    with ScoringLLM() as llm:
        config = judge_config(write_wudao(shared_data, tmp / "corpus"), tmp / "work", llm.base_url)
        stats = run_all(config)
        yield Judged(config, RunPlan.load(Workdir(config.workdir).plan), llm, stats)


def test_every_kept_pair_is_judged_once_and_its_scores_are_stored(judged: Judged) -> None:
    s, w = judged.stats, judged.workdir
    judge = s["judge"]
    assert judge.input == s["filter"].output > 10 and judge.details["sent"] == judge.input
    assert answers(w.judge_ledger) == judge.input  # one answer per pair, in the judge's own ledger
    assert judge.input == judge.output + sum(judge.dropped.values()) and s["dedup-pairs"].input == judge.output
    kept, dropped = table(w.judged), table(w.judge_dropped)
    assert kept.num_rows == judge.output and 0 < dropped.num_rows == sum(judge.dropped.values())
    for pair in kept.to_pylist():
        scores = {k: pair[f"judge_{k}"] for k in ("relevance", "faithfulness", "clarity")}
        assert all(1 <= v <= 5 for v in scores.values()) and pair["judge_score"] == sum(scores.values()) / 3
        assert pair["judge_score"] >= 3.0  # the default cut
        prompt = render_judge(JUDGE_PROMPT, kind=pair["kind"], query=pair["query"], passage=pair["positive"])
        assert scores == fake_scores(prompt[-1]["content"])  # the scores of this pair's own answer
    assert set(dropped["reason"].to_pylist()) == {"judge_below_min_score"} == set(judge.dropped)
    histogram = judge.details["scores"]
    assert all(sum(histogram[name].values()) == judge.input for name in histogram)
    assert judge.details["cut"] == {"min_score": 3.0, "min_scores": {}} and judge.details["model"] == "test-model"
    version_pairs = table(w.pairs)  # the scores travel on with the pair
    assert version_pairs.num_rows == s["dedup-pairs"].output and version_pairs["judge_score"].null_count == 0


def test_the_card_shows_the_cut_and_the_score_distribution(judged: Judged) -> None:
    row = judged.stats["judge"].to_dict()
    section = judge_section([row])
    assert section.startswith("## Judge") and "mean score ≥ 3.0" in section and "test-model" in section
    scores = row["details"]["scores"]
    for score in range(1, 6):
        counts = [f"{scores[name].get(str(score), 0):,}" for name in ("relevance", "faithfulness", "clarity")]
        assert f"| {score} | {' | '.join(counts)} |" in section
    assert f"Kept {row['out']:,} of {row['in']:,} pairs" in section
    off = row | {"details": {"enabled": False}}
    assert judge_section([off]) == "" and judge_section([]) == ""


def test_a_changed_cut_reruns_the_judge_onwards_and_sends_no_request(judged: Judged, tmp_path: Path) -> None:
    config = judged.copy(tmp_path, min_score=2.5, min_scores={"faithfulness": 3})
    workdir, sent = Workdir(config.workdir), judged.llm.received
    answered = answers(workdir.judge_ledger)
    rerun, stats = {}, {}
    for stage in STAGES:
        before = snapshot(workdir.root)
        stats[stage] = run_stage(stage, config, judged.plan)
        rerun[stage] = bool(changed(before, snapshot(workdir.root)) - {f"work/{stage}/stats.json"})
    assert rerun == {s: s in ("judge", "dedup-pairs", "mine", "select") for s in STAGES}
    assert all(same_stats(stats[s], judged.stats[s]) for s in STAGES[: STAGES.index("judge")])
    assert judged.llm.received == sent and answers(workdir.judge_ledger) == answered
    judge = stats["judge"]
    assert judge.details["sent"] == 0 and judge.input == judged.stats["judge"].input
    assert judge.details["scores"] == judged.stats["judge"].details["scores"]  # the same answers, cut anew
    assert set(judge.dropped) == {"judge_below_min_faithfulness", "judge_below_min_score"}
    for pair in table(workdir.judged).to_pylist():
        assert pair["judge_faithfulness"] >= 3 and pair["judge_score"] >= 2.5
    # What a version covers changes with the cut; what generate and filter depend on does not.
    assert output_fingerprint(config, 0, {}) != output_fingerprint(judged.config, 0, {})
    for stage in ("generate", "filter"):
        assert stage_settings(config, stage) == stage_settings(judged.config, stage)


def test_backend_failures_are_never_cached_and_bad_answers_are_counted(judged: Judged, tmp_path: Path) -> None:
    config = judged.copy(tmp_path)
    workdir = Workdir(config.workdir)
    shutil.rmtree(workdir.judge_ledger)  # as if the judge had never been asked
    pairs = judged.stats["judge"].input
    judged.llm.set_faults(rates={"http_500": 1.0})
    try:
        down = run_judge(config, ShardInputs(judged.plan.keys), workdir, fresh=True)
    finally:
        judged.llm.set_faults(rates={"refusal": 0.5})
    assert down.output == 0 and down.dropped == {"judge_unanswered": pairs} and down.details["unanswered"] == pairs
    assert down.details["backend_errors"] and answers(workdir.judge_ledger) == 0
    (shard,) = judged.plan.keys
    assert completeness(workdir, shard) == (False, {"judge_unanswered": pairs})
    try:
        before = judged.llm.received
        up = run_judge(config, ShardInputs(judged.plan.keys), workdir)
    finally:
        judged.llm.set_faults(rates={})
    assert judged.llm.received - before == up.details["sent"] == pairs  # every one asked again, once
    refused = up.details["failures"].get("refusal", 0)
    assert 0 < refused < pairs and up.dropped["judge_no_scores"] == refused
    assert "judge_unanswered" not in up.dropped and completeness(workdir, shard) == (True, {})
    # A refusal gave no scores, so the next run asks it again (as generation re-asks unusable answers, at most
    # generate.max_attempts times); this time the model answers, and after that nothing is sent.
    again = run_judge(config, ShardInputs(judged.plan.keys), workdir)
    assert again.details["sent"] == again.details["reasked"] == refused
    assert "judge_no_scores" not in again.dropped and again.input == again.output + sum(again.dropped.values())
    settled = run_judge(config, ShardInputs(judged.plan.keys), workdir)
    assert settled.details["sent"] == 0 and same_stats(settled, again)


def test_a_disabled_judge_passes_pairs_on_and_changes_no_fingerprint(judged: Judged, tmp_path: Path) -> None:
    off = judged.config.model_copy(update={"judge": judged.config.judge.model_copy(update={"enabled": False})})
    retuned = off.model_copy(update={"judge": off.judge.model_copy(update={"min_score": 4.5, "model": "other"})})
    assert stage_settings(off, "judge") == stage_settings(retuned, "judge") == {"judge.enabled": False}
    assert output_fingerprint(off, 0, {}) == output_fingerprint(retuned, 0, {})
    assert output_fingerprint(off, 0, {}) != output_fingerprint(judged.config, 0, {})
    config = judged.copy(tmp_path, enabled=False)
    workdir, sent = Workdir(config.workdir), judged.llm.received
    stats = run_judge(config, ShardInputs(judged.plan.keys), workdir)
    assert judged.llm.received == sent and stats.details == {"enabled": False}
    assert stats.input == stats.output == table(workdir.judged).num_rows and stats.dropped == {}
    assert table(workdir.judged)["judge_score"].null_count == stats.output
