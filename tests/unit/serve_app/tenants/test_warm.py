"""A replica's first admissions: warmed at start (connection open, scripts loaded) they cost one
round trip and are counted even under a short timeout; and the pipelined calls of one replica
(NOSCRIPT fallback, calls dropped after their caller gave up). Against a real redis-server,
behind a small TCP relay that adds latency to every request to Redis, as a busy network or
machine would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis

from serve_app.tenants.limiter import RedisLimiter
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.policy import TenantLimits
from tests.unit.serve_app.tenants.test_gate import Body, gate
from tests.unit.serve_app.tenants.test_limiter import MONTH, fresh

DELAY_S = 0.05  # per request to Redis: a warm admission is 1 round trip, a cold one 3 or more
TIMEOUT_MS = 150


@contextlib.asynccontextmanager
async def slow_relay(redis_port: int, delay_s: float) -> AsyncIterator[int]:
    """127.0.0.1:<port yielded> -> redis, holding each client write for `delay_s`."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   delay: float) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", redis_port)
        await asyncio.gather(pump(client_r, server_w, delay_s), pump(server_r, client_w, 0))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _rpm_count(url: str, prefix: str, key: str) -> int:
    async def read() -> int:
        client = Redis.from_url(url)
        try:
            return sum(int(v) for v in await client.hvals(f"{prefix}{{{key}}}:rpm"))
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_warmed_replica_counts_its_first_admission_under_a_short_timeout(
    tmp_path: Path, redis_server: LocalRedis,
) -> None:
    """Without the warm-up the first call pays connect + NOSCRIPT + SCRIPT LOAD + retry inside
    the per-call timeout and, failing open, admits the request uncounted (issue 20: rpm 30
    let 37 of 100 through on a cold replica)."""
    limits = "k: {rpm: 5}\n"

    async def first_admission(warm: bool) -> tuple[bool, bool, str]:
        admin = Redis.from_url(redis_server.url)
        await admin.script_flush()  # a Redis that has never seen the scripts
        await admin.aclose()
        async with slow_relay(redis_server.port, DELAY_S) as port:
            g = gate(tmp_path, f"redis://127.0.0.1:{port}/0", limits,
                     redis_timeout_ms=TIMEOUT_MS, redis_failure_mode="open")
            warmed = await g.warm() if warm else False
            ticket = await g.admit("k", "m", Body(max_tokens=1), {})
            assert ticket is not None
            counted = ticket.charge is not None
            ticket.close("ok")
            await g.drain()
            return warmed, counted, g._cfg.key_prefix

    warmed, counted, prefix = asyncio.run(first_admission(warm=True))
    assert warmed and counted
    assert _rpm_count(redis_server.url, prefix, "k") == 1
    # The same first call on a cold gate times out and fails open: what the warm-up prevents.
    warmed, counted, prefix = asyncio.run(first_admission(warm=False))
    assert not warmed and not counted
    assert _rpm_count(redis_server.url, prefix, "k") == 0


def test_warm_up_that_cannot_reach_redis_is_bounded_and_the_replica_starts(
    tmp_path: Path,
) -> None:
    from tests.unit.serve_app.tenants.test_gate import _black_hole

    async def run() -> tuple[bool, float]:
        with _black_hole() as hole:
            port = hole.getsockname()[1]
            g = gate(tmp_path, f"redis://127.0.0.1:{port}/0", "k: {rpm: 5}\n",
                     redis_warmup_timeout_ms=300)
            loop = asyncio.get_running_loop()
            started = loop.time()
            warmed = await g.warm()
            return warmed, loop.time() - started

    warmed, took = asyncio.run(run())
    assert not warmed
    assert took < 2.0


def test_scripts_flushed_after_warm_up_are_reloaded_and_the_call_counted(
    redis_server: LocalRedis,
) -> None:
    async def run() -> bool:
        client = Redis.from_url(redis_server.url)
        lim = RedisLimiter(client, fresh(), lease_ttl_s=60, budget_day_seconds=86_400)
        await lim.warm()
        await client.script_flush()  # Redis restarted or flushed under a running replica
        decision, _ = await lim.admit("k", TenantLimits(rpm=1), 1, "lease", *MONTH)
        again, _ = await lim.admit("k", TenantLimits(rpm=1), 1, "lease2", *MONTH)
        await client.aclose()
        return decision.allowed and not again.allowed

    assert asyncio.run(run())


def test_concurrent_calls_share_pipelines_and_stay_exact(redis_server: LocalRedis) -> None:
    """200 admissions at once from one replica go out in a few pipelines on one connection;
    rpm 50 still admits exactly 50."""

    async def run() -> tuple[int, int]:
        client = Redis.from_url(redis_server.url)
        lim = RedisLimiter(client, fresh(), lease_ttl_s=60, budget_day_seconds=86_400)
        await lim.warm()
        results = await asyncio.gather(*(
            lim.admit("k", TenantLimits(rpm=50), 1, f"l{i}", *MONTH) for i in range(200)))
        connections = len(client.connection_pool._available_connections) + len(
            client.connection_pool._in_use_connections)
        await client.aclose()
        return sum(d.allowed for d, _ in results), connections

    admitted, connections = asyncio.run(run())
    assert admitted == 50
    assert connections == 1


def test_a_call_given_up_before_its_batch_left_is_never_sent(redis_server: LocalRedis) -> None:
    """A caller that timed out (and decided without Redis) before its call went out must not be
    charged later: its call is dropped from the batch."""

    async def run() -> str:
        prefix = fresh()
        async with slow_relay(redis_server.port, DELAY_S) as port:
            client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
            lim = RedisLimiter(client, prefix, lease_ttl_s=60, budget_day_seconds=86_400)
            await lim.warm()
            first = asyncio.create_task(lim.admit("k", TenantLimits(rpm=10), 1, "a", *MONTH))
            await asyncio.sleep(DELAY_S / 5)  # the first batch is on the wire
            second = asyncio.create_task(lim.admit("k", TenantLimits(rpm=10), 1, "b", *MONTH))
            await asyncio.sleep(0)
            second.cancel()  # gives up while queued behind the first batch
            await first
            await asyncio.sleep(3 * DELAY_S)
            await client.aclose()
        return prefix

    prefix = asyncio.run(run())
    assert _rpm_count(redis_server.url, prefix, "k") == 1
