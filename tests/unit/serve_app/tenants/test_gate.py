"""The gate: reservation, the n cap, headers and error bodies, settlement of streamed and
abandoned answers, and the Redis-down modes, against a real Redis (or none at all)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from pathlib import Path

import pydantic
import pytest
from redis.asyncio import Redis

from serve_app.errors import GatewayError
from serve_app.tenants.gate import BODY_BYTES_STATE, HEADERS_STATE, TenantGate, reservation
from serve_app.tenants.local_redis import LocalRedis
from serve_app.tenants.settings import TenantsConfig


class StreamOptions(pydantic.BaseModel):
    include_usage: bool | None = None


class Body(pydantic.BaseModel):
    """The fields of vLLM's ChatCompletionRequest the gate reads (the real class is used in
    test_stream_options_of_the_real_vllm_request)."""

    model: str = "m"
    max_tokens: int | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None


def gate(tmp_path: Path, url: str | None, limits: str, **cfg) -> TenantGate:
    path = tmp_path / f"limits-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(limits)
    # A generous timeout: the machine running the tests is shared and busy.
    settings = TenantsConfig(limits_file=str(path), key_prefix=f"g{uuid.uuid4().hex[:6]}:",
                             **{"redis_timeout_ms": 2000, **cfg})
    env = {"LLM_PLATFORM_REDIS_URL": url} if url else {}
    return TenantGate(settings, {"m": 512}, environ=env)


def test_reservation_bounds_prompt_and_every_choice() -> None:
    assert reservation(Body(max_tokens=10, n=3), 100, 512) == 100 + 64 + 30
    assert reservation(Body(), 100, 512) == 164 + 512  # no max_tokens: the context length
    assert reservation(Body(max_tokens=10), 10_000, 512) == 512 + 10  # prompt capped


def test_n_above_the_default_cap_or_the_key_cap_is_a_400(tmp_path: Path) -> None:
    g = gate(tmp_path, None, "small: {maxN: 2}\n", default_max_n=4)

    async def run(key: str, n: int) -> GatewayError | None:
        try:
            await g.admit(key, "m", Body(n=n), {})
        except GatewayError as exc:
            return exc
        return None

    assert asyncio.run(run("other", 4)) is None
    big = asyncio.run(run("other", 1000))
    assert big is not None and big.status == 400 and big.param == "n"
    assert asyncio.run(run("small", 3)).status == 400


def test_429_has_openai_body_retry_after_and_ratelimit_headers(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    g = gate(tmp_path, redis_server.url, "k: {rpm: 1, tpm: 100000}\n")

    async def run():
        s1: dict = {BODY_BYTES_STATE: 50}
        t = await g.admit("k", "m", Body(max_tokens=5), s1)
        t.close("ok")
        s2: dict = {BODY_BYTES_STATE: 50}
        with pytest.raises(GatewayError) as info:
            await g.admit("k", "m", Body(max_tokens=5), s2)
        await g.drain()
        return dict(s1[HEADERS_STATE]), dict(s2[HEADERS_STATE]), info.value

    ok, refused, err = asyncio.run(run())
    assert ok[b"x-ratelimit-limit-requests"] == b"1"
    assert ok[b"x-ratelimit-remaining-requests"] == b"0"
    assert ok[b"x-ratelimit-limit-tokens"] == b"100000"
    assert int(ok[b"x-ratelimit-remaining-tokens"]) == 100000 - (50 + 64 + 5)
    assert err.status == 429
    body = err.body()["error"]
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "rate_limit_exceeded"
    assert 59 <= int(refused[b"retry-after"]) <= 61
    assert refused[b"x-ratelimit-reset-requests"].endswith(b"s")


def test_budget_spent_is_insufficient_quota_and_not_retried(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    g = gate(tmp_path, redis_server.url, "k: {dailyTokens: 10}\n")

    async def run():
        state: dict = {BODY_BYTES_STATE: 50}
        with pytest.raises(GatewayError) as info:
            await g.admit("k", "m", Body(max_tokens=5), state)
        return dict(state[HEADERS_STATE]), info.value

    headers, err = asyncio.run(run())
    assert err.body()["error"]["code"] == "insufficient_quota"
    assert headers[b"x-should-retry"] == b"false"


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def test_stream_is_settled_to_the_usage_chunk_which_is_hidden_unless_asked(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    g = gate(tmp_path, redis_server.url, "k: {tpm: 10000}\n")

    async def run():
        t = await g.admit("k", "m", Body(max_tokens=100, stream=True), {BODY_BYTES_STATE: 36})
        assert t.body.stream_options.include_usage  # asked of the engine for the client
        chunk = _sse({"choices": [{"delta": {"content": "a"}}]})
        usage = _sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
        out = [t.observe([chunk, chunk]), t.observe(usage), t.observe("data: [DONE]\n\n")]
        t.close("ok")
        await g.drain()
        return out, await Redis.from_url(redis_server.url).hvals(g._limiter.prefix("k") + "tpm")

    out, buckets = asyncio.run(run())
    assert out[0] is not None and len(out[0]) == 2 and out[1] is None
    assert sum(int(v) for v in buckets) == 10  # 7 + 3: the 200-token reservation settled


def test_abandoned_stream_frees_its_slot_and_keeps_only_what_was_streamed(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    g = gate(tmp_path, redis_server.url, "k: {tpm: 10000, maxConcurrent: 1}\n")

    async def run():
        t = await g.admit("k", "m", Body(max_tokens=100, stream=True), {BODY_BYTES_STATE: 36})
        with pytest.raises(GatewayError):  # the one slot is taken
            await g.admit("k", "m", Body(max_tokens=1), {})
        t.observe(_sse({"choices": [{"delta": {"content": "a"}}]}) * 5)
        t.close(None)  # the client went away
        await g.drain()
        t2 = await g.admit("k", "m", Body(max_tokens=1), {})
        t2.close("ok")
        await g.drain()
        tpm = await Redis.from_url(redis_server.url).hvals(g._limiter.prefix("k") + "tpm")
        return sum(int(v) for v in tpm)

    # (36 + 64) prompt bound + 5 streamed; the second (no usage seen either) keeps its prompt
    # bound, 64, and gives back its 1 completion token.
    assert asyncio.run(run()) == 105 + 64


def test_stream_options_of_the_real_vllm_request() -> None:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    from serve_app.tenants.gate import _stream_options

    body = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}],
                                 stream=True)
    assert _stream_options(body).include_usage is True


def _black_hole() -> socket.socket:
    """A port that accepts connections and never answers: a hung Redis."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


@pytest.mark.parametrize("mode", ["open", "closed"])
@pytest.mark.parametrize("down", ["refused", "hung"])
def test_redis_down_follows_the_mode_within_the_timeout(
    tmp_path: Path, mode: str, down: str
) -> None:
    hole = _black_hole()
    port = hole.getsockname()[1]
    if down == "refused":
        hole.close()
    g = gate(tmp_path, f"redis://127.0.0.1:{port}/0", "k: {rpm: 5}\n",
             redis_failure_mode=mode, redis_timeout_ms=100)

    async def one() -> int:
        try:
            await g.admit("k", "m", Body(max_tokens=1), {})
            return 200
        except GatewayError as exc:
            return exc.status

    async def run():
        started = time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(20)))
        return statuses, time.perf_counter() - started

    statuses, took = asyncio.run(run())
    hole.close()
    assert set(statuses) == ({200} if mode == "open" else {503})
    assert took < 1.0


def test_unlimited_key_gets_no_ticket_redis_untouched(tmp_path: Path) -> None:
    g = gate(tmp_path, "redis://127.0.0.1:1/0", "k: {maxN: 2}\n")
    ticket = asyncio.run(g.admit("k", "m", Body(max_tokens=1), {}))
    assert ticket is not None and ticket.charge is None
    assert asyncio.run(g.admit(None, "m", Body(max_tokens=1), {})) is None
