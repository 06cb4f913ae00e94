"""Secret rules: env values, ConfigMaps and serveConfigV2 hold no secret in plain text."""

from __future__ import annotations

import pytest

from policy.core import SECRET
from policy.rules import secrets
from tests.unit.policy.builders import PROD, deployment, k8s, rayservice, res

HF = "hf_" + "a1B2" * 9


@pytest.mark.parametrize(("name", "value"), [
    ("HF_TOKEN", "abc123"), ("OPENAI_API_KEY", "x"), ("DB_PASSWORD", "hunter2"),
    ("ANYTHING", HF), ("ANYTHING", SECRET), ("SLACK", "https://hooks.slack.com/services/T/B/x"),
])
def test_secret_env_values_are_refused(name: str, value: str) -> None:
    r = deployment(env=[{"name": name, "value": value}])
    (msg,) = secrets.env_values(r, PROD)
    assert repr(name) in msg and "secretKeyRef" in msg


@pytest.mark.parametrize(("name", "value"), [
    ("TOKENIZERS_PARALLELISM", "false"), ("LLM_PLATFORM_API_KEYS_FILE", "/etc/keys/keys.json"),
    ("HF_HUB_OFFLINE", "1"), ("RAY_gcs_rpc_server_reconnect_timeout_s", "600"),
    ("HF_TOKEN", ""),
])
def test_harmless_env_values_pass(name: str, value: str) -> None:
    r = deployment(env=[{"name": name, "value": value}])
    assert list(secrets.env_values(r, PROD)) == []


def test_env_from_a_secret_passes() -> None:
    r = deployment(env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "hf", "key": "token"}}}])
    assert list(secrets.env_values(r, PROD)) == []


def test_configmap_with_a_secret_is_refused() -> None:
    cm = res("kubernetes:core/v1:ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "c"},
                                              "data": {"api-key": "s3cr3t", "mode": "fast"}})
    (msg,) = secrets.configmap_data(cm, PROD)
    assert "data.api-key" in msg and "use a Secret" in msg


def test_serve_config_with_a_token_is_refused() -> None:
    rs = rayservice()
    rs.props["spec"]["serveConfigV2"] = (
        "applications:\n- name: llm\n  runtime_env:\n    env_vars:\n"
        f"      HF_TOKEN: {HF}\n")
    (msg,) = secrets.serve_config(rs, PROD)
    assert "env_vars.HF_TOKEN" in msg and "valueFrom" in msg
    assert list(secrets.serve_config(rayservice(), PROD)) == []


def test_unknown_values_are_not_judged() -> None:
    r = k8s("Pod", "v1", {"containers": [{"name": "c", "image": "x:1",
                                          "env": [{"name": "TOKEN", "value": "<unknown>"}]}]})
    assert list(secrets.env_values(r, PROD)) == []
