"""The body limit and header middleware at the ASGI level: 413 before the body is read (by
Content-Length) or as soon as a chunked body passes the limit; the gate's headers on answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from serve_app.tenants.gate import BODY_BYTES_STATE, HEADERS_STATE
from serve_app.tenants.http import TenantsHttpMiddleware

LIMIT = 1024


def run(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list[dict], dict]:
    sent: list[dict[str, Any]] = []
    received: list[int] = []
    scope: dict[str, Any] = {"type": "http", "path": "/v1/chat/completions", "headers": headers}

    async def receive() -> dict:
        i = len(received)
        received.append(i)
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        scope["state"][HEADERS_STATE] = [(b"x-ratelimit-limit-requests", b"30")]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(TenantsHttpMiddleware(app, max_body_bytes=LIMIT)(scope, receive, send))
    return sent, {"received": len(received), **scope.get("state", {})}


def test_content_length_over_the_limit_is_413_without_reading() -> None:
    sent, info = run([(b"content-length", str(LIMIT + 1).encode())], [b"x" * (LIMIT + 1)])
    assert sent[0]["status"] == 413 and info["received"] == 0
    body = json.loads(sent[1]["body"])
    assert body["error"]["code"] == "request_too_large"


def test_chunked_body_is_cut_off_once_past_the_limit() -> None:
    sent, info = run([], [b"x" * 600, b"x" * 600, b"x" * 600])
    assert [m["status"] for m in sent if "status" in m] == [413]
    assert info["received"] == 2  # the third chunk is never read


def test_small_body_passes_counted_and_gets_the_gates_headers() -> None:
    sent, info = run([(b"content-length", b"10")], [b"x" * 10])
    assert sent[0]["status"] == 200 and info[BODY_BYTES_STATE] == 10
    assert (b"x-ratelimit-limit-requests", b"30") in sent[0]["headers"]
