"""Fault hooks for tests: off unless the process environment turns them on.

`LLM_PLATFORM_FAULT_ERROR_MODELS=a,b` makes the listed models answer every chat and completion
request with a 500, as a broken engine would, while their replicas stay healthy: what the
canary-rollback test needs (an engine that fails to start would fail the deploy instead). Only
local mode's environment reaches these hooks: ServingConfig rejects `LLM_PLATFORM_FAULT_*` in
`env`, and the platform sets no such variable on the Ray pods.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import Any

from ray.serve.llm.openai_api_models import ErrorResponse

from serve_app.config import FAULT_ENV_PREFIX

ERROR_MODELS_ENV = FAULT_ENV_PREFIX + "ERROR_MODELS"


def fails(model_id: str) -> bool:
    names = os.environ.get(ERROR_MODELS_ENV, "")
    return model_id in {n.strip() for n in names.split(",") if n.strip()}


async def error_stream(model_id: str) -> AsyncGenerator[Any, None]:
    yield ErrorResponse.model_validate({"error": {
        "message": f"fault injected for `{model_id}` ({ERROR_MODELS_ENV})",
        "type": "InternalServerError",
        "code": 500,
    }})
