"""The engine's connection pool: a burst of work reuses the connections it has, light work
the one used last, and a process opens its first connection at its start."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.db import create_engine, open_first_connection
from tests.console import free_port

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


async def test_light_work_stays_on_the_connection_used_last(database_url: str) -> None:
    """One session at a time after a burst: each takes the connection returned last (its
    statements prepared, used within the last second so not pinged), not each of the burst's
    connections in turn."""
    engine = create_engine(database_url, pool_size=POOL_SIZE)

    async def backend(hold: float = 0) -> int:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT pg_backend_pid() FROM pg_sleep(:hold)"), {"hold": hold}
            )
            assert isinstance(found, int)
            return found

    try:
        burst = set(await asyncio.gather(*(backend(0.02) for _ in range(POOL_SIZE))))
        one_at_a_time = {await backend() for _ in range(2 * POOL_SIZE)}
    finally:
        await engine.dispose()
    assert len(burst) == POOL_SIZE
    assert len(one_at_a_time) == 1


async def test_the_first_connection_is_opened_ahead_and_an_outage_is_left_to_the_first_statement(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=POOL_SIZE)
    try:
        await open_first_connection(engine)
        assert idle_connections(engine) == 1
    finally:
        await engine.dispose()
    # Nothing listens on the port: the process starts all the same.
    unreachable = create_engine(
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", pool_size=POOL_SIZE
    )
    try:
        await open_first_connection(unreachable)
        assert idle_connections(unreachable) == 0
    finally:
        await unreachable.dispose()


def idle_connections(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedin()
