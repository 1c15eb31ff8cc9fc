"""The scheduler (SPEC §9): starts the scheduled runs that are due.

The cron tick only wakes it; what is due is read from `automation_configs.next_run_at`, because
arq does not back-fill ticks missed while no worker ran. Each due site is handled in its own
transaction that locks its config row `FOR UPDATE SKIP LOCKED`: several workers (or an overrunning
tick beside the next one) share the due sites out instead of starting one twice, and one site's
failure leaves the others alone. A run is enqueued only after its transaction has committed (an
effect of it, `app.effects`); if the enqueue is lost, the reaper queues the run's slice again.

A site whose run is still running or paused when its time comes skips that time: the schedule
moves on to the next due time, and the active run's log says which scheduled run it kept from
starting. (Keeping it due instead would start a run the moment the user cancels the paused one:
cancelling would start work rather than stop it.) The pipeline selects what is pending, so the
next run picks up whatever the skipped one would have done.

A due run whose balance does not cover the estimate is not started: a `failed` run with
`stopped_reason: insufficient_credits` is recorded instead (ended through `app.runs.ending` like
any other run, so it shows in the history and its log, and the site's notification tells the
owner), and the schedule moves on to the next due time, as it does when the run starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.effects import after_commit
from app.errors import AlreadyRunning, InsufficientCredits
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunStatus,
    StoppedReason,
    TriggerType,
)
from app.models.tenancy import Site
from app.pipeline.pending import pending_counts
from app.queue import JobQueue
from app.runs.ending import end_run
from app.runs.events import RunLog
from app.runs.next_due import next_run_at
from app.runs.service import active_run, snapshot_of, start_run
from app.runs.states import create_run

log = structlog.get_logger(__name__)


class Outcome(StrEnum):
    STARTED = "started"
    # The balance did not cover the run: recorded as a failed run, the schedule moved on.
    NOT_STARTED = "insufficient_credits"
    # A run is active for the site: this due time is skipped, the schedule moved on.
    SKIPPED = "skipped"
    # Another worker has the site, or it is no longer due.
    TAKEN = "taken"


@dataclass
class Tick:
    """What one pass did, by outcome: run ids for runs, site ids otherwise."""

    started: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    # Sites left for the next tick because the pass ran out of time.
    deferred: int = 0


async def start_due_runs(
    session_factory: async_sessionmaker[AsyncSession],
    redis: Redis,
    queue: JobQueue,
    run_log: RunLog,
    now: datetime,
    *,
    deadline: float | None = None,
) -> Tick:
    """Start every scheduled run due at `now`. `deadline` (a `time.monotonic()` value) stops
    the pass early; the sites it did not reach stay due for the next tick."""
    async with unit_of_work(session_factory) as session:
        due = list(
            await session.scalars(
                select(AutomationConfig.site_id)
                .where(AutomationConfig.enabled, AutomationConfig.next_run_at <= now)
                .order_by(AutomationConfig.next_run_at, AutomationConfig.site_id)
            )
        )
    tick = Tick()
    for position, site_id in enumerate(due):
        if deadline is not None and time.monotonic() >= deadline:
            tick.deferred = len(due) - position
            log.warning(
                "scheduler out of time; the rest wait for the next tick", sites=tick.deferred
            )
            break
        try:
            outcome, run = await _start_site(session_factory, redis, queue, run_log, site_id, now)
        except Exception:
            # One site's failure (a bug, a lost connection) must not keep the others waiting.
            log.exception("scheduled run not started", site_id=site_id)
            tick.errors.append(site_id)
            continue
        match outcome:
            case Outcome.STARTED:
                assert run is not None
                tick.started.append(run.run_id)
            case Outcome.NOT_STARTED:
                assert run is not None
                tick.not_started.append(run.run_id)
            case Outcome.SKIPPED:
                tick.skipped.append(site_id)
            case Outcome.TAKEN:
                pass
    if tick.started or tick.not_started or tick.skipped or tick.errors:
        log.info(
            "scheduler tick",
            started=len(tick.started),
            not_started=len(tick.not_started),
            skipped=len(tick.skipped),
            errors=len(tick.errors),
        )
    return tick


async def _start_site(
    session_factory: async_sessionmaker[AsyncSession],
    redis: Redis,
    queue: JobQueue,
    run_log: RunLog,
    site_id: int,
    now: datetime,
) -> tuple[Outcome, AutomationRun | None]:
    """One site in one transaction; what it queues is queued once that is committed."""
    async with unit_of_work(session_factory) as session:
        config = await session.scalar(
            select(AutomationConfig)
            .where(
                AutomationConfig.site_id == site_id,
                AutomationConfig.enabled,
                AutomationConfig.next_run_at <= now,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if config is None:
            return Outcome.TAKEN, None
        site = await session.get_one(Site, site_id)
        due = config.next_run_at
        assert due is not None, "selected as due"
        config.next_run_at = next_run_at(config, site.timezone, now)
        # Flushed now: starting the run reads the config again (and would reload the old value).
        await session.flush()
        active = await active_run(session, site_id)
        if active is not None:
            await _record_skipped(session, run_log, active, due)
            return Outcome.SKIPPED, None
        try:
            run = await start_run(session, run_log, site, TriggerType.SCHEDULED)
            outcome = Outcome.STARTED
            after_commit(
                session, partial(queue.enqueue_run, run.run_id, run.slice), name="queue run slice"
            )
        except AlreadyRunning:
            # A `run_now` got in between (its row is not visible to this transaction yet).
            return Outcome.SKIPPED, None
        except InsufficientCredits as exc:
            try:
                run = await _record_not_started(session, redis, queue, run_log, site, exc)
            except AlreadyRunning:
                return Outcome.SKIPPED, None
            outcome = Outcome.NOT_STARTED
        config.last_run_at = run.started_at
        return outcome, run


async def _record_skipped(
    session: AsyncSession, run_log: RunLog, active: AutomationRun, due: datetime
) -> None:
    """Say in the active run's log that it kept the scheduled run of `due` from starting."""
    await run_log.record(
        session,
        active,
        "scheduled_run_skipped",
        f"The scheduled run due at {due.isoformat(timespec='minutes')} was skipped: this run "
        f"was still {active.status}",
        data={"due": due.isoformat()},
    )
    log.info(
        "scheduled run skipped: the site has an active run",
        site_id=active.site_id,
        run_id=active.run_id,
        status=active.status,
    )


async def _record_not_started(
    session: AsyncSession,
    redis: Redis,
    queue: JobQueue,
    run_log: RunLog,
    site: Site,
    exc: InsufficientCredits,
) -> AutomationRun:
    """A failed scheduled run that says why it did not start."""
    run = await create_run(
        session,
        run_log,
        account_id=site.account_id,
        site_id=site.id,
        trigger_type=TriggerType.SCHEDULED,
        initial_snapshot=snapshot_of(await pending_counts(session, site.id)),
    )
    return await end_run(
        session,
        run_log,
        run.id,
        RunStatus.FAILED,
        fence=run.fence,
        redis=redis,
        queue=queue,
        stopped_reason=StoppedReason.INSUFFICIENT_CREDITS,
        error_message=f"scheduled run not started: {exc.message}; top up the account",
        note="the balance does not cover the run",
    )
