"""Canary auto-rollback for aliases with `rollback` (serve_app/config.py RollbackRule).

Every ingress replica counts, per alias target, the requests it sent and how many failed (5xx,
or a first token slower than maxTtftS), and flushes those counts once a second to one named,
detached Ray actor per application (`RollbackCoordinator`). The actor keeps the sliding window,
decides, and answers each flush with the canaries that are rolled back, so every ingress
replica routes the same way within about a second. A Ray actor rather than Redis: it needs
nothing the cluster does not already run (local mode has no Redis at all), and the state is
small and only advisory: if the actor is lost, replicas keep serving with their last answer
and a new actor starts judging from an empty window.

A rolled-back canary stays out of its alias until a deploy changes the alias: the actor keys
its state by a fingerprint of the alias's config, so an unchanged alias keeps its verdict
across redeploys of anything else, and a changed one starts afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from serve_app.config import Alias

logger = logging.getLogger("ray.serve")

NAMESPACE = "llm-platform"
FLUSH_INTERVAL_S = 1.0
# A fingerprint no ingress replica has reported for this long belongs to an alias a deploy
# changed or removed: drop it (and its gauges). Replicas report every FLUSH_INTERVAL_S.
STALE_AFTER_S = 60.0
ROLLED_BACK_METRIC = "llm_platform_alias_rolled_back"
ERROR_RATIO_METRIC = "llm_platform_alias_target_error_ratio"


def fingerprint(alias: Alias) -> str:
    """Changes exactly when a deploy changes the alias (targets, weights, rule)."""
    dump = json.dumps(alias.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(dump.encode()).hexdigest()[:16]


def actor_name(app_name: str) -> str:
    return f"{app_name}-alias-rollback"


def first_chunk_ok(
    first: Any, *, streamed: bool, elapsed_s: float, max_ttft_s: float | None
) -> bool:
    """Whether a watched request went well, judged on the first item its LLMServer yields (a
    response, a batch of stream chunks, or an ErrorResponse): no 5xx error and, for a stream
    when the rule has maxTtftS, that first item in time."""
    chunk = first[0] if isinstance(first, list) and first else first
    code = getattr(getattr(chunk, "error", None), "code", None)
    if isinstance(code, int) and code >= 500:
        return False
    return not (max_ttft_s and streamed and elapsed_s > max_ttft_s)


# --- the decision (pure, stdlib only) ---------------------------------------------------------


@dataclass
class AliasWindow:
    """One alias's sliding window of (time, target, requests, errors) and its verdicts."""

    name: str
    targets: tuple[str, ...]  # targets[0] is the stable one
    max_error_ratio: float
    min_requests: int
    window_s: float
    events: deque[tuple[float, str, int, int]] = field(default_factory=deque)
    rolled_back: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_report: float = 0.0

    @classmethod
    def from_alias(cls, alias: dict[str, Any]) -> AliasWindow:
        """`alias`: an Alias dumped by alias (camelCase), as the ingress sends it."""
        rule = alias["rollback"]
        return cls(
            name=alias["name"],
            targets=tuple(t["model"] for t in alias["targets"]),
            max_error_ratio=rule["maxErrorRatio"],
            min_requests=rule["minRequests"],
            window_s=rule["windowS"],
        )

    def add(self, target: str, requests: int, errors: int, now: float) -> None:
        if target in self.targets and requests > 0:
            self.events.append((now, target, requests, errors))

    def totals(self, now: float) -> dict[str, tuple[int, int]]:
        """Per target: (requests, errors) within the window ending at `now`."""
        while self.events and self.events[0][0] <= now - self.window_s:
            self.events.popleft()
        out = {t: (0, 0) for t in self.targets}
        for _, target, n, err in self.events:
            total_n, total_err = out[target]
            out[target] = (total_n + n, total_err + err)
        return out

    def evaluate(self, now: float) -> list[str]:
        """Roll back each canary over its bound; return the ones rolled back just now."""
        newly = []
        for target, (n, err) in self.totals(now).items():
            if target == self.targets[0] or target in self.rolled_back:
                continue
            if n >= self.min_requests and err / n > self.max_error_ratio:
                self.rolled_back[target] = {
                    "since": now, "requests": n, "errors": err, "errorRatio": round(err / n, 4)
                }
                newly.append(target)
        return newly


# --- the shared state: one detached actor per Serve application ---------------------------------


class RollbackCoordinator:
    """Ray actor (see `coordinator()`): merges every ingress replica's counts and decides."""

    def __init__(self) -> None:
        from ray.util.metrics import Gauge

        self._windows: dict[tuple[str, str], AliasWindow] = {}
        self._rolled_back = Gauge(
            ROLLED_BACK_METRIC,
            description="1 while the alias's canary target is rolled back (its share goes to"
            " the alias's stable target), else 0.",
            tag_keys=("alias", "target"),
        )
        self._error_ratio = Gauge(
            ERROR_RATIO_METRIC,
            description="Share of the alias target's requests that failed over the rollback"
            " window (5xx, or a first token slower than maxTtftS).",
            tag_keys=("alias", "target"),
        )
        self._exported: set[tuple[str, str]] = set()

    def report(
        self, aliases: dict[str, dict[str, Any]], counts: list[tuple[str, str, str, int, int]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """`aliases`: fingerprint -> Alias dump; `counts`: (fingerprint, alias, target,
        requests, errors) since the replica's last report. Returns, per fingerprint, the rolled
        back targets and why."""
        now = time.time()
        for fp, alias in aliases.items():
            window = self._windows.get((alias["name"], fp))
            if window is None:
                window = self._windows[(alias["name"], fp)] = AliasWindow.from_alias(alias)
            window.last_report = now
        for fp, name, target, n, err in counts:
            window = self._windows.get((name, fp))
            if window is not None:
                window.add(target, n, err, now)
        for key, window in list(self._windows.items()):
            if now - window.last_report > STALE_AFTER_S:
                del self._windows[key]
                continue
            for target in window.evaluate(now):
                logger.warning("alias %s: canary %s rolled back to %s (%s)", window.name,
                               target, window.targets[0], window.rolled_back[target])
        self._export(now)
        return {fp: dict(w.rolled_back) for (_, fp), w in self._windows.items()
                if fp in aliases}

    def _export(self, now: float) -> None:
        rolled: dict[tuple[str, str], float] = {}
        ratios: dict[tuple[str, str], float] = {}
        for window in self._windows.values():
            for target, (n, err) in window.totals(now).items():
                key = (window.name, target)
                rolled[key] = max(rolled.get(key, 0.0), float(target in window.rolled_back))
                ratios[key] = max(ratios.get(key, 0.0), err / n if n else 0.0)
        for key in self._exported - set(rolled):  # alias changed or gone: zero its series
            rolled[key], ratios[key] = 0.0, 0.0
        for (alias, target), value in rolled.items():
            tags = {"alias": alias, "target": target}
            self._rolled_back.set(value, tags=tags)
            self._error_ratio.set(ratios[(alias, target)], tags=tags)
        self._exported = {k for w in self._windows.values() for k in
                          ((w.name, t) for t in w.targets)}

    def state(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every alias's rolled-back targets, by alias name (for tests and operators)."""
        return {w.name: dict(w.rolled_back) for w in self._windows.values()}


def coordinator(app_name: str) -> Any:
    """The application's coordinator actor, created by the first replica that asks."""
    import ray

    remote_cls = ray.remote(RollbackCoordinator)
    return remote_cls.options(
        name=actor_name(app_name),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
        max_task_retries=3,
    ).remote()


# --- the ingress side -----------------------------------------------------------------------------


class RollbackTracker:
    """Per ingress replica: counts outcomes, flushes them, and holds the current verdicts."""

    def __init__(self, app_name: str, aliases: Iterable[Alias]) -> None:
        self._app_name = app_name
        self._rules = {a.name: a for a in aliases if a.rollback is not None}
        self._fps = {name: fingerprint(a) for name, a in self._rules.items()}
        self._pending: dict[tuple[str, str], list[int]] = {}
        self._verdicts: dict[str, dict[str, dict[str, Any]]] = {}
        self._task: asyncio.Task | None = None
        self._actor: Any = None

    def watches(self, alias: str) -> bool:
        return alias in self._rules

    def max_ttft_s(self, alias: str) -> float | None:
        rule = self._rules[alias].rollback
        return rule.max_ttft_s if rule else None

    def record(self, alias: str, target: str, ok: bool) -> None:
        counts = self._pending.setdefault((alias, target), [0, 0])
        counts[0] += 1
        counts[1] += 0 if ok else 1

    def rolled_back(self, alias: str) -> dict[str, dict[str, Any]]:
        return self._verdicts.get(alias, {})

    def describe(self, alias: str) -> dict[str, Any] | None:
        """The alias's rollback rule and verdicts, for its /v1/models card."""
        rule = self._rules.get(alias)
        if rule is None or rule.rollback is None:
            return None
        return {
            "stable": rule.targets[0].model,
            "rule": rule.rollback.model_dump(mode="json", by_alias=True, exclude_none=True),
            "rolledBack": self.rolled_back(alias),
        }

    def ensure_started(self) -> None:
        """Start the flush loop on the replica's event loop (idempotent)."""
        if self._rules and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(FLUSH_INTERVAL_S)

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        counts = [(self._fps[a], a, t, n, err) for (a, t), (n, err) in pending.items()]
        aliases = {self._fps[n]: a.model_dump(mode="json", by_alias=True)
                   for n, a in self._rules.items()}
        try:
            if self._actor is None:
                self._actor = coordinator(self._app_name)
            answer = await self._actor.report.remote(aliases, counts)
        except Exception as exc:  # never fail requests over this: keep the last verdicts
            logger.warning("alias rollback coordinator unreachable: %s", exc)
            self._actor = None
            return
        self._verdicts = {name: answer.get(fp, {}) for name, fp in self._fps.items()}
