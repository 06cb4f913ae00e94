"""Standalone vLLM OpenAI server vs this application: same tiny model, machine and load.

    python -m serve_app.bench [--design NAME] [--duration 24] [--concurrency 1,8,32]

Both servers run side by side; the load (streamed completions, fixed output length) alternates
between them at each concurrency. The app runs with both models, the alias and auth on; the
load names `tiny-chat` directly so both sides do the same engine work. Prints req/s, output
tok/s, TTFT p50/p99 and ratios; the last line is `throughput ratio c=32: X.XX`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serve_app.local import LOCAL_ENGINE_ARGS, local_serving_config
from serve_app.tiny_model import ensure_tiny_model

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "build" / "bench"
BENCH_KEY = "sk-bench-0000000000000000"
MODEL = "tiny-chat"


@dataclass(frozen=True)
class Design:
    """How the app is run: Ray env flags (cluster-wide) and ServingConfig overrides."""

    doc: str
    env: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    path: str = ""  # where tiny-chat's OpenAI API lives under the app's base URL
    # Serve only these models (aliases keep their targets among them). On a CPU box every
    # engine busy-polls even when idle, so a second model costs the measured one CPU; on a
    # GPU cluster each model's engine has its own node.
    only: tuple[str, ...] = ()


DESIGNS: dict[str, Design] = {
    "gateway-defaults": Design("GatewayIngress (auth+aliases) -> LLMServer, Ray defaults"),
    "gateway-throughput": Design(
        "GatewayIngress (auth+aliases) -> LLMServer, RAY_SERVE_THROUGHPUT_OPTIMIZED + HAProxy",
        config={"throughputOptimized": True},
    ),
    "gateway-throughput-nice0": Design(
        "as gateway-throughput, Ray workers at nice 0 like the standalone server"
        " (RAY_worker_niceness=0; Ray's default is 15)",
        env={"RAY_worker_niceness": "0"},
        config={"throughputOptimized": True},
    ),
    "gateway-throughput-one-engine": Design(
        "as gateway-throughput (auth + alias `chat` + routing), tiny-chat-v2 not served, so"
        " one engine per side",
        config={"throughputOptimized": True},
        only=(MODEL,),
    ),
    "direct": Design(
        "one app per model, LLMServer serves HTTP itself (direct streaming) behind HAProxy,"
        " auth middleware in the replica; no aliases, base URL per model",
        config={"throughputOptimized": True, "gateway": "direct", "aliases": []},
        path="/tiny-chat",
    ),
    "direct-one": Design(
        "direct, tiny-chat only (ceiling of Ray's direct streaming with the LLMRouter call)",
        config={"throughputOptimized": True, "gateway": "direct", "aliases": []},
        only=(MODEL,),
    ),
}


@dataclass
class Stats:
    requests: int = 0
    tokens: int = 0
    errors: int = 0
    elapsed: float = 0.0
    ttft: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process label

    def merge(self, other: Stats) -> None:
        for label, secs in other.cpu.items():
            self.cpu[label] = self.cpu.get(label, 0.0) + secs
        self.requests += other.requests
        self.tokens += other.tokens
        self.errors += other.errors
        self.elapsed += other.elapsed
        self.ttft += other.ttft

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def tps(self) -> float:
        return self.tokens / self.elapsed if self.elapsed else 0.0

    def ttft_ms(self, q: float) -> float:
        if not self.ttft:
            return float("nan")
        if len(self.ttft) == 1:
            return self.ttft[0] * 1000
        return statistics.quantiles(self.ttft, n=100, method="inclusive")[int(q) - 1] * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one(client: httpx.AsyncClient, url: str, body: dict, headers: dict, st: Stats) -> None:
    start = time.perf_counter()
    first = None
    try:
        async with client.stream("POST", url, json=body, headers=headers) as r:
            if r.status_code != 200:
                await r.aread()
                st.errors += 1
                return
            tail = b""
            async for chunk in r.aiter_raw():
                if first is None:
                    first = time.perf_counter() - start
                tail = (tail + chunk)[-512:]
    except httpx.HTTPError:
        st.errors += 1
        return
    # Only the last event (include_usage) is parsed: the client must stay cheap, it shares
    # the two cores with the servers.
    marker = tail.rfind(b'"completion_tokens":')
    if marker < 0:
        st.errors += 1
        return
    digits = tail[marker + 20:].lstrip()
    st.requests += 1
    st.tokens += int(digits[: len(digits) - len(digits.lstrip(b"0123456789"))] or 0)
    st.ttft.append(first if first is not None else time.perf_counter() - start)


async def run_load(base: str, key: str | None, concurrency: int, duration: float,
                   max_tokens: int) -> Stats:
    url = f"{base}/v1/completions"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": MODEL, "prompt": "Tell me about inference platforms.", "stream": True,
            "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0.0,
            "stream_options": {"include_usage": True}}
    st = Stats()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(client, url, body, headers, st)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        st.elapsed = time.perf_counter() - start
    return st


def _wait(base: str, key: str | None, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited ({proc.returncode}); see {log}")
        # The app prints READY once every application is up (not just the first one).
        up = proc.args[-1] != "serve_app.local" or "READY " in log.read_text(errors="replace")
        try:
            ok = httpx.get(f"{base}/v1/models", headers=headers, timeout=5).status_code == 200
            if ok and up:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    sys.exit(f"server at {base} not ready after {timeout:.0f}s; see {log}")


def _start(cmd: list[str], env: dict, log: Path, stack: ExitStack) -> subprocess.Popen:
    out = stack.enter_context(log.open("w"))
    # Same session as the client, as when a person starts both from one shell. A new session
    # is a new scheduler autogroup on Linux: the server's busy-polling engine processes then
    # starve its own HTTP front end (measured: standalone vLLM c=8 10 req/s vs 57 req/s).
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                            process_group=0)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    stack.callback(stop)
    return proc


def _signal_tree(root: int, sig: int) -> None:
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


def _proc_label(pid: int) -> str:
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
            out[pid] = (_proc_label(pid), (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
             ) -> dict[str, float]:
    """CPU seconds between two snapshots, by label (diffed per pid: Ray retitles processes)."""
    out: dict[str, float] = {}
    for pid, (label, secs) in after.items():
        used = secs - before.get(pid, (label, 0.0))[1]
        out[label] = out.get(label, 0.0) + used
    return out


def _vllm_cmd(model_dir: Path, port: int) -> list[str]:
    # Same engine arguments as the app's LLMServer (LOCAL_ENGINE_ARGS).
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(LOCAL_ENGINE_ARGS["max_model_len"]),
        "--kv-cache-memory-bytes", str(LOCAL_ENGINE_ARGS["kv_cache_memory_bytes"]),
        "--dtype", LOCAL_ENGINE_ARGS["dtype"],
        "--disable-uvicorn-access-log",
    ]


def _serving_file(design: Design, path: Path) -> Path:
    data = local_serving_config().model_dump(mode="json", by_alias=True)
    data.update(design.config)
    if design.only:
        data["models"] = [m for m in data["models"] if m["id"] in design.only]
        data["aliases"] = [
            dict(a, targets=[t for t in a["targets"] if t["model"] in design.only])
            for a in data["aliases"]
        ]
    path.write_text(json.dumps(data))
    return path


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


def _focus(procs: dict[str, subprocess.Popen], name: str, other: str) -> None:
    """Resume server `name` and freeze `other`, each with every process below it."""
    _signal_tree(procs[name].pid, signal.SIGCONT)
    _signal_tree(procs[other].pid, signal.SIGSTOP)


def _idle_cores(procs: dict[str, subprocess.Popen], name: str, other: str, pause: bool,
                seconds: float = 6.0) -> float:
    """CPU a server burns with no requests at all (Ray's runtime, polling loops), in cores."""
    if pause:
        _focus(procs, name, other)
    time.sleep(2.0)  # let the last requests' tails settle
    before, start = cpu_by_process(procs[name].pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_used(before, cpu_by_process(procs[name].pid))
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
        prog="python -m serve_app.bench",
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

    vllm_port, app_port = _free_port(), _free_port()
    vllm_base = f"http://127.0.0.1:{vllm_port}"
    app_base = f"http://127.0.0.1:{app_port}{design.path}"
    targets = {"vllm": (vllm_base, None), "app": (app_base, BENCH_KEY)}
    results: dict[tuple[str, int], Stats] = {}
    with ExitStack() as stack:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE")}
        vllm = _start(_vllm_cmd(model_dir, vllm_port), base_env, OUT_DIR / "vllm.log", stack)
        app_env = dict(
            base_env, **design.env, PORT=str(app_port), LLM_PLATFORM_API_KEYS=BENCH_KEY,
            LLM_PLATFORM_SERVING_FILE=str(_serving_file(design, OUT_DIR / "serving.json")),
        )
        app = _start([sys.executable, "-m", "serve_app.local"], app_env, OUT_DIR / "app.log",
                     stack)
        _wait(vllm_base, None, vllm, OUT_DIR / "vllm.log", args.startup_timeout)
        _wait(app_base, BENCH_KEY, app, OUT_DIR / "app.log", args.startup_timeout)
        print(f"design {args.design}: {design.doc}"
              f"{' (idle server paused)' if args.pause_idle else ''}", flush=True)
        procs, other = {"vllm": vllm, "app": app}, {"vllm": "app", "app": "vllm"}
        for p in procs.values():  # never leave a server frozen, whatever happens
            stack.callback(_signal_tree, p.pid, signal.SIGCONT)
        for base, key in targets.values():  # warm-up, not measured
            asyncio.run(run_load(base, key, 4, 3.0, args.max_tokens))
        idle = {name: _idle_cores(procs, name, other[name], args.pause_idle) for name in procs}
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
                        _focus(procs, name, other[name])
                        time.sleep(0.5)
                    st = _measured(procs[name].pid, base, key, c, step, args.max_tokens)
                    results.setdefault((name, c), Stats()).merge(st)
            for name in ("vllm", "app"):
                st = results[(name, c)]
                print(f"  {name:4s} c={c:<3d} {st.rps:7.2f} req/s {st.tps:8.1f} tok/s "
                      f"TTFT p50 {st.ttft_ms(50):7.1f} ms p99 {st.ttft_ms(99):7.1f} ms "
                      f"errors {st.errors}", flush=True)
    _report(args.design, levels, results, idle)


def _report(design: str, levels: list[int], results: dict[tuple[str, int], Stats],
            idle: dict[str, float]) -> None:
    print(f"\n{'c':>3} | {'vLLM req/s':>10} {'app req/s':>10} {'ratio':>6} | "
          f"{'vLLM tok/s':>10} {'app tok/s':>10} | {'TTFT p50 vLLM/app ms':>21} "
          f"{'d':>6} | {'TTFT p99 vLLM/app ms':>21}")
    summary = {}
    for c in levels:
        v, a = results[("vllm", c)], results[("app", c)]
        ratio = a.rps / v.rps if v.rps else 0.0
        d50 = a.ttft_ms(50) - v.ttft_ms(50)
        print(f"{c:>3} | {v.rps:>10.2f} {a.rps:>10.2f} {ratio:>6.2f} | {v.tps:>10.1f} "
              f"{a.tps:>10.1f} | {v.ttft_ms(50):>9.1f} / {a.ttft_ms(50):>9.1f} {d50:>+6.1f} | "
              f"{v.ttft_ms(99):>9.1f} / {a.ttft_ms(99):>9.1f}")
        summary[c] = {"ratio": round(ratio, 3), "ttft_p50_overhead_ms": round(d50, 1),
                      "vllm_rps": round(v.rps, 2), "app_rps": round(a.rps, 2),
                      "errors": v.errors + a.errors}
    for c in levels:
        print(f"\nCPU ms per completed request at c={c} (server processes + this client):")
        for name in ("vllm", "app"):
            st = results[(name, c)]
            per_request = {
                label: secs * 1000 / max(st.requests, 1)
                for label, secs in sorted(st.cpu.items(), key=lambda kv: -kv[1])
            }
            print(f"  {name:4s} total {sum(per_request.values()):6.1f}: " + ", ".join(
                f"{label} {ms:.1f}" for label, ms in per_request.items() if ms >= 0.05))
            summary[c][f"{name}_cpu_ms_per_request"] = {
                label: round(ms, 2) for label, ms in per_request.items()}
    summary["idle_cores"] = {name: round(v, 3) for name, v in idle.items()}
    (OUT_DIR / f"result-{design}.json").write_text(json.dumps(summary, indent=1))
    last = levels[-1]
    ratio = summary[last]["ratio"]
    print(f"throughput ratio c={last}: {ratio:.2f}")


if __name__ == "__main__":
    main()
