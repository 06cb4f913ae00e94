"""Budget used per key, as gauges: what the Tenants dashboard and the near-budget alert read.

The budgets are counted in Redis by the admission script (limiter.ADMIT: `<prefix>day:<day id>`
and `<prefix>month:<YYYYMM>`, reservations settled to real usage). Every few seconds each
ingress replica reads those counters of every key with a dailyTokens or monthlyTokens limit in
one MGET and sets two gauges per key and window (`day`, `month`): tokens used and the limit.
The gauges hold their values between reads (serve_app/held_gauge.py): while Redis is away they
show the last usage read, and a key removed from the limits file stops being reported.
Every replica reports the same numbers, so queries take `max by (key, window)`. Cardinality:
configured keys with a budget x 2 windows; the label is the key's name, never its secret.

Off the request path: a slow or absent Redis delays only the next report. The window ids are
computed from this replica's clock (the script uses Redis's): at a day or month boundary the
gauge may read the old window for one interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from serve_app.tenants.metrics import Meter
from serve_app.tenants.policy import TenantLimits

logger = logging.getLogger("ray.serve")

REPORT_INTERVAL_S = 10.0


def month_id(now: float) -> str:
    """The UTC calendar month of `now` as YYYYMM (the id limiter.ADMIT's month key carries)."""
    return time.strftime("%Y%m", time.gmtime(now))


def day_id(now: float, day_seconds: int) -> int:
    """The day window of `now` (limiter.ADMIT: floor(now / day seconds))."""
    return math.floor(now / day_seconds)


class BudgetReporter:
    def __init__(
        self,
        client: Any,  # redis.asyncio.Redis
        key_prefix: Callable[[str], str],  # key name -> its counters' prefix (limiter.prefix)
        limits: Callable[[], Mapping[str, TenantLimits]],
        meter: Meter,
        *,
        day_seconds: int,
        timeout_s: float,
        interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client, self._prefix, self._limits = client, key_prefix, limits
        self._meter, self._day_s, self._timeout = meter, day_seconds, timeout_s
        self._interval, self._clock = interval_s, clock
        self._task: asyncio.Task | None = None
        self._failing = False

    def start(self) -> None:
        """Report every interval from now on (idempotent; needs a running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                await self.report_once()
                self._failing = False
            except Exception as exc:  # Redis away: the gauges hold their last values
                if not self._failing:
                    logger.warning("tenant budgets not reported (%s: %s)", type(exc).__name__, exc)
                self._failing = True
            await asyncio.sleep(self._interval)

    async def report_once(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Read every budget counter and set the gauges; returns (key, window) -> (used, limit)."""
        now = self._clock()
        wanted: list[tuple[str, str, int, str]] = []  # key, window, limit, Redis key
        for name, lim in sorted(self._limits().items()):
            if lim.daily_tokens is not None:
                wanted.append((name, "day", lim.daily_tokens,
                               f"{self._prefix(name)}day:{day_id(now, self._day_s)}"))
            if lim.monthly_tokens is not None:
                wanted.append((name, "month", lim.monthly_tokens,
                               f"{self._prefix(name)}month:{month_id(now)}"))
        if not wanted:
            self._meter.budgets({})
            return {}
        async with asyncio.timeout(self._timeout):
            values = await self._client.mget([w[3] for w in wanted])
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for (name, window, limit, _), raw in zip(wanted, values, strict=True):
            # Settlement can take a counter below 0 for a moment (refund of a reservation
            # whose window rolled over is skipped, so rarely): never report less than 0.
            out[(name, window)] = (max(0, int(raw or 0)), limit)
        self._meter.budgets(out)
        return out
