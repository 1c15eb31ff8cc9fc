"""What Redis carries for a run besides its lease: the pause/cancel signal the runner checks
before every item, and the live "currently processing" state. Postgres stays the truth: the
runner re-reads the run row at batch boundaries (and before every item while Redis is down), so
a signal lost with Redis only delays a pause to the end of the batch.

A signal names the slice it was sent to. A resume moves the run to a new slice, so a pause sent
to an earlier slice never stops the resumed run, and nothing needs clearing (a resume made while
Redis is down cannot leave a stale pause behind)."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

SIGNAL_TTL_SECONDS = 7 * 24 * 3600
LIVE_TTL_SECONDS = 3600


def signal_key(run_id: str) -> str:
    return f"run:{run_id}:signal"


def _live_key(run_id: str) -> str:
    return f"run:{run_id}:processing"


async def send_signal(redis: Redis, run_id: str, signal: str, slice_no: int) -> None:
    await redis.set(signal_key(run_id), f"{signal}:{slice_no}", ex=SIGNAL_TTL_SECONDS)


async def read_signal(redis: Redis, run_id: str, slice_no: int) -> str | None:
    """The signal sent to slice `slice_no` of the run (or a later one), if any."""
    return parse_signal(await redis.get(signal_key(run_id)), slice_no)


def parse_signal(value: bytes | None, slice_no: int) -> str | None:
    """The signal sent to slice `slice_no` or a later one, from the key's value read elsewhere."""
    if value is None:
        return None
    signal, _, sent_to = bytes(value).decode().partition(":")
    return signal if sent_to.isdigit() and int(sent_to) >= slice_no else None


async def publish_live(redis: Redis, run_id: str, state: dict[str, Any]) -> None:
    await redis.set(_live_key(run_id), json.dumps(state, default=str), ex=LIVE_TTL_SECONDS)


async def read_live(redis: Redis, run_id: str) -> dict[str, Any] | None:
    value = await redis.get(_live_key(run_id))
    if value is None:
        return None
    state: dict[str, Any] = json.loads(value)
    return state


async def clear_live(redis: Redis, run_id: str) -> None:
    await redis.delete(_live_key(run_id))
