"""The one door through which a run's status changes (SPEC §5).

```
running ──pause──▶ paused ──resume──▶ running
running|paused ──cancel──▶ cancelled
running ──▶ completed | failed
```

`set_run_state` locks the run row, checks the transition, stamps the time, records the event;
anything else is refused with `InvalidTransition`. Nothing else assigns `AutomationRun.status`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AlreadyRunning, InvalidTransition, NotFound
from app.metrics import RUN_TRANSITIONS
from app.models.automation import AutomationRun, RunStatus, StoppedReason, TriggerType
from app.runs.events import RunLog
from app.runs.plan import ProgressPlan, snapshot_plan

ACTIVE = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset(
        {RunStatus.PAUSED, RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED}
    ),
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
}

_VERBS = {
    RunStatus.PAUSED: "pause",
    RunStatus.RUNNING: "resume",
    RunStatus.CANCELLED: "cancel",
    RunStatus.COMPLETED: "complete",
    RunStatus.FAILED: "fail",
}

_DEFAULT_REASON = {
    RunStatus.CANCELLED: StoppedReason.CANCELLED,
    RunStatus.COMPLETED: StoppedReason.COMPLETED,
    RunStatus.FAILED: StoppedReason.FAILED,
}


# "At most one active run per site": an insert names the index by its column and its predicate,
# taken from the index itself, with its constants (PostgreSQL cannot match a predicate whose
# values are parameters).
_ONE_ACTIVE_PER_SITE = next(
    index
    for index in cast(Table, AutomationRun.__table__).indexes
    if index.name == "uq_automation_runs_one_active_per_site"
)


def new_run_id() -> str:
    """Public, opaque and sortable by creation time."""
    return f"run_{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(4)}"


async def create_run(
    session: AsyncSession,
    log: RunLog,
    *,
    account_id: int,
    site_id: int,
    trigger_type: TriggerType,
    initial_snapshot: dict[str, Any],
    progress_plan: ProgressPlan | None = None,
) -> AutomationRun:
    """Insert a running run. The partial unique index refuses a second active run for the site,
    however many requests race: the loser gets `AlreadyRunning`. Without a `progress_plan`, the
    run is planned to handle the snapshot's counts, nothing projected.

    One statement: the insert that meets the index does nothing (rather than fail, which needed a
    savepoint around it) and returns the whole row."""
    plan = progress_plan or snapshot_plan(initial_snapshot)
    run: AutomationRun | None = await session.scalar(
        insert(AutomationRun)
        .values(
            run_id=new_run_id(),
            account_id=account_id,
            site_id=site_id,
            trigger_type=trigger_type,
            status=RunStatus.RUNNING,
            current_stage=1,
            initial_snapshot=initial_snapshot,
            progress_plan=plan.stored(),
        )
        .on_conflict_do_nothing(
            index_elements=_ONE_ACTIVE_PER_SITE.expressions,
            index_where=_ONE_ACTIVE_PER_SITE.dialect_options["postgresql"]["where"],
        )
        .returning(AutomationRun)
    )
    if run is None:
        raise AlreadyRunning("a run is already active for this site", details={"site_id": site_id})
    RUN_TRANSITIONS.labels(RunStatus.RUNNING.value).inc()
    await log.record(
        session,
        run,
        "run_started",
        f"Run {run.run_id} started ({trigger_type.value}); "
        f"{initial_snapshot.get('total_initial_items', 0)} items pending",
        data={"initial_snapshot": initial_snapshot},
    )
    return run


async def lock_run(session: AsyncSession, run_pk: int) -> AutomationRun:
    run = await session.scalar(
        select(AutomationRun)
        .where(AutomationRun.id == run_pk)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is None:
        raise NotFound("run not found")
    return run


async def set_run_state(
    session: AsyncSession,
    log: RunLog,
    run_pk: int,
    to: RunStatus,
    *,
    stopped_reason: StoppedReason | None = None,
    error_message: str | None = None,
    note: str | None = None,
) -> AutomationRun:
    """Move the run to `to`, or raise `InvalidTransition` naming why not."""
    run = await lock_run(session, run_pk)
    current = run.status
    if to not in ALLOWED[current]:
        raise InvalidTransition(
            f"cannot {_VERBS[to]} a run that is {current.value}",
            details={"run_id": run.run_id, "status": current.value, "requested": to.value},
        )
    now = datetime.now(UTC)
    run.status = to
    match to:
        case RunStatus.PAUSED:
            run.paused_at = now
        case RunStatus.RUNNING:
            run.resumed_at = now
        case RunStatus.CANCELLED:
            # Its end as well: history and durations read `completed_at` for every finished run.
            run.cancelled_at = run.completed_at = now
        case RunStatus.COMPLETED | RunStatus.FAILED:
            run.completed_at = now
    if to in _DEFAULT_REASON:
        run.stopped_reason = stopped_reason or _DEFAULT_REASON[to]
    if error_message is not None:
        run.error_message = error_message
    RUN_TRANSITIONS.labels(to.value).inc()
    message = f"Run {_past_tense(to)}" + (f": {note}" if note else "")
    if error_message:
        message += f" ({error_message})"
    await log.record(
        session,
        run,
        f"run_{to.value}" if to != RunStatus.RUNNING else "run_resumed",
        message,
        stage=None,
        level="error" if to == RunStatus.FAILED else "info",
        data={"from": current.value, "to": to.value, "stopped_reason": run.stopped_reason},
    )
    await session.flush()
    return run


def _past_tense(to: RunStatus) -> str:
    return {
        RunStatus.PAUSED: "paused",
        RunStatus.RUNNING: "resumed",
        RunStatus.CANCELLED: "cancelled",
        RunStatus.COMPLETED: "completed",
        RunStatus.FAILED: "failed",
    }[to]
