"""serve_app/console.py: what local mode shows on the terminal and what goes to its log. Run in
a child process, as `make local` runs: the capture swaps the process's own stdout and stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tools.process import REPO

SCRIPT = textwrap.dedent("""
    import os, subprocess, sys
    from pathlib import Path
    from serve_app.console import Console, StepFailedError

    console = Console.capture(Path(sys.argv[1]))
    with console.step("Starting the noisy part"):
        print("noise from print")
        os.write(2, b"noise on fd 2\\n")
        subprocess.run(["echo", "noise from a child process"], check=True)
        console.say("  part A ready")
    console.say("READY")
    if sys.argv[2] == "fail":
        try:
            with console.step("Loading the models"):
                print("the replica's last words")
                raise RuntimeError("deploying application llm-platform failed")
        except StepFailedError:
            sys.exit(1)
""")


def run(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "build" / "serve.log"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(log), mode], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    return out, log


def test_the_terminal_shows_progress_only_and_the_log_gets_the_rest(tmp_path: Path) -> None:
    out, log = run(tmp_path, "ok")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Starting the noisy part... "
    assert lines[1] == "  part A ready"
    assert lines[2].startswith("Starting the noisy part: done (") and lines[3] == "READY"
    assert len(lines) == 4 and out.stderr == ""
    text = log.read_text()
    for noise in ("noise from print", "noise on fd 2", "noise from a child process"):
        assert noise in text


def test_a_failed_step_shows_the_logs_tail_and_its_path(tmp_path: Path) -> None:
    out, log = run(tmp_path, "fail")
    assert out.returncode == 1
    screen = out.stdout
    assert "Loading the models... \nFAILED: Loading the models: RuntimeError: deploying " \
        "application llm-platform failed\n" in screen
    assert "--- last " in screen and f" lines of {log} ---" in screen
    assert "the replica's last words" in screen  # the log's tail
    assert "Traceback (most recent call last)" in screen  # written to the log, then tailed
    assert screen.rstrip().endswith(f"--- full log: {log}")
    assert "Traceback" in log.read_text() and out.stderr == ""
