"""Per-process CPU accounting from /proc: which process of a server spends the CPU."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def proc_label(pid: int) -> str:
    """A short, stable name for a process: Ray's title (ray::...), else the program/module."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    args = [a.decode(errors="replace") for a in argv if a]
    if not args:
        return "?"
    if args[0].startswith("ray::"):  # ray::Name or ray::Name.method_being_run
        return args[0].split()[0].split(".")[0]
    name = os.path.basename(args[0])
    if not name.startswith("python"):
        return name
    if "-m" in args[:-1]:
        return args[args.index("-m") + 1].rsplit(".", 1)[-1]
    if "-c" in args:
        return "python -c"
    script = next((a for a in args[1:] if not a.startswith("-")), name)
    return os.path.basename(script)


def cpu_by_process(root: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user+system) used so far by `root` and each descendant: pid -> (label, s)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    stat: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                parent[int(entry)], stat[int(entry)] = int(fields[1]), fields
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [p for p, pp in parent.items() if pp == pid]
    out: dict[int, tuple[str, float]] = {}
    for pid in tree:
        with suppress(OSError, KeyError, IndexError):
            fields = stat[pid]
            out[pid] = (proc_label(pid), (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
             ) -> dict[str, float]:
    """CPU seconds between two snapshots, by label (diffed per pid: Ray retitles processes)."""
    out: dict[str, float] = {}
    for pid, (label, secs) in after.items():
        used = secs - before.get(pid, (label, 0.0))[1]
        out[label] = out.get(label, 0.0) + used
    return out
