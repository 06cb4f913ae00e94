"""`gateway: direct`: one application per model, Ray Serve LLM direct streaming.

The LLMServer replica is itself the HTTP ingress (vLLM's own FastAPI app, reached through
Ray's HAProxy and LLMRouter), so no Python hop sits on the token stream. The API-key check is
added to that app as a pure ASGI middleware. Needs the cluster env of
`serve_config.cluster_env` (RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING=1 and HAProxy).
"""

from __future__ import annotations

from typing import Any

from ray.serve.deployment import Application
from ray.serve.llm import LLMServer, build_openai_app

from serve_app import replica_metric
from serve_app.config import AuthConfig, ServingConfig
from serve_app.cors import apply_cors
from serve_app.llm_config import llm_config
from serve_app.middleware import ApiKeyMiddleware

_AUTH_KEY = "llm_platform_auth"
_CORS_KEY = "llm_platform_cors_origins"


class AuthLLMServer(LLMServer):
    """LLMServer whose native HTTP app checks API keys before vLLM sees the request."""

    async def start(self) -> None:
        await super().start()
        replica_metric.mark_serving(self._llm_config.model_id)

    async def __serve_build_asgi_app__(self) -> Any:
        app = await super().__serve_build_asgi_app__()
        extra = self._llm_config.experimental_configs
        auth = AuthConfig.model_validate(extra[_AUTH_KEY])
        # vLLM builds its middleware stack eagerly; reset it so ours is included.
        app.middleware_stack = None
        if auth.enabled:
            app.add_middleware(ApiKeyMiddleware, auth=auth, model_id=self._llm_config.model_id)
        apply_cors(app, extra[_CORS_KEY])
        return app


def build_direct_app(args: dict[str, Any]) -> Application:
    """Serve application builder for one model: args = {"serving": ..., "modelId": ...}."""
    cfg = ServingConfig.model_validate(args["serving"])
    spec = cfg.model(args["modelId"])
    config = llm_config(
        spec,
        cfg,
        server_cls=AuthLLMServer,
        experimental_configs={
            _AUTH_KEY: cfg.auth.model_dump(mode="json"),
            _CORS_KEY: list(cfg.cors_origins),
        },
    )
    return build_openai_app({"llm_configs": [config]})
