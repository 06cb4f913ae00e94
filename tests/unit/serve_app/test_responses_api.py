"""serve_app/responses_api.py: what the gateway refuses before a Responses call reaches a model."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("vllm") is None:
    pytest.skip("ray/vllm are not installed (make venv installs requirements-dev.txt)",
                allow_module_level=True)

from serve_app.errors import GatewayError
from serve_app.responses_api import RESPONSES_ENDPOINTS, reject_unsupported


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"background": True}, "background"),
     ({"previous_response_id": "resp_1"}, "previous_response_id")],
)
def test_unsupported_features_are_400s_naming_the_parameter(fields, param):
    body = SimpleNamespace(**{"background": False, "previous_response_id": None, **fields})
    with pytest.raises(GatewayError) as exc:
        reject_unsupported(body)
    assert (exc.value.status, exc.value.param, exc.value.code) == (
        400, param, "unsupported_parameter")


def test_plain_request_passes():
    reject_unsupported(SimpleNamespace(background=False, previous_response_id=None))


def test_routes_are_registered_next_to_rays():
    from fastapi import FastAPI

    app = FastAPI()
    for factory in RESPONSES_ENDPOINTS.values():
        factory(app)(lambda: None)
    paths = {(r.path, m) for r in app.routes for m in getattr(r, "methods", ())}
    assert ("/v1/responses", "POST") in paths
    assert ("/v1/responses/{response_id:path}", "GET") in paths
