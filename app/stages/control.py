"""When a slice of work must stop before its next item: a pause or cancel signal, the slice's
time budget, a lost lease, the credit budget, an empty balance. Checked before every item; it
never interrupts an item in flight. While Redis is down the run row in Postgres, the truth the
signal only mirrors, is read instead."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import is_backend_down
from app.models.automation import AutomationRun, RunStatus
from app.models.billing import Operation
from app.outage import Outage
from app.runs.signals import parse_signal, read_signal, signal_key
from app.stages.handle import RunHandle

# A delay sleeps in steps this long, so that a pause during a long delay is not kept waiting.
SLEEP_STEP_SECONDS = 0.25


class StopReason(StrEnum):
    PAUSE = "pause"
    CANCEL = "cancel"
    SLICE_END = "slice_end"
    LEASE_LOST = "lease_lost"
    RUN_BUDGET = "run_budget"
    STAGE_BUDGET = "stage_budget"
    INSUFFICIENT_CREDITS = "insufficient_credits"


_FROM_SIGNAL = {"pause": StopReason.PAUSE, "cancel": StopReason.CANCEL}
# What stops an item that holds its credits before its call. Not a credit limit or an empty
# balance that another item's hold ran into: this item's own hold was within them.
STOPS_A_HELD_ITEM = frozenset(
    {StopReason.PAUSE, StopReason.CANCEL, StopReason.SLICE_END, StopReason.LEASE_LOST}
)


class Control:
    def __init__(
        self,
        redis: Redis,
        session_factory: async_sessionmaker[AsyncSession],
        run: RunHandle,
        slice_no: int,
        deadline: float,
    ) -> None:
        self.redis = redis
        self.session_factory = session_factory
        self.run = run
        self.slice_no = slice_no
        self.deadline = deadline
        self.stop: StopReason | None = None
        # The run's view of its backends, shared by everything the slice does.
        self.outage = Outage(f"run {run.run_id}")

    def request_stop(self, reason: StopReason) -> None:
        if self.stop is None:
            self.stop = reason

    @property
    def signal_key(self) -> str:
        """The Redis key of the run's pause/cancel signal."""
        return signal_key(self.run.run_id)

    async def check(self) -> StopReason | None:
        """Why to stop now, or None to go on (one Redis GET)."""
        if self.stop is None and not self._past_deadline():
            try:
                signal = await read_signal(self.redis, self.run.run_id, self.slice_no)
            except Exception as exc:
                if not is_backend_down(exc):
                    raise
                await self._check_row()
            else:
                self._note_signal(signal)
        return self.stop

    def check_read(self, value: bytes | None) -> StopReason | None:
        """`check()`, with the signal's key already read (with a provider permit)."""
        if self.stop is None and not self._past_deadline():
            self._note_signal(parse_signal(value, self.slice_no))
        return self.stop

    def _past_deadline(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.request_stop(StopReason.SLICE_END)
            return True
        return False

    def _note_signal(self, signal: str | None) -> None:
        if signal in _FROM_SIGNAL:
            self.request_stop(_FROM_SIGNAL[signal])

    def note_status(self, status: str) -> StopReason | None:
        """The run's status as read from its row (at a batch boundary, by a credit hold, or
        while Redis is down): Postgres is the truth when a signal was lost."""
        if status == RunStatus.PAUSED:
            self.request_stop(StopReason.PAUSE)
        elif status == RunStatus.CANCELLED:
            self.request_stop(StopReason.CANCEL)
        return self.stop

    def note_row(self, status: str, fence: int) -> StopReason | None:
        """The run's status and fence as read from its row: under another fence, or ended, the
        run is no longer this slice's."""
        if fence != self.run.fence:
            self.request_stop(StopReason.LEASE_LOST)
        self.note_status(status)
        if status not in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.CANCELLED):
            self.request_stop(StopReason.LEASE_LOST)
        return self.stop

    async def _check_row(self) -> None:
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(AutomationRun.status, AutomationRun.fence).where(
                        AutomationRun.id == self.run.id
                    )
                )
            ).one()
        self.note_row(row.status, row.fence)

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if a reason to stop comes up meanwhile."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0 or await self.check() is not None:
                return
            await asyncio.sleep(min(left, SLEEP_STEP_SECONDS))


@dataclass
class Budget:
    """`max_credits_per_run` and its split by function (SPEC §8). Holds in flight count as spent,
    so concurrent items cannot together exceed a limit."""

    run_limit: Decimal | None
    operation_limits: dict[Operation, Decimal]
    spent: Decimal
    spent_by_operation: dict[Operation, Decimal]
    held: Decimal = Decimal(0)
    held_by_operation: dict[Operation, Decimal] = field(default_factory=dict)

    def hold(self, operation: Operation, amount: Decimal) -> StopReason | None:
        """Count `amount` as held, or say which limit it would break."""
        if self.run_limit is not None and self.spent + self.held + amount > self.run_limit:
            return StopReason.RUN_BUDGET
        limit = self.operation_limits.get(operation)
        used = self.spent_by_operation.get(operation, Decimal(0))
        in_flight = self.held_by_operation.get(operation, Decimal(0))
        if limit is not None and used + in_flight + amount > limit:
            return StopReason.STAGE_BUDGET
        self.held += amount
        self.held_by_operation[operation] = in_flight + amount
        return None

    def rehold(self, operation: Operation, counted: Decimal, actual: Decimal) -> None:
        """Replace a hold counted as `counted` by the `actual` one."""
        self.held += actual - counted
        self.held_by_operation[operation] = (
            self.held_by_operation.get(operation, Decimal(0)) + actual - counted
        )

    def done(self, operation: Operation, held: Decimal, cost: Decimal) -> None:
        self.held -= held
        self.held_by_operation[operation] = self.held_by_operation.get(operation, Decimal(0)) - held
        self.spent += cost
        self.spent_by_operation[operation] = (
            self.spent_by_operation.get(operation, Decimal(0)) + cost
        )
