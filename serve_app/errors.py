"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from serve_app.ray_compat import OpenAIHTTPException

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None,
    type_: str | None = None,
):
    return {
        "error": {
            "message": message,
            "type": type_ or _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


class GatewayError(Exception):
    """A client mistake found by the gateway; rendered as OpenAI error JSON by its handler."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type_  # None: from the status (OpenAI's 429s carry their own types)

    def body(self) -> dict:
        return error_body(
            self.status, self.message, param=self.param, code=self.code, type_=self.type
        )


def model_not_found(name: str) -> GatewayError:
    """404 (not 403) for a model a key may not use too: do not reveal that it exists."""
    return GatewayError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status_code=status)


def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":  # its loc is a byte offset, not a parameter
        return openai_error(400, "The request body is not valid JSON.", code="invalid_json")
    # Drop "body" and pydantic's validator wrappers (e.g. "function-wrap[...]") from the path.
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and "[" not in str(p)]
    where = ".".join(loc)
    msg = first.get("msg", "invalid request")
    message = f"Invalid request: {msg}" + (f" (at `{where}`)" if where else "")
    return openai_error(400, message, param=where or None, code="invalid_parameter")


def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return openai_error(exc.status_code, str(exc.detail))


def _openai_handler(request: Request, exc: OpenAIHTTPException) -> JSONResponse:
    # Ray's default handler wraps the engine's message in internal details; keep it clean.
    return openai_error(exc.status_code, exc.message)


def _gateway_handler(request: Request, exc: GatewayError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def install_error_handlers(app: FastAPI) -> None:
    """OpenAI error JSON for malformed bodies, bad params, unknown paths and engine errors.

    Ray's own validation handler returns 500 when the invalid input is raw bytes (bad JSON);
    these handlers run first (FastAPI's exception middleware is innermost).
    """
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(OpenAIHTTPException, _openai_handler)
    app.add_exception_handler(GatewayError, _gateway_handler)
