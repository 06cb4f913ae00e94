"""ASGI middleware of the gateway: refuses oversized bodies with 413 before reading them, counts
the bytes of the body (the gate's prompt bound), and adds the rate-limit headers the gate left
in the request's state to whatever answer goes out (200, 429, or a stream)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from serve_app.errors import error_body
from serve_app.tenants.gate import BODY_BYTES_STATE, HEADERS_STATE


class _BodyTooLargeError(Exception):
    pass


def _too_large(limit: int) -> bytes:
    return json.dumps(
        error_body(413, f"The request body is larger than {limit} bytes.",
                   code="request_too_large", type_="invalid_request_error")
    ).encode()


class TenantsHttpMiddleware:
    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self._max = max_body_bytes
        self._body = _too_large(max_body_bytes)

    async def _refuse(self, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self._max:
                    await self._refuse(send)
                    return
                break
        state = scope.setdefault("state", {})
        state[BODY_BYTES_STATE] = 0
        refused = False

        async def counting_receive() -> dict:
            nonlocal refused
            message = await receive()
            if message["type"] == "http.request":
                state[BODY_BYTES_STATE] += len(message.get("body", b""))
                if state[BODY_BYTES_STATE] > self._max:  # a chunked body without a length
                    refused = True
                    await self._refuse(send)
                    raise _BodyTooLargeError
            return message

        async def send_with_headers(message: dict) -> None:
            if refused:  # the 413 went out; drop whatever the app tries to answer
                return
            if message["type"] == "http.response.start":
                extra = state.get(HEADERS_STATE)
                if extra:
                    message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        with contextlib.suppress(_BodyTooLargeError):  # answered with 413 already
            await self.app(scope, counting_receive, send_with_headers)
