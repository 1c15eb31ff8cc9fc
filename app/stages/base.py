"""The stage interface: what a stage selects, how it processes its items, what counts toward its
per-run limit. The runner (app.stages.runner) drives every stage the same way; the feeder
(app.stages.flow) passes an `AIStage`'s items one by one through the run's slots and a
`LocalStage`'s batches whole."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.billing import Operation
from app.stages.context import StageContext


@dataclass(frozen=True)
class Item:
    """One unit of a stage's work: the id the stage's cursor moves to, a title for the live card,
    what the stage needs, and how many rows it stands for (stage 1: the keywords of one call),
    its share of the per-run limit and of the live card's count."""

    id: int
    title: str
    data: Any = None
    units: int = 1


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
        """The next batch: pending rows with ids above `after_id`, oldest first, at most `limit`
        (of units), as the items to process (stage 1: one item for the whole batch)."""


class AIStage(Stage):
    """A stage whose items each make an AI call: the feeder admits them one by one, each into
    one of the run's slots."""

    @abstractmethod
    async def process_item(self, ctx: StageContext, item: Item) -> None:
        """Process one admitted item: take a slot for its AI call (`ctx.slots.call(item.id)`)
        and give it back (`ctx.slots.give_back(item.id)`) as soon as the call is over."""


class LocalStage(Stage):
    """A stage with no AI call (3 and 7): it has nothing to wait for, so the feeder hands it each
    batch it loads, whole, to write in one transaction, one batch after another, rather than
    the items one by one through the run's slots; the stop control is checked between batches."""

    @abstractmethod
    async def process_batch(self, ctx: StageContext, items: list[Item]) -> None:
        """Write the batch, its counters and each item's line of the log in one transaction
        (`app.stages.work.local_batch`)."""
