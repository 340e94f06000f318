from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pairforge.config import RunConfig
from pairforge.corpora import CorpusPathError
from pairforge.ingest import run_ingest
from pairforge.quarantine import StrictModeError
from pairforge.workdir import Workdir

GOOD = "长江是中国第一长河。它发源于青藏高原，流经十一个省级行政区，最后注入东海。" * 3


def write_bad_corpus(folder: Path) -> tuple[Path, Path]:
    """A WuDao JSONL shard and a TSV pair file holding every kind of bad record next to good ones."""
    lines = [
        json.dumps({"id": "ok-1", "title": "长江", "text": GOOD}, ensure_ascii=False).encode(),
        b'{"id": "bad-utf8", "text": "\xff\xfe\xfa"}',  # invalid UTF-8
        b'{"id": "broken", "text": "unterminated',  # broken JSON
        json.dumps({"id": "no-text", "title": "无正文"}, ensure_ascii=False).encode(),  # missing field
        json.dumps({"id": "list-text", "text": ["不是", "字符串"]}, ensure_ascii=False).encode(),  # wrong type
        json.dumps({"id": "empty", "text": " \u200b\u3000 "}).encode(),  # empty after normalisation
        b"[1, 2, 3]",  # not an object
        json.dumps({"id": "huge", "text": "大" * 10_000_000}, ensure_ascii=False).encode(),  # a 10 MB+ document
        json.dumps({"id": "ok-2", "title": "", "text": GOOD.replace("长江", "黄河")}, ensure_ascii=False).encode(),
        b"",
        json.dumps({"id": "ok-3", "text": "ＡＢＣ１２３：" + GOOD}, ensure_ascii=False).encode(),
    ]
    wudao = folder / "bad.jsonl"
    wudao.write_bytes(b"\n".join(lines) + b"\n")
    tsv = folder / "pairs.txt"
    tsv.write_text(
        "今天天气好\t今天天气不错\t1\n只有一列\n坏标签\t坏标签\tyes\n明天下雨吗\t明天会下雨吗\t0\n", encoding="utf-8"
    )
    return wudao, tsv


def config_for(tmp_path: Path, **window: object) -> RunConfig:
    wudao, tsv = write_bad_corpus(tmp_path)
    return RunConfig.model_validate(
        {
            "workdir": str(tmp_path / "work"),
            "corpora": [{"format": "wudao", "path": str(wudao)}, {"format": "pairs_tsv", "path": str(tsv)}],
            "window": {"max_length": 512, "min_length": 16, "long_short_ratio": None, **window},
        }
    )


def test_bad_records_are_quarantined_with_reasons_and_good_ones_kept(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    stats = run_ingest(config)
    quarantined = {k: v for k, v in stats.dropped.items() if k != "too_short_window"}
    assert quarantined == {
        "invalid_utf8": 1,
        "invalid_json": 1,
        "missing_field": 1,
        "wrong_type": 1,
        "empty_text": 1,
        "not_an_object": 1,
        "document_too_long": 1,
        "wrong_column_count": 1,
        "invalid_label": 1,
    }
    assert stats.details["quarantined"] == 9
    assert stats.details["documents"] == 3 and stats.details["human_pairs"] == 2
    workdir = Workdir(tmp_path / "work")
    files = sorted(workdir.quarantine.glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    where = {(Path(r["file"]).name, r["line"]): r["reason"] for r in rows}
    assert where[("bad.jsonl", 2)] == "invalid_utf8"
    assert where[("bad.jsonl", 3)] == "invalid_json"
    assert where[("bad.jsonl", 8)] == "document_too_long"
    assert where[("pairs.txt", 2)] == "wrong_column_count"
    assert where[("pairs.txt", 3)] == "invalid_label"
    passages = pq.read_table(workdir.ingested)
    assert {d.split(":")[1] for d in passages["doc_id"].to_pylist()} == {"ok-1", "ok-2", "ok-3"}
    assert any(t.startswith("ABC123：") for t in passages["text"].to_pylist())  # normalised once, at ingest
    assert pq.read_table(workdir.human_pairs)["label"].to_pylist() == [1.0, 0.0]
    assert all(i["complete"] for i in stats.details["inputs"])  # bad records do not cut a shard short


def test_strict_stops_at_the_first_bad_record_naming_file_and_line(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    with pytest.raises(StrictModeError) as info:
        run_ingest(config, strict=True)
    assert str(info.value).startswith(f"{tmp_path / 'bad.jsonl'}:2: invalid_utf8")


def test_missing_corpus_path_fails_before_any_work(tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        {"workdir": str(tmp_path / "work"), "corpora": [{"format": "wudao", "path": str(tmp_path / "nope/*.jsonl")}]}
    )
    with pytest.raises(CorpusPathError, match="nope"):
        run_ingest(config)
    assert not (tmp_path / "work").exists()


def test_limit_and_rerun_replaces_the_previous_output(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert run_ingest(config).details["documents"] == 3
    stats = run_ingest(config, limit=1)
    assert stats.details["documents"] == 1
    assert [i["complete"] for i in stats.details["inputs"]] == [False, False]  # cut short: not covered
    assert len({d for d in pq.read_table(Workdir(tmp_path / "work").ingested)["doc_id"].to_pylist()}) == 1


def test_length_sampling_keeps_long_passages_and_thins_short_ones(tmp_path: Path) -> None:
    sentence = "这是一个用于测试长度分层抽样的句子。"
    docs = [{"id": f"long-{i}", "text": f"第{i}篇。" + sentence * 40} for i in range(30)]
    docs += [{"id": f"short-{i}", "text": f"第{i}篇短文。" + sentence * 5} for i in range(300)]
    corpus = tmp_path / "mix.jsonl"
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    base = {"workdir": str(tmp_path / "w"), "corpora": [{"format": "wudao", "path": str(corpus)}]}
    stats = run_ingest(RunConfig.model_validate({**base, "window": {"max_length": 1024, "long_short_ratio": 2.0}}))
    short = stats.details["short_passages"]
    assert stats.details["long_passages"] == 30
    assert 8 <= short <= 25  # about 30 / 2, chosen by a seeded hash
    assert stats.dropped["sampled_out"] == 300 - short and stats.output == 30 + short
    again = run_ingest(RunConfig.model_validate({**base, "window": {"max_length": 1024, "long_short_ratio": 2.0}}),
                       fresh=True)  # fmt: skip
    assert again.details["short_passages"] == short  # deterministic
    everything = run_ingest(RunConfig.model_validate({**base, "window": {"long_short_ratio": None}}))
    assert (everything.details["long_passages"], everything.details["short_passages"]) == (30, 300)
    assert sum(everything.details["length_histogram"].values()) == 330


def test_a_rerun_skips_shards_whose_output_is_current(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    run_ingest(config)
    workdir = Workdir(tmp_path / "work")
    mtimes = {p: p.stat().st_mtime_ns for p in workdir.ingested.glob("*.parquet")}
    again = run_ingest(config)
    assert again.details["documents"] == 3  # the recorded stats, no reading
    assert {p: p.stat().st_mtime_ns for p in workdir.ingested.glob("*.parquet")} == mtimes
    changed = run_ingest(config.model_copy(update={"window": config.window.model_copy(update={"min_length": 20})}))
    assert changed.details["documents"] == 3 and any(
        p.stat().st_mtime_ns != mtimes.get(p) for p in workdir.ingested.glob("*.parquet")
    )  # a changed setting reruns it


def test_fresh_rereads_a_shard_under_a_limit_too(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    run_ingest(config, limit=2)
    workdir = Workdir(tmp_path / "work")
    mtimes = {p: p.stat().st_mtime_ns for p in workdir.ingested.glob("*.parquet")}
    assert run_ingest(config, limit=2).details["documents"] == 2  # recorded: nothing read
    assert {p: p.stat().st_mtime_ns for p in workdir.ingested.glob("*.parquet")} == mtimes
    assert run_ingest(config, limit=2, fresh=True).details["documents"] == 2
    assert all(p.stat().st_mtime_ns != mtimes[p] for p in workdir.ingested.glob("*.parquet"))  # read again
