"""serve_app/routing.py: alias splitting (pure functions)."""

from __future__ import annotations

from collections import Counter

from serve_app.config import ServingConfig
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
