"""Calls from the gateway to the served embed/score/generate models through deployment handles
(the LLMServer deployments the ingress already holds: no HTTP hop, no second copy of a model).

`call(model_id, method, body)` is the ingress's own handle path (`GatewayIngress._call_model`):
an async generator of LLMServer responses; errors arrive as `ErrorResponse` objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from serve_app.errors import GatewayError
from serve_app.ray_compat import EmbeddingCompletionRequest, ScoreRequest


def is_error(item: Any) -> bool:
    """An LLMServer error answer (ErrorResponse of Ray's or vLLM's class: duck-typed, since the
    public `ray.serve.llm` classes are subclasses of the ones the server returns)."""
    error = getattr(item, "error", None)
    return error is not None and hasattr(error, "message") and hasattr(error, "code")


CallModel = Callable[[str, str, Any], AsyncIterator[Any]]
EMBED_BATCH = 64  # texts per embeddings call: bounded request size, still few round trips


async def _first(call: CallModel, model: str, method: str, body: Any) -> Any:
    async for item in call(model, method, body):
        first = item[0] if isinstance(item, list) else item
        if is_error(first):
            raise GatewayError(
                502 if first.error.code >= 500 else 400,
                f"Model `{model}` ({method}) failed: {first.error.message}",
                code="upstream_model_error",
            )
        return first
    raise GatewayError(502, f"Model `{model}` ({method}) returned nothing.",
                       code="upstream_model_error")


async def embed(call: CallModel, model: str, texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts`, in order. Inputs longer than the model's max_model_len are
    truncated by vLLM (`truncate_prompt_tokens=-1`), never refused mid-ingest."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start:start + EMBED_BATCH]
        body = EmbeddingCompletionRequest(model=model, input=batch, truncate_prompt_tokens=-1)
        response = await _first(call, model, "embeddings", body)
        # Duck-typed: LLMServer answers with vLLM's/Ray's internal response classes, of which
        # the public `ray.serve.llm` ones are subclasses (an isinstance check fails).
        if not isinstance(getattr(response, "data", None), list):
            raise GatewayError(502, f"Model `{model}` did not return embeddings.",
                               code="upstream_model_error")
        data = sorted(response.data, key=lambda d: d.index)
        vectors.extend(list(map(float, d.embedding)) for d in data)
    if len(vectors) != len(texts):
        raise GatewayError(502, f"Model `{model}` returned {len(vectors)} embeddings for"
                           f" {len(texts)} inputs.", code="upstream_model_error")
    return vectors


async def score(call: CallModel, model: str, query: str, documents: list[str]) -> list[float]:
    """Relevance of each document to the query from a score (cross-encoder) model."""
    body = ScoreRequest(model=model, text_1=query, text_2=documents)
    response = await _first(call, model, "score", body)
    if not isinstance(getattr(response, "data", None), list):
        raise GatewayError(502, f"Model `{model}` did not return scores.",
                           code="upstream_model_error")
    scores = [0.0] * len(documents)
    for item in response.data:
        scores[item.index] = float(item.score)
    return scores
