"""The stage interface: what a stage selects, how it processes a batch, what counts toward its
per-run limit. The runner (app.stages.runner) drives every stage the same way."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.base import AIFatalError
from app.models.billing import Operation
from app.stages.context import StageContext
from app.stages.handle import LeaseLost


@dataclass(frozen=True)
class Item:
    """One row a stage works on: its id, a title for the live card, what the stage needs."""

    id: int
    title: str
    data: Any = None


class Stage(ABC):
    number: ClassVar[int]
    name: ClassVar[str]
    operation: ClassVar[Operation | None] = None
    # The config fields for the batch size and the per-run limit (None: the stage has none).
    batch_size_field: ClassVar[str | None] = None
    limit_field: ClassVar[str | None] = None
    # The result counters that count items taken toward the per-run limit.
    taken_counters: ClassVar[tuple[str, ...]] = ()

    def batch_size(self, ctx: StageContext) -> int:
        return int(getattr(ctx.config, self.batch_size_field)) if self.batch_size_field else 20

    def limit(self, ctx: StageContext) -> int | None:
        value = int(getattr(ctx.config, self.limit_field)) if self.limit_field else 0
        return value or None

    def taken(self, result: dict[str, Any]) -> int:
        return sum(int(result.get(counter, 0)) for counter in self.taken_counters)

    async def opening_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        """Result values fixed when the stage starts (stage 7 counts what is ready)."""
        return {}

    async def closing_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        """Result values fixed when the stage ends (stage 7 counts what awaits review)."""
        return {}

    def closing_note(self, result: dict[str, Any]) -> str | None:
        """A line for the log after the stage's completion, read from its final result."""
        return None

    @abstractmethod
    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        """The next pending rows with ids above `after_id`, oldest first, at most `limit`."""

    async def process_batch(self, ctx: StageContext, items: list[Item]) -> int:
        """Process a batch; returns how many items (a prefix of `items`) were started.

        Every item of the batch is under way at once, but an item starts its work only when it
        gets one of the run's `ai_concurrency` slots, in order, and after checking the stop
        control: so a pause or cancel takes effect before the next item, never mid-item, and
        one item's database writes overlap the next items' AI calls.
        """
        ctx.admitted.clear()
        try:
            async with asyncio.TaskGroup() as group:
                for item in items:
                    group.create_task(self.process_item(ctx, item))
        except ExceptionGroup as failures:
            raise _most_telling(failures) from failures
        started = 0
        for item in items:
            if item.id not in ctx.admitted:
                break
            started += 1
        return started

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        raise NotImplementedError(f"stage {self.number} processes whole batches")


def _most_telling(failures: ExceptionGroup[Exception]) -> Exception:
    """The one error of a batch the runner acts on: the provider failing for good first (the
    run fails), then a lost lease (the slice stops), then whatever came first."""
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
