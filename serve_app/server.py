"""LLMServer variant for the ingress gateway: first token at once, later tokens batched.

Ray Serve LLM batches a stream's chunks every `stream_batching_interval_ms` (default 50) to
cut per-token RPCs between the LLMServer and the ingress, but it also holds the *first* chunk
for a whole interval, which adds up to that interval to time-to-first-token. This server
sends the first chunk as soon as the engine produces it and batches the rest as before.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ray.serve.llm import LLMServer

from serve_app import faults
from serve_app.ray_compat import Batcher


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


class GatewayLLMServer(LLMServer):
    def _batch_output_stream(self, generator: AsyncGenerator[Any, None]) -> Any:
        return first_then_batched(generator, self._get_batch_interval_ms())

    async def _run_request(self, request: Any, **kwargs: Any) -> Any:
        model_id = self._llm_config.model_id
        if faults.fails(model_id):  # test hook, off unless local mode's environment sets it
            return faults.error_stream(model_id)
        return await super()._run_request(request, **kwargs)
