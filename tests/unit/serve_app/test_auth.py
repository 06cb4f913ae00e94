"""serve_app/auth.py: API keys, parsed and checked (pure functions)."""

from __future__ import annotations

import pytest

from serve_app.auth import KeyStore, parse_keys
from serve_app.config import AuthConfig


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
    checker = KeyStore(auth, {"LLM_PLATFORM_API_KEYS": "sk-env"}).checker
    assert checker.identify("Bearer sk-env") is not None
    team = checker.identify("bearer sk-file")
    assert team is not None and team.name == "team"
    assert checker.may_use(team, "a") and not checker.may_use(team, "b")
    for header in (None, "", "Bearer", "Bearer wrong", "Basic sk-env", "sk-env"):
        assert checker.identify(header) is None
