"""The Lua admission and settlement scripts against a real Redis, with several clients standing
in for several ingress replicas."""

from __future__ import annotations

import asyncio
import time
import uuid

from redis.asyncio import Redis

from serve_app.tenants.limiter import RedisLimiter
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.policy import TenantLimits

MONTH = ("202612", 3600)


def limiter(url: str, prefix: str, lease_ttl_s: float = 60, day_s: int = 86_400) -> RedisLimiter:
    return RedisLimiter(Redis.from_url(url), prefix, lease_ttl_s=lease_ttl_s,
                        budget_day_seconds=day_s)


def fresh() -> str:
    return f"t-{uuid.uuid4().hex[:8]}:"


async def admit(lim: RedisLimiter, key: str, limits: TenantLimits, tokens: int = 1):
    return await lim.admit(key, limits, tokens, uuid.uuid4().hex, *MONTH)


def test_rpm_is_exact_across_three_replicas_under_100_parallel_requests(
    redis_server: LocalRedis,
) -> None:
    async def run() -> list[bool]:
        prefix = fresh()
        replicas = [limiter(redis_server.url, prefix) for _ in range(3)]
        limits = TenantLimits(rpm=30)
        results = await asyncio.gather(
            *(admit(replicas[i % 3], "team-a", limits) for i in range(100))
        )
        return [d.allowed for d, _ in results]

    allowed = asyncio.run(run())
    assert sum(allowed) == 30


def test_rejection_says_how_long_to_wait_and_what_is_left(redis_server: LocalRedis) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh())
        limits = TenantLimits(rpm=2)
        first, _ = await admit(lim, "k", limits)
        await admit(lim, "k", limits)
        third, _ = await admit(lim, "k", limits)
        return first, third

    first, third = asyncio.run(run())
    assert first.allowed and first.requests_left == 1
    assert not third.allowed and third.reason == "rpm" and third.requests_left == 0
    # The oldest request leaves the 60 s window in (59, 61] seconds.
    assert third.retry_after_s is not None and 59 < third.retry_after_s <= 61


def test_tokens_are_reserved_then_settled_to_real_usage(redis_server: LocalRedis) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh())
        limits = TenantLimits(tpm=1000)
        d1, c1 = await admit(lim, "k", limits, 600)
        d2, _ = await admit(lim, "k", limits, 600)  # 1200 > 1000: refused
        await lim.settle(c1, 100)  # the first used 100 of its 600
        d3, _ = await admit(lim, "k", limits, 600)  # 100 + 600 <= 1000
        d4, _ = await admit(lim, "k", limits, 5000)  # can never fit
        return d1, d2, d3, d4

    d1, d2, d3, d4 = asyncio.run(run())
    assert d1.allowed and d1.tokens_left == 400
    assert not d2.allowed and d2.reason == "tpm" and d2.retry_after_s is not None
    assert d3.allowed and d3.tokens_left == 300
    assert not d4.allowed and d4.retry_after_s is None


def test_window_slides_use_59_s_ago_counts_61_s_ago_does_not(redis_server: LocalRedis) -> None:
    async def run():
        prefix = fresh()
        lim = limiter(redis_server.url, prefix)
        client = Redis.from_url(redis_server.url)
        now = int(float((await client.time())[0]))
        key = lim.prefix("k") + "rpm"
        # 10 requests 59 s ago (still inside the window) and 10 just outside it.
        await client.hset(key, mapping={str(now - 59): 10, str(now - 61): 10})
        d1, _ = await admit(lim, "k", TenantLimits(rpm=11))
        d2, _ = await admit(lim, "k", TenantLimits(rpm=11))
        fields = await client.hkeys(key)
        return d1, d2, {int(f) for f in fields}, now

    d1, d2, fields, now = asyncio.run(run())
    assert d1.allowed and not d2.allowed
    # The burst of 59 s ago leaves the window in about 1 s; the old bucket was pruned.
    assert d2.retry_after_s is not None and d2.retry_after_s <= 2
    assert now - 61 not in fields


def test_concurrency_slots_are_freed_by_settlement_and_by_lease_expiry(
    redis_server: LocalRedis,
) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh(), lease_ttl_s=1)
        limits = TenantLimits(max_concurrent=2)
        a, ca = await admit(lim, "k", limits)
        b, _ = await admit(lim, "k", limits)
        c, _ = await admit(lim, "k", limits)
        await lim.settle(ca, 0)
        d, _ = await admit(lim, "k", limits)  # a's slot freed by settlement
        e, _ = await admit(lim, "k", limits)
        await asyncio.sleep(1.2)  # b's and d's leases lapse: their replica "died"
        f, _ = await admit(lim, "k", limits)
        return a, b, c, d, e, f

    a, b, c, d, e, f = asyncio.run(run())
    assert a.allowed and b.allowed and not c.allowed and c.reason == "concurrency"
    assert d.allowed and not e.allowed and f.allowed


def test_renewed_lease_outlives_its_ttl(redis_server: LocalRedis) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh(), lease_ttl_s=1)
        limits = TenantLimits(max_concurrent=1)
        _, charge = await admit(lim, "k", limits)
        keeper = asyncio.create_task(lim.keep_lease(charge, 0.5))
        await asyncio.sleep(1.5)
        blocked, _ = await admit(lim, "k", limits)
        keeper.cancel()
        return blocked

    assert not asyncio.run(run()).allowed


def test_daily_budget_stops_a_key_until_the_next_day(redis_server: LocalRedis) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh(), day_s=2)
        limits = TenantLimits(daily_tokens=100)
        # Start just after a day boundary so the next two calls share the day.
        client = Redis.from_url(redis_server.url)
        sec, usec = await client.time()
        await asyncio.sleep(2 - (sec % 2 + usec / 1e6) + 0.05)
        a, _ = await admit(lim, "k", limits, 80)
        b, _ = await admit(lim, "k", limits, 30)
        await asyncio.sleep(b.retry_after_s + 0.05)
        c, _ = await admit(lim, "k", limits, 30)
        return a, b, c

    a, b, c = asyncio.run(run())
    assert a.allowed and not b.allowed and b.reason == "daily_tokens"
    assert b.retry_after_s is not None and b.retry_after_s <= 2
    assert c.allowed


def test_monthly_budget_counts_settled_usage(redis_server: LocalRedis) -> None:
    async def run():
        lim = limiter(redis_server.url, fresh())
        limits = TenantLimits(monthly_tokens=1000)
        _, c1 = await admit(lim, "k", limits, 900)
        await lim.settle(c1, 850)
        ok, _ = await admit(lim, "k", limits, 150)
        no, _ = await admit(lim, "k", limits, 1)
        return ok, no

    ok, no = asyncio.run(run())
    assert ok.allowed and not no.allowed and no.reason == "monthly_tokens"
    assert no.retry_after_s == MONTH[1]


def test_one_admission_round_trip_is_fast(redis_server: LocalRedis) -> None:
    """Sanity bound only (the measured numbers come from `make bench`)."""

    async def run() -> float:
        lim = limiter(redis_server.url, fresh())
        limits = TenantLimits(rpm=10**6, tpm=10**9, max_concurrent=10**5, daily_tokens=10**12)
        await admit(lim, "k", limits)
        started = time.perf_counter()
        for _ in range(200):
            await admit(lim, "k", limits, 100)
        return (time.perf_counter() - started) / 200

    assert asyncio.run(run()) < 0.02
