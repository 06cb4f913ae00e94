"""The load generator: streamed completions at a fixed concurrency, and what they measured."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

import httpx

from tools.bench.designs import MODEL


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
