"""Admission and settlement of one request of a limited key, in the ingress replica.

Before the request reaches a model the gate reserves an upper bound of what it can spend,
`prompt + max_tokens x choices` (the model's context length when max_tokens is absent), in one
Redis round trip (limiter.ADMIT). When the answer is complete, failed, or the client went away,
the reservation is settled to the real usage (limiter.SETTLE), without delaying the answer.

The prompt bound is the request body's size in bytes (+ a margin for the chat template's
special tokens), capped at the context length: a tokenizer that works on UTF-8 bytes (BPE,
SentencePiece with byte fallback) never makes more tokens than the text has bytes, and a prompt
longer than the context is refused by the engine. Usage settles the overestimate away.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import functools
import json
import logging
import math
import time
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from serve_app.errors import GatewayError
from serve_app.tenants.metrics import Meter
from serve_app.tenants.policy import LimitsStore, TenantLimits
from serve_app.tenants.settings import TenantsConfig
from serve_app.tenants.usage import BudgetReporter

if typing.TYPE_CHECKING:  # redis is imported only where a Redis URL is configured
    from serve_app.tenants.limiter import Charge, Decision, RedisLimiter

logger = logging.getLogger("ray.serve")

TEMPLATE_MARGIN_TOKENS = 64
HEADERS_STATE = "ratelimit_headers"  # scope["state"] entry the http middleware adds
BODY_BYTES_STATE = "body_bytes"  # scope["state"] entry the http middleware counts
# vLLM sets `usage` on the final chunk only (chunks are dumped with exclude_unset), so items
# without this mark are passed on unparsed.
_USAGE_MARK = '"usage"'
_SKIP_REDIS_S = 1.0  # after a failure, decide without Redis for this long


class RedisUnavailableError(Exception):
    pass


def ceil_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))


@functools.lru_cache(maxsize=4)
def _month(year: int, month: int) -> tuple[str, float]:
    days = calendar.monthrange(year, month)[1]
    end = dt.datetime(year, month, 1, tzinfo=dt.UTC) + dt.timedelta(days=days)
    return f"{year:04d}{month:02d}", end.timestamp()


def month_window(now: float) -> tuple[str, int]:
    """The UTC calendar month of `now` as YYYYMM, and seconds until it ends."""
    t = time.gmtime(now)
    month_id, end = _month(t.tm_year, t.tm_mon)
    return month_id, max(1, int(end - now))


def duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def _sequences(body: Any) -> int:
    """Sequences the request generates: n per prompt (a completions prompt may be a list)."""
    n = getattr(body, "n", None) or 1
    prompt = getattr(body, "prompt", None)
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        n *= len(prompt)
    return n


def prompt_bound(body_bytes: int, context: int) -> int:
    return min(body_bytes + TEMPLATE_MARGIN_TOKENS, context)


def reservation(body: Any, body_bytes: int, context: int) -> int:
    prompt = prompt_bound(body_bytes, context)
    if not hasattr(body, "max_tokens") and not hasattr(body, "max_completion_tokens"):
        return prompt  # embeddings, score, tokenize: no completion
    max_tokens = getattr(body, "max_completion_tokens", None) or getattr(body, "max_tokens", None)
    per_choice = min(max_tokens or context, context)
    return prompt + per_choice * _sequences(body)


def _stream_options(body: Any) -> Any:
    """`stream_options` with include_usage on, of the request model's own type."""
    current = getattr(body, "stream_options", None)
    if current is not None:
        return current.model_copy(update={"include_usage": True})
    annotation = type(body).model_fields["stream_options"].annotation
    for cls in typing.get_args(annotation) or (annotation,):
        if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
            return cls(include_usage=True)
    raise TypeError(f"no stream options type in {annotation}")


@dataclass
class Usage:
    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass
class Ticket:
    """One admitted request: the body to send on, and what to settle at the end."""

    gate: TenantGate
    key: str
    model: str
    body: Any
    charge: Charge | None
    strip_usage: bool = False
    usage: Usage | None = None
    prompt_bound: int = 0
    events: int = 0  # stream events seen: the completion estimate if the client leaves early
    outcome: str = "cancelled"
    _lease_task: asyncio.Task | None = field(default=None, repr=False)

    def observe(self, item: Any) -> Any:
        """Record usage from one item of the model's answer; returns the item to send on (None:
        drop it: the usage chunk the gate asked for and the client did not)."""
        if isinstance(item, list):
            kept = [x for x in (self.observe(i) for i in item) if x is not None]
            return kept or None
        if isinstance(item, str):
            self.events += item.count("data: ")
            if _USAGE_MARK in item and self._stream_usage(item) and self.strip_usage:
                return None  # vLLM sends usage as a chunk of its own (choices: [])
            return item
        if type(item).__name__ == "ErrorResponse":
            self.outcome = "error"
            return item
        usage = getattr(item, "usage", None)
        if usage is not None:
            self.usage = Usage(
                getattr(usage, "prompt_tokens", 0) or 0,
                getattr(usage, "completion_tokens", 0) or 0,
            )
            self.outcome = "ok"
        return item

    def _stream_usage(self, text: str) -> bool:
        found = False
        for line in text.split("\n"):
            if line.startswith("data: ") and _USAGE_MARK in line:
                usage = json.loads(line[6:]).get("usage")
                if usage:
                    self.usage = Usage(usage.get("prompt_tokens", 0) or 0,
                                       usage.get("completion_tokens", 0) or 0)
                    self.outcome, found = "ok", True
        return found

    def close(self, outcome: str | None = None) -> None:
        """The answer is over: settle in the background. `outcome`: ok (the stream ended),
        error (it raised), None (abandoned, e.g. the client went away)."""
        if self._lease_task is not None:
            self._lease_task.cancel()
        if outcome is not None and self.usage is None and self.outcome != "error":
            self.outcome = outcome
        self.gate._finish(self)


class TenantGate:
    def __init__(
        self,
        cfg: TenantsConfig,
        contexts: Mapping[str, int],
        *,
        environ: Mapping[str, str] | None = None,
        meter: Meter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import os

        environ = os.environ if environ is None else environ
        self._cfg = cfg
        self._contexts = dict(contexts)
        self._store = LimitsStore(cfg.limits_file, cfg.reload_interval_s)
        self._meter = meter or Meter()
        self._clock = clock
        self._timeout = cfg.redis_timeout_ms / 1000
        self._skip_until = 0.0
        self._pending: set[asyncio.Task] = set()
        url = environ.get(cfg.redis_url_env_var, "").strip()
        self._limiter: RedisLimiter | None = None
        self._budgets: BudgetReporter | None = None
        self._errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)
        if url:
            try:
                from redis.asyncio import Redis
                from redis.asyncio.retry import Retry
                from redis.backoff import NoBackoff
                from redis.exceptions import RedisError

                from serve_app.tenants.limiter import RedisLimiter
            except ImportError as exc:  # an image without redis-py: decide as if Redis were down
                logger.error("tenant limits: %s; requests of limited keys follow"
                             " redisFailureMode (%s)", exc, cfg.redis_failure_mode)
                return
            self._errors += (RedisError,)
            client = Redis.from_url(
                url,
                password=environ.get(cfg.redis_password_env_var) or None,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # No retries: redis-py's default re-sends a command after a timeout or a lost
                # connection, and a script that charges must not run twice. Past the timeout
                # the request is decided by redisFailureMode instead.
                retry=Retry(NoBackoff(), 0),
            )
            self._limiter = RedisLimiter(client, cfg.key_prefix, lease_ttl_s=cfg.lease_ttl_s,
                                         budget_day_seconds=cfg.budget_day_seconds)
            self._budgets = BudgetReporter(
                client, self._limiter.prefix, lambda: self._store.limits, self._meter,
                day_seconds=cfg.budget_day_seconds, timeout_s=self._timeout * 5)
        elif cfg.limits_file:
            logger.error("tenant limits are configured but %s is unset: limits cannot be"
                         " counted; requests of limited keys follow redisFailureMode (%s)",
                         cfg.redis_url_env_var, cfg.redis_failure_mode)

    @classmethod
    async def in_replica(cls, cfg: TenantsConfig, contexts: Mapping[str, int]) -> TenantGate:
        """The gate of a Serve replica, warmed up: metrics go to Ray's exporter."""
        from serve_app.tenants.metrics import RayMeter

        gate = cls(cfg, contexts, meter=RayMeter())
        await gate.warm()
        return gate

    async def warm(self) -> bool:
        """Connect to Redis and load the scripts, bounded by redisWarmupTimeoutMs. Called when
        the replica starts (Ray Serve awaits an async __init__ before the replica takes
        traffic): a cold replica's first calls under load otherwise pay for the connection
        and the script load inside the short per-call timeout, and fail open uncounted. On
        failure the replica starts anyway; its first call connects and loads (NOSCRIPT)."""
        if self._budgets is not None:
            self._budgets.start()  # the budget gauges from the start, not the first request
        if self._limiter is None:
            return False
        try:
            async with asyncio.timeout(self._cfg.redis_warmup_timeout_ms / 1000):
                await self._limiter.warm()
        except (*self._errors, RuntimeError) as exc:
            logger.warning("tenant limits: Redis warm-up failed (%s: %s); the first requests"
                           " connect", type(exc).__name__, exc)
            return False
        return True

    def limits(self, key_name: str) -> TenantLimits | None:
        return self._store.limits.get(key_name)

    def check_n(self, key_name: str | None, body: Any) -> None:
        n = getattr(body, "n", None) or 1
        limits = self.limits(key_name) if key_name else None
        cap = limits.max_n if limits and limits.max_n else self._cfg.default_max_n
        if n > cap:
            raise GatewayError(400, f"`n` is {n}; this key may ask for at most {cap} choices.",
                               param="n", code="invalid_value")

    async def admit(
        self, key_name: str | None, model: str, body: Any, state: dict[str, Any]
    ) -> Ticket | None:
        """Check `n` and the key's limits; None when the key is not counted. Raises GatewayError
        (429 over a limit, 503 when Redis is away and the mode is closed)."""
        self.check_n(key_name, body)
        if self._budgets is not None:
            self._budgets.start()  # idempotent; a gate that was never warmed starts it here
        limits = self.limits(key_name) if key_name else None
        if key_name is None or limits is None or not limits.counted:
            if key_name is not None:
                return Ticket(self, key_name, model, body, None)
            return None
        started = time.perf_counter()
        context = self._contexts.get(model, self._cfg.default_context_tokens)
        body_bytes = state.get(BODY_BYTES_STATE, 0)
        tokens = reservation(body, body_bytes, context)
        try:
            decision, charge = await self._admit_redis(key_name, limits, tokens)
        except RedisUnavailableError:
            allowed = self._cfg.redis_failure_mode == "open"
            self._meter.redis_unavailable(self._cfg.redis_failure_mode, allowed)
            self._meter.admission(key_name, model, time.perf_counter() - started)
            if not allowed:
                self._meter.rejected(key_name, model, "redis_unavailable")
                raise GatewayError(503, "Rate limits cannot be checked right now; retry later.",
                                   code="rate_limiter_unavailable") from None
            return Ticket(self, key_name, model, body, None)
        self._meter.admission(key_name, model, time.perf_counter() - started)
        state[HEADERS_STATE] = self._headers(limits, decision)
        if not decision.allowed:
            self._meter.rejected(key_name, model, decision.reason)
            self._reject(decision, limits, tokens, state[HEADERS_STATE])
        ticket = Ticket(self, key_name, model, body, charge,
                        prompt_bound=prompt_bound(body_bytes, context))
        if getattr(body, "stream", False) and "stream_options" in type(body).model_fields:
            options = getattr(body, "stream_options", None)
            ticket.strip_usage = not (options is not None and options.include_usage)
            ticket.body = body.model_copy(update={"stream_options": _stream_options(body)})
        if charge.lease and self._limiter is not None:
            ticket._lease_task = asyncio.create_task(
                self._limiter.keep_lease(charge, self._timeout)
            )
        return ticket

    async def _admit_redis(
        self, key_name: str, limits: TenantLimits, tokens: int
    ) -> tuple[Decision, Charge]:
        if self._limiter is None or time.monotonic() < self._skip_until:
            raise RedisUnavailableError
        month_id, month_left = month_window(self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                return await self._limiter.admit(
                    key_name, limits, tokens, uuid.uuid4().hex, month_id, month_left
                )
        except self._errors as exc:
            self._skip_until = time.monotonic() + _SKIP_REDIS_S
            logger.warning("tenant limits: Redis unavailable (%s: %s)", type(exc).__name__, exc)
            raise RedisUnavailableError from exc

    @staticmethod
    def _headers(limits: TenantLimits, d: Decision) -> list[tuple[bytes, bytes]]:
        out: list[tuple[str, str]] = []
        if limits.rpm is not None:
            out += [("x-ratelimit-limit-requests", str(limits.rpm)),
                    ("x-ratelimit-remaining-requests", str(d.requests_left or 0)),
                    ("x-ratelimit-reset-requests", duration(d.requests_reset_s))]
        if limits.tpm is not None:
            out += [("x-ratelimit-limit-tokens", str(limits.tpm)),
                    ("x-ratelimit-remaining-tokens", str(d.tokens_left or 0)),
                    ("x-ratelimit-reset-tokens", duration(d.tokens_reset_s))]
        return [(k.encode(), v.encode()) for k, v in out]

    @staticmethod
    def _reject(d: Decision, limits: TenantLimits, tokens: int,
                headers: list[tuple[bytes, bytes]]) -> None:
        budget = d.reason in ("daily_tokens", "monthly_tokens")
        if d.retry_after_s is None:
            headers.append((b"x-should-retry", b"false"))
        else:
            headers += [(b"retry-after", str(ceil_s(d.retry_after_s)).encode()),
                        (b"retry-after-ms", str(int(d.retry_after_s * 1000)).encode())]
            if budget:  # waits of hours: the client must not sit in a retry loop
                headers.append((b"x-should-retry", b"false"))
        what = {
            "rpm": f"requests per minute (limit {limits.rpm})",
            "tpm": f"tokens per minute (limit {limits.tpm}, this request reserves {tokens})",
            "concurrency": f"requests in flight (limit {limits.max_concurrent})",
            "daily_tokens": f"daily token budget (limit {limits.daily_tokens},"
                            f" this request reserves {tokens})",
            "monthly_tokens": f"monthly token budget (limit {limits.monthly_tokens},"
                              f" this request reserves {tokens})",
        }[d.reason]
        when = ("" if d.retry_after_s is None
                else f" Retry after {d.retry_after_s:.3f}s.")
        if budget:
            raise GatewayError(429, f"This key has used its {what}.{when}",
                               code="insufficient_quota", type_="insufficient_quota")
        raise GatewayError(429, f"Rate limit reached for {what}.{when}",
                           code="rate_limit_exceeded", type_="rate_limit_exceeded")

    def _finish(self, ticket: Ticket) -> None:
        usage = ticket.usage
        if usage is not None:
            self._meter.tokens(ticket.key, ticket.model, usage.prompt, usage.completion)
        self._meter.finished(ticket.key, ticket.model, ticket.outcome)
        if ticket.charge is None or self._limiter is None:
            return
        if usage is not None:
            used = usage.total
        elif ticket.outcome == "error":
            used = 0  # the engine refused or failed before producing an answer
        else:  # abandoned mid-stream: the prompt bound plus one token per event streamed
            used = min(ticket.charge.tokens, ticket.prompt_bound + ticket.events)
        task = asyncio.get_running_loop().create_task(self._settle(ticket.charge, used))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, charge: Charge, used: int) -> None:
        assert self._limiter is not None
        try:
            async with asyncio.timeout(self._timeout * 5):
                await self._limiter.settle(charge, used)
        except self._errors as exc:
            # The reservation stays charged (never under-counts); its lease expires.
            self._meter.redis_unavailable(self._cfg.redis_failure_mode, None)
            logger.warning("tenant limits: settlement lost (%s: %s)", type(exc).__name__, exc)

    async def drain(self) -> None:
        """Wait for pending settlements (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def context_lengths(cfg: Any) -> dict[str, int]:
    """Model id -> context length (engineArgs.max_model_len, else facts), for the reservation
    of a request without max_tokens. `cfg` is a ServingConfig."""
    out: dict[str, int] = {}
    for m in cfg.models:
        ctx = m.engine_args.get("max_model_len") or (m.facts.context_length if m.facts else None)
        out[m.id] = int(ctx or cfg.tenants.default_context_tokens)
    return out
