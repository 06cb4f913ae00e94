"""The gateway's check of `tools` requests against each model's `toolCalling` config.

vLLM answers a tools request to an engine without a tool-call parser with a 400 that names its
command-line flags (`requires --tool-call-parser to be set`, vllm/renderers/online_renderer.py),
which means nothing to a client of this platform. The gateway answers first, naming the config
key that enables it. Pure (no Ray).
"""

from __future__ import annotations

from typing import Any

from serve_app.config import ServingConfig
from serve_app.errors import GatewayError


def base_model_id(model: str) -> str:
    """`<model>:<adapter>` (a LoRA adapter, Ray Serve LLM's convention) -> `<model>`."""
    return model.split(":", 1)[0]


def tool_models(cfg: ServingConfig) -> frozenset[str]:
    """Ids of the models configured with toolCalling."""
    return frozenset(m.id for m in cfg.models if m.tool_calling is not None)


def asks_for_tools(body: Any) -> bool:
    """True when the body offers tools the model may or must call (tool_choice auto, required
    or a named function; vLLM's request validator turns an absent tool_choice into auto)."""
    return bool(getattr(body, "tools", None)) and getattr(body, "tool_choice", None) not in (
        None,
        "none",
    )


def require_tool_calling(body: Any, enabled: frozenset[str]) -> None:
    """Raise a 400 naming `serving.models[].toolCalling` if the body's (resolved) model cannot
    call tools."""
    model = getattr(body, "model", None) or ""
    if asks_for_tools(body) and base_model_id(model) not in enabled:
        raise GatewayError(
            400,
            f"Model `{base_model_id(model)}` is not configured for tool calling: its"
            " `serving.models[].toolCalling` (a vLLM tool-call parser) is not set. Send the"
            ' request without `tools` or with tool_choice "none", or use a model that has it.',
            param="tools",
            code="tool_calling_not_enabled",
        )
