"""Every import of Ray's private modules (`ray.llm._internal`, `ray.*._private`) in serve_app/,
and of vLLM's internals (its OpenAI serving classes), plus the one read of a private attribute.

Ray Serve LLM does not export these names publicly at the pinned release (ray[serve]==2.60.0,
requirements-dev.txt). Keeping them in one module means a Ray upgrade that moves them touches
this file only; everything else imports them from here. Import nothing private elsewhere.
"""

from __future__ import annotations

from typing import Any

from ray.llm._internal.common.utils.lora_utils import get_lora_model_ids
from ray.llm._internal.serve.core.configs.openai_api_models import (
    EmbeddingCompletionRequest,
    ModelCard,
    ModelList,
    OpenAIHTTPException,
    ScoreRequest,
    ScoreResponse,
    to_model_metadata,
)
from ray.llm._internal.serve.core.ingress.ingress import DEFAULT_ENDPOINTS
from ray.llm._internal.serve.core.ingress.ingress import init as init_ingress_app
from ray.llm._internal.serve.core.protocol import RawRequestInfo
from ray.llm._internal.serve.utils.batcher import Batcher
from vllm.entrypoints.openai.responses.protocol import ResponsesRequest, ResponsesResponse
from vllm.entrypoints.serve.engine.protocol import ErrorResponse as VLLMErrorResponse
from vllm.exceptions import VLLMClientError


def responses_serving(engine: Any) -> Any:
    """vLLM's OpenAIServingResponses of an LLMServer's VLLMEngine, or None.

    Ray's VLLMEngine.start() runs vLLM's `init_app_state` into a private `_app_state`, which
    builds `openai_serving_responses` for every generate model
    (vllm/entrypoints/generate/api_router.py), but exposes no method for it (ray #55631).
    """
    state = getattr(engine, "_app_state", None)
    return getattr(state, "openai_serving_responses", None)


__all__ = [
    "DEFAULT_ENDPOINTS",
    "Batcher",
    "EmbeddingCompletionRequest",
    "ModelCard",
    "ModelList",
    "OpenAIHTTPException",
    "RawRequestInfo",
    "ResponsesRequest",
    "ResponsesResponse",
    "ScoreRequest",
    "ScoreResponse",
    "VLLMClientError",
    "VLLMErrorResponse",
    "get_lora_model_ids",
    "init_ingress_app",
    "responses_serving",
    "to_model_metadata",
]
