"""A fault-injecting OpenAI-compatible server for tests: POST /v1/chat/completions on 127.0.0.1.

Each request gets one fault (or a valid answer). Faults come from a deterministic plan per distinct prompt
(the n-th distinct prompt the server sees follows ``plans[n]``, attempt by attempt, then answers well), or,
without plans, from seeded random ``rates``. The server demands ``Authorization: Bearer <api_key>`` and
counts every request it receives.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = (
    "ok",  # a valid answer following the request's JSON schema
    "http_500",  # an internal server error
    "timeout",  # no answer before the client's timeout
    "truncated",  # the content is valid JSON cut in half, finish_reason "length"
    "malformed",  # the content is broken JSON, finish_reason "stop"
    "empty_choices",  # HTTP 200 with ``choices: []``
    "empty_content",  # HTTP 200 with an empty message
    "refusal",  # HTTP 200, the model declines in Chinese
    "broken_body",  # HTTP 200 whose JSON body itself is cut short
)
_PASSAGE = re.compile(r"\n<passage>\n(.*)\n</passage>\n", re.S)
_SENTENCE = re.compile(r"[^。！？\n]+[。！？]?")
QUERY_TYPES = ("factoid", "keyword", "natural")
QUERY_TEMPLATES = ("{}指的是什么", "{}", "{}是什么意思")


class FaultServer:
    """Start with ``with FaultServer(...) as server:``; ``server.base_url`` is the ``/v1`` URL to configure."""

    def __init__(
        self,
        *,
        api_key: str,
        plans: Sequence[Sequence[str]] = (),
        rates: dict[str, float] | None = None,
        seed: int = 0,
        hang_s: float = 2.0,
    ) -> None:
        for fault in [f for plan in plans for f in plan] + list(rates or {}):
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}")
        self.api_key, self.plans, self.rates, self.hang_s = api_key, [list(p) for p in plans], rates or {}, hang_s
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.received = 0  # requests received, authorised or not
        self.unauthorised = 0
        self.faults: Counter[str] = Counter()  # faults served, by kind
        self.attempts: Counter[str] = Counter()  # requests per distinct prompt
        self._plan_of: dict[str, int] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def prompts(self) -> set[str]:
        """Every distinct prompt received so far."""
        with self._lock:
            return set(self.attempts)

    def choose(self, prompt: str) -> str:
        """The fault for this request of ``prompt``: its plan's next step, else a draw from the rates."""
        with self._lock:
            attempt = self.attempts[prompt]
            self.attempts[prompt] += 1
            if prompt not in self._plan_of:
                self._plan_of[prompt] = len(self._plan_of)
            index = self._plan_of[prompt]
            if index < len(self.plans) and attempt < len(self.plans[index]):
                fault = self.plans[index][attempt]
            else:
                fault = self._draw()
            self.faults[fault] += 1
            return fault

    def _draw(self) -> str:
        roll = self._random.random()
        for fault, rate in sorted(self.rates.items()):
            if roll < rate:
                return fault
            roll -= rate
        return "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the counters
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.received += 1
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    with server._lock:
                        server.unauthorised += 1
                    return self._send(401, {"error": {"message": "invalid api key", "type": "auth"}})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                request = json.loads(body)
                prompt = request["messages"][-1]["content"]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    self._serve(server.choose(prompt), request, prompt)

            def _serve(self, fault: str, request: dict[str, Any], prompt: str) -> None:
                if fault == "http_500":
                    return self._send(500, {"error": {"message": "injected failure", "type": "server_error"}})
                if fault == "timeout":
                    time.sleep(server.hang_s)
                    fault = "ok"  # the client is gone by now
                if fault == "empty_choices":
                    return self._send(200, _completion(request, []))
                answer = valid_answer(request, prompt)
                content, finish = {
                    "ok": (answer, "stop"),
                    "truncated": (answer[: len(answer) // 2], "length"),
                    "malformed": ('{"queries": [{"type": "factoid", "evidence": 长江, "query": }', "stop"),
                    "empty_content": ("", "stop"),
                    "refusal": ("抱歉，我无法完成这个请求。", "stop"),
                    "broken_body": (answer, "stop"),
                }[fault]
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                    for i in range(int(request.get("n") or 1))
                ]
                payload = _completion(request, choices)
                if fault == "broken_body":
                    raw = json.dumps(payload, ensure_ascii=False).encode()
                    return self._send_raw(200, raw[: len(raw) // 2])
                return self._send(200, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                self._send_raw(status, json.dumps(payload, ensure_ascii=False).encode())

            def _send_raw(self, status: int, raw: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def _completion(request: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": choices,
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def valid_answer(request: dict[str, Any], prompt: str) -> str:
    """JSON following the request's schema (qp or sp), quoting sentences of the prompt's passage as evidence."""
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("schema") or {}
    list_key = next(iter(schema.get("properties", {})), "queries")
    count = schema.get("properties", {}).get(list_key, {}).get("minItems", 3)
    match = _PASSAGE.search(prompt)
    sentences = [s.strip() for s in _SENTENCE.findall(match.group(1) if match else "") if len(s.strip()) >= 2]
    sentences = sentences or ["长江是中国第一长河。"]
    items = []
    for i in range(count):
        evidence = sentences[i % len(sentences)][:160]
        if list_key == "sentences":
            items.append({"evidence": evidence, "sentence": f"这段文字提到{evidence[:20]}"})
        else:
            query = QUERY_TEMPLATES[i % 3].format(evidence[:12])  # distinct items even from one sentence
            items.append({"type": QUERY_TYPES[i % 3], "evidence": evidence, "query": query})
    return json.dumps({list_key: items}, ensure_ascii=False)
