"""Budget-used gauges: what the admission script counted in a real Redis, per key and window,
next to the key's limit; keys without a budget report nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pydantic

from serve_app.tenants.gate import BODY_BYTES_STATE, TenantGate
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.metrics import Meter
from serve_app.tenants.settings import TenantsConfig
from serve_app.tenants.usage import day_id, month_id


class Body(pydantic.BaseModel):
    model: str = "m"
    max_tokens: int | None = None
    n: int = 1
    stream: bool = False


class Recorder(Meter):
    def __init__(self) -> None:
        self.budgets_seen: dict[tuple[str, str], tuple[int, int]] = {}

    def budgets(self, rows) -> None:  # type: ignore[override]
        self.budgets_seen = dict(rows)


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def test_window_ids_match_the_admission_scripts() -> None:
    # 2026-12-04T20:00:00Z; limiter.ADMIT: day id floor(now / day seconds), month YYYYMM.
    now = 1796414400.0
    assert month_id(now) == "202612"
    assert day_id(now, 86_400) == 20_791
    assert day_id(now, 20) == 89_820_720


def test_gauges_report_settled_usage_and_limits_per_key_and_window(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text("both: {dailyTokens: 1000, monthlyTokens: 50000}\n"
                      "monthly: {monthlyTokens: 7000}\n"
                      "rate: {rpm: 10}\n")
    cfg = TenantsConfig(limits_file=str(limits), key_prefix=f"u{uuid.uuid4().hex[:6]}:",
                        redis_timeout_ms=2000)
    meter = Recorder()
    g = TenantGate(cfg, {"m": 512}, environ={"LLM_PLATFORM_REDIS_URL": redis_server.url},
                   meter=meter)

    async def run() -> dict[tuple[str, str], tuple[int, int]]:
        for key, (prompt, completion) in {"both": (7, 3), "monthly": (20, 5)}.items():
            t = await g.admit(key, "m", Body(max_tokens=100, stream=True), {BODY_BYTES_STATE: 36})
            t.observe(_sse({"choices": [], "usage": {"prompt_tokens": prompt,
                                                     "completion_tokens": completion}}))
            t.close("ok")
        await g.drain()
        assert g._budgets is not None
        return await g._budgets.report_once()

    reported = asyncio.run(run())
    # Reservations (36 + 64 + 100 tokens each) settled to the real usage before the read.
    expected = {("both", "day"): (10, 1000), ("both", "month"): (10, 50000),
                ("monthly", "month"): (25, 7000)}
    assert reported == expected
    assert meter.budgets_seen == expected  # "rate" has no budget: no series


def test_no_redis_no_reporter(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text("both: {dailyTokens: 1000}\n")
    g = TenantGate(TenantsConfig(limits_file=str(limits)), {"m": 512}, environ={})
    assert g._budgets is None
