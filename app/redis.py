"""The Redis client, configured to ride out a Redis restart."""

from __future__ import annotations

import asyncio

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError


def create_redis(url: str) -> Redis:
    """A client that retries a command three times with backoff when the connection drops."""
    mend_redis_py()
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return client


_reset = Pipeline.reset


async def _reset_giving_the_connection_back(self: Pipeline) -> None:
    try:
        await _reset(self)  # type: ignore[no-untyped-call]
    except asyncio.CancelledError:
        connection, self.connection = self.connection, None
        self.watching = False
        self.explicit_transaction = False
        if connection is not None:
            # Its UNWATCH reply may still be unread: the next command must not get it.
            await connection.disconnect(nowait=True)
            await self.connection_pool.release(connection)
        raise


def mend_redis_py() -> None:
    """Two of redis-py 5's asyncio flaws mended, on the classes every client uses (ours, and
    arq's): idempotent."""
    give_pipeline_connections_back_on_cancel()
    check_connections_outside_the_pool_lock()


def give_pipeline_connections_back_on_cancel() -> None:
    """redis-py before its fix of redis/redis-py#4121 (arq 0.28 keeps it below 6): a task
    cancelled while `Pipeline.reset()` waits for its UNWATCH reply never gives the connection
    back; the pool keeps it in use for good and the pipeline warns when it is collected. arq's
    worker, stopped while polling a running job (a WATCH each poll), did so on a few stops in ten.
    Upstream's fix, applied to the class every client uses; idempotent."""
    Pipeline.reset = _reset_giving_the_connection_back  # type: ignore[method-assign]


async def _checked_after_the_lock(
    self: ConnectionPool, command_name: object = None, *keys: object, **options: object
) -> AbstractConnection:
    async with self._lock:
        connection: AbstractConnection
        connection = self.get_available_connection()  # type: ignore[no-untyped-call]
    try:
        await self.ensure_connection(connection)
    except BaseException:
        await self.release(connection)
        raise
    return connection


def check_connections_outside_the_pool_lock() -> None:
    """redis-py before its fix of redis/redis-py#3842: the pool checks the connection it hands
    out (connects a new one; reads the socket with a zero timeout, a turn of the event loop)
    while holding the lock that every command of the process takes first. Under load the
    process's commands then go out one per turn of its loop: in `bench.sites`, a provider
    permit's release reached Redis 4-60 ms after it was sent. The check made after the lock, as
    upstream and the same version's `BlockingConnectionPool` do: the connection is this caller's
    alone by then."""
    ConnectionPool.get_connection = _checked_after_the_lock  # type: ignore[method-assign]
