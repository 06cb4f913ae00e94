"""Shared fixtures: each stack is rendered once per test session under the Pulumi mocks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tools.render import Rendered, render_stack

_cache: dict[str, Rendered] = {}


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], Rendered]:
    """`rendered("prod")`: the prod stack file rendered offline (cached for the session)."""

    def get(stack: str) -> Rendered:
        if stack not in _cache:
            _cache[stack] = render_stack(stack)
        return _cache[stack]

    return get
