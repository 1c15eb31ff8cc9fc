"""Waking idle workers when a job is queued, rather than leaving it to their next poll.

arq looks for jobs every `poll_delay`: a job queued just after a poll waited up to that long
(half of it on average) before any worker looked, most of what was left between `run_now` and the
run's first AI call once the statements were few (issue 13, `bench.start_latency`). So
`ArqQueue` publishes on `wake_channel` once it has queued a job that is due at once, and every
worker listens there and polls on hearing it. The poll stays, every `poll_delay`, for what
nobody announces: deferred jobs and retries, arq's cron, and wake-ups lost while Redis was away
(pub/sub keeps nothing for a listener that is not connected). A lost wake-up costs what every
job cost before: one poll delay at most.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import structlog
from redis.asyncio import Redis

from app.errors import is_backend_down

log = structlog.get_logger(__name__)

# Pub/sub channels are the server's, not a database's: the database is in the name, so that a
# worker hears the jobs of its own queue only.
WAKE_CHANNEL = "automation:jobs-queued:{db}"
# After losing its subscription (Redis away), the listener subscribes again this long after;
# meanwhile the worker polls as usual.
RESUBSCRIBE_SECONDS = 0.5


def wake_channel(redis: Redis) -> str:
    return WAKE_CHANNEL.format(db=redis.connection_pool.connection_kwargs.get("db", 0))


async def announce_job(redis: Redis) -> None:
    """Tell the listening workers that a job is waiting. Best effort: a worker that does not
    hear it finds the job at its next poll."""
    try:
        await redis.publish(wake_channel(redis), b"")
    except Exception as exc:
        if not is_backend_down(exc):
            raise


class Wakeups:
    """A worker's subscription to the announcements of new jobs, while its poll loop runs."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._heard = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Wakeups:
        self._listener = asyncio.create_task(self._listen(), name="job wake-ups")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def wait(self, seconds: float) -> None:
        """Until a job is announced, or `seconds` have passed. An announcement heard while the
        worker was polling ends the next wait at once: the job may have come after the poll
        looked."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._heard.wait()
        self._heard.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(wake_channel(self._redis))
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._heard.set()
            except Exception as exc:
                # The worker's poll loop waits the outage out and logs it; here only the
                # subscription is taken again once Redis is back.
                if not is_backend_down(exc):
                    log.exception("job wake-ups stopped; the worker polls for jobs")
                    return
            await asyncio.sleep(RESUBSCRIBE_SECONDS)
