"""The limits off/on app bench: its flags, and that its `limited` key is counted (every counted
limit set) while `free` has none, so the two sides differ only by the tenant gate."""

from __future__ import annotations

import pytest

from serve_app.tenants.policy import parse_limits_yaml
from tools.bench.tenants_app import LIMITS, parse_args


def test_defaults_are_the_issue_levels() -> None:
    assert parse_args([]).concurrency == [1, 8, 32]


def test_bad_concurrency_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--concurrency", "8,0"])
    assert exc.value.code == 2
    assert "argument --concurrency" in capsys.readouterr().err


def test_only_the_limited_key_is_counted_with_every_limit() -> None:
    limits = parse_limits_yaml(LIMITS, known_keys=["free", "limited"])
    assert set(limits) == {"limited"}
    lim = limits["limited"]
    assert lim.counted
    assert None not in (lim.rpm, lim.tpm, lim.max_concurrent, lim.daily_tokens,
                        lim.monthly_tokens)
