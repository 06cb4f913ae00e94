"""The limits file: errors name the key and field; a bad or missing file never lifts the limits
in use; local mode refuses limits on keys it does not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.config import ServingConfig
from serve_app.tenants import local_mode
from serve_app.tenants.policy import LimitsError, LimitsStore, parse_limits_yaml


def test_errors_name_the_key_and_field() -> None:
    with pytest.raises(LimitsError) as exc:
        parse_limits_yaml("team-a: {rpm: -5, tmp: 3}\n", where="tenants.yaml")
    message = str(exc.value)
    assert "tenants.yaml.team-a.rpm: Input should be greater than or equal to 0" in message
    assert "tenants.yaml.team-a.tmp: Extra inputs are not permitted" in message
    with pytest.raises(LimitsError, match=r"team-x: no API key of that name"):
        parse_limits_yaml("team-x: {rpm: 5}\n", known_keys=["team-a"])
    with pytest.raises(LimitsError, match="not valid YAML"):
        parse_limits_yaml("team-a: {rpm: [\n")


def test_store_reloads_a_changed_file_and_keeps_limits_on_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("team-a: {rpm: 5}\n")
    now = [0.0]
    store = LimitsStore(str(path), interval_s=10, clock=lambda: now[0])
    assert store.limits["team-a"].rpm == 5
    path.write_text("team-a: {rpm: 7}\n")
    assert store.limits["team-a"].rpm == 5  # not before the interval
    now[0] = 11
    assert store.limits["team-a"].rpm == 7
    path.write_text("team-a: {rpm: -1}\n")
    now[0] = 22
    assert store.limits["team-a"].rpm == 7  # a bad edit keeps the limits in use
    path.unlink()
    now[0] = 33
    assert store.limits["team-a"].rpm == 7


def test_local_mode_names_a_limit_on_a_missing_key(tmp_path: Path) -> None:
    cfg = ServingConfig.model_validate({"models": [{"id": "m", "source": "/m"}]})
    path = tmp_path / "t.yaml"
    path.write_text("team-b: {rpm: 5}\n")
    env = {"LLM_PLATFORM_TENANTS": str(path), "LLM_PLATFORM_API_KEYS": "team-a:sk-aaaaaaaaaaaa"}
    with pytest.raises(LimitsError, match=r"LLM_PLATFORM_TENANTS.team-b: no API key"):
        local_mode.prepare(cfg, env)


def test_local_mode_starts_redis_only_when_limits_count(tmp_path: Path) -> None:
    cfg = ServingConfig.model_validate({"models": [{"id": "m", "source": "/m"}]})
    path = tmp_path / "t.yaml"
    path.write_text("team-a: {maxN: 2}\n")
    env = {"LLM_PLATFORM_TENANTS": str(path), "LLM_PLATFORM_API_KEYS": "team-a:sk-aaaaaaaaaaaa"}
    served, redis = local_mode.prepare(cfg, env)
    assert redis is None and served.tenants.limits_file == str(path.resolve())
    path.write_text("team-a: {rpm: 2}\n")
    served, redis = local_mode.prepare(cfg, env)
    try:
        assert redis is not None and env["LLM_PLATFORM_REDIS_URL"] == redis.url
    finally:
        if redis is not None:
            redis.stop()
    env["LLM_PLATFORM_REDIS_URL"] = "redis://127.0.0.1:1/0"  # given: none is started
    assert local_mode.prepare(cfg, env)[1] is None


def test_a_key_named_on_yes_or_no_is_an_error_that_says_to_quote_it() -> None:
    with pytest.raises(LimitsError) as exc:
        parse_limits_yaml("on: {rpm: 5}\nno: {rpm: 1}\nteam-a: {rpm: 2}\n", where="tenants.yaml")
    message = str(exc.value)
    assert "tenants.yaml.True:" in message and "tenants.yaml.False:" in message
    assert "quote the name" in message
    quoted = parse_limits_yaml("'on': {rpm: 5}\n\"no\": {rpm: 1}\n", known_keys=["on", "no"])
    assert quoted["on"].rpm == 5 and quoted["no"].rpm == 1
