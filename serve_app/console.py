"""What local mode shows on the terminal: a few progress lines. Everything else the process and
its children write (Ray, Serve, vLLM, transformers) goes to a log file, shown only when a step
fails (its last lines and its path).

    console = Console.capture(Path("build/local/serve-8000.log"))
    with console.step("Starting Ray"):
        ray.init(...)
    console.say("READY ...")

A new local-mode step (a local Redis, PostgreSQL, ...) is one more `with console.step(...)`
in serve_app/local.py.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

TAIL_LINES = 40


class StepFailedError(RuntimeError):
    """A step failed; the console has already shown why (the log's tail and its path)."""


class Console:
    def __init__(self, out: TextIO, log: Path | None) -> None:
        self.out = out
        self.log = log  # None: nothing captured, everything is on the terminal already
        self._open_line = False

    @classmethod
    def capture(cls, log: Path) -> Console:
        """Send this process's stdout and stderr to `log` at the file-descriptor level (so the
        processes it starts and native code land there too); the console keeps the original
        stdout for its own lines."""
        log.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        terminal = os.fdopen(os.dup(1), "w", buffering=1)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return cls(terminal, log)

    @classmethod
    def passthrough(cls) -> Console:
        """No capture: every log on the terminal (LLM_PLATFORM_LOCAL_VERBOSE=1)."""
        return cls(sys.stdout, None)

    def say(self, line: str) -> None:
        """One line on the terminal."""
        self._end_line()
        self.out.write(line + "\n")
        self.out.flush()

    def _end_line(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self._open_line = False

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """`what...` then `done (N s)` on the same line; on an exception, the failure, the log's
        last lines and its path, then StepFailedError. Ctrl-C passes through untouched."""
        self._end_line()
        self.out.write(f"{what}... ")
        self.out.flush()
        self._open_line = True
        started = time.monotonic()
        try:
            yield
        except (KeyboardInterrupt, StepFailedError):
            raise
        except Exception as exc:
            self.fail(what, exc)
            raise StepFailedError(what) from exc
        if self._open_line:
            self.out.write(f"done ({time.monotonic() - started:.0f} s)\n")
            self.out.flush()
            self._open_line = False
        else:
            self.say(f"{what}: done ({time.monotonic() - started:.0f} s)")

    def fail(self, what: str, exc: BaseException) -> None:
        """Say that `what` failed; the traceback goes to the log, the log's tail on screen."""
        self.say(f"FAILED: {what}: {type(exc).__name__}: {exc}".rstrip())
        if self.log is None:
            traceback.print_exception(exc)
            return
        traceback.print_exception(exc, file=sys.stderr)  # fd 2 is the log
        sys.stderr.flush()
        lines = self.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        self.say(f"--- last {len(lines)} lines of {self.log} ---")
        for line in lines:
            self.say(line)
        self.say(f"--- full log: {self.log}")
