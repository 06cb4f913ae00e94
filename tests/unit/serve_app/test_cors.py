"""CORS on the gateway's real FastAPI app (the one `build_app` serves), at the ASGI level."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.testclient import TestClient

from serve_app.app import fastapi_app
from serve_app.config import ServingConfig

ALLOWED = "https://chat.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def client(**serving: Any) -> TestClient:
    cfg = ServingConfig.model_validate({"models": [{"id": "m", "source": "x"}], **serving})
    return TestClient(fastapi_app(cfg))


def test_ray_ingress_allows_every_origin_with_credentials_upstream() -> None:
    """The reason for this module: Ray's own app answers any origin with credentials."""
    from serve_app.ray_compat import init_ingress_app as init

    (cors,) = [m for m in init().user_middleware if m.cls is CORSMiddleware]
    assert cors.kwargs["allow_origins"] == ["*"] and cors.kwargs["allow_credentials"] is True


def test_default_sends_no_cors_headers() -> None:
    c = client()
    r = c.options("/v1/chat/completions", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert not any(h.startswith("access-control-") for h in r.headers)
    r = c.get("/health", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert not any(h.startswith("access-control-") for h in r.headers)


def test_listed_origin_gets_a_preflight_without_a_key_and_without_credentials() -> None:
    c = client(corsOrigins=[ALLOWED])
    r = c.options("/v1/chat/completions", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert r.status_code == 200  # answered before the API-key check: preflights carry no key
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in r.headers
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    # A request without a key is refused, and the browser may read why.
    r = c.get("/v1/models", headers={"Origin": ALLOWED})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == ALLOWED


def test_other_origin_is_refused() -> None:
    c = client(corsOrigins=[ALLOWED])
    r = c.options("/v1/chat/completions", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = c.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origin", ["*", "https://a.example/", "chat.example.com",
                                    "https://A.example", "ftp://a.example"])
def test_origin_must_be_exact(origin: str) -> None:
    with pytest.raises(ValueError, match=r"corsOrigins\.0"):
        ServingConfig.model_validate({"models": [{"id": "m", "source": "x"}],
                                      "corsOrigins": [origin]})
