"""OpenAI API surface through the official client: models, chat and completions."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

MODELS = ["tiny-chat", "tiny-chat-v2"]


def test_list_models_includes_models_and_alias(local_app):
    ids = {m.id for m in local_app.client().models.list()}
    assert ids == {"tiny-chat", "tiny-chat-v2", "tiny-embed", "chat"}


def test_list_models_respects_per_key_allowed_models(local_app):
    from tests.e2e.conftest import KEY_LIMITED

    ids = {m.id for m in local_app.client(KEY_LIMITED).models.list()}
    assert ids == {"tiny-chat"}


def test_health_needs_no_key(local_app):
    import httpx

    assert httpx.get(f"{local_app.base_url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_chat_not_streamed(local_app, model):
    r = local_app.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert r.model == model
    assert r.choices[0].message.role == "assistant"
    assert r.usage.completion_tokens >= 1


@pytest.mark.parametrize("model", MODELS)
def test_chat_streamed(local_app, model):
    stream = local_app.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        stream=True,
    )
    chunks = list(stream)
    assert chunks and all(c.model == model for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


@pytest.mark.parametrize("model", MODELS)
def test_completion_not_streamed(local_app, model):
    r = local_app.client().completions.create(model=model, prompt="Hello", max_tokens=8)
    assert r.model == model
    assert r.choices[0].finish_reason in ("length", "stop")


@pytest.mark.parametrize("model", MODELS)
def test_completion_streamed(local_app, model):
    # The random-weight models may pick </s> first (an empty, finished stream) or <s>/<pad>,
    # which decode to "" by default: ask for 8 tokens that all show as text.
    stream = local_app.client().completions.create(
        model=model, prompt="Hello", max_tokens=8, stream=True,
        extra_body={"ignore_eos": True, "skip_special_tokens": False},
    )
    chunks = list(stream)
    assert chunks and all(c.model == model for c in chunks)
    assert sum(len(c.choices[0].text) for c in chunks if c.choices) > 0


def test_alias_streamed_names_the_answering_model(local_app):
    stream = local_app.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True,
        user="stream-user",
    )
    assert {c.model for c in stream} <= set(MODELS)
