"""64 concurrent streams all complete, with no 5xx."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.e2e

STREAMS = 64
MAX_TOKENS = 32


def test_64_concurrent_streams_complete(local_app):
    async def one(client, i: int) -> tuple[int, str | None]:
        stream = await client.completions.create(
            model="tiny-chat",
            prompt=f"Stream number {i}",
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        # A chunk may carry more than one token when the reader lags: count tokens by usage.
        tokens, finish = 0, None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return tokens, finish

    async def run():
        client = local_app.async_client(max_retries=0, timeout=300)
        try:
            return await asyncio.gather(*(one(client, i) for i in range(STREAMS)))
        finally:
            await client.close()

    start = time.monotonic()
    results = asyncio.run(run())  # any 5xx raises openai.InternalServerError here
    elapsed = time.monotonic() - start
    print(f"{STREAMS} concurrent streams of {MAX_TOKENS} tokens in {elapsed:.1f}s")
    assert len(results) == STREAMS
    assert all(finish == "length" for _, finish in results), results
    assert all(tokens == MAX_TOKENS for tokens, _ in results), results
