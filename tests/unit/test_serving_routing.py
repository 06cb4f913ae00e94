"""Alias splitting and API-key checks (pure functions)."""

from __future__ import annotations

from collections import Counter

import pytest

from serve_app.auth import KeyChecker, load_keys, parse_keys
from serve_app.config import AuthConfig, ServingConfig
from serve_app.routing import AliasTable, WeightedAlias


def test_weighted_split_matches_weights():
    alias = WeightedAlias.build("chat", [("a", 90), ("b", 10)])
    counts = Counter(alias.pick(f"user-{i}") for i in range(20_000))
    assert abs(counts["b"] / 20_000 - 0.10) < 0.01


def test_split_is_stable_per_caller_and_independent_per_alias():
    alias = WeightedAlias.build("chat", [("a", 1), ("b", 1)])
    assert all(alias.pick("u1") == alias.pick("u1") for _ in range(10))
    other = WeightedAlias.build("code", [("a", 1), ("b", 1)])
    same = sum(alias.pick(f"u{i}") == other.pick(f"u{i}") for i in range(2000))
    assert 800 < same < 1200


def test_alias_table_from_config():
    cfg = ServingConfig.model_validate(
        {
            "models": [{"id": "a", "source": "x"}, {"id": "b", "source": "y"}],
            "aliases": [{"name": "chat", "targets": [{"model": "b", "weight": 1}]}],
        }
    )
    table = AliasTable.from_config(cfg)
    assert "chat" in table and "a" not in table
    assert table.resolve("chat", "anyone") == "b"
    assert table.resolve("a", "anyone") == "a"


def test_parse_keys_names_and_comments():
    keys = parse_keys(["alice:sk-1", " sk-2 ", "", "# comment"])
    assert keys[0].name == "alice"
    assert keys[1].name.startswith("key-")
    with pytest.raises(ValueError):
        parse_keys(["bob:"])


def test_key_checker(tmp_path):
    secret_file = tmp_path / "keys"
    secret_file.write_text("team:sk-file\n")
    auth = AuthConfig(keys_file=str(secret_file), allowed_models={"team": ["a"]})
    checker = KeyChecker(load_keys(auth, {"LLM_PLATFORM_API_KEYS": "sk-env"}),
                         auth.allowed_models)
    assert checker.identify("Bearer sk-env") is not None
    team = checker.identify("bearer sk-file")
    assert team is not None and team.name == "team"
    assert checker.may_use(team, "a") and not checker.may_use(team, "b")
    for header in (None, "", "Bearer", "Bearer wrong", "Basic sk-env", "sk-env"):
        assert checker.identify(header) is None
