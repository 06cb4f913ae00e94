"""The stack's `tenants` section: limits by key name, each bad entry named by its path, the
per-environment Redis failure mode, and how the limits reach the pods (the keys Secret's
second file, the Redis URL and password in the Ray pods' env)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, own_keys, validate
from infra.config.profiles import with_profile
from infra.serving.api_keys import TENANTS_FILE, with_keys_file
from infra.serving.tenants import limits_file_text, redis_env
from serve_app.tenants.policy import parse_limits_yaml
from tools.render import stack_config

KEY = "sk-0123456789abcdef0123"


def values(stack: str = "dev", **extra: Any) -> tuple[dict[str, Any], set[str]]:
    raw, secrets = stack_config(stack)
    vals, secret_keys = own_keys(raw, set(secrets))
    vals = copy.deepcopy(vals)
    vals["apiKeys"] = {"team-a": KEY, "team-b": KEY + "b"}
    vals.update(extra)
    return vals, set(secret_keys) | {"apiKeys"}


def problems(vals: dict[str, Any], secrets: set[str]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate(vals, secrets)
    return exc.value.problems


def test_limits_validate_and_are_optional() -> None:
    cfg = validate(*values(tenants={"team-a": {"rpm": 60, "tpm": 1000, "maxConcurrent": 2,
                                                "dailyTokens": 10, "monthlyTokens": 20},
                                     "team-b": {}}))
    assert cfg.tenants["team-a"].max_concurrent == 2
    assert not cfg.tenants["team-b"].counted


@pytest.mark.parametrize(("limits", "path", "words"), [
    ({"team-a": {"rpm": -1}}, "tenants.team-a.rpm", "greater than or equal to 0"),
    ({"team-a": {"rpmm": 1}}, "tenants.team-a.rpmm", "did you mean 'rpm'"),
    ({"team-z": {"rpm": 1}}, "tenants.team-z", "no API key of that name"),
    ({"team-a": {"maxN": 0}}, "tenants.team-a.maxN", "greater than or equal to 1"),
])
def test_bad_limits_are_named_by_path(limits: dict, path: str, words: str) -> None:
    (problem,) = problems(*values(tenants=limits))
    assert problem.startswith(f"llm-platform:{path}:") and words in problem


def test_counted_limits_need_the_gcs_redis() -> None:
    vals, secrets = values(tenants={"team-a": {"rpm": 5}, "team-b": {"maxN": 2}})
    vals["gcsFaultTolerance"] = {"backend": "off"}
    (problem,) = problems(vals, secrets)
    assert problem.startswith("llm-platform:tenants.team-a:") and "backend is off" in problem


def test_failure_mode_per_environment_and_overridable() -> None:
    modes = {env: with_profile({"environment": env})["serving"]["tenants"]["redisFailureMode"]
             for env in ("dev", "staging", "prod")}
    assert modes == {"dev": "closed", "staging": "open", "prod": "open"}
    vals, secrets = values("dev")
    vals["serving"] = {**vals["serving"], "tenants": {"redisFailureMode": "open"}}
    assert validate(vals, secrets).serving.tenants.redis_failure_mode == "open"


def test_limits_file_round_trips_to_what_the_gateway_reads() -> None:
    cfg = validate(*values(tenants={"team-a": {"rpm": 60, "maxN": 2}}))
    text = limits_file_text(cfg.tenants)
    assert yaml.safe_load(text) == {"team-a": {"rpm": 60, "maxN": 2}}
    assert parse_limits_yaml(text, known_keys=["team-a", "team-b"]) == cfg.tenants
    assert limits_file_text({}) == "{}\n"
    assert with_keys_file(cfg).serving.tenants.limits_file == TENANTS_FILE
    without = validate(*values())
    assert with_keys_file(without).serving.tenants.limits_file is None


def test_the_gateway_gets_the_pinned_redis_client_only_with_limits() -> None:
    from serve_app.serve_config import serve_applications
    from serve_app.tenants import PIP_REQUIREMENTS

    requirements = Path(__file__).resolve().parents[3] / "requirements-dev.txt"
    pins = {line.split("#")[0].strip() for line in requirements.read_text().splitlines()}
    assert set(PIP_REQUIREMENTS) <= pins
    cfg = validate(*values(tenants={"team-a": {"rpm": 60}}))
    (app,) = serve_applications(with_keys_file(cfg).serving)
    assert set(PIP_REQUIREMENTS) <= set(app["runtime_env"]["pip"])
    (app,) = serve_applications(with_keys_file(validate(*values())).serving)
    assert "redis==8.2.0" not in app.get("runtime_env", {}).get("pip", [])


def test_redis_env_names_come_from_the_serving_config() -> None:
    cfg = validate(*values()).serving.tenants
    env = redis_env(cfg, "rediss://r.example:6379")
    assert env[0] == {"name": "LLM_PLATFORM_REDIS_URL", "value": "rediss://r.example:6379"}
    assert env[1]["name"] == "LLM_PLATFORM_REDIS_PASSWORD"
    assert env[1]["valueFrom"]["secretKeyRef"]["name"] == "gcs-redis"
    assert redis_env(cfg, None) == []


def test_a_key_named_on_in_the_stack_file_is_an_error_that_says_to_quote_it(
    tmp_path: Path,
) -> None:
    """YAML 1.1 reads an unquoted `on:` as the boolean True, and JSON would then call the key
    "true": the render refuses the file naming the path instead."""
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text("config:\n  llm-platform:tenants:\n    on: {rpm: 5}\n    'yes': {rpm: 6}\n")
    with pytest.raises(ConfigError) as exc:
        stack_config("t", path=stack)
    (problem,) = exc.value.problems
    assert problem.startswith("Pulumi.t.yaml: config.llm-platform:tenants.True:")
    assert "quote the name" in problem
    stack.write_text("config:\n  llm-platform:tenants:\n    'on': {rpm: 5}\n")
    values_, _ = stack_config("t", path=stack)
    assert yaml.safe_load(values_["llm-platform:tenants"]) == {"on": {"rpm": 5}}


def test_a_tenant_named_true_gets_the_quoting_hint() -> None:
    """A YAML 1.1 reader upstream of the program (the key arrives as "true")."""
    (problem,) = problems(*values(tenants={"true": {"rpm": 5}}))
    assert problem.startswith("llm-platform:tenants.true:") and "quote the name" in problem
