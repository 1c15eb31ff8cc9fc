"""The reaper (SPEC §9b): what a dead worker, a lost job or a lost enqueue left behind.

Twice a minute it resumes the runs marked running whose worker died (no live lease, no recent
heartbeat) in a new slice, fails a run whose slices keep dying without finishing an item, queues
again a slice no worker took and a notification no job sent, and releases the credit holds of
finished runs whose worker died before releasing them. `app.workers.jobs` only adapts it to arq.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import structlog
from redis.asyncio import Redis
from sqlalchemy import func as sql
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.charges import release_dangling
from app.db import unit_of_work
from app.effects import after_commit
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunEvent,
    RunStatus,
    StoppedReason,
)
from app.models.billing import CreditTransaction, TransactionKind
from app.notifications.service import NOTIFICATION_EVENTS
from app.queue import JobQueue
from app.runs.ending import end_run_unless_moved
from app.runs.events import RunLog
from app.runs.lease import lease_holder

log = structlog.get_logger(__name__)

# Holds of a finished run are swept once its worker had ample time to settle them itself.
SWEEP_AFTER = timedelta(minutes=10)
# A run reclaimed this many times in a row with no item done in between fails instead: its
# slices die of something deterministic (a bug, an item that kills its worker), and resuming
# it once a minute forever would only hide that.
MAX_RECLAIMS_WITHOUT_PROGRESS = 5
PROGRESS_EVENTS = ("item_done", "item_failed", "stage_completed")
# A run started or resumed this long ago that no worker has taken had its slice job lost (Redis
# was down when the API queued it, or lost the queue in a restart).
UNTAKEN_GRACE = timedelta(seconds=10)
# A finished run's notification not sent or failed after this long was lost with its job (or ran
# out of tries while the database was away); older than the look-back it is left alone.
NOTIFY_GRACE = timedelta(minutes=15)
NOTIFY_LOOKBACK = timedelta(hours=24)


class ReaperDeps(Protocol):
    """What the reaper works with (the worker's bundle of dependencies has it all)."""

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def queue(self) -> JobQueue: ...
    @property
    def log(self) -> RunLog: ...
    @property
    def settings(self) -> Settings: ...


async def resume_stalled_runs(deps: ReaperDeps) -> int:
    """Runs marked running with no live lease and no recent heartbeat: their worker died (or
    their job was lost). Each is resumed from its stage in a new slice. A run whose slice job is
    still queued is not stalled (every worker is busy) and is left to wait. Returns how many."""
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=deps.settings.run_lease_seconds)
    last_sign = sql.greatest(
        AutomationRun.heartbeat_at, AutomationRun.resumed_at, AutomationRun.started_at
    )
    async with unit_of_work(deps.session_factory) as session:
        rows = await session.execute(
            select(
                AutomationRun.id,
                AutomationRun.run_id,
                AutomationRun.site_id,
                AutomationRun.slice,
                AutomationRun.fence,
            ).where(AutomationRun.status == RunStatus.RUNNING, last_sign < stale)
        )
        candidates = [
            (pk, run_id, site_id, slice_no, fence) for pk, run_id, site_id, slice_no, fence in rows
        ]
    await _queue_untaken_slices(deps, now)
    resumed = 0
    for pk, run_id, site_id, slice_no, fence in candidates:
        if await lease_holder(deps.redis, site_id) is not None:
            continue
        if await deps.queue.slice_waiting(run_id, slice_no):
            continue
        error = await deps.queue.slice_error(run_id, slice_no)
        async with unit_of_work(deps.session_factory) as session:
            exhausted = (
                await _reclaims_without_progress(session, pk) >= MAX_RECLAIMS_WITHOUT_PROGRESS
            )
            if exhausted:
                await _give_up(session, deps, pk, fence, error)
        if exhausted:
            continue
        async with unit_of_work(deps.session_factory) as session:
            next_slice = await session.scalar(
                update(AutomationRun)
                .where(AutomationRun.id == pk, AutomationRun.status == RunStatus.RUNNING)
                .values(slice=AutomationRun.slice + 1, heartbeat_at=now)
                .returning(AutomationRun.slice)
            )
            if next_slice is None:
                continue
            run = await session.get_one(AutomationRun, pk)
            await deps.log.record(
                session,
                run,
                "run_reclaimed",
                "No heartbeat from the run's worker: resuming it in a new job"
                + (f" (its job failed: {error})" if error else ""),
                level="warning",
                data={"slice": next_slice, "error": error},
            )
            after_commit(
                session, partial(deps.queue.enqueue_run, run_id, next_slice), name="queue run slice"
            )
        resumed += 1
    await _sweep_finished_holds(deps.session_factory, now)
    await _requeue_lost_notifications(deps, now)
    if resumed:
        log.warning("stalled runs resumed", count=resumed)
    return resumed


async def _queue_untaken_slices(deps: ReaperDeps, now: datetime) -> None:
    """Queue again the slice of a run that was started or resumed a while ago and that no
    worker has taken since. The job id is the slice's own, so a slice still queued, or taken
    meanwhile, is not doubled."""
    since = sql.greatest(AutomationRun.started_at, AutomationRun.resumed_at)
    async with unit_of_work(deps.session_factory) as session:
        rows = await session.execute(
            select(AutomationRun.run_id, AutomationRun.slice).where(
                AutomationRun.status == RunStatus.RUNNING,
                since < now - UNTAKEN_GRACE,
                (AutomationRun.heartbeat_at.is_(None)) | (AutomationRun.heartbeat_at < since),
            )
        )
        untaken = [(run_id, slice_no) for run_id, slice_no in rows]
    for run_id, slice_no in untaken:
        if await deps.queue.enqueue_run(run_id, slice_no):
            log.warning("lost run slice queued again", run_id=run_id, slice=slice_no)


async def _reclaims_without_progress(session: AsyncSession, run_pk: int) -> int:
    """How many times in a row the reaper resumed the run with no item done in between."""
    last_progress = (
        select(sql.coalesce(sql.max(RunEvent.id), 0))
        .where(RunEvent.run_pk == run_pk, RunEvent.kind.in_(PROGRESS_EVENTS))
        .scalar_subquery()
    )
    reclaims = await session.scalar(
        select(sql.count()).where(
            RunEvent.run_pk == run_pk,
            RunEvent.kind == "run_reclaimed",
            RunEvent.id > last_progress,
        )
    )
    return int(reclaims or 0)


async def _give_up(
    session: AsyncSession, deps: ReaperDeps, run_pk: int, fence: int, error: str | None
) -> None:
    """Fail a run whose slices keep dying, unless it ended meanwhile or a worker took it."""
    cause = f"; the last one failed with {error}" if error else ""
    await end_run_unless_moved(
        session,
        deps.log,
        run_pk,
        RunStatus.FAILED,
        fence=fence,
        redis=deps.redis,
        queue=deps.queue,
        stopped_reason=StoppedReason.FAILED,
        error_message=f"the run's worker stopped {MAX_RECLAIMS_WITHOUT_PROGRESS} times in a "
        f"row without finishing an item{cause}",
    )


async def _requeue_lost_notifications(deps: ReaperDeps, now: datetime) -> None:
    """Queue again the notification of a run that ended a while ago with none sent or failed:
    Redis lost its job between the run's last commit and the enqueue, or its tries ran out. The
    job id is the run's, so a notification still queued or running is not doubled, and one that
    is done says so by its event (the job itself keeps no result)."""
    notified = (
        select(RunEvent.id)
        .where(RunEvent.run_pk == AutomationRun.id, RunEvent.kind.in_(NOTIFICATION_EVENTS))
        .exists()
    )
    async with unit_of_work(deps.session_factory) as session:
        run_ids = list(
            await session.scalars(
                select(AutomationRun.run_id)
                .join(AutomationConfig, AutomationConfig.site_id == AutomationRun.site_id)
                .where(
                    AutomationRun.status.in_([RunStatus.COMPLETED, RunStatus.FAILED]),
                    AutomationRun.completed_at < now - NOTIFY_GRACE,
                    AutomationRun.completed_at > now - NOTIFY_LOOKBACK,
                    AutomationConfig.notification_url.is_not(None),
                    ~notified,
                )
            )
        )
    for run_id in run_ids:
        if await deps.queue.enqueue_notification(run_id):
            log.warning("lost run notification queued again", run_id=run_id)


async def _sweep_finished_holds(
    session_factory: async_sessionmaker[AsyncSession], now: datetime
) -> None:
    """Release holds that a finished run's worker died before releasing."""
    ended = sql.coalesce(AutomationRun.completed_at, AutomationRun.cancelled_at)
    async with unit_of_work(session_factory) as session:
        run_pks = list(
            await session.scalars(
                select(AutomationRun.id).where(
                    AutomationRun.status.in_(
                        [
                            RunStatus.COMPLETED,
                            RunStatus.FAILED,
                            RunStatus.CANCELLED,
                        ]
                    ),
                    ended < now - SWEEP_AFTER,
                    ended > now - SWEEP_AFTER * 12,
                    select(CreditTransaction.id)
                    .where(
                        CreditTransaction.run_pk == AutomationRun.id,
                        CreditTransaction.kind == TransactionKind.RESERVE,
                    )
                    .exists(),
                )
            )
        )
        for pk in run_pks:
            await release_dangling(session, pk)
