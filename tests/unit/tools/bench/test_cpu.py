"""The bench's per-process CPU accounting, on the real /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tools.bench.cpu import cpu_by_process, cpu_used


def test_cpu_used_diffs_per_pid_even_when_a_process_is_retitled():
    # Ray renames a process while it runs a method; a diff by title would count its whole
    # lifetime again.
    before = {10: ("ray::ServeController", 7.0), 11: ("raylet", 1.0)}
    after = {10: ("ray::ServeController.listen", 7.5), 11: ("raylet", 1.25), 12: ("haproxy", 0.5)}
    assert cpu_used(before, after) == {
        "ray::ServeController.listen": 0.5,
        "raylet": 0.25,
        "haproxy": 0.5,  # new since the first snapshot: all of its CPU counts
    }


def test_cpu_by_process_sees_a_child_burning_cpu():
    burn = (
        "import time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3:\n"
        "    pass\n"
        "time.sleep(30)\n"
    )
    before = cpu_by_process(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        used: dict[str, float] = {}
        while time.monotonic() < deadline:
            used = cpu_used(before, cpu_by_process(os.getpid()))
            if used.get("python -c", 0.0) >= 0.3:
                break
            time.sleep(0.1)
        assert used.get("python -c", 0.0) >= 0.3, used
        assert cpu_by_process(os.getpid())[child.pid][0] == "python -c"
    finally:
        child.kill()
        child.wait()
