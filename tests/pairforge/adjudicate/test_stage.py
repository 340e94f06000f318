"""False-negative adjudication against the fake LLM on a small real workdir (WuDao documents through every stage):
every candidate worth asking asked once, confirmed ones never negatives and exported as extra positives, the margin
a setting that re-mines nothing and sends no request for what the ledger holds, backend failures never cached."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairforge.adjudicate.card import adjudication_section
from pairforge.adjudicate.stage import plan_adjudication_shard
from pairforge.config import RunConfig
from pairforge.export.formats import flagembedding_row, sentence_transformers_row, uniem_row
from pairforge.generation.ledger import Ledger
from pairforge.mapping import ShardInputs
from pairforge.negatives.mine import run_mine
from pairforge.plan import RunPlan
from pairforge.stages import STAGE_NAMES, output_fingerprint, stage_settings
from pairforge.stats import StageStats
from pairforge.workdir import Workdir
from tests.pairforge.adjudicate.helpers import AdjudicatingLLM, adjudicate_config, fake_verdict
from tests.pairforge.judge.helpers import run_all, write_wudao
from tests.pairforge.test_stage_contract import changed, run_stage, snapshot

STAGES = STAGE_NAMES[:-1]


@dataclass
class Adjudicated:
    config: RunConfig
    plan: RunPlan
    llm: AdjudicatingLLM
    stats: dict[str, StageStats]

    @property
    def workdir(self) -> Workdir:
        return Workdir(self.config.workdir)

    def copy(self, tmp_path: Path, **adjudicate: object) -> RunConfig:
        """The run's workdir copied (times kept), and the config over it with ``adjudicate`` settings changed."""
        shutil.copytree(self.workdir.root, tmp_path / "work")
        mine = self.config.mine
        mine = mine.model_copy(update={"adjudicate": mine.adjudicate.model_copy(update=adjudicate)})
        return self.config.model_copy(update={"workdir": str(tmp_path / "work"), "mine": mine})


def answers(folder: Path) -> int:
    ledger = Ledger(folder)
    try:
        return ledger.count()
    finally:
        ledger.close()


def table(folder: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in sorted(folder.glob("*.parquet")))


def planned(config: RunConfig, plan: RunPlan) -> dict[str, str]:
    """Every planned request's key → the fake LLM's verdict on it."""
    workdir = Workdir(config.workdir)
    requests = [p for shard in plan.keys for p in plan_adjudication_shard(config, workdir, shard)]
    return {p.key: fake_verdict(p.chat_request().messages[-1]["content"]) for p in requests}


@pytest.fixture(scope="module")
def adjudicated(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adjudicated]:
    tmp = tmp_path_factory.mktemp("adjudicated")
    with AdjudicatingLLM() as llm:
        config = adjudicate_config(write_wudao(shared_data, tmp / "corpus"), tmp / "work", llm.base_url)
        stats = run_all(config)
        yield Adjudicated(config, RunPlan.load(Workdir(config.workdir).plan), llm, stats)


def test_close_candidates_are_asked_once_and_confirmed_ones_never_become_negatives(adjudicated: Adjudicated) -> None:
    w, mine = adjudicated.workdir, adjudicated.stats["mine"]
    a = mine.details["adjudication"]
    asked = planned(adjudicated.config, adjudicated.plan)
    assert len(asked) > 10 and a["sent"] == len(asked) == answers(w.adjudicate_ledger)
    by_kind = a["by_kind"]
    assert set(by_kind) == {"qp", "sp"} and sum(k["asked"] for k in by_kind.values()) == len(asked)
    confirmed = sum(k.get("confirmed", 0) for k in by_kind.values())
    assert 0 < confirmed == sum(v == "yes" for v in asked.values()) < len(asked)
    verdicts = {r["pair_id"]: r for r in table(w.adjudicated).to_pylist()}
    examples = table(w.examples).to_pylist()
    extra = 0
    for e in examples:
        fns = verdicts.get(e["pair_id"], {}).get("false_negative_ids") or []
        assert not set(fns) & set(e["negative_ids"])  # never a negative
        assert len(e["pos"]) == 1 + len(fns) == len(e["pos_scores"])  # exported as extra positives, after its own
        extra += len(fns)
    assert extra == confirmed
    assert adjudicated.stats["select"].details["skipped"]["false_negative"] > 0
    # what the formats make of an example with extra positives: FlagEmbedding's pos list holds them all; the
    # one-positive formats keep the pair's own positive
    e = next(e for e in examples if len(e["pos"]) > 1)
    config = adjudicated.config.export
    assert flagembedding_row(e, config)["pos"] == e["pos"]
    assert uniem_row(e) in (None, {"text": e["query"], "text_pos": e["pos"][0], "text_neg": e["neg"][0]})
    row = sentence_transformers_row(e, len(e["neg"]))
    assert row is not None and row["positive"] == e["pos"][0]


def test_the_card_reports_the_false_negative_rate_per_kind(adjudicated: Adjudicated) -> None:
    funnel = [s.to_dict() for s in adjudicated.stats.values()]
    section = adjudication_section(funnel)
    by_kind = adjudicated.stats["mine"].details["adjudication"]["by_kind"]
    assert (
        section.startswith("## False negatives") and f"within {adjudicated.config.mine.adjudicate.margin:g}" in section
    )
    for kind in ("qp", "sp"):
        c = by_kind[kind]
        rate = f"{c['confirmed'] / c['asked']:.1%}"
        assert f"| {kind} | {c['pairs']:,} | {c['asked']:,} | {c['confirmed']:,} | {rate} |" in section
    off = [r for r in funnel if r["stage"] != "mine"] + [{"stage": "mine", "details": {}}]
    assert adjudication_section(off) == ""


def test_a_changed_margin_remines_nothing_and_sends_only_new_questions(
    adjudicated: Adjudicated, tmp_path: Path
) -> None:
    narrow = adjudicated.copy(tmp_path / "narrow", margin=0.1, export_positives=False)
    workdir, sent = Workdir(narrow.workdir), adjudicated.llm.received
    rerun, stats = {}, {}
    for stage in STAGES:
        before = snapshot(workdir.root)
        stats[stage] = run_stage(stage, narrow, adjudicated.plan)
        rerun[stage] = changed(before, snapshot(workdir.root)) - {f"work/{stage}/stats.json"}
    assert {s for s in STAGES if rerun[s]} == {"mine", "select"}
    assert all(p.startswith(("work/mine/adjudicated/", "work/mine/_done/")) for p in rerun["mine"])
    assert all(".adjudicate." in p for p in rerun["mine"] if "/_done/" in p)  # the candidates were not re-mined
    assert adjudicated.llm.received == sent and stats["mine"].details["adjudication"]["sent"] == 0
    fewer = planned(narrow, adjudicated.plan)
    assert 0 < len(fewer) < answers(workdir.adjudicate_ledger)
    assert all(len(e["pos"]) == 1 for e in table(workdir.examples).to_pylist())  # export_positives off
    # What a version covers changes with the margin; what mining's candidates depend on does not.
    assert output_fingerprint(narrow, 0, {}) != output_fingerprint(adjudicated.config, 0, {})
    assert stage_settings(narrow, "mine") == stage_settings(adjudicated.config, "mine")

    wide = adjudicated.copy(tmp_path / "wide", margin=0.9, max_candidates=8)
    more = planned(wide, adjudicated.plan)
    new = set(more) - set(planned(adjudicated.config, adjudicated.plan))
    stats = run_mine(wide, ShardInputs(adjudicated.plan.keys), Workdir(wide.workdir))
    assert new and stats.details["adjudication"]["sent"] == len(new) == adjudicated.llm.received - sent


def test_backend_failures_are_never_cached(adjudicated: Adjudicated, tmp_path: Path) -> None:
    config = adjudicated.copy(tmp_path)
    workdir = Workdir(config.workdir)
    shutil.rmtree(workdir.adjudicate_ledger)  # as if nothing had been asked
    asked = len(planned(config, adjudicated.plan))
    adjudicated.llm.set_faults(rates={"http_500": 1.0})
    try:
        down = run_mine(config, ShardInputs(adjudicated.plan.keys), workdir, fresh=True)
    finally:
        adjudicated.llm.set_faults(rates={})
    a = down.details["adjudication"]
    assert a["backend_errors"] and answers(workdir.adjudicate_ledger) == 0
    assert sum(k["unanswered"] for k in a["by_kind"].values()) == asked
    select = run_stage("select", config, adjudicated.plan)
    assert select.details["skipped"]["false_negative"] == 0  # nothing confirmed yet
    before = adjudicated.llm.received
    up = run_mine(config, ShardInputs(adjudicated.plan.keys), workdir)
    assert up.details["adjudication"]["sent"] == asked == adjudicated.llm.received - before
    assert not any(k.get("unanswered") for k in up.details["adjudication"]["by_kind"].values())
    select = run_stage("select", config, adjudicated.plan)  # the verdicts changed: select redoes its shards
    assert (
        select.details["skipped"]["false_negative"] == adjudicated.stats["select"].details["skipped"]["false_negative"]
    )


def test_settings_that_change_nothing_change_no_fingerprint(adjudicated: Adjudicated) -> None:
    config = adjudicated.config
    off = config.model_copy(update={"mine": config.mine.model_copy(
        update={"adjudicate": config.mine.adjudicate.model_copy(update={"enabled": False})})})  # fmt: skip
    retuned = off.model_copy(update={"mine": off.mine.model_copy(
        update={"adjudicate": off.mine.adjudicate.model_copy(update={"margin": 0.3, "model": "other"})})})  # fmt: skip
    assert "adjudicate" not in stage_settings(off, "select")["mine"]
    assert output_fingerprint(off, 0, {}) == output_fingerprint(retuned, 0, {}) != output_fingerprint(config, 0, {})
    # the round trip's hybrid and margin knobs, while BM25 ranks by rank share
    knobs = off.filter.model_copy(
        update={"consistency_rrf_k": 10, "consistency_depth": 7, "consistency_max_margin": 1}
    )
    assert stage_settings(off.model_copy(update={"filter": knobs}), "filter") == stage_settings(off, "filter")
    margin = off.filter.model_copy(update={"consistency_criterion": "margin"})
    assert stage_settings(off.model_copy(update={"filter": margin}), "filter") != stage_settings(off, "filter")
