"""Start a local server in the background, wait until it serves, stop it: ONE helper for the e2e
fixtures (`tests/e2e/conftest.py`) and the bench (`tools/bench`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parent.parent


class ServerNotReadyError(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 80) -> str:
    """The last `n` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class ServerProcess:
    """`cmd` started from the repo root with its output in `log`; a context manager that stops it.

    `own_session=True` starts it in a new session (a test's servers stay clear of the test
    runner's terminal signals). `own_session=False` keeps it in the caller's session, as when a
    person starts it from the same shell: a new session is a new scheduler autogroup on Linux,
    and the bench measured a server starved that way (see docs/performance.md).
    """

    def __init__(
        self, cmd: list[str], *, env: dict[str, str], log: Path, own_session: bool
    ) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=own_session,
                process_group=None if own_session else 0,
            )

    @property
    def pid(self) -> int:
        """The server's pid: every process it starts (Ray's workers, say) descends from it."""
        return self.proc.pid

    def wait_ready(
        self,
        url: str,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
        ready_line: str | None = None,
    ) -> None:
        """Poll until GET `url` answers 200 (and, with `ready_line`, the log shows that text);
        raise `ServerNotReadyError` if the process exits first or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerNotReadyError(
                    f"{self._name()} exited with {self.proc.returncode}; log {self.log}:\n"
                    f"{tail(self.log)}"
                )
            if ready_line is None or ready_line in self.log.read_text(errors="replace"):
                try:
                    if httpx.get(url, headers=headers or {}, timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(2)
        raise ServerNotReadyError(
            f"{self._name()} not ready at {url} after {timeout:.0f}s; log {self.log}:\n"
            f"{tail(self.log)}"
        )

    def stop(self, timeout: float = 90) -> None:
        """Stop it as a person would (Ctrl-C); kill its whole process group if that fails."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def _name(self) -> str:
        return " ".join(str(a) for a in self.proc.args[-2:])

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
