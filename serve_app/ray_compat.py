"""Every import of Ray's private modules (`ray.llm._internal`, `ray.*._private`) in serve_app/.

Ray Serve LLM does not export these names publicly at the pinned release (ray[serve]==2.60.0,
requirements-dev.txt). Keeping them in one module means a Ray upgrade that moves them touches
this file only; everything else imports them from here. Import nothing private elsewhere.
"""

from __future__ import annotations

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
from ray.llm._internal.serve.utils.batcher import Batcher

__all__ = [
    "DEFAULT_ENDPOINTS",
    "Batcher",
    "EmbeddingCompletionRequest",
    "ModelCard",
    "ModelList",
    "OpenAIHTTPException",
    "ScoreRequest",
    "ScoreResponse",
    "init_ingress_app",
    "to_model_metadata",
]
