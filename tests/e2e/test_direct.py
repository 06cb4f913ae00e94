"""`gateway: direct` smoke test: one model served by its LLMServer replica behind HAProxy.

Starts a second local app (the session app stays up), so it runs last (`e2e_order(2)`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import KEY_ADMIN, KEY_LIMITED, LOG_DIR, LocalApp, running_app
from tools.process import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_order(2)]


@pytest.fixture(scope="module")
def direct_app(local_app) -> Iterator[LocalApp]:
    from serve_app.local import local_serving_config

    data = local_serving_config().model_dump(mode="json", by_alias=True)
    data["models"] = [m for m in data["models"] if m["id"] == "tiny-chat"]
    data.update(aliases=[], gateway="direct", throughputOptimized=True, appName="direct")
    data["auth"]["allowedModels"] = {"limited": []}
    serving = LOG_DIR / "serving-direct.json"
    serving.write_text(json.dumps(data))
    log = LOG_DIR / "local-direct.log"
    port = free_port()
    env = dict(os.environ, PORT=str(port), LLM_PLATFORM_SERVING_FILE=str(serving),
               LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN},limited:{KEY_LIMITED}")
    with running_app(env, log) as app:
        yield app


def test_direct_serves_with_key(direct_app):
    client = direct_app.client()
    assert [m.id for m in client.models.list()] == ["tiny-chat"]
    r = client.completions.create(model="tiny-chat", prompt="Hi", max_tokens=4)
    assert r.model == "tiny-chat"
    chunks = list(client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
        stream=True))
    assert chunks and chunks[0].model == "tiny-chat"


def test_direct_rejects_missing_wrong_and_unpermitted_keys(direct_app):
    url = f"{direct_app.base_url}/v1/completions"
    body = {"model": "tiny-chat", "prompt": "Hi", "max_tokens": 2}
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        direct_app.client("sk-wrong").completions.create(**body)
    with pytest.raises(openai.NotFoundError):
        direct_app.client(KEY_LIMITED).completions.create(**body)
    with pytest.raises(openai.NotFoundError):
        direct_app.client().completions.create(model="nope", prompt="Hi", max_tokens=2)
