"""CORS from config: only the listed origins, no credentials; none listed = no CORS headers.

Ray Serve LLM's ingress app (`ray.llm._internal.serve.core.ingress.ingress.init`, Ray 2.60.0)
adds Starlette's CORSMiddleware with `allow_origins=["*"]` and `allow_credentials=True`, which
echoes back any `Origin` with credentials allowed; vLLM's own app (the direct gateway) allows
every origin too (`--allowed-origins` defaults to `["*"]`). `apply_cors` replaces either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware

# What the OpenAI API needs from a browser: bearer keys travel in the Authorization header,
# which CORS treats as a request header to allow, not as a credential (cookies are not used).
ALLOW_METHODS = ("GET", "POST", "OPTIONS")
PREFLIGHT_MAX_AGE_S = 600


def apply_cors(app: Any, origins: Sequence[str]) -> None:
    """Drop every CORSMiddleware already on `app` (a Starlette/FastAPI app whose middleware stack
    is not built yet) and, if `origins` is not empty, add one for exactly those origins.

    Call it after the API-key middleware is added: the last one added runs first, so preflight
    requests (which carry no key) are answered here, and a 401 still carries CORS headers.
    """
    app.user_middleware = [m for m in app.user_middleware if m.cls is not CORSMiddleware]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_credentials=False,
            allow_methods=list(ALLOW_METHODS),
            allow_headers=["*"],
            max_age=PREFLIGHT_MAX_AGE_S,
        )
