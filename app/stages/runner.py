"""The runner: one slice of one run (SPEC §7, §9b).

A slice takes the site lease, raises the run's fence, then drives the stages from
`current_stage`: each selects its pending rows by state, in batches, feeds them through the run's
`ai_concurrency` slots (app.stages.flow) and commits every item on its own. It stops before its
next item on a pause or cancel, a lost lease, a credit limit, an empty balance, or when its time
is up; then it saves where it is. A slice that ran out of time leaves the next slice number to be
enqueued, so no job runs for hours and a killed worker costs one lease period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.base import AIFatalError
from app.credits.budget import allocation_percentages
from app.credits.costs import Prices, load_prices
from app.db import unit_of_work
from app.errors import is_backend_down
from app.metrics import STAGE_SECONDS
from app.models.automation import AutomationConfig, AutomationRun, RunStatus, StoppedReason
from app.models.billing import Operation
from app.outage import (
    QUICK_RETRIES,
    database_probe,
    redis_probe,
    wait_until_reachable,
)
from app.pipeline.pending import count_pending
from app.pipeline.results import initial_result, result_column, set_in_result
from app.runs.config import site_config
from app.runs.ending import Lost, end_run_unless_moved, settle_cancelled
from app.runs.lease import SiteLease
from app.runs.planning import replan_after_stage
from app.stages.base import AIStage, LocalStage, Stage
from app.stages.context import Slots, StageContext, WorkerDeps
from app.stages.control import Budget, Control, StopReason
from app.stages.flow import Feeder
from app.stages.handle import LeaseLost, RunHandle, fenced
from app.stages.live import Live
from app.stages.registry import STAGES

log = structlog.get_logger(__name__)

LEASE_POLL_SECONDS = 0.05
STAGE_OPERATIONS = {
    stage.number: stage.operation for stage in STAGES.values() if stage.operation is not None
}


@dataclass(frozen=True)
class SliceEnd:
    """How a slice ended; `next_slice` is set when the run goes on in a new job."""

    outcome: str
    next_slice: int | None = None


async def run_slice(deps: WorkerDeps, run_id: str, slice_no: int) -> SliceEnd:
    settings = deps.settings
    site_id = await _site_of_current(deps, run_id, slice_no)
    if site_id is None:
        return SliceEnd("not_current")
    lease = SiteLease(deps.redis, site_id, run_id, int(settings.run_lease_seconds * 1000))
    if not await _wait_for_lease(lease, settings.run_lease_seconds + 1):
        log.info(
            "site lease held elsewhere; the reaper resumes the run if it lapses", run_id=run_id
        )
        return SliceEnd("lease_busy")
    heartbeat: asyncio.Task[None] | None = None
    try:
        started = await _take_run(deps, run_id, slice_no)
        if started is None:
            return SliceEnd("not_current")
        control = Control(
            deps.redis,
            deps.session_factory,
            started.run,
            slice_no,
            time.monotonic() + settings.run_slice_seconds,
        )
        heartbeat = asyncio.create_task(_heartbeat(deps, lease, started.run, control))
        return await _drive_through_outages(deps, lease, started, control)
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        with contextlib.suppress(Exception):
            await lease.release()


async def _site_of_current(deps: WorkerDeps, run_id: str, slice_no: int) -> int | None:
    """The site of the run, if this slice is still the running run's current one (a job
    queued again after the run moved on is not): one statement, outside a transaction, as it
    only decides whether to wait for the site's lease. `_take_run` checks again under it."""
    async with deps.session_factory() as session:
        connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        site_id: int | None = await connection.scalar(
            select(AutomationRun.site_id).where(
                AutomationRun.run_id == run_id,
                AutomationRun.status == RunStatus.RUNNING,
                AutomationRun.slice == slice_no,
            )
        )
    return site_id


async def _drive_through_outages(
    deps: WorkerDeps, lease: SiteLease, start: _SliceStart, control: Control
) -> SliceEnd:
    """Drive the run; when PostgreSQL or Redis goes away mid-stage, wait for it (until the
    slice's time is up) and drive on from what the run row says is done. The lease and the fence
    stay this slice's throughout; the items the outage interrupted are picked up again by state,
    each reusing the credit hold it had."""
    probes = [database_probe(deps.session_factory), redis_probe(deps.redis)]
    quick_retries = 0
    while True:
        try:
            return await _drive(deps, start, control)
        except Exception as exc:
            error: Exception = exc
        while True:  # wait for the backends, then read where the run is
            if not is_backend_down(error):
                raise error
            waited = await wait_until_reachable(
                control.outage, probes, error, deadline=control.deadline
            )
            if waited is None:
                return SliceEnd("backend_down")  # the reaper resumes the run once it is back
            quick_retries = quick_retries + 1 if waited == 0 else 0
            if quick_retries > QUICK_RETRIES:
                raise error
            try:
                if not await _keep_lease(lease, start.run):
                    return SliceEnd("lease_lost")
                start = await _reload(deps, start.run)
                break
            except LeaseLost:
                return SliceEnd("lease_lost")
            except Exception as exc:
                error = exc


async def _reload(deps: WorkerDeps, run: RunHandle) -> _SliceStart:
    """What the slice works with, read again from the run row under the same fence."""
    async with unit_of_work(deps.session_factory) as session:
        row = await session.get_one(AutomationRun, run.id, populate_existing=True)
        if row.fence != run.fence:
            raise LeaseLost(run.run_id)
        return await _slice_start(session, row, run)


async def _wait_for_lease(lease: SiteLease, patience: float) -> bool:
    """Take the lease, waiting out a holder that is finishing its last item (a cancelled run of
    the same site, or this run's previous slice after a quick pause and resume)."""
    deadline = time.monotonic() + patience
    while not await lease.acquire():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(LEASE_POLL_SECONDS)
    return True


@dataclass(frozen=True)
class _SliceStart:
    """What a slice works with, read when it took the run."""

    run: RunHandle
    config: AutomationConfig
    prices: Prices
    budget: Budget
    current_stage: int


async def _take_run(deps: WorkerDeps, run_id: str, slice_no: int) -> _SliceStart | None:
    """Raise the fence (fencing out any earlier holder) and load what the slice needs; None if
    this slice is no longer the running run's current one."""
    async with unit_of_work(deps.session_factory) as session:
        run = await session.scalar(
            update(AutomationRun)
            .where(
                AutomationRun.run_id == run_id,
                AutomationRun.status == RunStatus.RUNNING,
                AutomationRun.slice == slice_no,
            )
            .values(fence=AutomationRun.fence + 1, heartbeat_at=datetime.now(UTC))
            .returning(AutomationRun)
        )
        if run is None:
            return None
        handle = RunHandle(run.id, run.run_id, run.account_id, run.site_id, run.fence)
        start = await _slice_start(session, run, handle)
        await deps.log.record(
            session,
            handle,
            "slice_started",
            f"Worker {socket.gethostname()} (pid {os.getpid()}) took the run (slice {slice_no}) "
            f"at stage {run.current_stage}",
            data={
                "slice": slice_no,
                "fence": run.fence,
                "stage": run.current_stage,
                "worker": {"host": socket.gethostname(), "pid": os.getpid()},
            },
        )
        return start


async def _slice_start(session: AsyncSession, run: AutomationRun, handle: RunHandle) -> _SliceStart:
    config = await site_config(session, run.site_id, run.account_id)
    prices = await load_prices(session)
    budget = await _budget(session, run, config)
    return _SliceStart(handle, config, prices, budget, run.current_stage)


async def _budget(session: AsyncSession, run: AutomationRun, config: AutomationConfig) -> Budget:
    spent_by_operation = {
        operation: Decimal(str((getattr(run, f"stage_{n}_result") or {}).get("credits_used", 0)))
        for n, operation in STAGE_OPERATIONS.items()
    }
    run_limit = config.max_credits_per_run or None
    limits: dict[Operation, Decimal] = {}
    if run_limit is not None:
        percentages = await allocation_percentages(session, run.site_id)
        limits = {op: run_limit * pct / 100 for op, pct in percentages.items()}
    return Budget(run_limit, limits, run.total_credits_used, spent_by_operation)


async def _heartbeat(deps: WorkerDeps, lease: SiteLease, run: RunHandle, control: Control) -> None:
    """Renew the lease and stamp `heartbeat_at` every third of the lease period. While Redis is
    down the stamp goes on, so the reaper leaves a live run alone; a lease that Redis lost
    meanwhile is taken again, unless another worker has it."""
    interval = deps.settings.run_lease_seconds / 3
    while True:
        await asyncio.sleep(interval)
        whole = True
        try:
            if not await _keep_lease(lease, run):
                control.request_stop(StopReason.LEASE_LOST)
                return
        except Exception as exc:  # a missed beat is retried: the lease has slack for two
            _missed_beat(control, exc)
            whole = False
        try:
            async with unit_of_work(deps.session_factory) as session:
                beat = await session.scalar(
                    fenced(run).values(heartbeat_at=datetime.now(UTC)).returning(AutomationRun.id)
                )
        except Exception as exc:
            _missed_beat(control, exc)
            continue
        if beat is None:
            control.request_stop(StopReason.LEASE_LOST)
            return
        if whole:
            control.outage.over()


def _missed_beat(control: Control, error: Exception) -> None:
    if is_backend_down(error):
        control.outage.met(error)
    else:
        log.warning("heartbeat failed", run_id=control.run.run_id, error=repr(error))


async def _keep_lease(lease: SiteLease, run: RunHandle) -> bool:
    """Renew the lease, or take it again if Redis lost it (a restart without persistence, an
    outage longer than the lease); False when another worker holds it."""
    if await lease.renew():
        return True
    if await lease.acquire():
        log.warning("site lease lost by Redis and taken again", run_id=run.run_id)
        return True
    return False


async def _drive(deps: WorkerDeps, start: _SliceStart, control: Control) -> SliceEnd:
    run, config = start.run, start.config
    live = Live(deps.redis, run.run_id, control.outage)
    slots = Slots(config.ai_concurrency)
    try:
        for number in range(start.current_stage, 8):
            ctx = StageContext(
                number, run, config, deps, start.prices, control, start.budget, live, slots
            )
            end = await run_stage(ctx, STAGES[number])
            if isinstance(end, StopReason):
                return await _stopped(deps, run, end)
            if number < 7:
                await _advance(ctx, number + 1)
                if end is StageEnd.DONE:
                    # A pause between stages that did work; a skipped stage did none to pace.
                    await control.sleep(config.between_stage_delay)
                if control.stop is not None:
                    return await _stopped(deps, run, control.stop)
        return await _finish(deps, run, RunStatus.COMPLETED, await _completion_reason(deps, run))
    except LeaseLost:
        return SliceEnd("lease_lost")
    except AIFatalError as exc:
        return await _finish(deps, run, RunStatus.FAILED, StoppedReason.FAILED, str(exc))
    finally:
        await live.close()


async def _completion_reason(deps: WorkerDeps, run: RunHandle) -> StoppedReason:
    """`credit_budget_reached` if a stage stopped on its share of the budget, else `completed`."""
    async with unit_of_work(deps.session_factory) as session:
        row = await session.get_one(AutomationRun, run.id, populate_existing=True)
    results = [getattr(row, f"stage_{n}_result") or {} for n in STAGES]
    if any(r.get("stopped_reason") == StoppedReason.CREDIT_BUDGET_REACHED for r in results):
        return StoppedReason.CREDIT_BUDGET_REACHED
    return StoppedReason.COMPLETED


class StageEnd(Enum):
    """How a stage that was not stopped early ended."""

    DONE = "done"
    SKIPPED = "skipped"  # disabled, or nothing to do when it started


async def run_stage(ctx: StageContext, stage: AIStage | LocalStage) -> StopReason | StageEnd:
    """Drive one stage to its end; returns why it stopped early, or how it ended."""
    opening = await _open_stage(ctx, stage)
    if opening is None:
        return StageEnd.SKIPPED
    result, cursor = opening
    feeder = Feeder(ctx, stage, cursor, stage.taken(result), int(result.get("batches_run", 0)))
    cursor = await feeder.run()
    stop = ctx.control.stop
    if stop == StopReason.STAGE_BUDGET:
        ctx.control.stop = None
        await _close_stage(
            ctx, cursor, partial=True, extra={"stopped_reason": "credit_budget_reached"}
        )
        return StageEnd.DONE
    if stop is not None:
        if stop != StopReason.LEASE_LOST:
            await _close_stage(ctx, cursor, partial=True, closing=False)
        return stop
    await _close_stage(ctx, cursor, partial=False)
    return StageEnd.DONE


async def _open_stage(ctx: StageContext, stage: Stage) -> tuple[dict[str, Any], int] | None:
    """Start (or pick up) the stage's result; None when the stage is skipped: disabled, or
    nothing pending when it starts (001: "Stage skipped: No items to process")."""
    enabled = bool(getattr(ctx.config, f"stage_{stage.number}_enabled"))
    async with ctx.transaction() as session:
        run = await session.get_one(AutomationRun, ctx.run.id, populate_existing=True)
        if run.fence != ctx.run.fence:
            raise LeaseLost(ctx.run.run_id)
        result = getattr(run, f"stage_{stage.number}_result")
        pending = await count_pending(
            session, stage.number, ctx.run.site_id, after_id=run.stage_cursor
        )
        skipped = None
        if result is None:
            skipped = "disabled" if not enabled else None if pending else "no items to process"
            result = initial_result(stage.number, skipped=skipped is not None)
            result.update(await stage.opening_values(session, ctx))
            setattr(run, result_column(stage.number).key, result)
            message = (
                f"Stage {stage.number} ({stage.name}) skipped: {skipped}"
                if skipped
                else f"Stage {stage.number} ({stage.name}) started: {pending} pending"
            )
            await ctx.event(session, "stage_started", message, data={"pending": pending})
        elif result.get("partial"):
            setattr(run, result_column(stage.number).key, {**result, "partial": False})
        cursor = run.stage_cursor
    if not enabled:
        return None
    taken = stage.taken(result)
    await ctx.live.enter_stage(stage.number, stage.name, taken, taken + pending)
    return None if skipped else (result, cursor)


async def _close_stage(
    ctx: StageContext,
    cursor: int,
    *,
    partial: bool,
    closing: bool = True,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save the stage's end: `partial` when it stopped before its end; the completion time and
    elapsed seconds when it is over (a paused stage is not over)."""
    async with ctx.transaction() as session:
        run = await session.get_one(AutomationRun, ctx.run.id, populate_existing=True)
        result = dict(getattr(run, f"stage_{ctx.stage}_result") or {})
        values: dict[str, Any] = {"partial": partial, **(extra or {})}
        if closing:
            now = datetime.now(UTC)
            started = datetime.fromisoformat(result.get("started_at") or now.isoformat())
            elapsed = (now - started).total_seconds()
            values.update(completed_at=now.isoformat(), time_elapsed=round(elapsed))
            STAGE_SECONDS.labels(str(ctx.stage)).observe(elapsed)
            values.update(await STAGES[ctx.stage].closing_values(session, ctx))
        done = await session.scalar(
            fenced(ctx.run)
            .values(
                {
                    result_column(ctx.stage).key: set_in_result(ctx.stage, values),
                    AutomationRun.stage_cursor: cursor,
                }
            )
            .returning(result_column(ctx.stage))
        )
        if done is None:
            raise LeaseLost(ctx.run.run_id)
        if closing:
            # The counters; lists (stage 7's `content_ids`) stay in the event's data.
            counts = {
                k: v
                for k, v in done.items()
                if k not in ("started_at", "completed_at") and not isinstance(v, list)
            }
            await ctx.event(
                session,
                "stage_completed",
                f"Stage {ctx.stage} complete: "
                + ", ".join(f"{k}={v}" for k, v in counts.items() if v not in (False, None)),
                data=done,
            )
            note = STAGES[ctx.stage].closing_note(done)
            if note:
                await ctx.event(session, "stage_note", note)


async def _advance(ctx: StageContext, to_stage: int) -> None:
    """Move the run to its next stage, and re-plan its progress in the same transaction."""
    async with ctx.transaction() as session:
        moved = await session.scalar(
            fenced(ctx.run)
            .values(current_stage=to_stage, stage_cursor=0)
            .returning(AutomationRun.id)
        )
        if moved is None:
            raise LeaseLost(ctx.run.run_id)
        replanned = await replan_after_stage(session, ctx.run.id, ctx.stage, ctx.config)
        if replanned is not None:
            await ctx.event(session, "replanned", replanned.message, data=replanned.data)


async def _stopped(deps: WorkerDeps, run: RunHandle, stop: StopReason) -> SliceEnd:
    match stop:
        case StopReason.SLICE_END:
            return await _next_slice(deps, run)
        case StopReason.RUN_BUDGET:
            return await _finish(
                deps, run, RunStatus.COMPLETED, StoppedReason.CREDIT_BUDGET_REACHED
            )
        case StopReason.INSUFFICIENT_CREDITS:
            return await _finish(
                deps,
                run,
                RunStatus.FAILED,
                StoppedReason.INSUFFICIENT_CREDITS,
                "insufficient credits: top up the account and start a new run",
            )
        case StopReason.CANCEL:
            async with unit_of_work(deps.session_factory) as session:
                await settle_cancelled(session, run.id, fence=run.fence, redis=deps.redis)
            return SliceEnd("cancelled")
        case _:
            return SliceEnd(stop.value)


async def _next_slice(deps: WorkerDeps, run: RunHandle) -> SliceEnd:
    async with unit_of_work(deps.session_factory) as session:
        next_slice = await session.scalar(
            fenced(run)
            .where(AutomationRun.status == RunStatus.RUNNING)
            .values(slice=AutomationRun.slice + 1)
            .returning(AutomationRun.slice)
        )
    if next_slice is None:
        return SliceEnd("stopped")
    return SliceEnd("slice_end", next_slice)


async def _finish(
    deps: WorkerDeps,
    run: RunHandle,
    to: RunStatus,
    reason: StoppedReason,
    error_message: str | None = None,
) -> SliceEnd:
    """End the run (unless a pause or cancel got there first, or another worker took it): free
    what it still holds, and queue the site's notification of it once that is committed."""
    async with unit_of_work(deps.session_factory) as session:
        ended = await end_run_unless_moved(
            session,
            deps.log,
            run.id,
            to,
            fence=run.fence,
            redis=deps.redis,
            queue=deps.queue,
            stopped_reason=reason,
            error_message=error_message,
        )
    match ended:
        case Lost.MOVED:
            return SliceEnd("stopped")
        case Lost.TAKEN:
            return SliceEnd("lease_lost")
    return SliceEnd(to.value)
