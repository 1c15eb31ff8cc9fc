"""How one item is processed: an AI item holds its credits, calls the provider, then writes its
result, settles its cost and adds to the counters in one transaction; a local item only writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import AIError, AIFatalError, Answer
from app.ai.schemas import Usage
from app.credits.charges import (
    Charge,
    Hold,
    HoldState,
    RunNotRunning,
    release,
    reserve,
    settle,
)
from app.errors import InsufficientCredits
from app.metrics import (
    AI_CALL_ERRORS,
    AI_CALL_SECONDS,
    AI_GATE_WAIT_SECONDS,
    AI_TOKENS,
    CREDITS_CHARGED,
)
from app.models.billing import Operation
from app.pipeline.results import Number
from app.stages.base import Item
from app.stages.context import ItemEvent, StageContext
from app.stages.control import STOPS_A_HELD_ITEM, StopReason

log = structlog.get_logger(__name__)

T = TypeVar("T")

# An item whose slot and provider permit took longer than this to come is checked for a stop
# again.
RECHECK_AFTER_SECONDS = 0.05


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
    item: Item,
    item_key: str,
    operation: Operation,
    hold: Decimal,
    call: Callable[[], Awaitable[Answer[T]]],
    write: Callable[[AsyncConnection, Answer[T]], Awaitable[Written]],
    failed: Callable[[AsyncConnection, str], Awaitable[dict[str, Number]]],
) -> None:
    """One AI call for one item, once admitted: the credit hold, then, holding one of the run's
    slots, the wait for a provider-wide permit, the stop check again if the slot or the permit was
    long in coming, and the call (within the item's deadline). The slot goes to the next item as
    soon as the call is over, the permit right after; then the result, its cost and counters are
    written in one transaction (or, if the call failed, the release and the failure).

    `failed` marks the item failed and returns the counters to add; an `AIFatalError` goes up to
    the runner, which fails the run. The live card counts the item's `units` as done.
    """
    began = time.perf_counter()
    # Held before the slot and the line, so that they cover the call alone: in a slot or a
    # permit, every round trip is time the provider is not called (the item admitted ahead holds
    # while the slots are busy). The hold reads the run's row: a pause, a cancel or a lost lease
    # since the item's admission stops it there, nothing held.
    held = await _hold(ctx, item, operation, item_key, hold)
    if held is None:
        return
    charge, holding = held
    control = ctx.control
    try:
        await ctx.slots.call(item.id)
        await ctx.live.start(item.id, item.title)
        async with ctx.deps.gate.slot(ctx.run.site_id, read=control.signal_key) as turn:
            AI_GATE_WAIT_SECONDS.labels(ctx.deps.provider.name).observe(turn.waited)
            # A turn that was long in coming (the item waited for its slot, in line for the
            # provider, or for Redis): a pause, a cancel, a lost lease or the slice's end
            # meanwhile stops the item before its call, read with the run's signal that came
            # with the permit. One that came at once follows the item's admission check. Stopped
            # now, the item leaves its hold with the run: resumed, it reuses it; the run's end
            # releases it. A credit limit that a later item's hold reached meanwhile does not
            # stop it: its own hold is within the limit.
            late = turn.queued or time.perf_counter() - began > RECHECK_AFTER_SECONDS
            stop = None
            if late:
                read = turn.read
                stop = await control.check() if read is None else control.check_read(read.value)
            if stop in STOPS_A_HELD_ITEM:
                ctx.budget.done(operation, holding.amount, Decimal(0))
                ctx.admitted.discard(item.id)
                await ctx.live.finish(item.id, 0)
                return
            error: AIError | None = None
            try:
                with AI_CALL_SECONDS.labels(operation.value).time():
                    answer = await _within_deadline(ctx, call)
                _count_tokens(operation, answer.usage)
            except AIFatalError:
                AI_CALL_ERRORS.labels(operation.value, "fatal").inc()
                ctx.budget.done(operation, holding.amount, Decimal(0))
                raise
            except AIError as exc:
                error = exc
            finally:
                # The next item's call need not wait for the permit's round trip to Redis.
                ctx.slots.give_back(item.id)
    finally:
        ctx.slots.give_back(item.id)
    cost = Decimal(0)
    try:
        if error is None:
            try:
                async with ctx.item_transaction() as connection:
                    written = await write(connection, answer)
                    price = ctx.price(operation).cost(written.units, answer.usage)
                    usage = _usage_data(answer.usage)
                    cost = await settle(connection, charge, holding, price, data=usage or None)
                    deltas = {**written.deltas, "credits_used": cost}
                    done = ItemEvent("item_done", written.message, data={**written.data, **usage})
                    await ctx.commit_progress(connection, deltas, cost, done)
                CREDITS_CHARGED.labels(operation.value).inc(float(cost))
                return
            except AIError as exc:  # the answer did not fit the input: nothing was written
                cost = Decimal(0)
                error = exc
        await _fail(ctx, operation, charge, holding, item_key, error, failed)
    finally:
        ctx.budget.done(operation, holding.amount, cost)
        await ctx.live.finish(item.id, item.units)


async def _within_deadline(
    ctx: StageContext, call: Callable[[], Awaitable[Answer[T]]]
) -> Answer[T]:
    """The call, failed as an item's failure once it outlasts the item's deadline (a provider
    that trickles its answer, a call stuck below the SDK's timeouts)."""
    deadline = ctx.deps.settings.ai_item_deadline_seconds
    try:
        async with asyncio.timeout(deadline):
            return await call()
    except TimeoutError:
        raise AIError(f"the AI call did not finish within {deadline:g} s") from None


def _usage_data(usage: Usage | None) -> dict[str, object]:
    """The tokens a call used, as the ledger row and the run event keep them."""
    if usage is None:
        return {}
    return {"usage": {**usage.model_dump(), "total_tokens": usage.total_tokens}}


def _count_tokens(operation: Operation, usage: Usage | None) -> None:
    if usage is not None:
        AI_TOKENS.labels(operation.value, "prompt").inc(usage.prompt_tokens)
        AI_TOKENS.labels(operation.value, "completion").inc(usage.completion_tokens)


async def _hold(
    ctx: StageContext, item: Item, operation: Operation, item_key: str, amount: Decimal
) -> tuple[Charge, Hold] | None:
    """Hold the item's credits, or None when it must not be called: a limit or an empty
    balance stops the run, the item's hold was already spent in this run, or the run is no
    longer running under this slice's fence (then the item is not through either: no longer
    admitted, a resumed run does it)."""
    stop = ctx.budget.hold(operation, amount)
    if stop is not None:
        ctx.control.request_stop(stop)
        return None
    run = ctx.run
    charge = Charge(run.account_id, run.site_id, run.id, operation, item_key, run.fence)
    try:
        # One statement, in the account's turn (`app.credits.turns`).
        async with ctx.deps.holds.turn(charge.account_id), ctx.statement() as connection:
            held = await reserve(connection, charge, amount)
    except InsufficientCredits:
        ctx.budget.done(operation, amount, Decimal(0))
        ctx.control.request_stop(StopReason.INSUFFICIENT_CREDITS)
        return None
    except RunNotRunning as exc:
        ctx.budget.done(operation, amount, Decimal(0))
        ctx.control.note_row(exc.run_status, exc.fence)
        ctx.admitted.discard(item.id)
        return None
    # A resumed item reuses the hold its first attempt left, whatever its size.
    ctx.budget.rehold(operation, amount, held.amount)
    if held.state is HoldState.SPENT:
        ctx.budget.done(operation, held.amount, Decimal(0))
        return None
    return charge, held


async def _fail(
    ctx: StageContext,
    operation: Operation,
    charge: Charge,
    held: Hold,
    item_key: str,
    error: AIError,
    failed: Callable[[AsyncConnection, str], Awaitable[dict[str, Number]]],
) -> None:
    AI_CALL_ERRORS.labels(operation.value, type(error).__name__).inc()
    reason = str(error) or type(error).__name__
    # Tokens the failed requests used all the same: not charged (the hold is released), kept in
    # the log so the provider's bill can be reconciled.
    _count_tokens(operation, error.usage)
    async with ctx.item_transaction() as connection:
        await release(connection, charge, held)
        deltas = await failed(connection, reason)
        await ctx.commit_progress(
            connection,
            {**deltas, "errors": deltas.get("errors", 1)},
            event=ItemEvent(
                "item_failed",
                f"{item_key} failed: {reason}",
                level="warning",
                data=_usage_data(error.usage) or None,
            ),
        )
    log.warning("item failed", run_id=ctx.run.run_id, item=item_key, error=reason)


@dataclass(frozen=True)
class WrittenBatch:
    """What a local batch wrote: the counters to add and each item's line of the log (its
    message and data)."""

    deltas: dict[str, Number]
    lines: list[tuple[str, dict[str, object]]]


async def local_batch(
    ctx: StageContext,
    items: list[Item],
    write: Callable[[AsyncSession], Awaitable[WrittenBatch]],
) -> None:
    """Write a batch of items with no AI call in one transaction: the batch's counters in the
    statement that checks the run's fence, then an `item_done` line of the log per item, all in
    one INSERT."""
    for item in items:
        await ctx.live.start(item.id, item.title)
    async with ctx.transaction() as session:
        written = await write(session)
        await ctx.commit_progress(session, written.deltas)
        await ctx.deps.log.record_many(
            session, ctx.run, "item_done", written.lines, stage=ctx.stage
        )
    for item in items:
        await ctx.live.finish(item.id, item.units)
