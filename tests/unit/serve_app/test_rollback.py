"""serve_app/rollback.py: the canary rollback decision and how the ingress applies it (no Ray
cluster: the coordinator's logic is called directly, the ingress tracker talks to it through a
stand-in for the actor handle)."""

from __future__ import annotations

import asyncio

from serve_app.config import ServingConfig
from serve_app.rollback import (
    AliasWindow,
    RollbackCoordinator,
    RollbackTracker,
    fingerprint,
    first_chunk_ok,
)
from serve_app.routing import AliasTable

RULE = {"maxErrorRatio": 0.2, "minRequests": 10, "windowS": 30}


def _cfg(rule: dict | None = RULE) -> ServingConfig:
    alias = {"name": "chat", "targets": [{"model": "a", "weight": 50},
                                         {"model": "b", "weight": 30},
                                         {"model": "c", "weight": 20}]}
    if rule is not None:
        alias["rollback"] = rule
    return ServingConfig.model_validate({
        "models": [{"id": m, "source": f"org/{m}"} for m in "abc"], "aliases": [alias]
    })


def _dump(cfg: ServingConfig) -> dict:
    return cfg.aliases[0].model_dump(mode="json", by_alias=True)


def test_canary_over_the_ratio_is_rolled_back_once_it_has_enough_requests():
    w = AliasWindow.from_alias(_dump(_cfg()))
    w.add("b", 9, 9, now=100.0)  # all failed, but fewer than minRequests
    assert w.evaluate(100.0) == []
    w.add("b", 1, 0, now=101.0)  # 10 requests, 9 errors
    assert w.evaluate(101.0) == ["b"]
    assert w.rolled_back["b"]["errorRatio"] == 0.9
    assert w.evaluate(102.0) == []  # latched, reported once


def test_the_stable_target_is_never_rolled_back_and_a_healthy_canary_stays():
    w = AliasWindow.from_alias(_dump(_cfg()))
    w.add("a", 100, 100, now=1.0)
    w.add("c", 100, 20, now=1.0)  # exactly the bound: not above it
    assert w.evaluate(1.0) == []


def test_errors_older_than_the_window_do_not_count():
    w = AliasWindow.from_alias(_dump(_cfg()))
    w.add("b", 10, 10, now=0.0)
    w.add("b", 10, 0, now=31.0)
    assert w.totals(31.0)["b"] == (10, 0)
    assert w.evaluate(31.0) == []


def test_coordinator_merges_replicas_and_keys_state_by_the_alias_config():
    cfg = _cfg()
    fp, alias = fingerprint(cfg.aliases[0]), _dump(cfg)
    coord = RollbackCoordinator()
    # Two ingress replicas, each below minRequests alone, together over the bound.
    assert coord.report({fp: alias}, [(fp, "chat", "b", 6, 6)]) == {fp: {}}
    answer = coord.report({fp: alias}, [(fp, "chat", "b", 6, 5), (fp, "chat", "a", 20, 0)])
    assert set(answer[fp]) == {"b"}
    assert set(coord.state()["chat"]) == {"b"}
    # A deploy that changes the alias (new weights) starts from a clean slate.
    changed = _cfg({**RULE, "maxErrorRatio": 0.5})
    fp2 = fingerprint(changed.aliases[0])
    assert fp2 != fp
    assert coord.report({fp2: _dump(changed)}, []) == {fp2: {}}
    # An unchanged alias (a redeploy of something else) keeps its verdict.
    assert set(coord.report({fp: alias}, [])[fp]) == {"b"}


def test_rolled_back_callers_go_to_the_stable_target_and_the_others_keep_theirs():
    table = AliasTable.from_config(_cfg())
    callers = [f"user-{i}" for i in range(500)]
    before = {c: table.resolve("chat", c) for c in callers}
    after = {c: table.resolve("chat", c, {"b"}) for c in callers}
    assert set(after.values()) == {"a", "c"}
    for c in callers:
        assert after[c] == ("a" if before[c] == "b" else before[c])


class _Handle:
    """Stands in for the actor handle: `report.remote(...)` awaits the real coordinator."""

    def __init__(self, coordinator: RollbackCoordinator) -> None:
        self.report = self
        self._coordinator = coordinator

    def remote(self, aliases, counts):
        async def call():
            return self._coordinator.report(aliases, counts)
        return call()


def test_tracker_flushes_counts_and_applies_the_verdict():
    cfg = _cfg()
    coord = RollbackCoordinator()
    replicas = [RollbackTracker("app", cfg.aliases) for _ in range(2)]
    for tracker in replicas:
        tracker._actor = _Handle(coord)
        assert tracker.watches("chat") and not tracker.watches("a")
        for _ in range(6):
            tracker.record("chat", "b", ok=False)
        tracker.record("chat", "a", ok=True)

    async def flush_all():
        for tracker in replicas:
            await tracker.flush()
        await replicas[0].flush()  # the first replica hears the verdict the second caused

    asyncio.run(flush_all())
    for tracker in replicas:
        assert set(tracker.rolled_back("chat")) == {"b"}
        card = tracker.describe("chat")
        assert card["stable"] == "a" and set(card["rolledBack"]) == {"b"}
        assert card["rule"] == {"maxErrorRatio": 0.2, "minRequests": 10, "windowS": 30.0}


def test_tracker_keeps_serving_when_the_coordinator_is_unreachable():
    tracker = RollbackTracker("app", _cfg().aliases)

    class _Broken:
        report = property(lambda self: (_ for _ in ()).throw(RuntimeError("actor died")))

    tracker._actor = _Broken()
    tracker.record("chat", "b", ok=False)
    asyncio.run(tracker.flush())
    assert tracker.rolled_back("chat") == {}
    assert tracker._actor is None  # looked up again at the next flush


def test_no_tracker_work_without_a_rollback_rule():
    tracker = RollbackTracker("app", _cfg(rule=None).aliases)
    assert not tracker.watches("chat") and tracker.describe("chat") is None


def test_first_chunk_judgement():
    from ray.serve.llm.openai_api_models import ErrorResponse

    def err(code: int):
        return ErrorResponse.model_validate(
            {"error": {"message": "x", "type": "t", "code": code}})

    kw = {"streamed": False, "elapsed_s": 0.1, "max_ttft_s": None}
    assert first_chunk_ok("data: {...}", **kw)
    assert not first_chunk_ok(err(500), **kw)
    assert not first_chunk_ok([err(503)], **kw)  # a stream's first batch
    assert first_chunk_ok(err(400), **kw)  # the client's mistake, not the canary's
    slow = {"elapsed_s": 3.0, "max_ttft_s": 2.0}
    assert not first_chunk_ok(["data: {...}"], streamed=True, **slow)
    assert first_chunk_ok("{...}", streamed=False, **slow)  # TTFT applies to streams only
