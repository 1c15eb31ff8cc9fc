"""What a stage works with: the run it belongs to (with the fence it holds), the config, the
provider, prices and budget, the stop control, the live state, and the item transaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.ai.base import AIProvider
from app.ai.gate import ProviderGate
from app.config import Settings
from app.credits.costs import Price, Prices, price_of
from app.credits.turns import AccountTurns
from app.db import Executor, unit_of_work
from app.models.automation import AutomationConfig
from app.models.billing import Operation
from app.pipeline.results import Number, progress_statement
from app.queue import JobQueue
from app.runs.events import RunLog
from app.stages.control import Budget, Control
from app.stages.handle import LeaseLost, RunHandle
from app.stages.live import Live


@dataclass(frozen=True)
class WorkerDeps:
    """What every slice of every run shares in one worker process."""

    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    provider: AIProvider
    log: RunLog
    settings: Settings
    queue: JobQueue
    # The provider-wide cap on calls in flight, shared with every other worker through Redis.
    gate: ProviderGate = field(init=False)
    # Holds of one account, one at a time (see `app.credits.turns`).
    holds: AccountTurns = field(default_factory=AccountTurns)

    def __post_init__(self) -> None:
        gate = ProviderGate(self.redis, self.provider.name, self.settings.ai_max_concurrency)
        object.__setattr__(self, "gate", gate)

    @property
    def engine(self) -> AsyncEngine:
        """The engine the sessions are bound to: an AI item uses its connections directly."""
        engine: AsyncEngine = self.session_factory.kw["bind"]
        return engine

    @property
    def media_path(self) -> Path:
        return self.settings.media_path


@dataclass(frozen=True)
class ItemEvent:
    """An item's line of the run's log, written with its counters."""

    kind: str
    message: str
    level: str = "info"
    data: dict[str, Any] | None = None


class Slots:
    """The run's `ai_concurrency` slots, one per AI call in flight, and room for one item more,
    admitted and ready for the next slot that frees (its stop check done, its credits held),
    so that a slot given back goes straight to a call. The feeder takes room and gives it to the
    item it admits; the item takes a slot for its call; when the call is over (or the item ends)
    it gives both back, once."""

    def __init__(self, count: int) -> None:
        self._room = asyncio.Semaphore(count + 1)
        self._free = asyncio.Semaphore(count)
        self._given: set[int] = set()
        self._calling: set[int] = set()

    async def take(self) -> None:
        """Wait for room for an item (the feeder's, until it gives it to one or puts it back)."""
        await self._room.acquire()

    def put_back(self) -> None:
        """Room the feeder took but gave to no item."""
        self._room.release()

    def give(self, item_id: int) -> None:
        self._given.add(item_id)

    async def call(self, item_id: int) -> None:
        """Wait for a free slot for the item's AI call."""
        await self._free.acquire()
        self._calling.add(item_id)

    def give_back(self, item_id: int) -> None:
        """The item's call is over: its slot and its room are free again; later calls for the
        same item do nothing."""
        if item_id in self._calling:
            self._calling.remove(item_id)
            self._free.release()
        if item_id in self._given:
            self._given.remove(item_id)
            self._room.release()


@dataclass
class StageContext:
    stage: int
    run: RunHandle
    config: AutomationConfig
    deps: WorkerDeps
    prices: Prices
    control: Control
    budget: Budget
    live: Live
    # The run's `ai_concurrency` slots, and the items of the stage that were admitted (an item
    # stopped before its call, after a long wait for a slot or the provider, leaves the set).
    slots: Slots
    admitted: set[int] = field(default_factory=set)

    async def admit(self, item_id: int) -> bool:
        """Called holding room for the item: may it start? Not if the run must stop first."""
        if await self.control.check() is not None:
            return False
        self.admitted.add(item_id)
        return True

    def price(self, operation: Operation) -> Price:
        return price_of(self.prices, operation)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The runner's and the feeder's work (a stage's opening, a batch loaded): a session."""
        async with unit_of_work(self.deps.session_factory) as session:
            yield session

    @asynccontextmanager
    async def item_transaction(self) -> AsyncIterator[AsyncConnection]:
        """An AI item's result (or failure), its cost and its counters: one transaction on a
        Core connection. The item runs prebuilt statements only; an ORM session's unit of work
        and its handling of each statement cost about a tenth of the worker's CPU per call
        (issue 13: 10.3 against 9.4 ms, three interleaved pairs of the runner's bench)."""
        async with self.deps.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for work that is one statement, atomic by itself: run in autocommit,
        with no BEGIN and COMMIT around it (two round trips fewer)."""
        async with self.deps.engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def commit_progress(
        self,
        session: Executor,
        deltas: dict[str, Number],
        credits: Decimal = Decimal(0),
        event: ItemEvent | None = None,
    ) -> None:
        """Add to the stage's counters and the run's credits, if this worker still holds the
        run: the fence check and the counters are one statement of the item's transaction, which
        also writes the item's `event` to the run's log."""
        keys = tuple(deltas)
        params: dict[str, Any] = {f"d{n}": value for n, value in enumerate(deltas.values())}
        params.update(run_pk=self.run.id, fence=self.run.fence)
        if credits:
            params["credits"] = credits
        if event is not None:
            data = None if event.data is None else json.dumps(event.data)
            params.update(kind=event.kind, level=event.level, message=event.message, data=data)
        statement = progress_statement(self.stage, keys, bool(credits), event is not None)
        done = (await session.execute(statement, params)).scalar()
        if done is None:
            raise LeaseLost(self.run.run_id)
        if event is not None:
            self.deps.log.mirror(self.run, self.stage, event.level, event.message)

    async def event(
        self,
        session: AsyncSession,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        await self.deps.log.record(
            session, self.run, kind, message, stage=self.stage, level=level, data=data
        )
