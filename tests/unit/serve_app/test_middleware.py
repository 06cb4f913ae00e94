"""The API-key middleware at the ASGI level: open paths under any route prefix, keys elsewhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from serve_app.config import AuthConfig
from serve_app.middleware import ApiKeyMiddleware


def call(path: str, root_path: str = "", key: str | None = None) -> int:
    """Status the middleware answers, or 200 when it passes the request on."""
    sent: list[dict[str, Any]] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    scope = {"type": "http", "path": path, "root_path": root_path, "headers": headers}
    mw = ApiKeyMiddleware(app, auth=AuthConfig(keys_env_var="EDGE_TEST_KEYS"))
    asyncio.run(mw(scope, None, send))
    return sent[0]["status"]


@pytest.mark.parametrize(("path", "root"), [("/health", ""), ("/llm/health", "/llm"),
                                            ("/llm/-/healthz", "/llm")])
def test_health_needs_no_key_under_any_route_prefix(path: str, root: str) -> None:
    assert call(path, root) == 200


def test_everything_else_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_KEYS", "sk-edge-test-0123456789")
    assert call("/llm/v1/models", "/llm") == 401
    assert call("/health/../v1/models") == 401
    assert call("/llm/v1/models", "/llm", key="sk-edge-test-0123456789") == 200
