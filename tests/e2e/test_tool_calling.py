"""Tool calling through the official client: tiny-chat has `toolCalling: {parser: pythonic}`
(serve_app/local.py), tiny-chat-v2 has none. Named and required choices are produced by vLLM's
structured decoding, so their arguments follow the schema even with the tiny model's random
weights; `auto` leaves the choice to the model, which may answer in text."""

from __future__ import annotations

import json

import openai
import pytest

pytestmark = pytest.mark.e2e

# Bounded values only: a random-weight model under structured decoding must still finish the
# JSON within max_tokens.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Lima"]},
                "days": {"type": "integer", "enum": [1, 2, 3]},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


def _assert_valid_calls(calls) -> list[str]:
    import jsonschema

    assert calls, "expected at least one tool call"
    for call in calls:
        assert call.type == "function"
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    return [c.function.name for c in calls]


def test_named_tool_choice_returns_a_valid_call(local_app):
    r = local_app.client().chat.completions.create(
        model="tiny-chat", messages=MESSAGES, tools=TOOLS, max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert _assert_valid_calls(r.choices[0].message.tool_calls) == ["get_weather"]


def test_required_tool_choice_returns_valid_calls(local_app):
    """`required` decodes a JSON array of calls with no upper bound on its length: the random
    tiny model sometimes keeps adding calls until the context ends (finish_reason "length",
    nothing to parse). Such attempts are skipped, up to three; any other outcome must be valid
    calls that end the turn."""
    truncated = []
    for seed in (1, 2, 3):
        r = local_app.client().chat.completions.create(  # no max_tokens: the rest of the context
            model="tiny-chat", messages=MESSAGES, tools=TOOLS, tool_choice="required", seed=seed,
        )
        choice = r.choices[0]
        if choice.finish_reason == "length":
            truncated.append(r.usage.completion_tokens)
            continue
        assert choice.finish_reason == "tool_calls", choice
        assert set(_assert_valid_calls(choice.message.tool_calls)) <= set(SCHEMAS)
        return
    pytest.fail(f"every attempt ran out of context ({truncated} tokens)")


def test_named_tool_choice_streamed(local_app):
    stream = local_app.client().chat.completions.create(
        model="tiny-chat", messages=MESSAGES, tools=TOOLS, max_tokens=200, stream=True,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    name, args = None, ""
    for chunk in stream:
        deltas = (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []
        for delta in deltas:
            name = name or delta.function.name
            args += delta.function.arguments or ""
    assert name == "get_time"
    import jsonschema

    jsonschema.validate(json.loads(args), SCHEMAS["get_time"])


def test_auto_tool_choice_is_accepted(local_app):
    """`auto` (also the default when tools are sent): the model decides; the random tiny model
    usually answers in text. The point is that the request is served, not refused."""
    r = local_app.client().chat.completions.create(
        model="tiny-chat", messages=MESSAGES, tools=TOOLS, tool_choice="auto", max_tokens=16,
    )
    message = r.choices[0].message
    if message.tool_calls:
        _assert_valid_calls(message.tool_calls)
    else:
        assert message.content is not None
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


@pytest.mark.parametrize(
    "choice", ["auto", "required", {"type": "function", "function": {"name": "get_time"}}]
)
def test_model_without_tool_calling_names_the_config_key(local_app, choice):
    with pytest.raises(openai.BadRequestError) as exc:
        local_app.client().chat.completions.create(
            model="tiny-chat-v2", messages=MESSAGES, tools=TOOLS, tool_choice=choice,
            max_tokens=8,
        )
    error = exc.value.body
    assert "serving.models[].toolCalling" in error["message"]
    assert error["code"] == "tool_calling_not_enabled"


def test_tool_choice_none_works_without_tool_calling(local_app):
    """tool_choice "none" asks for no call: served by a model without a parser (one tool
    only: tiny-chat-v2 keeps the 512-token context)."""
    r = local_app.client().chat.completions.create(
        model="tiny-chat-v2", messages=MESSAGES, tools=[TIME], tool_choice="none", max_tokens=4,
    )
    assert r.choices[0].message.tool_calls in (None, [])
