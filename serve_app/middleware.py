"""API-key check as a pure ASGI middleware: cheap, and runs before any body parsing."""

from __future__ import annotations

import json
import logging
from typing import Any

from serve_app.auth import KeyChecker, KeyStore
from serve_app.config import AuthConfig
from serve_app.errors import error_body, model_not_found

HEALTH_PATH = "/health"
# Served without a key: liveness probes must not need secrets.
OPEN_PATHS = frozenset({HEALTH_PATH, "/-/healthz", "/-/routes"})
logger = logging.getLogger("ray.serve")

_UNAUTHORIZED = json.dumps(
    error_body(401, "Missing or invalid API key.", code="invalid_api_key")
).encode()


class ApiKeyMiddleware:
    def __init__(self, app: Any, auth: AuthConfig, model_id: str | None = None) -> None:
        self.app = app
        self._auth = auth
        # Set when the app serves exactly one model (direct gateway): per-key permissions are
        # checked here, as no routing layer sees the request.
        self._model_id = model_id
        self._not_found = json.dumps(model_not_found(model_id).body()).encode() if model_id else b""
        self._keys: KeyStore | None = None

    def _get_checker(self) -> KeyChecker:
        # Keys are read in the serving process (env var / mounted file), never at build time;
        # the store re-reads a rotated keys file by itself.
        if self._keys is None:
            self._keys = KeyStore(self._auth)
        return self._keys.checker

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _app_path(scope).rstrip("/") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        checker = self._get_checker()  # one checker for the whole request, even mid-reload
        key = checker.identify(header)
        if key is None:
            await _send_json(send, 401, _UNAUTHORIZED, (b"www-authenticate", b"Bearer"))
            return
        if self._model_id and not checker.may_use(key, self._model_id):
            await _send_json(send, 404, self._not_found)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)


def _app_path(scope: dict) -> str:
    """The path below the application's route prefix: Ray Serve keeps the full path in `path`
    and puts the prefix in `root_path` (ray/serve/_private/replica.py, Ray 2.60)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def _send_json(send: Any, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
