"""A Redis failover under the limiter: the address (ElastiCache's primary endpoint) moves to the
promoted replica while the old primary keeps running as a replica, and keeps the connections it
had. Against two real redis-servers behind a relay whose target moves, as the endpoint's DNS
name does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis

from serve_app.tenants.gate import _SKIP_REDIS_S
from serve_app.tenants.local_redis import LocalRedis
from tests.unit.serve_app.tenants.test_gate import Body, gate


@contextlib.asynccontextmanager
async def endpoint(target: dict[str, int]) -> AsyncIterator[int]:
    """127.0.0.1:<port yielded> -> 127.0.0.1:target["port"], looked up per new connection."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target["port"])
        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_admissions_are_counted_again_after_the_primary_moves(tmp_path: Path) -> None:
    """Redis keeps a demoted primary's client connections open (Redis 7: REPLICAOF does not
    close them), and every admission script there fails with READONLY; without dropping the
    connection the limiter would fail open until the replica restarts."""
    old, new = LocalRedis().start(), LocalRedis().start()

    async def run() -> list[bool]:
        target = {"port": old.port}
        async with endpoint(target) as port:
            g = gate(tmp_path, f"redis://127.0.0.1:{port}/0", "k: {rpm: 100}\n",
                     redis_failure_mode="open")
            assert await g.warm()
            counted = []
            ticket = await g.admit("k", "m", Body(max_tokens=1), {})
            counted.append(ticket is not None and ticket.charge is not None)
            # The failover: the endpoint names the new primary, the old one becomes its replica.
            target["port"] = new.port
            admin = Redis.from_url(old.url)
            await admin.execute_command("REPLICAOF", "127.0.0.1", str(new.port))
            await admin.aclose()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(counted) < 6:
                ticket = await g.admit("k", "m", Body(max_tokens=1), {})
                counted.append(ticket is not None and ticket.charge is not None)
                await asyncio.sleep(_SKIP_REDIS_S / 2)
            return counted

    try:
        counted = asyncio.run(run())
    finally:
        old.stop()
        new.stop()
    # Counted before; the first admission after the move hits the old primary (READONLY) and
    # is decided by the failure mode; after the skip window admissions are counted again.
    assert counted[0] is True and counted[1] is False
    assert counted[-1] is True, counted
