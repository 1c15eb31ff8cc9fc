"""Riding out a PostgreSQL or Redis outage (SPEC §13): no process exits because a backend is
unreachable. A part that cannot go on without the backend waits for it with capped exponential
backoff, logging once when the outage starts and once when it ends, then picks its work up again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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

Probe = Callable[[], Awaitable[object]]


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
    what: str,
    probes: list[Probe],
    error: BaseException,
    *,
    deadline: float | None = None,
) -> float | None:
    """Wait until every probe answers, after `error` said a backend was unreachable. Returns the
    seconds waited (0 when they answer at once: the outage was only a dropped connection), or
    None when `deadline` (a `time.monotonic()` value) came first. Errors other than an outage
    go up."""
    began = time.monotonic()
    pause = FIRST_PAUSE_SECONDS
    logged = False
    while True:
        try:
            for probe in probes:
                await probe()
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            if not logged:
                log.warning("backend unreachable; waiting", part=what, error=str(error))
                logged = True
            if deadline is not None and time.monotonic() + pause > deadline:
                log.warning("backend still unreachable; giving up", part=what)
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
            continue
        if not logged:
            return 0.0
        waited = time.monotonic() - began
        log.info("backend reachable again", part=what, waited_seconds=round(waited, 1))
        return waited


# An action failing as if a backend were down while every probe answers is tried this many
# times more, then its error goes up: it is not an outage (a disk error is an OSError too).
QUICK_RETRIES = 3


async def retry_through_outage(
    what: str, action: Callable[[], Awaitable[T]], probes: list[Probe]
) -> T:
    """Run `action` (which must be safe to repeat), waiting out every outage it meets."""
    quick = 0
    while True:
        try:
            return await action()
        except Exception as exc:
            if not is_backend_down(exc):
                raise
            if await wait_until_reachable(what, probes, exc) == 0:
                quick += 1
                if quick > QUICK_RETRIES:
                    raise
            else:
                quick = 0


async def best_effort(what: str, action: Awaitable[object], **context: object) -> bool:
    """An effect after a commit (a signal, a job to queue, live state to clear) that something
    else makes up for when it is lost: the run row, the reaper, a cron tick or an expiry. An
    outage skips it with a warning; False when it was skipped."""
    try:
        await action
    except Exception as exc:
        if not is_backend_down(exc):
            raise
        log.warning(
            "skipped while a backend is unreachable", effect=what, error=str(exc), **context
        )
        return False
    return True
