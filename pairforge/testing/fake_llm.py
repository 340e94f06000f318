"""A fast, deterministic fake OpenAI-compatible LLM server, for tests, benchmarks and dry runs.

It answers ``POST /v1/chat/completions`` with valid JSON that follows the request's schema and quotes the
prompt's passage (``pairforge.testing.answers``), or with a fault (``pairforge.testing.faults``): planned per
distinct prompt, or drawn at seeded rates, switchable while it runs.

Python::

    with FakeLLM(port=0, api_key="sk-test", rates={"http_500": 0.1}, seed=0) as server:
        server.base_url        # "http://127.0.0.1:<port>/v1": generate.openai.base_url
        server.set_faults(rates={"http_500": 1.0})   # an outage, from now on
        server.received, server.faults, server.attempts

Command line (prints the base URL as its one line of output, then serves until SIGINT/SIGTERM)::

    python -m pairforge.testing.fake_llm --port 8001 [--api-key-env VAR] [--fault http_500=0.5 ...]
        [--plan http_500,ok ...] [--seed S] [--latency-ms X] [--hang-s S] [--host 127.0.0.1 [--allow-remote]]

HTTP control, for another process (same ``Authorization: Bearer`` key as the API when one is set):
``POST /_fake/faults`` with ``{"rates": {...}, "plans": [[...]], "seed": S}`` (each optional; returns the
settings), ``GET /_fake/stats`` (the counters; ``?attempts=1`` adds attempts per prompt digest),
``POST /_fake/reset`` (zero the counters), ``GET /health`` (no key needed), ``GET /v1/models``.

It listens on 127.0.0.1 only, unless ``allow_remote`` is set for another host. ``max_tokens`` is not enforced
(the ``truncated`` fault is the cut answer); the counters keep about 120 bytes per distinct prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pairforge.llm.openai_backend import is_loopback_host
from pairforge.testing.answers import fill_answer
from pairforge.testing.faults import FaultBook, prompt_digest
from pairforge.testing.http_server import HttpServer, Request, Response
from pairforge.testing.passage import Picker, pick_sentences
from pairforge.testing.routes import route

MAX_BODY = 8 * 1024 * 1024  # request bytes
MAX_WAIT_S = 60.0  # the longest latency or hang a request may be told to take
START_S = 10.0


class FakeLLM:
    """The server; ``with FakeLLM(...) as server:`` runs it on a thread of its own (``serve`` runs it in a loop
    of the caller's, as the command line does). ``api_key=None``: no authentication."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        plans: Sequence[Sequence[str]] = (),
        rates: Mapping[str, float] | None = None,
        seed: int = 0,
        latency_s: float = 0.0,
        hang_s: float = 2.0,
        max_body: int = MAX_BODY,
        allow_remote: bool = False,
        picker: Picker = pick_sentences,
    ) -> None:
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(f"host {host!r} is not a loopback address; pass allow_remote to listen on it")
        if not 0 <= latency_s <= MAX_WAIT_S or not 0 < hang_s <= MAX_WAIT_S:
            raise ValueError(f"latency_s must be in [0, {MAX_WAIT_S}] and hang_s in (0, {MAX_WAIT_S}]")
        self.host, self.port, self.api_key, self.seed = host, port, api_key, seed
        self.latency_s, self.hang_s, self.max_body, self.picker = latency_s, hang_s, max_body, picker
        self.book = FaultBook(plans=plans, rates=rates, seed=seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        """The ``/v1`` URL to give an OpenAI client (valid once the server runs)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def received(self) -> int:
        """Requests to /v1/*, authorised or not."""
        return self.book.received

    @property
    def unauthorised(self) -> int:
        return self.book.unauthorised

    @property
    def faults(self) -> Counter[str]:
        """Faults served, by kind (``ok`` included)."""
        return Counter(self.book.faults)

    @property
    def attempts(self) -> Counter[str]:
        """Completion requests per distinct prompt, keyed by ``FakeLLM.digest(prompt)``."""
        return Counter(self.book.attempts)

    @staticmethod
    def digest(prompt: str) -> str:
        """The key of ``prompt`` (the last user message) in ``attempts``."""
        return prompt_digest(prompt)

    def prompts(self) -> set[str]:
        """The digests of every distinct prompt received so far."""
        return set(self.book.attempts)

    def set_faults(
        self,
        *,
        rates: Mapping[str, float] | None = None,
        plans: Sequence[Sequence[str]] | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Switch faults at run time: new rates, new plans (numbered from the next distinct prompt) and/or a new
        draw seed; None keeps one. Answers keep the constructor's seed. Returns the settings in force."""
        return self.book.configure(rates=rates, plans=plans, seed=seed)

    def stats(self, *, per_prompt: bool = False) -> dict[str, Any]:
        """The counters, as ``GET /_fake/stats`` returns them."""
        return self.book.stats(per_prompt=per_prompt)

    def reset_counters(self) -> None:
        """Zero the counters (the fault settings stay)."""
        self.book.reset()

    def __enter__(self) -> FakeLLM:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-llm", daemon=True)
        self._thread.start()
        if not ready.wait(START_S) or self._failure is not None:
            self.__exit__()
            raise RuntimeError(f"the fake LLM did not start on {self.host}:{self.port}: {self._failure}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=START_S)

    def stop(self) -> None:
        """Ask a running server to stop (from any thread)."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                self._loop.call_soon_threadsafe(self._stop.set)

    async def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the running loop until ``stop``; ``on_ready(base_url)`` once the port is bound."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = HttpServer(self._handle, max_body=self.max_body)
        self.port = await server.start(self.host, self.port)
        try:
            if on_ready is not None:
                on_ready(self.base_url)
            await self._stop.wait()
        finally:
            await server.close()

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self.serve(lambda _: ready.set()))
        except BaseException as exc:  # reported by __enter__; a thread has nobody else to tell
            self._failure = exc
            ready.set()

    async def _handle(self, request: Request) -> Response:
        return await route(self, request)

    def answer(self, body: dict[str, Any], choice: int) -> str:
        """The valid answer to a completion request (deterministic on the request and the seed)."""
        return fill_answer(body, seed=self.seed, choice=choice, picker=self.picker)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module doc); exit 2 on a bad option or a port that cannot be bound."""
    args = _parser().parse_args(argv)
    try:
        server = FakeLLM(**_options(args))
    except ValueError as exc:
        print(f"fake_llm: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
        await server.serve(lambda url: print(url, flush=True))

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"fake_llm: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pairforge.testing.fake_llm", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--port", type=int, default=0, help="port to listen on (0: any free port; the printed URL names it)")
    add("--host", default="127.0.0.1", help="address to listen on (loopback only unless --allow-remote)")
    add("--allow-remote", action="store_true", help="allow a non-loopback --host")
    add("--api-key-env", metavar="VAR", help="demand 'Authorization: Bearer $VAR' (default: no authentication)")
    add("--fault", action="append", default=[], metavar="KIND=RATE", help="a fault rate, e.g. http_500=0.5")
    add("--plan", action="append", default=[], metavar="KIND,KIND", help="the plan of the next distinct prompt")
    add("--seed", type=int, default=0, help="seed of fault draws and answers")
    add("--latency-ms", type=float, default=0.0, help="added to every completion")
    add("--hang-s", type=float, default=2.0, help="how long the timeout fault hangs")
    add("--max-body-mb", type=float, default=MAX_BODY / 2**20, help="largest request body accepted")
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    rates = {}
    for item in args.fault:
        kind, sep, rate = item.partition("=")
        if not sep:
            raise ValueError(f"--fault {item!r}: write KIND=RATE, e.g. http_500=0.5")
        rates[kind.strip()] = float(rate)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env: the variable {args.api_key_env} is not set")
    return {
        "port": args.port,
        "host": args.host,
        "allow_remote": args.allow_remote,
        "api_key": api_key,
        "rates": rates,
        "plans": [[step.strip() for step in plan.split(",") if step.strip()] for plan in args.plan],
        "seed": args.seed,
        "latency_s": args.latency_ms / 1000,
        "hang_s": args.hang_s,
        "max_body": int(args.max_body_mb * 2**20),
    }


if __name__ == "__main__":
    sys.exit(main())
