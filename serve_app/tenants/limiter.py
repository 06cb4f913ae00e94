"""The Redis side of the limits: one Lua script decides and charges a request atomically (one
round trip), another settles it. Every ingress replica runs the same scripts against the same
Redis, so the limits hold across replicas exactly.

Windows (rpm, tpm) slide: each key keeps a hash of per-second buckets, and a request is counted
against every bucket of the last 60 seconds (the current, partial second included, so the
window counted is at least 60 s long: the limit is never passed in any 60 s span, across a
minute boundary or not). Budgets count per UTC day (`budget_day_seconds` in tests) and per UTC
calendar month. Concurrency is a sorted set of leases (score: expiry time), renewed while the
request runs: slots of a replica that dies free themselves.

Time comes from Redis (`TIME`), not from the replicas, so replicas with skewed clocks agree.

Every script call of one replica goes through one connection, pipelined: the calls made while
a batch is on the wire go out together in the next (`_Pipeliner`). A busy replica then pays one
socket write and read per batch instead of per call, and never opens connections in a burst;
`warm()` opens that connection and loads the scripts when the replica starts.
Scripts touch keys they build from a prefix with a hash tag (`{name}`), i.e. one slot: fine on
a single Redis (ElastiCache replication group, the in-cluster Redis); Redis Cluster would need
every key declared, which this does not do.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ReadOnlyError

from serve_app.tenants.policy import TenantLimits

WINDOW_S = 60
UNLIMITED = -1

# ARGV: prefix, rpm, tpm, maxConcurrent, daily, monthly (-1: none), tokens, lease id, lease ttl
# ms, day seconds, month id, month seconds left.
# Returns {ok, reason, retry_ms, rpm_left, rpm_reset_ms, tpm_left, tpm_reset_ms, bucket, day_id}
ADMIT = """
local p = ARGV[1]
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local daily, monthly = tonumber(ARGV[5]), tonumber(ARGV[6])
local need, lease, lease_ms = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local day_s, month_id, month_left = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cur = math.floor(now)
local oldest = cur - 60 + 1
local day_id = math.floor(now / day_s)

-- used in the window, ms until `amount` fits (-1: never), ms until the window is empty
local function window(key, limit, amount)
  local flat = redis.call('HGETALL', key)
  local used, buckets, newest = 0, {}, nil
  for i = 1, #flat, 2 do
    local b, v = tonumber(flat[i]), tonumber(flat[i + 1])
    if b < oldest then
      redis.call('HDEL', key, flat[i])
    else
      used = used + v
      buckets[#buckets + 1] = {b, v}
      if newest == nil or b > newest then newest = b end
    end
  end
  local reset = 0
  if newest ~= nil then reset = math.ceil(((newest + 60) - now) * 1000) end
  if used + amount <= limit then return used, 0, reset end
  if amount > limit then return used, -1, reset end
  table.sort(buckets, function(x, y) return x[1] < y[1] end)
  local excess = used + amount - limit
  for _, bv in ipairs(buckets) do
    excess = excess - bv[2]
    if excess <= 0 then return used, math.ceil(((bv[1] + 60) - now) * 1000), reset end
  end
  return used, -1, reset
end

local rpm_left, rpm_reset, tpm_left, tpm_reset = -1, 0, -1, 0
local day_key = p .. 'day:' .. day_id
local month_key = p .. 'month:' .. month_id
if daily >= 0 then
  local used = tonumber(redis.call('GET', day_key) or '0')
  if used + need > daily then
    local wait = -1
    if need <= daily then wait = math.ceil(((day_id + 1) * day_s - now) * 1000) end
    return {0, 'daily_tokens', wait, -1, 0, -1, 0, cur, day_id}
  end
end
if monthly >= 0 then
  local used = tonumber(redis.call('GET', month_key) or '0')
  if used + need > monthly then
    local wait = -1
    if need <= monthly then wait = month_left * 1000 end
    return {0, 'monthly_tokens', wait, -1, 0, -1, 0, cur, day_id}
  end
end
if rpm >= 0 then
  local used, wait, reset = window(p .. 'rpm', rpm, 1)
  rpm_left, rpm_reset = rpm - used, reset
  if wait ~= 0 then return {0, 'rpm', wait, rpm_left, rpm_reset, -1, 0, cur, day_id} end
end
if tpm >= 0 then
  local used, wait, reset = window(p .. 'tpm', tpm, need)
  tpm_left, tpm_reset = tpm - used, reset
  if wait ~= 0 then
    return {0, 'tpm', wait, rpm_left, rpm_reset, tpm_left, tpm_reset, cur, day_id}
  end
end
if conc >= 0 then
  local key = p .. 'conc'
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now * 1000)
  if redis.call('ZCARD', key) >= conc then
    local wait = -1
    if conc > 0 then wait = 1000 end
    return {0, 'concurrency', wait, rpm_left, rpm_reset, tpm_left, tpm_reset, cur, day_id}
  end
  redis.call('ZADD', key, now * 1000 + lease_ms, lease)
  redis.call('PEXPIRE', key, lease_ms * 2)
end
if rpm >= 0 then
  redis.call('HINCRBY', p .. 'rpm', cur, 1)
  redis.call('EXPIRE', p .. 'rpm', 61)
  rpm_left, rpm_reset = rpm_left - 1, 60000
end
if tpm >= 0 then
  redis.call('HINCRBY', p .. 'tpm', cur, need)
  redis.call('EXPIRE', p .. 'tpm', 61)
  tpm_left, tpm_reset = tpm_left - need, 60000
end
if daily >= 0 then
  redis.call('INCRBY', day_key, need)
  redis.call('EXPIRE', day_key, day_s + 60)
end
if monthly >= 0 then
  redis.call('INCRBY', month_key, need)
  redis.call('EXPIRE', month_key, month_left + 86400)
end
return {1, '', 0, rpm_left, rpm_reset, tpm_left, tpm_reset, cur, day_id}
"""

# ARGV: prefix, refund (reserved - used; may be negative), bucket, day id, month id, lease,
# then 1/0 flags: tpm, daily, monthly. A counter whose window has passed is left alone.
SETTLE = """
local p, refund, bucket = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if ARGV[7] == '1' and redis.call('HEXISTS', p .. 'tpm', bucket) == 1 then
  redis.call('HINCRBY', p .. 'tpm', bucket, -refund)
end
if ARGV[8] == '1' and redis.call('EXISTS', p .. 'day:' .. ARGV[4]) == 1 then
  redis.call('DECRBY', p .. 'day:' .. ARGV[4], refund)
end
if ARGV[9] == '1' and redis.call('EXISTS', p .. 'month:' .. ARGV[5]) == 1 then
  redis.call('DECRBY', p .. 'month:' .. ARGV[5], refund)
end
if ARGV[6] ~= '' then redis.call('ZREM', p .. 'conc', ARGV[6]) end
return 1
"""

# ARGV: prefix, lease, lease ttl ms. Renews a lease that still exists (XX).
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', ARGV[1] .. 'conc', 'XX', now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', ARGV[1] .. 'conc', tonumber(ARGV[3]) * 2)
return 1
"""


def _limit(value: int | None) -> int:
    return UNLIMITED if value is None else value


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # '' when allowed; rpm, tpm, concurrency, daily_tokens, monthly_tokens
    retry_after_s: float | None  # None: waiting does not help (the request alone is too big)
    requests_left: int | None
    requests_reset_s: float
    tokens_left: int | None
    tokens_reset_s: float
    bucket: int
    day_id: int


@dataclass(frozen=True)
class Charge:
    """What admission charged, for settlement."""

    prefix: str
    tokens: int
    bucket: int
    day_id: int
    month_id: str
    lease: str
    tpm: bool
    daily: bool
    monthly: bool


@dataclass
class _Call:
    script: str
    args: list[Any]
    future: asyncio.Future = field(repr=False)


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


_SHA1 = {script: sha1(script) for script in (ADMIT, SETTLE, RENEW)}


class _Pipeliner:
    """Sends script calls by EVALSHA in pipelines, one batch on the wire at a time: the calls
    queued while a batch is out go in the next. A script Redis does not know (restarted,
    flushed, never warmed) is loaded and its calls re-sent once. A call whose caller stopped
    waiting (its timeout) before its batch went out is dropped, never sent: a request decided
    without Redis is then not counted either. Nothing is retried after it was sent (the
    client has no retries): a script that charges must not run twice."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queue: list[_Call] = []
        self._flusher: asyncio.Task | None = None

    async def call(self, script: str, args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        call = _Call(script, args, loop.create_future())
        self._queue.append(call)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await call.future

    async def _flush(self) -> None:
        while self._queue:
            batch = [c for c in self._queue if not c.future.done()]
            self._queue = []
            if not batch:
                continue
            try:
                results = await self._send(batch)
            except BaseException as exc:  # connection lost, timeout, or this task cancelled
                for c in batch:
                    if not c.future.done():
                        c.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for c, result in zip(batch, results, strict=True):
                if c.future.done():
                    continue
                if isinstance(result, Exception):
                    c.future.set_exception(result)
                else:
                    c.future.set_result(result)

    async def _send(self, batch: list[_Call]) -> list[Any]:
        results = await self._pipeline(batch)
        if any(isinstance(r, ReadOnlyError) for r in results):
            # The server behind the address was demoted to a replica: a failover (ElastiCache
            # moves the primary endpoint's DNS name) leaves connections to the old primary
            # open, and every script then fails with READONLY. Drop the connections so the
            # next call resolves the address again; redis-py does that only for Sentinel
            # connections (redis/asyncio/sentinel.py, ReadOnlyError).
            await self._client.connection_pool.disconnect()
            return results
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for script in {batch[i].script for i in missing}:
                await self._client.script_load(script)
            for i, result in zip(missing, await self._pipeline([batch[i] for i in missing]),
                                 strict=True):
                results[i] = result
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for c in batch:
            pipe.evalsha(_SHA1[c.script], 0, *c.args)
        # A script's error comes back in place as a ResponseError (NoScriptError is one).
        return list(await pipe.execute(raise_on_error=False))


class RedisLimiter:
    def __init__(self, client: Redis, key_prefix: str, *, lease_ttl_s: float,
                 budget_day_seconds: int) -> None:
        self._client = client
        self._prefix = key_prefix
        self._lease_ms = int(lease_ttl_s * 1000)
        self._day_s = budget_day_seconds
        self._pipe = _Pipeliner(client)

    async def warm(self) -> None:
        """Open the connection and load the scripts (a replica's start, before traffic), so
        the first admissions cost one round trip, not connect + NOSCRIPT + load + retry."""
        await self._client.ping()
        for script in (ADMIT, SETTLE, RENEW):
            loaded = await self._client.script_load(script)
            loaded = loaded.decode() if isinstance(loaded, bytes) else loaded
            if loaded != _SHA1[script]:
                raise RuntimeError(f"Redis gave SHA1 {loaded} for a script of SHA1 {_SHA1[script]}")

    def prefix(self, key_name: str) -> str:
        # The hash tag keeps one key's counters in one slot.
        return f"{self._prefix}{{{key_name}}}:"

    async def admit(
        self, key_name: str, limits: TenantLimits, tokens: int, lease: str, month_id: str,
        month_left_s: int,
    ) -> tuple[Decision, Charge]:
        prefix = self.prefix(key_name)
        lease = lease if limits.max_concurrent is not None else ""
        raw = await self._pipe.call(
            ADMIT, [
                prefix, _limit(limits.rpm), _limit(limits.tpm), _limit(limits.max_concurrent),
                _limit(limits.daily_tokens), _limit(limits.monthly_tokens), tokens, lease,
                self._lease_ms, self._day_s, month_id, month_left_s,
            ],
        )
        ok, reason, retry_ms, rpm_left, rpm_reset, tpm_left, tpm_reset, bucket, day_id = raw
        decision = Decision(
            allowed=bool(ok),
            reason=reason.decode() if isinstance(reason, bytes) else str(reason),
            retry_after_s=None if retry_ms < 0 else retry_ms / 1000,
            requests_left=None if limits.rpm is None else max(0, rpm_left),
            requests_reset_s=max(0, rpm_reset) / 1000,
            tokens_left=None if limits.tpm is None else max(0, tpm_left),
            tokens_reset_s=max(0, tpm_reset) / 1000,
            bucket=int(bucket),
            day_id=int(day_id),
        )
        charge = Charge(
            prefix, tokens, int(bucket), int(day_id), month_id, lease,
            tpm=limits.tpm is not None, daily=limits.daily_tokens is not None,
            monthly=limits.monthly_tokens is not None,
        )
        return decision, charge

    async def settle(self, charge: Charge, used_tokens: int) -> None:
        await self._pipe.call(
            SETTLE, [
                charge.prefix, charge.tokens - used_tokens, charge.bucket, charge.day_id,
                charge.month_id, charge.lease, int(charge.tpm), int(charge.daily),
                int(charge.monthly),
            ],
        )

    async def renew(self, charge: Charge) -> None:
        await self._pipe.call(RENEW, [charge.prefix, charge.lease, self._lease_ms])

    async def keep_lease(self, charge: Charge, timeout_s: float) -> None:
        """Renew `charge`'s lease every third of its lifetime until cancelled."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                async with asyncio.timeout(timeout_s):
                    await self.renew(charge)
            except Exception:  # Redis away: the lease may lapse; the next renewal retries
                pass
