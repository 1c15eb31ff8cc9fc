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
from app.pipeline.pending import STAGE_MODELS, pending_counts
from app.runs.plan import figures, plan_of
from app.runs.reads import RunRow
from app.runs.schemas import (
    GlobalProgress,
    InFlight,
    PipelineOverview,
    ProcessingOut,
    RunMetrics,
    RunProgress,
    StageOverview,
    StageProgress,
)
from app.runs.signals import read_live

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


def duration_seconds(run: AutomationRun | RunRow) -> int:
    end = run.completed_at or run.cancelled_at or datetime.now(UTC)
    return max(0, round((end - run.started_at).total_seconds()))


def run_progress(run: AutomationRun | RunRow) -> RunProgress:
    """The run's figures from its row alone (its plan and its stage results)."""
    state = figures(run, plan_of(run), datetime.now(UTC))
    # Validated in one go from plain values: half the CPU of building each part as a model first,
    # for what every status poll answers.
    return RunProgress.model_validate(
        {
            "run": run,
            "global_progress": {
                "total_items": state.total_items,
                "completed_items": state.completed_items,
                "percentage": state.percentage,
                "eta_seconds": state.eta_seconds,
            },
            "stages": [
                {
                    "number": stage.number,
                    "name": STAGE_NAMES[stage.number],
                    "status": stage.status,
                    "input_count": stage.input_count,
                    "processed_count": stage.processed_count,
                }
                for stage in state.stages
            ],
            "metrics": {
                "credits_used": run.total_credits_used,
                "duration_seconds": duration_seconds(run),
                "projected_remaining_credits": state.credits_remaining,
            },
            "initial_snapshot": run.initial_snapshot,
        },
        from_attributes=True,
    )


async def progress_without_run(session: AsyncSession, site_id: int) -> RunProgress:
    """For a site that has never run: what it has pending (one query)."""
    pending = await pending_counts(session, site_id)
    return RunProgress(
        run=None,
        global_progress=GlobalProgress(
            total_items=sum(pending.values()), completed_items=0, percentage=0, eta_seconds=None
        ),
        stages=[
            StageProgress(
                number=n,
                name=STAGE_NAMES[n],
                status="pending",
                input_count=pending[n],
                processed_count=0,
            )
            for n in STAGE_NUMBERS
        ],
        metrics=RunMetrics(
            credits_used=Decimal(0), duration_seconds=0, projected_remaining_credits=None
        ),
        initial_snapshot=None,
    )


async def current_processing(redis: Redis, run: AutomationRun) -> ProcessingOut:
    """The live card the runner keeps in Redis, while it names the run's stage; else the
    stage's figures from the run's row. The runner moves the run to its next stage before it
    publishes the card of that stage (between the two lies the delay between stages): the row
    is the first to know."""
    live = await read_live(redis, run.run_id) if run.status == RunStatus.RUNNING else None
    if not live or int(live["stage"]) < run.current_stage:
        # No item in flight (not taken yet, paused, between batches or stages).
        stage = figures(run, plan_of(run), datetime.now(UTC)).stages[run.current_stage - 1]
        return ProcessingOut(
            run_id=run.run_id,
            status=run.status,
            stage=stage.number,
            stage_name=STAGE_NAMES[stage.number],
            batch=0,
            batches=0,
            items=[],
            processed=stage.processed_count,
            total=stage.input_count,
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
