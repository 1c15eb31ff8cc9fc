"""How one item is processed: an AI item holds its credits, calls the provider, then writes its
result, settles its cost and adds to the counters in one transaction; a local item only writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.base import AIError, AIFatalError, Answer
from app.credits.charges import Charge, HoldState, release, reserve, settle
from app.errors import InsufficientCredits
from app.models.billing import Operation
from app.runs.metrics import AI_CALL_ERRORS, AI_CALL_SECONDS, CREDITS_CHARGED
from app.stages.context import StageContext
from app.stages.control import StopReason
from app.stages.results import Number

log = structlog.get_logger(__name__)

T = TypeVar("T")


class InvalidOutput(AIError):
    """The provider's answer validated but does not fit the input (e.g. unknown keywords)."""


@dataclass(frozen=True)
class Written:
    """What an item's result wrote: the billed units, the counters to add, a log line."""

    units: int | Decimal
    deltas: dict[str, Number]
    message: str
    data: dict[str, object] = field(default_factory=dict)


async def ai_item(
    ctx: StageContext,
    *,
    item_key: str,
    operation: Operation,
    hold: Decimal,
    call: Callable[[], Awaitable[Answer[T]]],
    write: Callable[[AsyncSession, Answer[T]], Awaitable[Written]],
    failed: Callable[[AsyncSession, str], Awaitable[dict[str, Number]]],
) -> bool:
    """Run one AI call for one item; False when it was not done (budget, balance, done before).

    `failed` marks the item failed and returns the counters to add; an `AIFatalError` goes up to
    the runner, which fails the run.
    """
    stop = ctx.budget.hold(operation, hold)
    if stop is not None:
        ctx.control.request_stop(stop)
        return False
    charge = Charge(ctx.run.account_id, ctx.run.site_id, ctx.run.id, operation, item_key)
    try:
        async with ctx.transaction() as session:
            held = await reserve(session, charge, hold)
    except InsufficientCredits:
        ctx.budget.done(operation, hold, Decimal(0))
        ctx.control.request_stop(StopReason.INSUFFICIENT_CREDITS)
        return False
    # A resumed item reuses the hold its first attempt left, whatever its size.
    ctx.budget.rehold(operation, hold, held.amount)
    if held.state is HoldState.SPENT:
        ctx.budget.done(operation, held.amount, Decimal(0))
        return False
    cost = Decimal(0)
    try:
        with AI_CALL_SECONDS.labels(operation.value).time():
            answer = await call()
        async with ctx.transaction() as session:
            written = await write(session, answer)
            cost = await settle(
                session, charge, held, ctx.price(operation).cost(written.units, answer.usage)
            )
            await ctx.commit_progress(session, {**written.deltas, "credits_used": cost}, cost)
            await ctx.event(session, "item_done", written.message, data={**written.data})
        CREDITS_CHARGED.labels(operation.value).inc(float(cost))
        return True
    except AIFatalError:
        AI_CALL_ERRORS.labels(operation.value, "fatal").inc()
        raise
    except AIError as exc:
        AI_CALL_ERRORS.labels(operation.value, type(exc).__name__).inc()
        reason = str(exc) or type(exc).__name__
        async with ctx.transaction() as session:
            await release(session, charge, held)
            deltas = await failed(session, reason)
            await ctx.commit_progress(session, {**deltas, "errors": deltas.get("errors", 1)})
            await ctx.event(session, "item_failed", f"{item_key} failed: {reason}", level="warning")
        log.warning("item failed", run_id=ctx.run.run_id, item=item_key, error=reason)
        return False
    finally:
        ctx.budget.done(operation, held.amount, cost)


async def local_item(
    ctx: StageContext, write: Callable[[AsyncSession], Awaitable[Written]]
) -> Written:
    """Write one item with no AI call, its counters in the same transaction."""
    async with ctx.transaction() as session:
        written = await write(session)
        await ctx.commit_progress(session, written.deltas)
        await ctx.event(session, "item_done", written.message, data={**written.data})
    return written
