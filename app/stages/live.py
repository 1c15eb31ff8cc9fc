"""The "currently processing" card (SPEC §6): stage, batch n of m, the items in flight right now,
processed/total in the stage. Kept in Redis, written as items start and finish, at most every
`WRITE_INTERVAL_SECONDS` (the items of a run start and finish many times a second; the state at
the end of an interval is written then). It is a view, not the truth: while Redis is down the run
goes on without it, and the next write after the outage shows the whole state again."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from app.outage import Outage, best_effort
from app.runs.signals import publish_live

WRITE_INTERVAL_SECONDS = 0.1


class Live:
    def __init__(self, redis: Redis, run_id: str, outage: Outage) -> None:
        self.redis = redis
        self.run_id = run_id
        self.outage = outage
        self.stage = 0
        self.stage_name = ""
        self.batch = 0
        self.batches = 0
        self.processed = 0
        self.total = 0
        self.in_flight: dict[int, str] = {}
        # Set while an interval since the last write runs; `_changed` if the state changed in it.
        self._interval: asyncio.Task[None] | None = None
        self._changed = False

    async def enter_stage(self, stage: int, name: str, processed: int, total: int) -> None:
        self.stage, self.stage_name = stage, name
        self.batch, self.batches = 0, 0
        self.processed, self.total = processed, total
        self.in_flight.clear()
        await self.publish()

    async def enter_batch(self, batch: int, batches: int) -> None:
        self.batch, self.batches = batch, max(batches, batch)
        await self.publish()

    async def start(self, item_id: int, title: str) -> None:
        self.in_flight[item_id] = title
        await self.publish()

    async def finish(self, item_id: int, processed: int = 1) -> None:
        self.in_flight.pop(item_id, None)
        self.processed += processed
        await self.publish()

    def state(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "stage": self.stage,
            "stage_name": self.stage_name,
            "batch": self.batch,
            "batches": self.batches,
            "items": [{"id": i, "title": t} for i, t in self.in_flight.items()],
            "processed": self.processed,
            "total": self.total,
            "updated_at": datetime.now(UTC).isoformat(),
        }

    async def publish(self) -> None:
        """Write the state now, or, within an interval of the last write, when it is over."""
        if self._interval is not None and not self._interval.done():
            self._changed = True
            return
        await self._write()
        self._interval = asyncio.create_task(self._write_at_interval_end())

    async def close(self) -> None:
        """The slice is over: no write after this. (One racing the run's end, which clears the
        state, is harmless: the card is read only while the run is running.)"""
        if self._interval is not None:
            self._interval.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._interval

    async def _write_at_interval_end(self) -> None:
        while True:
            await asyncio.sleep(WRITE_INTERVAL_SECONDS)
            if not self._changed:
                return
            self._changed = False
            await self._write()

    async def _write(self) -> None:
        await best_effort(self.outage, publish_live(self.redis, self.run_id, self.state()))
