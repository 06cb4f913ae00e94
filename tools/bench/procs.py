"""Process control: freeze the server not under load, with every process below it."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress


def signal_tree(root: int, sig: int) -> None:
    """Signal a server and every process below it (Ray's workers are its grandchildren)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = (int(x) for x in line.split())
        children.setdefault(ppid, []).append(pid)
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def focus(pids: dict[str, int], name: str, other: str) -> None:
    """Resume server `name` and freeze `other`, each with every process below it."""
    signal_tree(pids[name], signal.SIGCONT)
    signal_tree(pids[other], signal.SIGSTOP)
