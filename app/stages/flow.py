"""How a stage's items go through the run's `ai_concurrency` slots (SPEC §7).

The feeder takes room for an item (one more than the slots: the next item is admitted while the
slots are busy), then the next item: when the loaded ones are used up it loads the next batch
(the stage's batch size), in a transaction that saves the cursor, re-reads the run's status (a
pause or cancel whose Redis signal was lost stops the stage there) and counts `batches_run`. It
checks the stop control and starts the item, which takes a slot for its AI call and gives it
back when the call is over. So a stop takes effect before the next item, never mid-item; one
whose Redis signal was lost, at the next batch loaded (the item admitted ahead goes out).

With `within_stage_delay` 0 the items flow: the next item starts as soon as any slot is free,
whichever batch it belongs to, and one slow call holds one slot, not the whole batch. With a
delay, batches are kept: all of a batch's items end, the delay passes, then the next batch loads.

Items end out of order, so the cursor saved is the last id below which every item loaded is
through (done or failed): a stage picked up again after a crash skips none that was in flight.

A stage with no AI call (`LocalStage`) takes no slots: each batch it loads is written whole in
one transaction, and the next batch loads once it is committed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.base import AIFatalError
from app.models.automation import AutomationRun
from app.stages.base import AIStage, Item, LocalStage
from app.stages.context import StageContext
from app.stages.handle import LeaseLost, fenced


class Feeder:
    def __init__(
        self,
        ctx: StageContext,
        stage: AIStage | LocalStage,
        cursor: int,
        taken: int,
        batches_run: int,
    ) -> None:
        self.ctx = ctx
        self.stage = stage
        # Every item loaded at or below the cursor is through.
        self.cursor = cursor
        # Units taken toward the per-run limit, those started in this slice included.
        self.taken = taken
        self.batch_no = batches_run
        self.limit = stage.limit(ctx)
        self.batch_size = stage.batch_size(ctx)
        self.flowing = ctx.config.within_stage_delay == 0
        self._loaded_through = cursor
        self._loaded: deque[Item] = deque()
        # The ids of the items started, in order, down to the first not yet through.
        self._started: deque[int] = deque()
        self._through: set[int] = set()
        self._batches: list[list[int]] = []
        # Batches kept: the tasks of the current batch.
        self._batch: list[asyncio.Task[None]] = []

    async def run(self) -> int:
        """Feed the stage's items until none is left, its limit is reached or the run must stop;
        returns the cursor once every item started has ended."""
        stage = self.stage
        if isinstance(stage, LocalStage):
            return await self._run_local(stage)
        try:
            async with asyncio.TaskGroup() as group:
                while await self._start_next(group, stage):
                    pass
        except ExceptionGroup as failures:
            raise _most_telling(failures) from failures
        await self._uncount_unstarted()
        return self.cursor

    async def _run_local(self, stage: LocalStage) -> int:
        """A stage with no AI call: each batch, once loaded, is written whole in one transaction,
        batch after batch (a batch is the item in flight that a stop lets finish)."""
        while await self.ctx.control.check() is None:
            items = await self._load()
            if not items:
                break
            self.taken += sum(item.units for item in items)
            await stage.process_batch(self.ctx, items)
            self.cursor = items[-1].id
            if not self.flowing:
                await self.ctx.control.sleep(self.ctx.config.within_stage_delay)
        return self.cursor

    async def _start_next(self, group: asyncio.TaskGroup, stage: AIStage) -> bool:
        """Start the next item once there is room for it; False when there is none to start."""
        if self._batch and not self._loaded:
            await self._end_batch()
        await self.ctx.slots.take()
        item = None
        try:
            item = await self._admit_next()
        finally:
            if item is None:
                self.ctx.slots.put_back()
        if item is None:
            return False
        self.ctx.slots.give(item.id)
        self.taken += item.units
        self._started.append(item.id)
        task = group.create_task(self._process(stage, item))
        if not self.flowing:
            self._batch.append(task)
        return True

    async def _admit_next(self) -> Item | None:
        if not self._loaded:
            self._loaded.extend(await self._load())
        if not self._loaded:
            return None
        item = self._loaded[0]
        if not await self.ctx.admit(item.id):
            return None
        return self._loaded.popleft()

    async def _process(self, stage: AIStage, item: Item) -> None:
        try:
            await stage.process_item(self.ctx, item)
        finally:
            self.ctx.slots.give_back(item.id)
        if item.id in self.ctx.admitted:  # else it stopped before its call: not through
            self._through.add(item.id)
            while self._started and self._started[0] in self._through:
                self.cursor = self._started.popleft()
                self._through.remove(self.cursor)

    async def _end_batch(self) -> None:
        """Batches kept: the batch's items all end, then the delay passes."""
        await asyncio.wait(self._batch)
        self._batch.clear()
        await self.ctx.control.sleep(self.ctx.config.within_stage_delay)

    async def _load(self) -> list[Item]:
        room = None if self.limit is None else self.limit - self.taken
        if room is not None and room <= 0:
            return []
        size = self.batch_size if room is None else min(self.batch_size, room)
        ctx = self.ctx
        async with ctx.transaction() as session:
            await save_cursor(session, ctx, self.cursor)
            items = (
                []
                if ctx.control.stop
                else await self.stage.load(session, ctx, self._loaded_through, size)
            )
            if items:
                await ctx.commit_progress(session, {"batches_run": 1})
        if items:
            self._loaded_through = items[-1].id
            self._batches.append([item.id for item in items])
            self.batch_no += 1
            left = max(ctx.live.total - self.taken, sum(item.units for item in items))
            batches = self.batch_no - 1 + -(-left // self.batch_size)
            await ctx.live.enter_batch(self.batch_no, batches)
        return items

    async def _uncount_unstarted(self) -> None:
        """`batches_run` counts the batches processed: not one loaded when a stop came before
        any of its items started."""
        admitted = self.ctx.admitted
        unstarted = sum(1 for ids in self._batches if admitted.isdisjoint(ids))
        if unstarted:
            async with self.ctx.transaction() as session:
                await self.ctx.commit_progress(session, {"batches_run": -unstarted})


async def save_cursor(session: AsyncSession, ctx: StageContext, cursor: int) -> None:
    """Save the cursor, and read the run's status: a pause or cancel whose signal Redis lost
    stops the stage here, at the batch boundary."""
    status = await session.scalar(
        fenced(ctx.run).values(stage_cursor=cursor).returning(AutomationRun.status)
    )
    if status is None:
        raise LeaseLost(ctx.run.run_id)
    ctx.control.note_status(status)


def _most_telling(failures: ExceptionGroup[Exception]) -> Exception:
    """The one error of the stage's items the runner acts on: the provider failing for good
    first (the run fails), then a lost lease (the slice stops), then whatever came first."""
    flat = list(_flatten(failures))
    for kind in (AIFatalError, LeaseLost):
        for error in flat:
            if isinstance(error, kind):
                return error
    return flat[0]


def _flatten(group: ExceptionGroup[Exception]) -> Iterator[Exception]:
    for error in group.exceptions:
        if isinstance(error, ExceptionGroup):
            yield from _flatten(error)
        else:
            yield error
