"""A minimal HTTP/1.1 server on asyncio streams, enough for OpenAI clients: keep-alive, Content-Length bodies,
``Expect: 100-continue``; everything bounded (head size, body size, idle and read time).

Measured against ``ThreadingHTTPServer`` and uvicorn on this machine (docs/operations.md, "A fake LLM"): plain
asyncio streams answered the most requests per second, need no dependency, and a hanging request (the
``timeout`` fault) costs a sleeping coroutine instead of a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024  # request line and headers
IDLE_S = 120.0  # a keep-alive connection with no new request is closed after this
READ_S = 30.0  # time allowed to receive a body once its head arrived
MAX_DISCARD = 64 * 1024 * 1024  # a refused body is read and dropped up to this size, then the connection is cut
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {411: "Length Required", 413: "Content Too Large", 431: "Request Header Fields Too Large"}
_REASONS |= {500: "Internal Server Error"}


@dataclass(slots=True)
class Request:
    """One parsed request; header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Response:
    """What to send back; ``body`` goes out as is, with its own length (a cut body is framed as sent)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any) -> Response:
        """A JSON response (UTF-8, non-ASCII kept)."""
        return cls(status, json.dumps(payload, ensure_ascii=False).encode())


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``handler`` on one listening socket until ``close``; every open connection is a task it cancels."""

    def __init__(self, handler: Handler, *, max_body: int) -> None:
        self.handler, self.max_body = handler, max_body
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port bound."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and drop every connection, hanging requests included."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _serve_connection(reader, writer, self.handler, self.max_body)
        finally:
            self._connections.discard(task)
            writer.close()


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, max_body: int
) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        while True:
            try:
                async with asyncio.timeout(IDLE_S):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                return await _send(writer, Response.of_json(431, error_body("request head too large")), close=True)
            request, problem = _parse_head(head, max_body)
            if problem is not None:
                if problem.status == 413 and request.headers.get("expect", "").lower() != "100-continue":
                    await _discard(reader, int(request.headers["content-length"]))
                return await _send(writer, problem, close=True)
            length = int(request.headers.get("content-length") or 0)
            if length and request.headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            async with asyncio.timeout(READ_S):
                request.body = await reader.readexactly(length) if length else b""
            close = request.headers.get("connection", "").lower() == "close"
            await _send(writer, await handler(request), close=close)
            if close:
                return


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    """Read and drop a refused body (bounded), so that closing the connection with the body unread does not reset
    it before the client has read the refusal."""
    left = min(length, MAX_DISCARD)
    async with asyncio.timeout(READ_S):
        while left > 0 and (chunk := await reader.read(min(left, 1 << 16))):
            left -= len(chunk)


def _parse_head(head: bytes, max_body: int) -> tuple[Request, Response | None]:
    """The request (without its body), or a response refusing it."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    request = Request("", "", {}, {})
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return request, Response.of_json(400, error_body("malformed request line"))
    url = urlsplit(parts[1])
    request.method, request.path, request.query = parts[0], url.path, parse_qs(url.query)
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            request.headers[name.strip().lower()] = value.strip()
    if parts[2] == "HTTP/1.0" and request.headers.get("connection", "").lower() != "keep-alive":
        request.headers["connection"] = "close"
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return request, Response.of_json(411, error_body("send a Content-Length body, not a chunked one"))
    length = request.headers.get("content-length", "0") or "0"
    if not length.isdigit():
        return request, Response.of_json(400, error_body("bad Content-Length"))
    if int(length) > max_body:
        return request, Response.of_json(413, error_body(f"request body over {max_body} bytes"))
    return request, None


async def _send(writer: asyncio.StreamWriter, response: Response, *, close: bool) -> None:
    head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
    headers = {"content-type": "application/json", **response.headers, "content-length": str(len(response.body))}
    if close:
        headers["connection"] = "close"
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)  # one write: no Nagle stall
    await writer.drain()


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": kind}}
