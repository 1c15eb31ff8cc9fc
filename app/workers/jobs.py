"""Job functions: a slice of a run, and the reaper that resumes runs whose worker died."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq.worker import func
from sqlalchemy import func as sql
from sqlalchemy import select, update

from app.config import Settings
from app.credits.charges import release_dangling
from app.db import unit_of_work
from app.models.automation import AutomationRun, RunStatus
from app.models.billing import CreditTransaction, TransactionKind
from app.runs.lease import lease_holder
from app.stages.context import Engine
from app.stages.runner import run_slice
from app.workers.queue import RUN_JOB, enqueue_run

log = structlog.get_logger(__name__)

# Items in flight when a slice's time is up still finish: an AI call with its retries can take
# minutes, so the job may outlive its slice by this much before arq cancels it.
SLICE_GRACE_SECONDS = 300
REAPER_TIMEOUT_SECONDS = 50
# Holds of a finished run are swept once its worker had ample time to settle them itself.
SWEEP_AFTER = timedelta(minutes=10)


def engine_of(ctx: dict[str, Any]) -> Engine:
    engine: Engine = ctx["engine_deps"]
    return engine


async def run_automation(ctx: dict[str, Any], run_id: str, slice_no: int) -> str:
    """Work on the run for one slice; if it is not over, queue the next slice."""
    engine = engine_of(ctx)
    end = await run_slice(engine, run_id, slice_no)
    if end.next_slice is not None:
        await enqueue_run(ctx["redis"], run_id, end.next_slice)
    log.info("run slice ended", run_id=run_id, slice=slice_no, outcome=end.outcome)
    return end.outcome


async def resume_stalled_runs(ctx: dict[str, Any]) -> int:
    """Runs marked running with no live lease and no recent heartbeat: their worker died (or
    their job was lost). Each is resumed from its stage in a new slice. Returns how many."""
    engine = engine_of(ctx)
    settings: Settings = engine.settings
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=settings.run_lease_seconds)
    last_sign = sql.greatest(
        AutomationRun.heartbeat_at, AutomationRun.resumed_at, AutomationRun.started_at
    )
    async with unit_of_work(engine.session_factory) as session:
        rows = await session.execute(
            select(AutomationRun.id, AutomationRun.run_id, AutomationRun.site_id).where(
                AutomationRun.status == RunStatus.RUNNING.value, last_sign < stale
            )
        )
        candidates = [(pk, run_id, site_id) for pk, run_id, site_id in rows]
    resumed = 0
    for pk, run_id, site_id in candidates:
        if await lease_holder(engine.redis, site_id) is not None:
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
                "No heartbeat from the run's worker: resuming it in a new job",
                level="warning",
                data={"slice": next_slice},
            )
        await enqueue_run(ctx["redis"], run_id, next_slice)
        resumed += 1
    await _sweep_finished_holds(engine, now)
    if resumed:
        log.warning("stalled runs resumed", count=resumed)
    return resumed


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
            timeout=settings.run_slice_seconds + SLICE_GRACE_SECONDS,
        )
    ]
