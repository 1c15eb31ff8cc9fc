"""The Redis client, configured to ride out a Redis restart."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError


def create_redis(url: str) -> Redis:
    """A client that retries a command three times with backoff when the connection drops."""
    give_pipeline_connections_back_on_cancel()
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


def give_pipeline_connections_back_on_cancel() -> None:
    """redis-py before its fix of redis/redis-py#4121 (arq 0.28 keeps it below 6): a task
    cancelled while `Pipeline.reset()` waits for its UNWATCH reply never gives the connection
    back; the pool keeps it in use for good and the pipeline warns when it is collected. arq's
    worker, stopped while polling a running job (a WATCH each poll), did so on a few stops in ten.
    Upstream's fix, applied to the class every client uses; idempotent."""
    Pipeline.reset = _reset_giving_the_connection_back  # type: ignore[method-assign]
