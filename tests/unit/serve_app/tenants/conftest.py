"""A real redis-server per test module (Debian's package; `make redis-server` installs it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve_app.tenants.local_redis import LocalRedis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[LocalRedis]:
    try:
        server = LocalRedis().start()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
