"""Starting and steering runs from the API: run_now, pause, resume, cancel, and the reads.

Services flush; the request's unit of work commits, and only then do the endpoint's effects
(`app.effects`) send the Redis signal or enqueue the job, so a worker never sees a run its
transaction has not committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credits.estimate import check_balance, site_rates
from app.errors import AlreadyRunning, NotFound, NothingToDo
from app.models.automation import (
    AutomationConfig,
    AutomationRun,
    RunEvent,
    RunStatus,
    TriggerType,
)
from app.models.tenancy import Site
from app.pipeline.catalog import STAGE_NUMBERS
from app.pipeline.pending import pending_counts
from app.publishing.service import auto_approval_on
from app.runs.config import get_or_create_config
from app.runs.events import RunLog
from app.runs.planning import plan_run
from app.runs.states import ACTIVE, create_run, set_run_state

MAX_LOG_LINES = 5000
REVIEW_STAGE = 7


def snapshot_of(pending: dict[int, int]) -> dict[str, Any]:
    snapshot: dict[str, Any] = {f"stage_{n}_initial": pending[n] for n in STAGE_NUMBERS}
    snapshot["total_initial_items"] = sum(pending.values())
    return snapshot


async def start_run(
    session: AsyncSession, log: RunLog, site: Site, trigger: TriggerType
) -> AutomationRun:
    """A new running run for the site, after the balance check (1.2 times the estimate), with
    its progress plan."""
    active = await active_run(session, site.id)
    if active is not None:
        raise AlreadyRunning(
            f"run {active.run_id} is already {active.status} for this site",
            details={"run_id": active.run_id, "status": active.status},
        )
    config = await get_or_create_config(session, site)
    pending = await pending_counts(session, site.id)
    # The estimate's inputs, read once: the work check, the balance check and the run's plan
    # all take them.
    approving = await auto_approval_on(session, site.id)
    if trigger is TriggerType.MANUAL:
        _require_work(config, pending, approving=approving)
    rates = await site_rates(session, site.id, config)
    await check_balance(session, site, config, pending=pending, planned=rates)
    return await create_run(
        session,
        log,
        account_id=site.account_id,
        site_id=site.id,
        trigger_type=trigger,
        initial_snapshot=snapshot_of(pending),
        progress_plan=plan_run(config, pending, rates, approving=approving),
    )


def _require_work(config: AutomationConfig, pending: dict[int, int], *, approving: bool) -> None:
    """Refuse a run that would find nothing to do in any enabled stage (`nothing_to_do`, with
    the pending counts), rather than run through seven empty stages. Counted in the transaction
    that creates the run: what is added later is picked up by the run, or by the next one.
    Content in review is work only where stage 7 approves it (`approving`); otherwise a run
    just counts it."""
    disabled = [n for n in STAGE_NUMBERS if not getattr(config, f"stage_{n}_enabled")]
    work = {
        n: count
        for n, count in pending.items()
        if n not in disabled and (n != REVIEW_STAGE or approving)
    }
    if any(work.values()):
        return
    reasons = ["nothing to do: no enabled stage has pending items"]
    if pending[REVIEW_STAGE] and not approving:
        reasons.append(
            f"{pending[REVIEW_STAGE]} articles in review wait for approval by hand "
            "(auto-approval is off)"
        )
    waiting = [str(n) for n in disabled if pending[n]]
    if waiting:
        reasons.append(f"disabled stages have pending items: {', '.join(waiting)}")
    raise NothingToDo(
        "; ".join([*reasons, "add keywords first"]),
        details={
            "pending": {f"stage_{n}": pending[n] for n in STAGE_NUMBERS},
            "total_pending": sum(pending.values()),
            "disabled_stages": disabled,
            "auto_approval_enabled": approving,
        },
    )


async def find_run(session: AsyncSession, account_id: int, run_id: str) -> AutomationRun:
    """The account's run with this public id; another account's is not found, like a missing one."""
    run = await session.scalar(
        select(AutomationRun).where(
            AutomationRun.run_id == run_id, AutomationRun.account_id == account_id
        )
    )
    if run is None:
        raise NotFound("run not found")
    return run


async def pause_run(session: AsyncSession, log: RunLog, run: AutomationRun) -> AutomationRun:
    return await set_run_state(
        session, log, run.id, RunStatus.PAUSED, note="takes effect after the item in flight"
    )


async def resume_run(session: AsyncSession, log: RunLog, run: AutomationRun) -> AutomationRun:
    """Back to running, continuing from `current_stage` in a new slice (the caller enqueues it)."""
    resumed = await set_run_state(
        session, log, run.id, RunStatus.RUNNING, note=f"continuing at stage {run.current_stage}"
    )
    resumed.slice += 1
    await session.flush()
    return resumed


async def cancel_run(session: AsyncSession, log: RunLog, run: AutomationRun) -> AutomationRun:
    return await set_run_state(
        session, log, run.id, RunStatus.CANCELLED, note="the site is free for a new run"
    )


async def active_run(session: AsyncSession, site_id: int) -> AutomationRun | None:
    run: AutomationRun | None = await session.scalar(
        select(AutomationRun).where(
            AutomationRun.site_id == site_id,
            AutomationRun.status.in_(ACTIVE),
        )
    )
    return run


async def latest_run(session: AsyncSession, site_id: int) -> AutomationRun | None:
    run: AutomationRun | None = await session.scalar(
        select(AutomationRun)
        .where(AutomationRun.site_id == site_id)
        .order_by(AutomationRun.started_at.desc(), AutomationRun.id.desc())
        .limit(1)
    )
    return run


@dataclass(frozen=True)
class HistoryFilters:
    """Which runs the history lists: by status, by trigger, started in [after, before)."""

    status: RunStatus | None = None
    trigger_type: TriggerType | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.status is not None:
            conditions.append(AutomationRun.status == self.status.value)
        if self.trigger_type is not None:
            conditions.append(AutomationRun.trigger_type == self.trigger_type.value)
        if self.started_after is not None:
            conditions.append(AutomationRun.started_at >= self.started_after)
        if self.started_before is not None:
            conditions.append(AutomationRun.started_at < self.started_before)
        return conditions


async def history(
    session: AsyncSession,
    site_id: int,
    filters: HistoryFilters = HistoryFilters(),
    *,
    limit: int,
    offset: int,
) -> tuple[list[AutomationRun], int]:
    query = select(AutomationRun).where(AutomationRun.site_id == site_id, *filters.conditions())
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AutomationRun.started_at.desc(), AutomationRun.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def log_lines(session: AsyncSession, run: AutomationRun, lines: int) -> list[str]:
    """The last `lines` lines of the run's log, oldest first."""
    events = list(
        await session.scalars(
            select(RunEvent)
            .where(RunEvent.run_pk == run.id)
            .order_by(RunEvent.id.desc())
            .limit(lines)
        )
    )
    return [format_event(event) for event in reversed(events)]


def format_event(event: RunEvent) -> str:
    stage = f" [stage {event.stage}]" if event.stage else ""
    return f"[{event.at:%Y-%m-%d %H:%M:%S}] {event.level.upper()}{stage} {event.message}"
