"""The Ray Serve application: Ray Serve LLM's OpenAI ingress plus auth and alias routing.

`build_app` is the import path named in the Serve config (see serve_config.py). It builds one
`LLMServer` deployment per model with `ray.serve.llm.build_llm_deployment` and one ingress
deployment: `GatewayIngress`, a subclass of Ray's `OpenAiIngress`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import FastAPI, Request
from ray import serve
from ray.serve.deployment import Application
from ray.serve.exceptions import BackPressureError
from ray.serve.llm import build_llm_deployment
from ray.serve.llm.ingress import OpenAiIngress, make_fastapi_ingress
from ray.serve.llm.openai_api_models import ChatCompletionRequest
from starlette.responses import JSONResponse

from serve_app.auth import ApiKey, KeyChecker, KeyStore
from serve_app.config import ServingConfig
from serve_app.cors import apply_cors
from serve_app.errors import GatewayError, install_error_handlers, model_not_found
from serve_app.llm_config import llm_config
from serve_app.lora import AdapterCatalog
from serve_app.middleware import HEALTH_PATH, ApiKeyMiddleware
from serve_app.rag.api import RAG_ENDPOINTS, RagRoutes
from serve_app.ray_compat import (
    DEFAULT_ENDPOINTS,
    ModelCard,
    ModelList,
    get_lora_model_ids,
    init_ingress_app,
    to_model_metadata,
)
from serve_app.responses_api import RESPONSES_ENDPOINTS, ResponsesRoutes
from serve_app.rollback import RollbackTracker, first_chunk_ok
from serve_app.routing import AliasTable
from serve_app.serve_config import INGRESS_DEPLOYMENT
from serve_app.server import GatewayLLMServer
from serve_app.tenants.gate import TenantGate, context_lengths
from serve_app.tenants.http import TenantsHttpMiddleware
from serve_app.tool_calling import require_tool_calling, tool_models

logger = logging.getLogger("ray.serve")


class GatewayIngress(ResponsesRoutes, RagRoutes, OpenAiIngress):
    """OpenAI ingress that enforces per-key model permissions and resolves aliases; serves the
    Responses API (serve_app/responses_api.py) and, with `rag.enabled`, vector stores and
    pipelines (serve_app/rag/api.py)."""

    # Async: Ray Serve awaits the constructor before the replica takes traffic
    # (ray/serve/api.py, ingress(): ASGIIngressWrapper.__init__ awaits a coroutine __init__;
    # ray/serve/_private/replica.py initialize_callable), so the Redis warm-up below is done
    # before the first request.
    async def __init__(  # type: ignore[misc]
        self, llm_deployments: dict, model_cards: dict, *, serving: dict, **kwargs: Any
    ) -> None:
        super().__init__(llm_deployments, model_cards, **kwargs)
        self._cfg = ServingConfig.model_validate(serving)
        self._aliases = AliasTable.from_config(self._cfg)
        self._names = set(self._cfg.public_names())
        self._tool_models = tool_models(self._cfg)
        self._adapters = AdapterCatalog.from_config(self._cfg, get_lora_model_ids)
        self._checker = KeyChecker([], self._cfg.auth.allowed_models)
        self._rollback = RollbackTracker(self._cfg.app_name, self._cfg.aliases)
        self._init_rag()
        if self._cfg.auth.enabled and not KeyStore(self._cfg.auth).checker.keys:
            logger.warning("auth is enabled but no API keys are configured: all calls get 401")
        self._tenants = await TenantGate.in_replica(self._cfg.tenants, context_lengths(self._cfg))

    @staticmethod
    def _key(request: Request | None) -> ApiKey | None:
        return None if request is None else request.scope.get("state", {}).get("api_key")

    def _require_visible(self, name: str, key: ApiKey | None) -> None:
        # A LoRA adapter (`<model>:<adapter>`) is a name of its own for allowedModels.
        known = name in self._names or self._adapters.may_have(name)
        if not known or (key is not None and not self._checker.may_use(key, name)):
            raise model_not_found(name)

    def _route(self, body: Any, request: Request | None) -> Any:
        """Check permissions and resolve aliases; return the body to send to the model."""
        name = getattr(body, "model", None)
        if not name:
            raise GatewayError(400, "`model` is required", param="model")
        key = self._key(request)
        self._require_visible(name, key)
        if self.is_pipeline(name):  # chat() sends pipelines elsewhere; any other route lands here
            raise GatewayError(400, f"`{name}` is a pipeline: it answers chat.completions only",
                               param="model", code="unsupported_for_pipeline")
        if name not in self._aliases:
            return body
        # Stable per caller: the `user` field if given, else the API key.
        caller = getattr(body, "user", None) or (key.name if key else "anonymous")
        self._rollback.ensure_started()
        target = self._aliases.resolve(name, caller, self._rollback.rolled_back(name))
        return body.model_copy(update={"model": target})

    async def _get_response(  # type: ignore[override]
        self, *, body: Any, call_method: str, raw_request: Request | None = None
    ) -> AsyncGenerator[Any, None]:
        """The one path every model-addressed route takes (chat, completions, embeddings,
        score, tokenize, ...): permissions and aliases are enforced here, not per route."""
        routed = self._route(body, raw_request)
        if self._adapters.may_have(routed.model) and not await self._adapters.exists(
            routed.model
        ):
            raise model_not_found(body.model)
        require_tool_calling(routed, self._tool_models)
        state = raw_request.scope.setdefault("state", {}) if raw_request else {}
        key = self._key(raw_request)
        # Per-key limits (serve_app/tenants): raises 429 before the model is called.
        ticket = await self._tenants.admit(key.name if key else None, routed.model, routed, state)
        stream = super()._get_response(
            body=ticket.body if ticket else routed, call_method=call_method,
            raw_request=raw_request,
        )
        alias = body.model if self._rollback.watches(body.model) else None
        started = time.monotonic()
        outcome = None  # for the tenant ticket: ok, error, or None (the client went away)
        try:
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                outcome = "ok"
                return
            except BackPressureError as exc:
                if alias:
                    self._rollback.record(alias, routed.model, ok=False)
                # The model's bounded queue is full: tell the client to back off and retry.
                raise GatewayError(
                    503, f"Model `{routed.model}` is overloaded; retry later.", code="overloaded"
                ) from exc
            except Exception as exc:
                if alias and getattr(exc, "status_code", 500) >= 500:
                    self._rollback.record(alias, routed.model, ok=False)
                raise
            if alias:
                ok = first_chunk_ok(first, streamed=bool(getattr(routed, "stream", False)),
                                    elapsed_s=time.monotonic() - started,
                                    max_ttft_s=self._rollback.max_ttft_s(alias))
                self._rollback.record(alias, routed.model, ok=ok)
            async for item in _chain(first, stream):
                item = ticket.observe(item) if ticket else item
                if item is not None:
                    yield item
            outcome = "ok"
        except Exception:
            outcome = "error"
            raise
        finally:  # also on GeneratorExit / cancellation: settle the tenant's reservation
            if ticket:
                ticket.close(outcome)

    async def check_health(self) -> None:
        self._rollback.ensure_started()  # verdicts reach idle replicas too

    def _call_model(self, model_id: str, method: str, body: Any) -> AsyncGenerator[Any, None]:
        """A served model by its id through its deployment handle (used by serve_app/rag)."""
        return self._get_response(body=body, call_method=method, raw_request=None)

    # FastAPI parses the body from this annotation: it must stay the request model.
    async def chat(self, body: ChatCompletionRequest, request: Request) -> Any:  # type: ignore[override]
        if self.is_pipeline(getattr(body, "model", None)):
            self._require_visible(body.model, self._key(request))
            return await self.pipeline_chat(body, request)
        return await super().chat(body, request)

    def _alias_card(self, name: str) -> ModelCard:
        if self.is_pipeline(name):
            return ModelCard(id=name, object="model", owned_by="llm-platform", permission=[],
                             metadata={"pipeline": self._pipelines[name].model_dump(
                                 mode="json", by_alias=True, include={"embedder", "generator",
                                                                      "reranker", "top_k"})})
        metadata: dict[str, Any] = {"alias_of": list(self._aliases.targets(name))}
        rollback = self._rollback.describe(name)
        if rollback is not None:
            metadata["rollback"] = rollback
        return ModelCard(
            id=name, object="model", owned_by="llm-platform", permission=[], metadata=metadata
        )

    async def models(self, request: Request) -> ModelList:  # type: ignore[override]
        self._rollback.ensure_started()
        key = self._key(request)
        cards = [
            self._model_cards[n] if n in self._model_cards else self._alias_card(n)
            for n in self._cfg.public_names()
            if key is None or self._checker.may_use(key, n)
        ]
        for base in self._adapters.paths:
            try:
                names = sorted(await self._adapters.adapters(base))
            except Exception:  # the model store is unreachable: list the rest
                logger.exception("cannot list the LoRA adapters of %s", base)
                continue
            cards += [self._adapter_card(n) for n in names
                      if key is None or self._checker.may_use(key, n)]
        return ModelList(data=cards)

    def _adapter_card(self, name: str) -> ModelCard:
        base = name.split(":")[0]
        return ModelCard(id=name, object="model", owned_by="llm-platform", permission=[],
                         metadata={"base_model": base, "lora": True})

    async def model_data(self, model: str, request: Request) -> Any:  # type: ignore[override]
        self._require_visible(model, self._key(request))
        if self._adapters.may_have(model):
            if not await self._adapters.exists(model):
                raise model_not_found(model)
            return self._adapter_card(model)
        return self._model_cards.get(model) or self._alias_card(model)


async def _chain(first: Any, rest: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    yield first
    async for item in rest:
        yield item


def fastapi_app(cfg: ServingConfig) -> FastAPI:
    app = init_ingress_app()
    install_error_handlers(app)

    @app.get(HEALTH_PATH, include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    if cfg.auth.enabled:
        # Added late so it runs early: nothing is parsed before the key is checked.
        app.add_middleware(ApiKeyMiddleware, auth=cfg.auth)
    # Before the key check: an oversized body is refused (413) before any of it is read.
    app.add_middleware(TenantsHttpMiddleware, max_body_bytes=cfg.tenants.max_body_bytes)
    apply_cors(app, cfg.cors_origins)  # outermost: answers preflights, which carry no key
    return app


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder: `args` is a ServingConfig dump (camelCase)."""
    cfg = ServingConfig.model_validate(args)
    configs = {m.id: llm_config(m, cfg, server_cls=GatewayLLMServer) for m in cfg.models}
    deployments = {mid: build_llm_deployment(c) for mid, c in configs.items()}
    cards = {mid: to_model_metadata(mid, c) for mid, c in configs.items()}
    ing = cfg.ingress
    options = {
        "name": INGRESS_DEPLOYMENT,
        "autoscaling_config": {
            "min_replicas": ing.min_replicas,
            "max_replicas": ing.max_replicas,
            "initial_replicas": ing.min_replicas,
            "target_ongoing_requests": ing.target_ongoing_requests,
        },
        "max_ongoing_requests": ing.max_ongoing_requests,
        "max_queued_requests": ing.max_queued_requests,
        "ray_actor_options": {"num_cpus": ing.cpus_per_replica},
    }
    endpoints = {
        **DEFAULT_ENDPOINTS, **RESPONSES_ENDPOINTS, **(RAG_ENDPOINTS if cfg.rag.enabled else {})
    }
    ingress_cls = make_fastapi_ingress(GatewayIngress, endpoint_map=endpoints, app=fastapi_app(cfg))
    return serve.deployment(ingress_cls, **options).bind(
        llm_deployments=deployments,
        model_cards=cards,
        serving=cfg.model_dump(mode="json", by_alias=True),
    )
