"""Every client mistake gets OpenAI error JSON with the right status, and serving goes on."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.e2e.conftest import KEY_ADMIN, KEY_LIMITED, V2_MAX_ONGOING, V2_MAX_QUEUED

pytestmark = pytest.mark.e2e


def _post(app, path: str, body, key: str | None = KEY_ADMIN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    return httpx.post(f"{app.base_url}{path}", headers=headers, timeout=60, **kwargs)


def _assert_openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert "type" in err
    return err


GOOD = {"model": "tiny-chat", "prompt": "Hi", "max_tokens": 2}


@pytest.mark.parametrize("key", [None, "sk-wrong", ""])
def test_missing_or_wrong_key_is_401(local_app, key):
    _assert_openai_error(_post(local_app, "/v1/completions", GOOD, key=key), 401)


def test_every_route_but_health_needs_a_key(local_app):
    for path in ("/v1/models", "/v1/models/tiny-chat", "/docs", "/nope"):
        r = httpx.get(f"{local_app.base_url}{path}", timeout=30)
        assert r.status_code == 401, (path, r.text)


def test_wrong_key_through_openai_client(local_app):
    with pytest.raises(openai.AuthenticationError):
        local_app.client("sk-not-a-key").models.list()


def test_unknown_model_is_404(local_app):
    with pytest.raises(openai.NotFoundError) as exc:
        local_app.client().completions.create(model="gpt-17", prompt="Hi", max_tokens=2)
    assert exc.value.body["code"] == "model_not_found"


def test_model_not_allowed_for_key_is_404(local_app):
    client = local_app.client(KEY_LIMITED)
    assert client.completions.create(**GOOD).model == "tiny-chat"
    for model in ("tiny-chat-v2", "chat"):
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model=model, prompt="Hi", max_tokens=2)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '["a", "list"]',
        {"model": "tiny-chat"},  # no prompt
        {"prompt": "Hi", "max_tokens": 2},  # no model
        {**GOOD, "max_tokens": "many"},
        {**GOOD, "max_tokens": -1},
        {**GOOD, "temperature": -3},
        {**GOOD, "n": 0},
    ],
    ids=["bad-json", "not-object", "no-prompt", "no-model", "max-tokens-str", "max-tokens-neg",
         "temperature-neg", "n-zero"],
)
def test_malformed_or_invalid_completion_is_400(local_app, body):
    _assert_openai_error(_post(local_app, "/v1/completions", body), 400)


def test_invalid_chat_body_is_400(local_app):
    body = {"model": "tiny-chat", "messages": "not a list", "max_tokens": 2}
    _assert_openai_error(_post(local_app, "/v1/chat/completions", body), 400)


def test_prompt_longer_than_context_is_400(local_app):
    with pytest.raises(openai.BadRequestError) as exc:
        local_app.client().completions.create(
            model="tiny-chat", prompt="hello world " * 600, max_tokens=4
        )
    assert "context" in str(exc.value).lower()
    with pytest.raises(openai.BadRequestError):
        local_app.client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi " * 1000}], max_tokens=4
        )


def test_overload_is_503_with_openai_error_and_recovers(local_app):
    """tiny-chat-v2 admits V2_MAX_ONGOING + V2_MAX_QUEUED requests; the rest get 503."""
    n = 6 * (V2_MAX_ONGOING + V2_MAX_QUEUED)
    body = {
        "model": "tiny-chat-v2",
        "prompt": "Hi",
        "max_tokens": 200,
        "ignore_eos": True,
    }
    headers = {"Authorization": f"Bearer {KEY_ADMIN}"}

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            url = f"{local_app.base_url}/v1/completions"
            return await asyncio.gather(*(client.post(url, json=body, headers=headers)
                                          for _ in range(n)))

    responses = asyncio.run(run())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429, 503}, codes
    assert codes.count(200) >= V2_MAX_ONGOING, codes
    rejected = [r for r in responses if r.status_code != 200]
    assert rejected, f"no request was rejected out of {n}: the queue is not bounded"
    for r in rejected:
        _assert_openai_error(r, r.status_code)
    # The server keeps serving after the burst.
    assert _post(local_app, "/v1/completions", {**body, "max_tokens": 2}).status_code == 200


def test_still_serving_after_errors(local_app):
    r = local_app.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "still there?"}], max_tokens=4
    )
    assert r.model in ("tiny-chat", "tiny-chat-v2")
