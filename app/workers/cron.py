"""Cron jobs: periodic work that one of the workers does at each tick, however many run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from arq import cron
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.effects import after_commit
from app.publishing.publish import JOB_TIMEOUT_SECONDS as PUBLISH_TIMEOUT_SECONDS
from app.runs.start_due import start_due_runs
from app.stages.context import WorkerDeps
from app.tenancy.usage import flush_key_usage, forget_flushed
from app.workers.jobs import REAPER_TIMEOUT_SECONDS, publish_due_content, resume_stalled_runs

log = structlog.get_logger(__name__)

FLUSH_TIMEOUT_SECONDS = 30
SCHEDULER_TIMEOUT_SECONDS = 55
# The scheduler takes no new site after this long, so that it ends before its timeout; the
# sites it did not reach are still due at the next tick.
SCHEDULER_BUDGET_SECONDS = 40


async def flush_api_key_usage(ctx: dict[str, Any]) -> int:
    """Move the API keys' last-use times from Redis to Postgres; returns how many keys."""
    session_factory: async_sessionmaker[AsyncSession] = ctx["session_factory"]
    redis: Redis = ctx["redis"]
    async with unit_of_work(session_factory) as session:
        flushed = await flush_key_usage(session, redis)
        # Only once committed: if the commit fails, the times stay in Redis for the next tick.
        after_commit(
            session, partial(forget_flushed, redis, flushed), name="forget flushed key usage"
        )
    if flushed:
        log.info("api key usage flushed", keys=len(flushed))
    return len(flushed)


async def start_scheduled_runs(ctx: dict[str, Any]) -> int:
    """Start the scheduled runs that are due (read from Postgres, not from this tick); returns
    how many started."""
    deps: WorkerDeps = ctx["deps"]
    tick = await start_due_runs(
        deps.session_factory,
        deps.redis,
        deps.queue,
        deps.log,
        datetime.now(UTC),
        deadline=time.monotonic() + SCHEDULER_BUDGET_SECONDS,
    )
    return len(tick.started)


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
    # Every minute: a run due at 02:00 starts at 02:00, within the tick's second.
    cron(
        start_scheduled_runs,
        second=0,
        unique=True,
        run_at_startup=False,
        timeout=SCHEDULER_TIMEOUT_SECONDS,
    ),
    # Every minute, apart from the other ticks: a slot at 09:00 goes out by 09:00:30.
    cron(
        publish_due_content,
        second=30,
        unique=True,
        run_at_startup=False,
        timeout=PUBLISH_TIMEOUT_SECONDS,
    ),
]
