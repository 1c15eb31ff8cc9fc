"""What Redis carries for a run besides its lease: the pause/cancel signal the runner checks
before every item, and the live "currently processing" state. Postgres stays the truth: the
runner re-reads the run row at batch boundaries in case a signal was lost."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

SIGNAL_TTL_SECONDS = 7 * 24 * 3600
LIVE_TTL_SECONDS = 3600


def _signal_key(run_id: str) -> str:
    return f"run:{run_id}:signal"


def _live_key(run_id: str) -> str:
    return f"run:{run_id}:processing"


async def send_signal(redis: Redis, run_id: str, signal: str) -> None:
    await redis.set(_signal_key(run_id), signal, ex=SIGNAL_TTL_SECONDS)


async def read_signal(redis: Redis, run_id: str) -> str | None:
    value = await redis.get(_signal_key(run_id))
    return None if value is None else bytes(value).decode()


async def clear_signal(redis: Redis, run_id: str) -> None:
    await redis.delete(_signal_key(run_id))


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
