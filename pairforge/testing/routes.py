"""The fake LLM's HTTP routes: the OpenAI ones it serves (chat completions, models) and its control endpoints
(``/_fake/faults``, ``/_fake/stats``, ``/_fake/reset``, ``/health``). See ``pairforge.testing.fake_llm``."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pairforge.testing.faults import prompt_digest
from pairforge.testing.http_server import Request, Response, error_body
from pairforge.testing.passage import prompt_of

if TYPE_CHECKING:
    from pairforge.testing.fake_llm import FakeLLM

MAX_CHOICES = 16  # the largest ``n`` served
MALFORMED = '{"queries": [{"type": "factoid", "evidence": 长江, "query": }'
REFUSAL = "抱歉，我无法完成这个请求。"
_Route = Callable[["FakeLLM", Request], Awaitable[Response]]


async def route(server: FakeLLM, request: Request) -> Response:
    """Authenticate (every path but /health), count /v1/* requests, and dispatch."""
    path = request.path.rstrip("/") or "/"
    if path == "/health":
        return Response.of_json(200, {"status": "ok"})
    authorised = _authorised(server.api_key, request.headers.get("authorization", ""))
    if path == "/v1" or path.startswith("/v1/"):
        server.book.count(authorised=authorised)
    if not authorised:
        return Response.of_json(401, error_body("invalid api key", "authentication_error"))
    handler = _ROUTES.get((request.method, path))
    if handler is None:
        known = any(p == path for _, p in _ROUTES)
        return Response.of_json(405 if known else 404, error_body(f"no route {request.method} {request.path}"))
    return await handler(server, request)


def _authorised(api_key: str | None, header: str) -> bool:
    return api_key is None or hmac.compare_digest(header.encode(), f"Bearer {api_key}".encode())


def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return Response.of_json(400, error_body("the body is not JSON"))
    return body if isinstance(body, dict) else Response.of_json(400, error_body("the body must be a JSON object"))


async def _completions(server: FakeLLM, request: Request) -> Response:
    body = _json_object(request)
    if isinstance(body, Response):
        return body
    n = body.get("n") or 1
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return Response.of_json(400, error_body("messages must be a non-empty list"))
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHOICES:
        return Response.of_json(400, error_body(f"n must be an integer in [1, {MAX_CHOICES}]"))
    digest = prompt_digest(prompt_of(body))
    fault = server.book.choose(digest)
    if server.latency_s:
        await asyncio.sleep(server.latency_s)
    if fault == "http_500":
        return Response.of_json(500, error_body("injected failure", "server_error"))
    if fault == "timeout":
        await asyncio.sleep(server.hang_s)
        fault = "ok"  # the client has given up by now
    try:
        choices = [] if fault == "empty_choices" else [_choice(server, body, fault, i) for i in range(n)]
    except (TypeError, ValueError, RecursionError) as exc:  # a schema too broken to follow
        return Response.of_json(400, error_body(f"cannot follow the response_format schema: {exc}"))
    payload = _completion(body, digest, choices)
    if fault == "broken_body":
        raw = json.dumps(payload, ensure_ascii=False).encode()
        return Response(200, raw[: len(raw) // 2])
    return Response.of_json(200, payload)


def _choice(server: FakeLLM, body: dict[str, Any], fault: str, index: int) -> dict[str, Any]:
    if fault in ("malformed", "empty_content", "refusal"):
        content, finish = {"malformed": MALFORMED, "empty_content": "", "refusal": REFUSAL}[fault], "stop"
    else:
        content, finish = server.answer(body, index), "stop"
        if fault == "truncated":
            content, finish = content[: len(content) // 2], "length"
    return {"index": index, "message": {"role": "assistant", "content": content}, "finish_reason": finish}


def _completion(body: dict[str, Any], digest: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat.completion; usage counts about two characters a token."""
    prompt_chars = sum(_chars(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    completion = sum(len(c["message"]["content"]) for c in choices) // 2
    return {
        "id": f"chatcmpl-fake-{digest[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_chars // 2,
            "completion_tokens": completion,
            "total_tokens": prompt_chars // 2 + completion,
        },
    }


def _chars(content: Any) -> int:
    if isinstance(content, list):
        return sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return len(content) if isinstance(content, str) else 0


async def _models(server: FakeLLM, request: Request) -> Response:
    return Response.of_json(200, {"object": "list", "data": [{"id": "fake-llm", "object": "model"}]})


async def _set_faults(server: FakeLLM, request: Request) -> Response:
    body = _json_object(request)
    if isinstance(body, Response):
        return body
    unknown = set(body) - {"rates", "plans", "seed"}
    if unknown:
        return Response.of_json(400, error_body(f"unknown keys {sorted(unknown)}; known: rates, plans, seed"))
    try:
        settings = server.set_faults(rates=body.get("rates"), plans=body.get("plans"), seed=body.get("seed"))
    except ValueError as exc:
        return Response.of_json(400, error_body(str(exc)))
    return Response.of_json(200, settings)


async def _stats(server: FakeLLM, request: Request) -> Response:
    per_prompt = request.query.get("attempts", ["0"])[0].lower() in ("1", "true", "yes")
    return Response.of_json(200, server.stats(per_prompt=per_prompt))


async def _reset(server: FakeLLM, request: Request) -> Response:
    server.reset_counters()
    return Response.of_json(200, server.stats())


_ROUTES: dict[tuple[str, str], _Route] = {
    ("POST", "/v1/chat/completions"): _completions,
    ("GET", "/v1/models"): _models,
    ("POST", "/_fake/faults"): _set_faults,
    ("GET", "/_fake/stats"): _stats,
    ("POST", "/_fake/reset"): _reset,
}
