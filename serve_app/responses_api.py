"""POST /v1/responses on the ingress gateway: the OpenAI Responses API for every chat model.

A mixin of GatewayIngress, so a Responses call takes the same path as chat (auth middleware,
`_get_response`: per-key permissions, aliases, tool-calling check) and is then served by vLLM's
own Responses implementation in the model's replica (`GatewayLLMServer.responses`).

Not supported, with an OpenAI-style error: stored responses (vLLM keeps them in one replica's
memory only, and only with VLLM_ENABLE_RESPONSES_API_STORE), hence `previous_response_id`,
`background` and GET / DELETE / cancel of a response id. `store: true` (the API's default) is
accepted and ignored, as vLLM does.

The `file_search` tool is run here, by the gateway, over the caller's vector stores
(serve_app/rag/file_search.py); vLLM never sees it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from serve_app.errors import GatewayError
from serve_app.rag.file_search import parse_tools, rewrite_stream
from serve_app.ray_compat import OpenAIHTTPException, ResponsesRequest, VLLMErrorResponse

_NOT_STORED = (
    "Responses are not stored by this platform (`store` is ignored), so there is no `{}` to"
    " read. Send the whole conversation in `input` instead of `previous_response_id`."
)


def reject_unsupported(body: Any) -> None:
    if getattr(body, "background", False):
        raise GatewayError(
            400, "`background` is not supported: responses are not stored, so a background"
            " response could not be read back.", param="background", code="unsupported_parameter",
        )
    if getattr(body, "previous_response_id", None):
        raise GatewayError(
            400, _NOT_STORED.format(body.previous_response_id), param="previous_response_id",
            code="unsupported_parameter",
        )


async def _joined(first: Any, rest: AsyncGenerator[Any, None]) -> AsyncGenerator[str, None]:
    """The replica sends SSE strings in batches (lists); the client gets them in order."""
    yield "".join(first)
    async for batch in rest:
        yield "".join(batch)


class ResponsesRoutes:
    """Route methods for GatewayIngress (they need its `_get_response`)."""

    async def responses(self, body: ResponsesRequest, request: Request) -> Response:
        reject_unsupported(body)
        search, other_tools = parse_tools(body.tools)
        answer = None
        if search is not None:  # run by the gateway, never sent to vLLM (rag/file_search.py)
            answer, body = await self.file_search(  # type: ignore[attr-defined]
                search, other_tools, body, request
            )
        stream = self._get_response(  # type: ignore[attr-defined]
            body=body, call_method="responses", raw_request=request
        )
        first = await stream.__anext__()
        if isinstance(first, VLLMErrorResponse):
            raise OpenAIHTTPException(
                message=first.error.message, status_code=first.error.code, type=first.error.type
            )
        if isinstance(first, dict):
            return JSONResponse(answer.response(first) if answer else first)
        events = _joined(first, stream)
        if answer is not None:
            events = rewrite_stream(answer, events)
        return StreamingResponse(events, media_type="text/event-stream")

    async def stored_response(self, response_id: str) -> Response:
        raise GatewayError(404, _NOT_STORED.format(response_id), code="response_not_found")


# Route decorators for make_fastapi_ingress, added to Ray's DEFAULT_ENDPOINTS.
RESPONSES_ENDPOINTS = {
    "responses": lambda app: app.post("/v1/responses"),
    "stored_response": lambda app: app.api_route(
        "/v1/responses/{response_id:path}", methods=["GET", "DELETE", "POST"]
    ),
}
