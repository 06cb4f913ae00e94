"""The Responses API (POST /v1/responses) through the gateway, with the official client:
served by vLLM's own implementation in the model's replica, with the gateway's auth, aliases
and per-key permissions."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import EMBED_MODEL, KEY_LIMITED

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("model", ["tiny-chat", "tiny-chat-v2"])
def test_create(local_app, model):
    r = local_app.client().responses.create(model=model, input="Hello", max_output_tokens=8)
    assert r.status in ("completed", "incomplete")  # incomplete: max_output_tokens reached
    assert r.model == model
    assert r.id.startswith("resp_")
    assert isinstance(r.output_text, str) and r.usage.output_tokens >= 1


def test_create_through_an_alias(local_app):
    r = local_app.client().responses.create(
        model="chat", input=[{"role": "user", "content": "Hi"}], max_output_tokens=4
    )
    assert r.model in ("tiny-chat", "tiny-chat-v2")


def test_stream(local_app):
    types, text = [], ""
    with local_app.client().responses.create(
        model="tiny-chat", input="Hello", max_output_tokens=8, stream=True
    ) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
    assert types[0] == "response.created"
    assert types[-1] in ("response.completed", "response.incomplete")
    assert "response.output_text.delta" in types and text


def test_named_function_tool(local_app):
    tool = {"type": "function", "name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
        "required": ["zone"], "additionalProperties": False}}
    r = local_app.client().responses.create(
        model="tiny-chat", input="Time?", tools=[tool], max_output_tokens=60,
        tool_choice={"type": "function", "name": "get_time"},
    )
    calls = [item for item in r.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_time"]


def test_tools_to_a_model_without_tool_calling(local_app):
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    with pytest.raises(openai.BadRequestError) as exc:
        local_app.client().responses.create(model="tiny-chat-v2", input="x", tools=[tool])
    assert "serving.models[].toolCalling" in exc.value.body["message"]


def test_key_permissions_apply(local_app):
    with pytest.raises(openai.NotFoundError):
        local_app.client(KEY_LIMITED).responses.create(model="tiny-chat-v2", input="x")
    with pytest.raises(openai.AuthenticationError):
        local_app.client("sk-wrong").responses.create(model="tiny-chat", input="x")


def test_embedding_model_is_refused(local_app):
    with pytest.raises(openai.BadRequestError) as exc:
        local_app.client().responses.create(model=EMBED_MODEL, input="x")
    assert "Responses API" in exc.value.body["message"]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"background": True}, "background"),
     ({"previous_response_id": "resp_123"}, "previous_response_id")],
)
def test_unsupported_parameters(local_app, kwargs, param):
    with pytest.raises(openai.BadRequestError) as exc:
        local_app.client().responses.create(model="tiny-chat", input="x", **kwargs)
    assert exc.value.body["param"] == param
    assert exc.value.body["code"] == "unsupported_parameter"


def test_stored_responses_are_not_kept(local_app):
    with pytest.raises(openai.NotFoundError) as exc:
        local_app.client().responses.retrieve("resp_123")
    assert "not stored" in exc.value.body["message"]
