"""Riding out a PostgreSQL or Redis outage (SPEC §13): no process exits because a backend is
unreachable. A part that cannot go on without the backend waits for it with capped exponential
backoff, then picks its work up again; a part that can go on without it (bookkeeping, a view)
skips its write. Either way the outage is logged once when the part first meets it and once
when it is over, however many requests or items meet it meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import is_backend_down

log = structlog.get_logger(__name__)

T = TypeVar("T")

FIRST_PAUSE_SECONDS = 0.1
# The longest pause between probes: what the return of a backend can cost a waiting part.
MAX_PAUSE_SECONDS = 2.0
# An action failing as if a backend were down while every probe answers is tried this many
# times more, then its error goes up: it is not an outage (a disk error is an OSError too).
QUICK_RETRIES = 3

Probe = Callable[[], Awaitable[object]]


@dataclass
class Outage:
    """One part's view of its backends: down since when, if it is."""

    part: str
    since: float | None = None

    def met(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("backend unreachable", part=self.part, error=str(error))

    def over(self) -> float:
        """Note that the backends answer again; returns how long they did not (0 if they did)."""
        if self.since is None:
            return 0.0
        down = time.monotonic() - self.since
        self.since = None
        log.info("backend reachable again", part=self.part, down_seconds=round(down, 1))
        return down


def redis_probe(redis: Redis) -> Probe:
    async def probe() -> object:
        return await redis.ping()

    return probe


def database_probe(session_factory: async_sessionmaker[AsyncSession]) -> Probe:
    async def probe() -> object:
        async with session_factory() as session:
            return await session.scalar(text("SELECT 1"))

    return probe


async def wait_until_reachable(
    outage: Outage, probes: list[Probe], error: BaseException, *, deadline: float | None = None
) -> float | None:
    """Wait until every probe answers, after `error` said a backend was unreachable. Returns the
    seconds the outage lasted (0 when the probes answer at once: it was only a dropped
    connection), or None when `deadline` (a `time.monotonic()` value) came first. Errors other
    than an outage go up."""
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            for probe in probes:
                await probe()
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            outage.met(error)
            if deadline is not None and time.monotonic() + pause > deadline:
                log.warning("backend still unreachable; giving up", part=outage.part)
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
            continue
        return outage.over()


async def retry_through_outage(
    outage: Outage, action: Callable[[], Awaitable[T]], probes: list[Probe]
) -> T:
    """Run `action` (which must be safe to repeat), waiting out every outage it meets."""
    quick = 0
    while True:
        try:
            return await action()
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            if await wait_until_reachable(outage, probes, exc) == 0:
                quick += 1
                if quick > QUICK_RETRIES:
                    raise
            else:
                quick = 0


async def best_effort(outage: Outage, action: Awaitable[object]) -> bool:
    """A write that something else makes up for when it is lost (a signal the run row stands
    for, a job the reaper queues again, a view that expires): an outage skips it. False when it
    was skipped."""
    try:
        await action
    except Exception as exc:
        if not is_backend_down(exc):
            raise
        outage.met(exc)
        return False
    outage.over()
    return True
