"""The engine's connection pool: a burst of work reuses the connections it has."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from app.db import create_engine

POOL_SIZE = 3


async def test_a_burst_above_the_pool_keeps_to_its_connections(database_url: str) -> None:
    """Twice as many sessions at once as the pool's size wait their turn for its connections,
    and the next burst finds the same ones: none closed on return and opened again."""
    engine = create_engine(database_url, pool_size=POOL_SIZE)

    async def backend() -> int:
        async with engine.connect() as connection:
            # Held a moment, so that the sessions overlap.
            found = await connection.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.02)"))
            assert isinstance(found, int)
            return found

    try:
        first = set(await asyncio.gather(*(backend() for _ in range(2 * POOL_SIZE))))
        second = set(await asyncio.gather(*(backend() for _ in range(2 * POOL_SIZE))))
    finally:
        await engine.dispose()
    assert len(first) == POOL_SIZE
    assert second == first
