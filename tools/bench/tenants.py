"""Admission overhead of the tenant limits: the gateway's admission step (serve_app/tenants/gate)
for one request, limits off vs on, at concurrency 1/8/32, against a real local redis-server.

    python -m tools.bench.tenants [--requests 2000] [--concurrency 1,8,32]

"off": a key without limits (the n cap and a dictionary lookup). "on": a key with rpm, tpm,
maxConcurrent, dailyTokens and monthlyTokens all set (large enough never to refuse): the Lua
admission round trip plus the settlement scheduled at the end. Latency is measured around
`admit()` as the ingress awaits it, so at concurrency c it includes waiting behind the other
c-1 requests' admissions and settlements on the same event loop, as in one ingress replica.
The loop is uvloop, as in a Ray worker (ray/_private/workers/default_worker.py installs it).

What this is not: c requests that do nothing but get admitted, back to back, keep one event
loop 100% busy with admissions, so the time at c=32 is mostly queueing behind 31 others'. In
the app a request spends most of its life in the model, and the loop shares its time with HTTP
parsing and streaming; tools/bench/tenants_app.py measures that side by side. Prints p50/p99 in
ms per mode and concurrency, the overhead (on - off), and the CPU time one admission +
settlement costs the loop (CPU seconds / requests, at c=32).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from serve_app.tenants.gate import BODY_BYTES_STATE, TenantGate
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.settings import TenantsConfig

LIMITS = ("limited: {rpm: 10000000, tpm: 100000000000, maxConcurrent: 100000,"
          " dailyTokens: 1000000000000, monthlyTokens: 1000000000000}\n")


def _body():
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest(model="tiny-chat", max_tokens=16, stream=True,
                                 messages=[{"role": "user", "content": "Hello there"}])


async def _run(gate: TenantGate, key: str, body, requests: int, c: int) -> list[float]:
    times: list[float] = []
    sem = asyncio.Semaphore(c)

    async def one() -> None:
        async with sem:
            started = time.perf_counter()
            ticket = await gate.admit(key, "tiny-chat", body, {BODY_BYTES_STATE: 120})
            times.append(time.perf_counter() - started)
            if ticket is not None:
                ticket.close("ok")

    await asyncio.gather(*(one() for _ in range(requests)))
    await gate.drain()
    return times


async def _both(cfg: TenantsConfig, url: str, body, requests: int, c: int) -> dict:
    gate = TenantGate(cfg, {"tiny-chat": 512}, environ={"LLM_PLATFORM_REDIS_URL": url})
    limits = gate.limits("limited")
    if limits is None or not limits.counted:
        raise SystemExit("the bench's limits did not load (see the error above)")
    await _run(gate, "limited", body, 200, c)  # warm up: connections, script cache
    return {mode: await _run(gate, key, body, requests, c)
            for mode, key in (("off", "unlimited"), ("on", "limited"))}


def _loop_run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,8,32")
    args = parser.parse_args(argv)
    body = _body()
    with LocalRedis() as redis, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tenants.yaml"
        path.write_text(LIMITS)
        cfg = TenantsConfig(limits_file=str(path), redis_timeout_ms=1000)
        print(f"{'c':>3} {'mode':>4} {'p50 ms':>8} {'p99 ms':>8}")
        for c in (int(x) for x in args.concurrency.split(",")):
            cpu = _cpu_s()
            results = _loop_run(_both(cfg, redis.url, body, args.requests, c))
            cpu = _cpu_s() - cpu
            for mode, times in results.items():
                print(f"{c:>3} {mode:>4} {_pct(times, 50):8.3f} {_pct(times, 99):8.3f}")
            over50 = _pct(results["on"], 50) - _pct(results["off"], 50)
            over99 = _pct(results["on"], 99) - _pct(results["off"], 99)
            # CPU of the whole run (warm-up, off, on) over the limited requests: an upper bound
            # on one admission + settlement's CPU on the loop.
            print(f"admission overhead c={c}: p50 {over50:.3f} ms, p99 {over99:.3f} ms;"
                  f" loop CPU <= {cpu * 1000 / (args.requests + 200):.3f} ms per admission",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
