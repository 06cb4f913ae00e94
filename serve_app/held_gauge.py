"""Gauges that hold their last value between sets, as a Prometheus gauge is read.

Ray forgets a gauge's value once it has exported it: every export interval
(`metrics_report_interval_ms`, 10 s by default) the core worker's recorder sends the values set
since the last export and clears them (src/ray/observability/open_telemetry_metric_recorder.cc,
`CollectGaugeMetricValues`), and the node's metrics agent drops a series not re-sent within two
intervals (ray/_private/telemetry/open_telemetry_metric_recorder.py, the gauge TTL). Seen with
Ray 2.60 (tests/e2e/test_held_gauge.py): a gauge set once is gone from the scrape after about
two intervals. A gauge refreshed less often than Ray exports (store sizes every 30 s, budgets
read from Redis, anything while its source is away) flickers or disappears.

`HeldGauge` keeps the last value of each tag set and one daemon thread per process sets them
again a few times per export interval. `replace` sets a whole snapshot and forgets the tag sets
not in it, so a series whose subject is gone (a deleted key, a tenant with no store) ages out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger("ray.serve")

Tags = tuple[tuple[str, str], ...]
# Re-sets per export interval: at 4 a value is set in every interval even if one refresh is late.
REFRESHES_PER_EXPORT = 4

_lock = threading.Lock()
_held: list[HeldGauge] = []
_thread: threading.Thread | None = None


def export_interval_s() -> float:
    """Ray's gauge export interval in this process (the emitter floors it at 1 s, stats.h)."""
    try:
        import ray

        return max(int(ray._config.metrics_report_interval_ms()), 1000) / 1000
    except Exception:  # outside a Ray worker: Ray's default
        return 10.0


class HeldGauge:
    def __init__(self, gauge: Any, *, start_refresher: bool = True) -> None:
        """`gauge`: a `ray.util.metrics.Gauge` (anything with `set(value, tags)`)."""
        self.gauge = gauge
        self._values: dict[Tags, float] = {}
        self._lock = threading.Lock()
        if start_refresher:
            _register(self)

    def set(self, value: float, tags: Mapping[str, str]) -> None:
        key = tuple(sorted(tags.items()))
        with self._lock:
            self._values[key] = float(value)
        self.gauge.set(value, tags=dict(tags))

    def replace(self, rows: Iterable[tuple[Mapping[str, str], float]]) -> None:
        """Set every (tags, value) of a snapshot; tag sets not in it are no longer held."""
        snapshot = {tuple(sorted(tags.items())): float(value) for tags, value in rows}
        with self._lock:
            self._values = snapshot
        self.refresh()

    def held(self) -> dict[Tags, float]:
        with self._lock:
            return dict(self._values)

    def refresh(self) -> None:
        for key, value in self.held().items():
            self.gauge.set(value, tags=dict(key))


def _register(gauge: HeldGauge) -> None:
    global _thread
    with _lock:
        _held.append(gauge)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_refresh_forever, name="held-gauges", daemon=True)
            _thread.start()


def _refresh_forever() -> None:
    stop = threading.Event()  # never set: the thread lives as long as the process
    while not stop.wait(export_interval_s() / REFRESHES_PER_EXPORT):
        with _lock:
            gauges = list(_held)
        for gauge in gauges:
            try:
                gauge.refresh()
            except Exception as exc:  # a metrics hiccup must not end the refresher
                logger.debug("held gauge not refreshed: %s", exc)
