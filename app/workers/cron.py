"""Cron jobs: periodic work that one of the workers does at each tick, however many run."""

from __future__ import annotations

from typing import Any

import structlog
from arq import cron
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.tenancy.usage import flush_key_usage, forget_flushed
from app.workers.jobs import REAPER_TIMEOUT_SECONDS, resume_stalled_runs

log = structlog.get_logger(__name__)

FLUSH_TIMEOUT_SECONDS = 30


async def flush_api_key_usage(ctx: dict[str, Any]) -> int:
    """Move the API keys' last-use times from Redis to Postgres; returns how many keys."""
    session_factory: async_sessionmaker[AsyncSession] = ctx["session_factory"]
    redis: Redis = ctx["redis"]
    async with unit_of_work(session_factory) as session:
        flushed = await flush_key_usage(session, redis)
    # Only once committed: if the commit fails, the times stay in Redis for the next tick.
    await forget_flushed(redis, flushed)
    if flushed:
        log.info("api key usage flushed", keys=len(flushed))
    return len(flushed)


CRON_JOBS = [
    # Every minute at second 0; `unique` makes one worker run each tick.
    cron(
        flush_api_key_usage,
        second=0,
        unique=True,
        run_at_startup=False,
        timeout=FLUSH_TIMEOUT_SECONDS,
    ),
    # Twice a minute: a run whose worker died resumes within about a lease period.
    cron(
        resume_stalled_runs,
        second={15, 45},
        unique=True,
        run_at_startup=False,
        timeout=REAPER_TIMEOUT_SECONDS,
    ),
]
