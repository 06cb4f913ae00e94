"""LLMServer variant for the ingress gateway: first token at once, later tokens batched, and
the Responses API.

Ray Serve LLM batches a stream's chunks every `stream_batching_interval_ms` (default 50) to
cut per-token RPCs between the LLMServer and the ingress, but it also holds the *first* chunk
for a whole interval, which adds up to that interval to time-to-first-token. This server
sends the first chunk as soon as the engine produces it and batches the rest as before.

Ray Serve LLM 2.60 has no Responses API (ray issue #55631), but the vLLM engine it starts
already builds vLLM's own `OpenAIServingResponses`; `responses()` calls it, so the Responses
API is vLLM's implementation, reached through the deployment handle like chat is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from http import HTTPStatus
from typing import Any

from ray.serve.llm import LLMServer

from serve_app import faults, replica_metric
from serve_app.ray_compat import (
    Batcher,
    RawRequestInfo,
    ResponsesResponse,
    VLLMClientError,
    VLLMErrorResponse,
    responses_serving,
)


async def first_then_batched(
    generator: AsyncGenerator[Any, None], interval_ms: float | None
) -> AsyncGenerator[list[Any], None]:
    try:
        first = await generator.__anext__()
    except StopAsyncIteration:
        return
    yield [first]
    async for batch in Batcher(generator, interval_ms=interval_ms).stream():
        yield batch


async def sse_events(events: AsyncGenerator[Any, None]) -> AsyncGenerator[str, None]:
    """vLLM's streamed Responses events as server-sent events, `event:` line included, as
    vLLM's own /v1/responses route writes them (vllm/entrypoints/openai/responses/
    api_router.py)."""
    async for event in events:
        data = event.model_dump_json(indent=None, by_alias=True)
        yield f"event: {getattr(event, 'type', 'unknown')}\ndata: {data}\n\n"


class GatewayLLMServer(LLMServer):
    async def start(self) -> None:
        await super().start()
        replica_metric.mark_serving(self._llm_config.model_id)

    def _batch_output_stream(self, generator: AsyncGenerator[Any, None]) -> Any:
        return first_then_batched(generator, self._get_batch_interval_ms())

    async def _run_request(self, request: Any, **kwargs: Any) -> Any:
        model_id = self._llm_config.model_id
        if faults.fails(model_id):  # test hook, off unless local mode's environment sets it
            return faults.error_stream(model_id)
        return await super()._run_request(request, **kwargs)

    async def responses(
        self, request: Any, raw_request_info: RawRequestInfo | None = None
    ) -> AsyncGenerator[Any, None]:
        """One Responses API call. Yields a VLLMErrorResponse, or the response as a JSON dict
        (not streamed), or lists of SSE strings (streamed)."""
        await self._maybe_resolve_lora_from_multiplex()
        serving = responses_serving(self.engine)
        if serving is None:
            yield VLLMErrorResponse.model_validate({"error": {
                "message": "This model does not serve the Responses API (not a chat model).",
                "type": "invalid_request_error", "code": HTTPStatus.BAD_REQUEST.value}})
            return
        raw = RawRequestInfo.to_starlette_request_optional(raw_request_info)
        try:
            result = await serving.create_responses(request, raw)
        except (ValueError, VLLMClientError) as exc:  # as Ray's VLLMEngine.chat handles them
            yield serving.create_error_response(exc)
            return
        if isinstance(result, VLLMErrorResponse):
            yield result
        elif isinstance(result, ResponsesResponse):
            yield result.model_dump(mode="json", by_alias=True)
        else:
            async for batch in self._batch_output_stream(sse_events(result)):
                yield batch
