"""A workdir as the stages before export leave it, built in a second from real data: CMRC 2018 paragraphs as
the passage pool, CMRC questions as generated qp/sp pairs (with the generate columns) and as human positives,
STS-B (0..5) and AFQMC (0/1) rows as scored human pairs, the stage summaries, a MinHash index, and real
candidates and examples from ``run_mine``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filters.sharded import write_index

from pairforge.config import RunConfig
from pairforge.generation.generate import PAIR_SCHEMA
from pairforge.ingest import file_sha256
from pairforge.negatives.mine import run_mine
from pairforge.shards import HUMAN_PAIR_SCHEMA, PASSAGE_SCHEMA
from prompts import load_prompt

MODEL = "tiny-qwen2-test"
NUM_NEGATIVES = 4
HOSTILE = '<script>alert("x")</script> | **bold** [link](http://x)'  # must stay text in the card and report


def paragraphs(shared_data: Path, start: int = 0, n: int = 120) -> list[dict]:
    data = json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.squad.json").read_text(encoding="utf-8"))
    return [p for a in data["data"] for p in a["paragraphs"]][start : start + n]


def make_config(tmp_path: Path, store: str, **sections: dict) -> RunConfig:
    """A RunConfig for a workdir under ``tmp_path`` and the given store."""
    raw = {
        "name": "cmrc-test",
        "workdir": str(tmp_path / "work"),
        "store": store,
        "corpora": [{"format": "squad", "path": str(tmp_path / "unused.json")}],
        "mine": {"range_max": 30, "num_negatives": NUM_NEGATIVES, "relative_margin": 0.05},
        **sections,
    }
    return RunConfig.model_validate(raw)


def build_workdir(
    config: RunConfig, shared_data: Path, *, start: int = 0, n_pool: int = 120, with_llm: bool = True
) -> Path:
    """Write the workdir of ``config`` (pool paragraphs ``start..start+n_pool``) and mine it; without the LLM
    stage there are no generated pairs and no generate / filter / pair-dedup summaries."""
    workdir = Path(config.workdir)
    pool = paragraphs(shared_data, start, n_pool)
    _write_passages(workdir, pool)
    if with_llm:
        _write_pairs(workdir, pool[:40])
    _write_human_pairs(workdir, pool[40:52], shared_data)
    _write_summaries(workdir, shared_data, len(pool), with_llm)
    write_index(
        workdir / "dedup" / "passages-index", [p["id"] for p in pool], [p["context"] for p in pool], config.dedup
    )
    run_mine(config)
    _plant_short_examples(workdir)
    return workdir


def _write_passages(workdir: Path, pool: list[dict]) -> None:
    rows = [
        {
            "id": p["id"],
            "doc_id": p["id"].rsplit("_", 1)[0],
            "source": "cmrc2018",
            "text": p["context"],
            "start": 0,
            "end": len(p["context"]),
            "char_len": len(p["context"]),
        }
        for p in pool
    ]
    (workdir / "passages").mkdir(parents=True)
    half = len(rows) // 2  # two shards, as ingest writes them
    pq.write_table(pa.Table.from_pylist(rows[:half], schema=PASSAGE_SCHEMA), workdir / "passages" / "p-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[half:], schema=PASSAGE_SCHEMA), workdir / "passages" / "p-00001.parquet")


def _write_pairs(workdir: Path, pool: list[dict]) -> None:
    rows = []
    for i, p in enumerate(pool):
        kind = "qp" if i < 30 else "sp"
        prompt = load_prompt(kind)
        qa = p["qas"][0]
        answer = qa["answers"][0]["text"]
        query = qa["question"] if kind == "qp" else f"{answer}是文中提到的内容"
        if i == 0:
            query = HOSTILE + query
        start = p["context"].find(answer)
        rows.append(
            {
                "id": f"{kind}-{p['id']}",
                "kind": kind,
                "query": query,
                "passage_id": p["id"],
                "positive": p["context"],
                "query_type": "factoid" if kind == "qp" else "sp",
                "evidence": answer,
                "evidence_start": start,
                "evidence_end": start + len(answer),
                "evidence_method": "exact",
                "source": "cmrc2018",
                "doc_id": p["id"],
                "prompt_id": prompt.id,
                "prompt_sha256": prompt.sha256,
                "model": MODEL,
                "sampling": json.dumps({"n": 1, "temperature": 0.7}),
                "request_key": f"key-{i}",
                "sample": 0,
            }
        )
    (workdir / "pairs").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA), workdir / "pairs" / "generated-00000.parquet")


def _write_human_pairs(workdir: Path, pool: list[dict], shared_data: Path) -> None:
    rows = [
        _human(
            f"h-{p['id']}",
            "cmrc2018",
            "positive",
            p["qas"][0]["question"],
            p["context"],
            None,
            "train",
            [a["text"] for a in p["qas"][0]["answers"]],
        )
        for p in pool[:10]
    ]
    rows += [
        _human(f"e-{p['id']}", "cmrc2018", "positive", p["qas"][0]["question"], p["context"], None, "eval", [])
        for p in pool[10:]
    ]
    for name, file in (("sts-b", "chinese-sts-b_sts-b-train.txt"), ("afqmc", "afqmc_train.txt")):
        lines = (shared_data / "pairs" / file).read_text(encoding="utf-8").splitlines()[:20]
        for i, line in enumerate(lines):
            s1, s2, label = line.split("\t")
            rows.append(_human(f"{name}:L{i + 1}", name, "scored", s1, s2, float(label), "train", []))
    rows.append(_human("sts-b:unlabelled", "sts-b", "scored", "一个人在唱歌。", "一个人在跳舞。", None, "train", []))
    rows.append(_human("afqmc:eval", "afqmc", "scored", "花呗怎么还款", "花呗如何还钱", 1.0, "eval", []))
    (workdir / "human_pairs").mkdir()
    pq.write_table(
        pa.Table.from_pylist(rows, schema=HUMAN_PAIR_SCHEMA), workdir / "human_pairs" / "human-00000.parquet"
    )


def _human(pid: str, source: str, kind: str, t1: str, t2: str, label: float | None, role: str, answers: list) -> dict:
    return {
        "id": pid,
        "source": source,
        "kind": kind,
        "text1": t1,
        "text2": t2,
        "negatives": [],
        "label": label,
        "role": role,
        "answers": answers,
    }


def _write_summaries(workdir: Path, shared_data: Path, n_pool: int, with_llm: bool) -> None:
    files = [
        shared_data / "cmrc2018" / "cmrc2018_dev.squad.json",
        shared_data / "pairs" / "afqmc_train.txt",
        shared_data / "pairs" / "chinese-sts-b_sts-b-train.txt",
    ]
    inputs = [
        {
            "path": str(f),
            "source": f.parent.name,
            "bytes": f.stat().st_size,
            "sha256": file_sha256(str(f)),
            "complete": i < 2,
        }
        for i, f in enumerate(files)
    ]  # the third was cut short by --limit
    summaries = {
        "ingest_summary.json": {
            "documents": 130,
            "passages": n_pool + 4,
            "quarantined": 2,
            "quarantine_reasons": {"invalid_json": 2},
            "too_short_windows": 3,
            "sampled_out": 7,
            "human_pairs": 54,
            "inputs": inputs,
            "skipped_inputs": 0,
        },
        "dedup_passages_summary.json": {
            "target": "passages",
            "input": n_pool + 4,
            "kept": n_pool,
            "dropped": {"near_duplicate": 3, "seen_in_earlier_version": 1},
        },
        "generate_summary.json": {
            "passages": 40,
            "requests": 80,
            "pairs": 44,
            "pairs_by_kind": {"qp": 33, "sp": 11},
            "failures": {"invalid_json": 2},
            "dropped_items": {"schema": 1},
            "model": MODEL,
            "backend": "vllm",
        },
        "filter_summary.json": {"input": 44, "kept": 41, "dropped": {"copied_from_passage": 3}},
        "dedup_pairs_summary.json": {"target": "pairs", "input": 41, "kept": 40, "dropped": {"near_duplicate": 1}},
    }
    if not with_llm:
        for name in ("generate_summary.json", "filter_summary.json", "dedup_pairs_summary.json"):
            del summaries[name]
    for name, summary in summaries.items():
        (workdir / name).write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")


def _plant_short_examples(workdir: Path) -> None:
    """Give one example no negatives and one only two, as a thin pool or strict guards would."""
    path = workdir / "examples" / "examples.parquet"
    rows = pq.read_table(path).to_pylist()
    for row, keep in ((rows[1], 0), (rows[2], 2)):
        for key in ("neg", "neg_scores", "neg_sources", "negative_ids"):
            row[key] = row[key][:keep]
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
