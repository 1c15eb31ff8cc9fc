"""Job functions: a slice of a run, the reaper that resumes runs whose worker died, and a publish
pass (the cron's, or one queued when an article comes due at once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq.worker import func
from redis.asyncio import Redis
from sqlalchemy import func as sql
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.charges import release_dangling
from app.db import unit_of_work
from app.errors import InvalidTransition
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunEvent,
    RunStatus,
    StoppedReason,
)
from app.models.billing import CreditTransaction, TransactionKind
from app.notifications.service import NOTIFICATION_EVENTS
from app.outage import Outage, database_probe, redis_probe, retry_through_outage
from app.publishing.publish import JOB_TIMEOUT_SECONDS as PUBLISH_TIMEOUT_SECONDS
from app.publishing.publish import publish_due
from app.runs.lease import lease_holder
from app.runs.states import set_run_state
from app.stages.context import Engine
from app.stages.runner import run_slice
from app.workers.notifications import TRIES as NOTIFY_TRIES
from app.workers.notifications import notify_run, notify_timeout
from app.workers.queue import (
    NOTIFY_JOB,
    PUBLISH_JOB,
    RUN_JOB,
    enqueue_notification,
    enqueue_run,
    slice_error,
    slice_waiting,
)

log = structlog.get_logger(__name__)

# Items in flight when a slice's time is up still finish, each within its deadline
# (`ai_item_deadline_seconds`); then the slice writes its end, within this margin.
SLICE_END_MARGIN_SECONDS = 60
REAPER_TIMEOUT_SECONDS = 50
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


def engine_of(ctx: dict[str, Any]) -> Engine:
    engine: Engine = ctx["engine_deps"]
    return engine


async def run_automation(ctx: dict[str, Any], run_id: str, slice_no: int) -> str:
    """Work on the run for one slice; if it is not over, queue the next slice. An outage before
    the slice has the run, or when it queues the next one, is waited out (both are safe to
    repeat); one while it drives the run is the runner's to ride out."""
    engine = engine_of(ctx)
    probes = [database_probe(engine.session_factory), redis_probe(engine.redis)]
    outage = Outage(f"run {run_id}")
    end = await retry_through_outage(outage, lambda: run_slice(engine, run_id, slice_no), probes)
    if end.next_slice is not None:
        next_slice = end.next_slice
        await retry_through_outage(
            outage, lambda: enqueue_run(ctx["redis"], run_id, next_slice), probes[1:]
        )
    log.info("run slice ended", run_id=run_id, slice=slice_no, outcome=end.outcome)
    return end.outcome


async def publish_due_content(ctx: dict[str, Any]) -> int:
    """Publish the content that is due through each site's publisher; returns how many went out."""
    session_factory: async_sessionmaker[AsyncSession] = ctx["session_factory"]
    settings: Settings = ctx["settings"]
    report = await publish_due(session_factory, settings)
    return report.published


async def resume_stalled_runs(ctx: dict[str, Any]) -> int:
    """Runs marked running with no live lease and no recent heartbeat: their worker died (or
    their job was lost). Each is resumed from its stage in a new slice. A run whose slice job is
    still queued is not stalled (every worker is busy) and is left to wait. Returns how many."""
    engine = engine_of(ctx)
    settings: Settings = engine.settings
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=settings.run_lease_seconds)
    last_sign = sql.greatest(
        AutomationRun.heartbeat_at, AutomationRun.resumed_at, AutomationRun.started_at
    )
    async with unit_of_work(engine.session_factory) as session:
        rows = await session.execute(
            select(
                AutomationRun.id, AutomationRun.run_id, AutomationRun.site_id, AutomationRun.slice
            ).where(AutomationRun.status == RunStatus.RUNNING.value, last_sign < stale)
        )
        candidates = [(pk, run_id, site_id, slice_no) for pk, run_id, site_id, slice_no in rows]
    await _queue_untaken_slices(engine, ctx["redis"], now)
    resumed = 0
    for pk, run_id, site_id, slice_no in candidates:
        if await lease_holder(engine.redis, site_id) is not None:
            continue
        if await slice_waiting(ctx["redis"], run_id, slice_no):
            continue
        error = await slice_error(ctx["redis"], run_id, slice_no)
        async with unit_of_work(engine.session_factory) as session:
            if await _reclaims_without_progress(session, pk) >= MAX_RECLAIMS_WITHOUT_PROGRESS:
                gave_up = await _give_up(session, engine, pk, error)
            else:
                gave_up = False
        if gave_up:
            await enqueue_notification(ctx["redis"], run_id)
            continue
        async with unit_of_work(engine.session_factory) as session:
            next_slice = await session.scalar(
                update(AutomationRun)
                .where(AutomationRun.id == pk, AutomationRun.status == RunStatus.RUNNING.value)
                .values(slice=AutomationRun.slice + 1, heartbeat_at=now)
                .returning(AutomationRun.slice)
            )
            if next_slice is None:
                continue
            run = await session.get_one(AutomationRun, pk)
            await engine.log.record(
                session,
                run,
                "run_reclaimed",
                "No heartbeat from the run's worker: resuming it in a new job"
                + (f" (its job failed: {error})" if error else ""),
                level="warning",
                data={"slice": next_slice, "error": error},
            )
        await enqueue_run(ctx["redis"], run_id, next_slice)
        resumed += 1
    await _sweep_finished_holds(engine, now)
    await _requeue_lost_notifications(engine, ctx["redis"], now)
    if resumed:
        log.warning("stalled runs resumed", count=resumed)
    return resumed


async def _queue_untaken_slices(engine: Engine, redis: Redis, now: datetime) -> None:
    """Queue again the slice of a run that was started or resumed a while ago and that no
    worker has taken since. The job id is the slice's own, so a slice still queued, or taken
    meanwhile, is not doubled."""
    since = sql.greatest(AutomationRun.started_at, AutomationRun.resumed_at)
    async with unit_of_work(engine.session_factory) as session:
        rows = await session.execute(
            select(AutomationRun.run_id, AutomationRun.slice).where(
                AutomationRun.status == RunStatus.RUNNING.value,
                since < now - UNTAKEN_GRACE,
                (AutomationRun.heartbeat_at.is_(None)) | (AutomationRun.heartbeat_at < since),
            )
        )
        untaken = [(run_id, slice_no) for run_id, slice_no in rows]
    for run_id, slice_no in untaken:
        if await enqueue_run(redis, run_id, slice_no):
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


async def _give_up(session: AsyncSession, engine: Engine, run_pk: int, error: str | None) -> bool:
    """Fail a run whose slices keep dying; False if it ended meanwhile."""
    cause = f"; the last one failed with {error}" if error else ""
    try:
        await set_run_state(
            session,
            engine.log,
            run_pk,
            RunStatus.FAILED,
            stopped_reason=StoppedReason.FAILED,
            error_message=f"the run's worker stopped {MAX_RECLAIMS_WITHOUT_PROGRESS} times in a "
            f"row without finishing an item{cause}",
        )
    except InvalidTransition:
        return False
    await release_dangling(session, run_pk)
    return True


async def _requeue_lost_notifications(engine: Engine, redis: Redis, now: datetime) -> None:
    """Queue again the notification of a run that ended a while ago with none sent or failed:
    Redis lost its job between the run's last commit and the enqueue, or its tries ran out. The
    job id is the run's, so a notification still queued or running is not doubled, and one that
    is done says so by its event (the job itself keeps no result)."""
    notified = (
        select(RunEvent.id)
        .where(RunEvent.run_pk == AutomationRun.id, RunEvent.kind.in_(NOTIFICATION_EVENTS))
        .exists()
    )
    async with unit_of_work(engine.session_factory) as session:
        run_ids = list(
            await session.scalars(
                select(AutomationRun.run_id)
                .join(AutomationConfig, AutomationConfig.site_id == AutomationRun.site_id)
                .where(
                    AutomationRun.status.in_([RunStatus.COMPLETED.value, RunStatus.FAILED.value]),
                    AutomationRun.completed_at < now - NOTIFY_GRACE,
                    AutomationRun.completed_at > now - NOTIFY_LOOKBACK,
                    AutomationConfig.notification_url.is_not(None),
                    ~notified,
                )
            )
        )
    for run_id in run_ids:
        if await enqueue_notification(redis, run_id):
            log.warning("lost run notification queued again", run_id=run_id)


async def _sweep_finished_holds(engine: Engine, now: datetime) -> None:
    """Release holds that a finished run's worker died before releasing."""
    ended = sql.coalesce(AutomationRun.completed_at, AutomationRun.cancelled_at)
    async with unit_of_work(engine.session_factory) as session:
        run_pks = list(
            await session.scalars(
                select(AutomationRun.id).where(
                    AutomationRun.status.in_(
                        [
                            RunStatus.COMPLETED.value,
                            RunStatus.FAILED.value,
                            RunStatus.CANCELLED.value,
                        ]
                    ),
                    ended < now - SWEEP_AFTER,
                    ended > now - SWEEP_AFTER * 12,
                    select(CreditTransaction.id)
                    .where(
                        CreditTransaction.run_pk == AutomationRun.id,
                        CreditTransaction.kind == TransactionKind.RESERVE.value,
                    )
                    .exists(),
                )
            )
        )
        for pk in run_pks:
            await release_dangling(session, pk)


def job_functions(settings: Settings) -> list[Any]:
    return [
        func(
            run_automation,
            name=RUN_JOB,
            timeout=settings.run_slice_seconds
            + settings.ai_item_deadline_seconds
            + SLICE_END_MARGIN_SECONDS,
        ),
        func(
            publish_due_content,
            name=PUBLISH_JOB,
            timeout=PUBLISH_TIMEOUT_SECONDS,
            keep_result=0,
        ),
        func(
            notify_run,
            name=NOTIFY_JOB,
            timeout=notify_timeout(settings),
            keep_result=0,
            max_tries=NOTIFY_TRIES,
        ),
    ]
