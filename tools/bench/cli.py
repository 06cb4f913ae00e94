"""Standalone vLLM OpenAI server vs this application: same tiny model, machine and load.

    python -m tools.bench [--design NAME] [--duration 24] [--concurrency 1,8,32]

Both servers run side by side; the load (streamed completions, fixed output length) alternates
between them at each concurrency. The app runs with both models, the alias and auth on; the
load names `tiny-chat` directly so both sides do the same engine work. Prints req/s, output
tok/s, TTFT p50/p99 and ratios; the last line is `throughput ratio c=32: X.XX`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys
import time
from contextlib import ExitStack
from typing import Any

from serve_app.tiny_model import ensure_tiny_model
from tools.bench.cpu import cpu_by_process, cpu_used
from tools.bench.designs import BENCH_KEY, DESIGNS, MODEL, serving_file, vllm_cmd
from tools.bench.load import Stats, run_load
from tools.bench.procs import focus, signal_tree
from tools.bench.report import report
from tools.process import REPO, ServerNotReadyError, ServerProcess, free_port

OUT_DIR = REPO / "build" / "bench"


def _measured(pid: int, base: str, key: str | None, c: int, duration: float,
              max_tokens: int) -> Stats:
    """run_load, plus the CPU time each server process and the client used meanwhile."""
    before, client = cpu_by_process(pid), resource.getrusage(resource.RUSAGE_SELF)
    st = asyncio.run(run_load(base, key, c, duration, max_tokens))
    after, client_after = cpu_by_process(pid), resource.getrusage(resource.RUSAGE_SELF)
    st.cpu = cpu_used(before, after)
    st.cpu["(bench client)"] = (client_after.ru_utime + client_after.ru_stime
                                - client.ru_utime - client.ru_stime)
    return st


def _idle_cores(pids: dict[str, int], name: str, other: str, pause: bool,
                seconds: float = 6.0) -> float:
    """CPU a server burns with no requests at all (Ray's runtime, polling loops), in cores."""
    if pause:
        focus(pids, name, other)
    time.sleep(2.0)  # let the last requests' tails settle
    before, start = cpu_by_process(pids[name]), time.monotonic()
    time.sleep(seconds)
    used = cpu_used(before, cpu_by_process(pids[name]))
    return sum(used.values()) / (time.monotonic() - start)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return value

    return parse


def _levels(text: str) -> list[int]:
    """`1,8,32` -> [1, 8, 32]; every level a positive integer."""
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 1,8,32"
        ) from None
    if not levels or min(levels) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: every concurrency must be greater than 0")
    return levels


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The bench's flags; a bad value exits 2 with argparse's message naming the flag."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--design", choices=sorted(DESIGNS), default="gateway-throughput")
    parser.add_argument("--duration", type=_positive(float), default=24.0,
                        help="seconds of load per server and concurrency")
    parser.add_argument("--rounds", type=_positive(int), default=4,
                        help="alternations per concurrency")
    parser.add_argument("--pause-idle", action=argparse.BooleanOptionalAction, default=True,
                        help="SIGSTOP the server not under load (its idle polling loops compete"
                             " for the same 2 cores otherwise)")
    parser.add_argument("--concurrency", type=_levels, default=[1, 8, 32],
                        help="comma-separated concurrency levels (default 1,8,32)")
    parser.add_argument("--max-tokens", type=_positive(int), default=64)
    parser.add_argument("--startup-timeout", type=_positive(float), default=600)
    return parser.parse_args(argv)


def main() -> None:
    # Explicit handlers: stop both servers on Ctrl-C/SIGTERM even when started in background.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(sys.argv[1:])
    levels = args.concurrency
    design = DESIGNS[args.design]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    model_dir = ensure_tiny_model(MODEL, 1)

    vllm_port, app_port = free_port(), free_port()
    vllm_base = f"http://127.0.0.1:{vllm_port}"
    app_base = f"http://127.0.0.1:{app_port}{design.path}"
    targets = {"vllm": (vllm_base, None), "app": (app_base, BENCH_KEY)}
    results: dict[tuple[str, int], Stats] = {}
    with ExitStack() as stack:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE")}
        # Same session as the client, as when a person starts both from one shell (see
        # tools/process.py: a new session starved the standalone server's HTTP front end).
        vllm = ServerProcess(vllm_cmd(model_dir, vllm_port), env=base_env,
                             log=OUT_DIR / "vllm.log", own_session=False)
        stack.callback(vllm.stop, 60)
        app_env = dict(
            base_env, **design.env, PORT=str(app_port), LLM_PLATFORM_API_KEYS=BENCH_KEY,
            LLM_PLATFORM_SERVING_FILE=str(serving_file(design, OUT_DIR / "serving.json")),
        )
        app = ServerProcess([sys.executable, "-m", "serve_app.local"], env=app_env,
                            log=OUT_DIR / "app.log", own_session=False)
        stack.callback(app.stop, 60)
        try:
            vllm.wait_ready(f"{vllm_base}/v1/models", timeout=args.startup_timeout)
            # The app prints READY once every application is up (not just the first one).
            app.wait_ready(f"{app_base}/v1/models", timeout=args.startup_timeout,
                           headers={"Authorization": f"Bearer {BENCH_KEY}"},
                           ready_line="READY ")
        except ServerNotReadyError as exc:
            sys.exit(str(exc))
        print(f"design {args.design}: {design.doc}"
              f"{' (idle server paused)' if args.pause_idle else ''}", flush=True)
        pids, other = {"vllm": vllm.pid, "app": app.pid}, {"vllm": "app", "app": "vllm"}
        for pid in pids.values():  # never leave a server frozen, whatever happens
            stack.callback(signal_tree, pid, signal.SIGCONT)
        for base, key in targets.values():  # warm-up, not measured
            asyncio.run(run_load(base, key, 4, 3.0, args.max_tokens))
        idle = {name: _idle_cores(pids, name, other[name], args.pause_idle) for name in pids}
        print("idle CPU (no load, cores busy): "
              + ", ".join(f"{n} {v:.3f}" for n, v in idle.items()), flush=True)
        # Short alternating rounds: background noise on a shared machine hits both sides.
        step = args.duration / args.rounds
        turn = 0
        for c in levels:
            for _ in range(args.rounds):
                order = ["vllm", "app"] if turn % 2 == 0 else ["app", "vllm"]
                turn += 1
                for name in order:
                    base, key = targets[name]
                    if args.pause_idle:  # freeze the other server so its idle loops cost nothing
                        focus(pids, name, other[name])
                        time.sleep(0.5)
                    st = _measured(pids[name], base, key, c, step, args.max_tokens)
                    results.setdefault((name, c), Stats()).merge(st)
            for name in ("vllm", "app"):
                st = results[(name, c)]
                print(f"  {name:4s} c={c:<3d} {st.rps:7.2f} req/s {st.tps:8.1f} tok/s "
                      f"TTFT p50 {st.ttft_ms(50):7.1f} ms p99 {st.ttft_ms(99):7.1f} ms "
                      f"errors {st.errors}", flush=True)
    report(args.design, levels, results, idle, OUT_DIR)
