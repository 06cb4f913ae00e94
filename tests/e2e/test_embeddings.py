"""/v1/embeddings through the gateway, and the routes that bypass chat/completions."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from tests.e2e.conftest import EMBED_MODEL, KEY_ADMIN, KEY_LIMITED

pytestmark = pytest.mark.e2e


def test_embeddings_return_one_vector_per_input(local_app):
    r = local_app.client().embeddings.create(model=EMBED_MODEL, input=["hello world", "bye"])
    assert r.model == EMBED_MODEL
    assert [d.index for d in r.data] == [0, 1]
    dims = {len(d.embedding) for d in r.data}
    assert len(dims) == 1 and dims.pop() > 0
    assert all(math.isfinite(x) for d in r.data for x in d.embedding)
    assert r.data[0].embedding != r.data[1].embedding
    assert r.usage.prompt_tokens > 0


def test_embeddings_on_a_generate_model_is_400(local_app):
    with pytest.raises(openai.BadRequestError) as err:
        local_app.client().embeddings.create(model="tiny-chat", input="hello")
    assert "embed" in err.value.body["message"]


def test_chat_on_an_embedding_model_is_400(local_app):
    with pytest.raises(openai.BadRequestError):
        local_app.client().chat.completions.create(
            model=EMBED_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )


def test_embeddings_unknown_model_is_404(local_app):
    with pytest.raises(openai.NotFoundError) as err:
        local_app.client().embeddings.create(model="no-such-embedder", input="hello")
    assert err.value.body["code"] == "model_not_found"


def test_embeddings_respect_per_key_models(local_app):
    with pytest.raises(openai.NotFoundError):
        local_app.client(KEY_LIMITED).embeddings.create(model=EMBED_MODEL, input="hello")


def test_embeddings_missing_input_is_400_naming_the_field(local_app):
    r = httpx.post(
        f"{local_app.base_url}/v1/embeddings",
        json={"model": EMBED_MODEL},
        headers={"Authorization": f"Bearer {KEY_ADMIN}"},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "input"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tokenize", {"prompt": "hi"}),
        ("/detokenize", {"tokens": [1, 2]}),
        ("/v1/score", {"text_1": "a", "text_2": "b"}),
    ],
)
def test_other_model_routes_enforce_per_key_models(local_app, path, body):
    # Not only chat/completions/embeddings: every route that names a model is checked.
    body = dict(body, model="tiny-chat-v2")
    r = httpx.post(
        f"{local_app.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {KEY_LIMITED}"},
        timeout=30,
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "model_not_found"
