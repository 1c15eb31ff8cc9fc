"""Progress reads: the pipeline overview, the run's progress, the live card (SPEC §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.automation import AutomationRun, RunStatus
from app.pipeline.catalog import STAGE_NAMES, STAGE_NUMBERS
from app.pipeline.pending import STAGE_MODELS, count_pending, pending_counts
from app.runs.schemas import (
    GlobalProgress,
    InFlight,
    PipelineOverview,
    ProcessingOut,
    RunMetrics,
    RunProgress,
    RunSummary,
    StageOverview,
    StageProgress,
)
from app.runs.signals import read_live

# The counter of each stage's result that says how many of its items are done.
PROCESSED_COUNTER = {
    1: "keywords_processed",
    2: "clusters_processed",
    3: "ideas_processed",
    4: "tasks_processed",
    5: "content_processed",
    6: "images_processed",
    7: "approved_count",
}
STAGE_TYPES = {1: "AI", 2: "AI", 3: "local", 4: "AI", 5: "AI", 6: "AI", 7: "review"}


async def pipeline_overview(session: AsyncSession, site_id: int) -> PipelineOverview:
    pending = await pending_counts(session, site_id)
    counts: dict[Any, dict[str, int]] = {}
    for model in set(STAGE_MODELS.values()):
        rows = await session.execute(
            select(model.status, func.count())
            .where(model.site_id == site_id)
            .group_by(model.status)
        )
        counts[model] = {status: int(n) for status, n in rows}
    stages = [
        StageOverview(
            number=n,
            name=STAGE_NAMES[n],
            type=STAGE_TYPES[n],
            pending=pending[n],
            counts=counts[STAGE_MODELS[n]],
        )
        for n in STAGE_NUMBERS
    ]
    return PipelineOverview(stages=stages, total_pending=sum(pending.values()))


def processed(run: AutomationRun, stage: int) -> int:
    result = getattr(run, f"stage_{stage}_result") or {}
    return int(result.get(PROCESSED_COUNTER[stage], 0))


def stage_status(run: AutomationRun, stage: int) -> str:
    result = getattr(run, f"stage_{stage}_result")
    if result and result.get("skipped"):
        return "skipped"
    if result and result.get("completed_at") and not result.get("partial"):
        return "completed"
    if stage == run.current_stage and run.status in (RunStatus.RUNNING, RunStatus.PAUSED):
        return str(run.status)
    if stage < run.current_stage:
        return "completed"
    return "pending"


def duration_seconds(run: AutomationRun) -> int:
    end = run.completed_at or run.cancelled_at or datetime.now(UTC)
    return max(0, round((end - run.started_at).total_seconds()))


async def run_progress(
    session: AsyncSession, site_id: int, run: AutomationRun | None
) -> RunProgress:
    """Stage input counts are what the stage had or has to do: its items done plus, while it
    has not finished, what is pending now (earlier stages feed later ones during the run)."""
    pending = await pending_counts(session, site_id)
    stages: list[StageProgress] = []
    for n in STAGE_NUMBERS:
        done = processed(run, n) if run else 0
        status = stage_status(run, n) if run else "pending"
        errors = int(((getattr(run, f"stage_{n}_result") if run else None) or {}).get("errors", 0))
        finished = status in ("completed", "skipped")
        input_count = done + errors if finished else done + errors + pending[n]
        stages.append(
            StageProgress(
                number=n,
                name=STAGE_NAMES[n],
                status=status,
                input_count=input_count,
                processed_count=done,
            )
        )
    total = sum(stage.input_count for stage in stages)
    completed = sum(stage.processed_count for stage in stages)
    return RunProgress(
        run=RunSummary.model_validate(run, from_attributes=True) if run else None,
        global_progress=GlobalProgress(
            total_items=total,
            completed_items=completed,
            percentage=min(100, round(100 * completed / total)) if total else 0,
        ),
        stages=stages,
        metrics=RunMetrics(
            credits_used=run.total_credits_used if run else Decimal(0),
            duration_seconds=duration_seconds(run) if run else 0,
        ),
        initial_snapshot=run.initial_snapshot if run else None,
    )


async def current_processing(
    session: AsyncSession, redis: Redis, run: AutomationRun
) -> ProcessingOut:
    live = await read_live(redis, run.run_id) if run.status == RunStatus.RUNNING else None
    if not live:
        # No item in flight (not taken yet, paused, between batches): the stage's own counts.
        stage = run.current_stage
        result = getattr(run, f"stage_{stage}_result") or {}
        done = processed(run, stage)
        finished = stage_status(run, stage) in ("completed", "skipped")
        pending = 0 if finished else await count_pending(session, stage, run.site_id)
        return ProcessingOut(
            run_id=run.run_id,
            status=run.status,
            stage=stage,
            stage_name=STAGE_NAMES[stage],
            batch=0,
            batches=0,
            items=[],
            processed=done,
            total=done + int(result.get("errors", 0)) + pending,
            updated_at=None,
        )
    return ProcessingOut(
        run_id=run.run_id,
        status=run.status,
        stage=live["stage"],
        stage_name=live["stage_name"],
        batch=live["batch"],
        batches=live["batches"],
        items=[InFlight(**item) for item in live["items"]],
        processed=live["processed"],
        total=live["total"],
        updated_at=live["updated_at"],
    )
