"""tools.process: the start / wait-until-ready / stop helper of the e2e fixtures and the bench,
on real child processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tools.process import ServerNotReadyError, ServerProcess, free_port


def test_waits_for_a_real_server_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ServerProcess(cmd, env=dict(os.environ), log=tmp_path / "log", own_session=True) as srv:
        srv.wait_ready(f"http://127.0.0.1:{port}/", timeout=30)
        assert srv.proc.poll() is None
    assert srv.proc.returncode is not None  # stopped on leaving the block


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "print('boom: bad flag'); raise SystemExit(3)"]
    srv = ServerProcess(cmd, env=dict(os.environ), log=tmp_path / "log", own_session=False)
    with srv, pytest.raises(ServerNotReadyError, match=r"exited with 3(.|\n)*boom: bad flag"):
        srv.wait_ready(f"http://127.0.0.1:{free_port()}/", timeout=30)


def test_ready_line_must_appear_and_timeout_is_reported(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    srv = ServerProcess(cmd, env=dict(os.environ), log=tmp_path / "log", own_session=True)
    # The server answers 200, but never prints the line: not ready.
    with srv, pytest.raises(ServerNotReadyError, match=r"not ready .* after 3s"):
        srv.wait_ready(f"http://127.0.0.1:{port}/", timeout=3, ready_line="READY ")
