"""A workdir as the stages before export leave it, built from real data by the real stage functions, run as
``flows.pipeline.run_stages`` runs them (``flows.stages.run_stage``), over a real run plan (``plan_run``: new
shards, carried segments).

The input shards, written to a temporary folder (never the repo):

- ``cmrc-<start>.json`` (SQuAD, role train): CMRC 2018 dev paragraphs ``start..start+n_pool`` as passages, plus
  three planted near-copies of paragraphs (dedup-passages drops them); ten of the paragraphs keep one human
  question (human positive pairs; the first question carries HOSTILE, which must stay text in the card);
- ``cmrc-eval-<start>.json`` (SQuAD, role eval): two more paragraphs and a question each (held out, never mined);
- ``sts-b.txt`` (0..5, plus one unlabelled row) and ``afqmc.txt`` (0/1): 20 scored human pairs each.

The LLM stage is fed by the ledger: every planned request (each kept passage × qp/sp) gets an answer built from
the passage's own CMRC question and answer (a qp query and an sp sentence with its evidence), written to the ledger
before ``run_generate``, which then sends nothing (any missing answer would make it start the vllm backend for a
model that does not exist, and fail). Filters run with their defaults, the round trip over the pool's BM25 index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from flows.stages import run_stage
from pairforge.config import RunConfig
from pairforge.generation.generate import GenerateInputs, passage_budget, plan_shard
from pairforge.generation.ledger import Ledger, LedgerRow
from pairforge.plan import RunPlan, plan_run
from pairforge.records import EXAMPLE_SCHEMA
from pairforge.shards import ShardWriter, read_shard_table
from pairforge.stages import STAGE_NAMES
from pairforge.stats import StageStats
from pairforge.workdir import Workdir

MODEL = "tiny-qwen2-test"
NUM_NEGATIVES = 4
HOSTILE = '<script>alert("x")</script> | **bold** [link](http://x)'  # must stay text in the card and report
COPIES = 3  # planted near-duplicate paragraphs
HUMAN = range(40, 50)  # pool paragraphs that keep a human question
SCORED = 20  # rows per scored pair file


@dataclass
class Built:
    """A workdir after select: its config, run plan and this run's funnel (what export receives)."""

    config: RunConfig
    plan: RunPlan
    funnel: list[StageStats]

    @property
    def workdir(self) -> Workdir:
        return Workdir(self.config.workdir)

    @property
    def pool_key(self) -> str:
        """The key of the CMRC pool shard (the one with generated and human pairs)."""
        return self.plan.keys[0]


def paragraphs(shared_data: Path, start: int = 0, n: int = 120) -> list[dict]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    return [p for a in data["data"] for p in a["paragraphs"]][start : start + n]


def make_config(tmp_path: Path, store: str, inputs: list[dict], **sections: dict) -> RunConfig:
    """A RunConfig over ``inputs`` for a workdir under ``tmp_path`` and the given store."""
    raw: dict[str, Any] = {
        "name": "cmrc-test",
        "workdir": str(tmp_path / "work"),
        "store": store,
        "corpora": inputs,
        "window": {"max_length": 1024, "min_length": 64, "long_short_ratio": None},
        "generate": {"model": MODEL, "counts": {"qp": 1, "sp": 1}},
        "mine": {"range_max": 30, "num_negatives": NUM_NEGATIVES, "relative_margin": 0.05},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.model_validate(raw)


def write_inputs(folder: Path, shared_data: Path, start: int = 0, n_pool: int = 120) -> list[dict]:
    """The input shards (see the module docstring); returns their corpus entries."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = paragraphs(shared_data, start, n_pool + 2)
    articles = []
    for i, p in enumerate(pool[:n_pool]):
        qas = []
        if i in HUMAN and len(p["qas"]) > 1:  # another question than the one the "LLM" asks (see answer_of)
            qa = dict(p["qas"][1])
            qa["question"] = (HOSTILE if i == HUMAN[0] else "") + qa["question"]
            qas = [qa]
        articles.append({"title": "", "paragraphs": [{"id": p["id"], "context": p["context"], "qas": qas}]})
    for i in range(COPIES):  # a near-copy: the paragraph with its last sentence mark changed
        p = pool[i * 7]
        copy = {"id": f"COPY_{p['id']}", "context": p["context"][:-1] + "！", "qas": []}
        articles.append({"title": "", "paragraphs": [copy]})
    evals = [{"title": "", "paragraphs": [{**p, "qas": p["qas"][:1]}]} for p in pool[n_pool:]]
    pool_file, eval_file = folder / f"cmrc-{start}.json", folder / f"cmrc-eval-{start}.json"
    pool_file.write_text(json.dumps({"data": articles}, ensure_ascii=False), encoding="utf-8")
    eval_file.write_text(json.dumps({"data": evals}, ensure_ascii=False), encoding="utf-8")
    sts = (shared_data / "pairs" / "chinese-sts-b_sts-b-train.txt").read_text(encoding="utf-8").splitlines()
    afqmc = (shared_data / "pairs" / "afqmc_train.txt").read_text(encoding="utf-8").splitlines()
    (folder / "sts-b.txt").write_text("\n".join([*sts[:SCORED], "一个人在唱歌。\t一个人在跳舞。"]) + "\n", "utf-8")
    (folder / "afqmc.txt").write_text("\n".join(afqmc[:SCORED]) + "\n", encoding="utf-8")
    return [
        {"format": "squad", "path": str(pool_file), "name": "cmrc2018", "role": "train"},
        {"format": "squad", "path": str(eval_file), "name": "cmrc2018", "role": "eval"},
        {"format": "pairs_tsv", "path": str(folder / "sts-b.txt"), "name": "sts-b"},
        {"format": "pairs_tsv", "path": str(folder / "afqmc.txt"), "name": "afqmc"},
    ]


def build_workdir(
    config: RunConfig, shared_data: Path, *, with_llm: bool = True, plant: bool = True, limit: int | None = None
) -> Built:
    """Plan the run against the config's store and run every stage before export on the plan's shards; without
    the LLM stage, generate, filter and dedup-pairs do not run (mining has the human pairs only). ``plant`` gives
    one example no negatives and one only two, as a thin pool or strict guards would; ``limit`` is ``--limit``
    (requests for that many passages)."""
    workdir = Workdir(config.workdir)
    plan = plan_run(config, limit=limit)
    plan.save(workdir.plan)
    keys = plan.keys
    funnel = []
    for name in STAGE_NAMES[:-1]:
        if name in ("generate", "filter", "judge", "dedup-pairs") and not with_llm:
            continue
        if name == "generate":  # the passages are known now: answer every request they make
            fill_ledger(config, workdir, keys, answers_by_doc(shared_data))
        funnel.append(run_stage(name, config, plan, workdir))
    if plant:
        plant_short_examples(workdir, keys[0])
    return Built(config, plan, funnel)


def answers_by_doc(shared_data: Path) -> dict[str, dict]:
    """Every CMRC dev paragraph by its id (a near-copy answers as its original)."""
    return {p["id"]: p for p in paragraphs(shared_data, 0, 10_000)}


def answer_of(kind: str, paragraph: dict) -> str:
    """What the "LLM" answers for a passage: its first CMRC question (qp), or a sentence about its answer (sp),
    quoting the answer as evidence."""
    qa = paragraph["qas"][0]
    answer = qa["answers"][0]["text"]
    at = paragraph["context"].find(answer)
    evidence = answer if len(answer) >= 2 else paragraph["context"][at : at + 12]
    if kind == "qp":
        return json.dumps({"queries": [{"type": "factoid", "evidence": evidence, "query": qa["question"]}]},
                          ensure_ascii=False)  # fmt: skip
    sentence = f"{answer}是文中提到的内容"
    return json.dumps({"sentences": [{"evidence": evidence, "sentence": sentence}]}, ensure_ascii=False)


def fill_ledger(config: RunConfig, workdir: Workdir, keys: list[str], by_id: dict[str, dict]) -> int:
    """Answer every planned request of ``keys`` in the ledger; returns how many."""
    budget = passage_budget(workdir, GenerateInputs(keys))
    model = config.generate.served_model_name or config.generate.model
    rows = []
    for shard in keys:
        for p in plan_shard(config, workdir, budget, shard):
            doc = p.passage["doc_id"].split(":", 1)[1].removeprefix("COPY_")
            rows.append(LedgerRow(p.key, p.kind, p.passage["id"], p.prompt.id, p.prompt.sha256, model,
                                  config.generate.sampling.model_dump(), [answer_of(p.kind, by_id[doc])], ["stop"],
                                  300, 40, "prefilled"))  # fmt: skip
    ledger = Ledger(workdir.ledger)
    try:
        ledger.add(rows)
    finally:
        ledger.close()
    return len(rows)


def plant_short_examples(workdir: Workdir, shard: str) -> None:
    """Give the shard's second example no negatives and its third only two."""
    rows = read_shard_table(workdir.examples, shard).to_pylist()
    for row, keep in ((rows[1], 0), (rows[2], 2)):
        for key in ("neg", "neg_scores", "neg_sources", "negative_ids"):
            row[key] = row[key][:keep]
    writer = ShardWriter(workdir.examples, shard, EXAMPLE_SCHEMA)
    writer.add_table(pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA))
    writer.close()
