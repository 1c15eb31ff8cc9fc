"""The Redis client library under connection loss, cancellation and load.

Under cancellation: a task cancelled while a pipeline gives its WATCH up (arq's worker, stopped
while it polls a running job) must give its connection back, or the pool keeps it in use for
good and the pipeline warns when collected (failing whichever test is running then). Under load:
a connection being made or checked must not hold up the process's other commands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import WatchError

from app.errors import is_backend_down
from app.redis import give_pipeline_connections_back_on_cancel, mend_redis_py
from tests.servers.tcp_proxy import cuttable_proxy


@pytest.fixture
async def arq_pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    """A client as arq's worker makes its own."""
    give_pipeline_connections_back_on_cancel()
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def test_a_pipeline_cancelled_while_it_unwatches_gives_its_connection_back(
    arq_pool: ArqRedis,
) -> None:
    pipe = arq_pool.pipeline(transaction=True)
    await pipe.watch("watched")
    connection = pipe.connection
    assert connection is not None

    reset = asyncio.create_task(pipe.reset())  # type: ignore[no-untyped-call]
    await asyncio.sleep(0)  # it sends UNWATCH, then waits for the reply
    assert not reset.done()
    reset.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reset

    assert pipe.connection is None
    assert connection not in arq_pool.connection_pool._in_use_connections
    # No unread UNWATCH reply is left for the next command.
    assert await arq_pool.ping()
    assert await arq_pool.set("after", b"1")
    assert await arq_pool.get("after") == b"1"


async def test_a_connection_lost_under_a_watch_is_an_outage_not_a_conflict(redis_url: str) -> None:
    """redis-py turns a connection lost while a pipeline watches into a WatchError; arq's worker
    meets it in `start_jobs` when Redis restarts, and must wait Redis out rather than exit."""
    async with cuttable_proxy(redis_url) as proxy:
        pool = await create_pool(RedisSettings.from_dsn(proxy.url()))
        try:
            async with pool.pipeline(transaction=True) as pipe:
                await pipe.watch("watched")
                proxy.cut()
                with pytest.raises(WatchError) as raised:
                    await pipe.exists("watched")
        finally:
            await pool.aclose()
    assert is_backend_down(raised.value)


async def test_a_real_watch_conflict_is_not_an_outage(arq_pool: ArqRedis) -> None:
    async with arq_pool.pipeline(transaction=True) as pipe:
        await pipe.watch("contended")
        await arq_pool.set("contended", b"changed meanwhile")
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set("contended", b"mine")
        with pytest.raises(WatchError) as raised:
            await pipe.execute()
    assert not is_backend_down(raised.value)


async def test_a_command_does_not_wait_while_another_connection_is_made(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first command's connection is slow to open; a second command, on a connection of its
    own, goes through meanwhile (redis-py 5 made it wait on the pool's lock)."""
    mend_redis_py()
    client = Redis.from_url(redis_url)
    pool = client.connection_pool
    making, opened = asyncio.Event(), asyncio.Event()
    make = pool.make_connection

    def make_the_first_slow() -> AbstractConnection:
        connection: AbstractConnection = make()
        if not making.is_set():
            making.set()
            connect = connection.connect

            async def slow_connect() -> None:
                await opened.wait()
                await connect()  # type: ignore[no-untyped-call]

            monkeypatch.setattr(connection, "connect", slow_connect)
        return connection

    monkeypatch.setattr(pool, "make_connection", make_the_first_slow)
    try:
        first = asyncio.create_task(client.ping())
        await making.wait()
        async with asyncio.timeout(5):
            assert await client.set("meanwhile", b"1")
        assert not first.done()
        opened.set()
        assert await first
    finally:
        await client.aclose()
