"""Bad input for the serving edge (ALB, API keys, CORS): a ConfigError naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, validate
from tools.render import render_stack

CERT = "arn:aws:acm:us-west-2:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
# A model that passes the capacity check (infra/capacity/fit.py) on prod's g6e pool.
# An ungated model: a gated one would also need huggingFaceToken (not what these tests are about).
SERVING = {"models": [{"id": "m", "source": "Qwen/Qwen2.5-7B-Instruct",
                       "engineArgs": {"max_model_len": 8192},
                       "accelerator": {"acceleratorType": "L40S"}}]}
PROD = {"environment": "prod", "karpenter": {"gpuAmiVersion": "v20251108"}, "serving": SERVING,
        "cluster": {"apiAccessCidrs": ["10.20.0.0/16"]}}


def problems(values: dict[str, Any], secret: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    with pytest.raises(ConfigError) as exc:
        validate(values, secret)
    return str(exc.value)


def test_internet_facing_alb_without_certificate() -> None:
    # Through the real program: the render stops before any resource is declared.
    with pytest.raises(ConfigError) as exc:
        render_stack("dev", overrides={"exposure": {"alb": {
            "enabled": True, "scheme": "internet-facing", "allowedCidrs": ["198.51.100.0/24"]}}})
    assert "llm-platform:exposure.alb.certificateArn: required when the ALB is enabled" \
        " (scheme internet-facing)" in str(exc.value)


def test_internet_facing_alb_on_a_private_endpoint_stack_needs_an_allow_list() -> None:
    alb = {"enabled": True, "scheme": "internet-facing", "certificateArn": CERT}
    with pytest.raises(ConfigError) as exc:
        render_stack("prod", overrides={"exposure": {"alb": alb}})
    assert "llm-platform:exposure.alb.allowedCidrs: must list the client CIDRs" in str(exc.value)
    assert "cluster.endpointAccess" in str(exc.value)
    # With an allow-list, or internal, or on a public-endpoint stack (dev), it is accepted.
    validate({**PROD, "exposure": {"alb": {**alb, "allowedCidrs": ["198.51.100.0/24"]}}})
    validate({**PROD, "exposure": {"alb": {**alb, "scheme": "internal"}}})


def test_bad_alb_values_name_their_key() -> None:
    text = problems({**PROD, "exposure": {"alb": {"enabled": True, "certificateArn": "arn:x",
                                                  "idleTimeoutS": 30}}})
    assert "llm-platform:exposure.alb.certificateArn: String should match pattern" in text
    assert "llm-platform:exposure.alb.idleTimeoutS: Input should be greater than or equal to 60" \
        in text


def test_api_keys_must_be_secret_long_and_cover_allowed_models() -> None:
    keys = {"alice": "sk-alice-0123456789abcd"}
    assert "llm-platform:apiKeys: must be a Pulumi secret" in problems({**PROD, "apiKeys": keys})
    text = problems({**PROD, "apiKeys": {"alice": "short"}}, {"apiKeys"})
    assert "llm-platform:apiKeys.alice: must be 16-256 characters" in text
    assert "short" not in text  # the message never echoes a key
    serving = {**SERVING, "auth": {"allowedModels": {"bob": ["m"]}}}
    text = problems({**PROD, "serving": serving, "apiKeys": keys}, {"apiKeys"})
    assert "llm-platform:apiKeys: serving.auth.allowedModels names keys ['bob']" in text


def test_cors_origin_must_be_exact() -> None:
    text = problems({**PROD, "serving": {**SERVING, "corsOrigins": ["*"]}})
    assert "llm-platform:serving.corsOrigins[0]: String should match pattern" in text


def test_prod_protects_the_alb_by_default() -> None:
    alb = {"enabled": True, "certificateArn": CERT}
    assert validate({**PROD, "exposure": {"alb": alb}}).exposure.alb.deletion_protection
    dev = {**PROD, "environment": "dev", "exposure": {"alb": alb}}
    assert not validate(dev).exposure.alb.deletion_protection


def test_keys_file_in_the_stack_config_is_refused() -> None:
    text = problems({**PROD, "serving": {**SERVING, "auth": {"keysFile": "/tmp/keys"}}})
    assert "llm-platform:serving.auth.keysFile: is set by the platform" in text
