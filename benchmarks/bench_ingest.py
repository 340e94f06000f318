"""Ingest throughput: read + normalise + window + sample + write, on real Chinese text repeated to ~50 MB.

The corpus is WuDao JSONL built from ../shared/data (CMRC 2018 contexts, WuDao documents, SimCLUE sentences
grouped into paragraphs). Prints ``RESULT ingest ours=<MB/s> unit=MB/s`` last.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from pairforge.config import RunConfig
from pairforge.ingest import run_ingest

SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def real_texts() -> list[str]:
    """Documents of real text: CMRC contexts, WuDao bodies, SimCLUE sentences in groups of 20."""
    texts = []
    for name in ("cmrc2018_dev.squad.json", "cmrc2018_trial.squad.json"):
        data = json.loads((SHARED / "cmrc2018" / name).read_text(encoding="utf-8"))
        texts += [p["context"] for a in data["data"] for p in a["paragraphs"]]
    for line in (SHARED / "wudao" / "wudao_demo.jsonl").read_text(encoding="utf-8").splitlines():
        texts.append(json.loads(line)["text"])
    texts += [r["content"] for r in json.loads((SHARED / "wudao/wudao_records_jinrong.json").read_text())["RECORDS"]]
    sentences = (SHARED / "simclue" / "corpus_1w.txt").read_text(encoding="utf-8").splitlines()
    texts += ["".join(sentences[i : i + 20]) for i in range(0, len(sentences), 20)]
    return texts


def write_corpus(path: Path, target_mb: float) -> int:
    texts, written, n = real_texts(), 0, 0
    with path.open("w", encoding="utf-8") as out:
        while written < target_mb * 1e6:
            line = json.dumps({"id": f"bench-{n}", "title": "", "text": texts[n % len(texts)]}, ensure_ascii=False)
            out.write(line + "\n")
            written += len(line.encode()) + 1
            n += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        size = write_corpus(corpus, args.mb)
        config = RunConfig.model_validate(
            {
                "workdir": f"{tmp}/work",
                "corpora": [{"format": "wudao", "path": str(corpus)}],
                "normalize": {"t2s": False},
                "window": {"max_length": 1024, "min_length": 64},
            }
        )
        start = time.perf_counter()
        summary = run_ingest(config)
        seconds = time.perf_counter() - start
    mbps = size / 1e6 / seconds
    print(
        f"{size / 1e6:.1f} MB, {summary.documents:,} documents → {summary.passages:,} passages "
        f"({summary.long_passages:,} long) in {seconds:.1f} s"
    )
    print(f"RESULT ingest ours={mbps:.2f} unit=MB/s")


if __name__ == "__main__":
    main()
