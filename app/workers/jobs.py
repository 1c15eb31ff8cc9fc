"""Job functions: arq's adapters of a slice of a run, the reaper that resumes runs whose worker
died (`app.runs.reaper`), and a publish pass (the cron's, or one queued when an article comes
due at once)."""

from __future__ import annotations

from typing import Any

import structlog
from arq.worker import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.outage import Outage, database_probe, redis_probe, retry_through_outage
from app.publishing.publish import JOB_TIMEOUT_SECONDS as PUBLISH_TIMEOUT_SECONDS
from app.publishing.publish import publish_due
from app.runs import reaper
from app.stages.context import WorkerDeps
from app.stages.runner import run_slice
from app.workers.notifications import TRIES as NOTIFY_TRIES
from app.workers.notifications import notify_run, notify_timeout
from app.workers.queue import NOTIFY_JOB, PUBLISH_JOB, RUN_JOB

log = structlog.get_logger(__name__)

# Items in flight when a slice's time is up still finish, each within its deadline
# (`ai_item_deadline_seconds`); then the slice writes its end, within this margin.
SLICE_END_MARGIN_SECONDS = 60
REAPER_TIMEOUT_SECONDS = 50


def deps_of(ctx: dict[str, Any]) -> WorkerDeps:
    deps: WorkerDeps = ctx["deps"]
    return deps


async def run_automation(ctx: dict[str, Any], run_id: str, slice_no: int) -> str:
    """Work on the run for one slice; if it is not over, queue the next slice. An outage before
    the slice has the run, or when it queues the next one, is waited out (both are safe to
    repeat); one while it drives the run is the runner's to ride out."""
    deps = deps_of(ctx)
    probes = [database_probe(deps.session_factory), redis_probe(deps.redis)]
    outage = Outage(f"run {run_id}")
    end = await retry_through_outage(outage, lambda: run_slice(deps, run_id, slice_no), probes)
    if end.next_slice is not None:
        next_slice = end.next_slice
        await retry_through_outage(
            outage, lambda: deps.queue.enqueue_run(run_id, next_slice), probes[1:]
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
    """The reaper's pass (`app.runs.reaper`); returns how many stalled runs it resumed."""
    return await reaper.resume_stalled_runs(deps_of(ctx))


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
