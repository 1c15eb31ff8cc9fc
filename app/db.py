"""Engine, session factory and the declarative base."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import BigInteger, DateTime, MetaData, Select, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from app.effects import begin_effects, run_effects, take_effects
from app.errors import ConnectionLost, is_backend_down

T = TypeVar("T")

# What runs prebuilt statements: an ORM session (the API, the runner) or a Core connection (an
# AI item's hold and result, `app.stages.work`: the session's own work per statement and per
# transaction is CPU that every AI call would pay for nothing).
Executor = AsyncSession | AsyncConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and point them at the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


# A connection back from the pool after longer than this is checked before use (PostgreSQL may
# have restarted meanwhile); one used more recently is not. SQLAlchemy's `pool_pre_ping` checks
# every checkout, and with asyncpg a check is three round trips (BEGIN, a statement, ROLLBACK):
# more than a status read's own query. A restart closes connections that were in use too: their
# next statement fails as a disconnect, which makes SQLAlchemy replace every pooled connection.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "checked_in_at"


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    """An engine that opens at most `pool_size` connections and keeps each one it opens.

    Not SQLAlchemy's default of a smaller pool plus an overflow: an overflow connection is closed
    as soon as it is returned while the pool is full, so a load that hovers around the pool's
    size opens and closes connections all the time, and each costs PostgreSQL a new backend and
    asyncpg a fresh preparation of every statement (measured in `bench.sites`, 100 sites on two
    workers: 1,074 connections made in a 90 s run with 10 + 10, 46 with 20 kept; the AI server
    busy 61 % of the time instead of 78 %, medians of six and ten runs).

    The most recently returned connection is taken first (LIFO): at a light load the same few
    connections serve everything, with their statements already prepared and the server's
    catalog caches warm, and each was used within `PING_AFTER_IDLE_SECONDS`, so it is taken
    without a ping. Taken in turn (FIFO), as before, a light load cycled through all of them:
    each came back after more than that idle, was pinged first, and prepared its statements
    again (issue 13, the start of a run)."""
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=0, pool_use_lifo=True
    )
    _ping_idle_connections(engine)
    return engine


async def open_first_connection(engine: AsyncEngine) -> None:
    """Open the engine's first connection at the process's start rather than in its first
    statement: SQLAlchemy reads the server's settings on it (four round trips besides the
    connection's; issue 13, the first run's start). Best effort: with PostgreSQL down the
    process starts all the same, and its first statement meets the outage as it would have."""
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        if not is_backend_down(exc):
            raise


def _ping_idle_connections(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        # A new connection has no time: it was just made.
        since = record.info.get(_CHECKED_IN_AT)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool replaces the connection and checks out again.
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


# Connections of the status polls' own pool (`create_poll_pool`), per process, besides the
# engine's: their statements take well under a millisecond, so a few serve thousands a second.
POLL_POOL_SIZE = 4


async def create_poll_pool(url: str) -> asyncpg.Pool:
    """A pool of asyncpg's own connections for the status reads clients poll (`app.api.polls`).

    Not the engine's: SQLAlchemy drives asyncpg from a greenlet, and every switch into it and
    back copies the C stack down to where it started; under the service's ASGI middleware those
    copies, when a connection is taken and when it is returned, cost more CPU than the read's
    query. asyncpg prepares each statement once per connection, then only binds and runs it;
    statements run outside any transaction, each on its own. No connection is made before the
    first read, so the service starts while PostgreSQL is down; one that the server closed (a
    restart) is replaced when next taken, and one lost during a statement fails that read as an
    outage (503).
    """
    dsn = make_url(async_url(url)).set(drivername="postgresql")  # asyncpg's, not SQLAlchemy's
    return await asyncpg.create_pool(
        dsn.render_as_string(hide_password=False),
        min_size=0,
        max_size=POLL_POOL_SIZE,
        init=_decode_json,
        reset=_nothing_to_reset,
    )


async def poll_row(pool: asyncpg.Pool, query: str, *args: object) -> asyncpg.Record | None:
    """`pool.fetchrow` for the polls, except for a connection asyncpg finds still in the middle
    of an operation: one whose statement failed as the server went away, and that went back to
    the pool before asyncpg saw the connection close (a PostgreSQL restart under polls taken in
    parallel). That connection is closed rather than kept, and the read fails as an outage (503).
    """
    async with pool.acquire() as connection:
        try:
            return await connection.fetchrow(query, *args)
        except asyncpg.InternalClientError as exc:
            connection.terminate()
            raise ConnectionLost("the connection was mid-operation: its server went away") from exc


async def _decode_json(connection: asyncpg.Connection) -> None:
    """JSON read as the engine reads it (SQLAlchemy's asyncpg dialect: `json.loads`)."""
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """The polls leave no session state behind (no transaction, setting, lock or listener):
    asyncpg's own reset would send RESET ALL and the rest on every return to the pool."""


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends, rolled back when it raises. The effects
    registered on it (`app.effects.after_commit`) run once it is committed, and only then."""
    async with factory() as session:
        begin_effects(session)
        try:
            yield session
            await session.commit()
        except BaseException:
            take_effects(session)
            await session.rollback()
            raise
        effects = take_effects(session)
    await run_effects(effects)


async def fetch_page(
    session: AsyncSession, stmt: Select[T], *, limit: int, offset: int
) -> tuple[list[T], int]:
    """One page of a query's rows and the count of all its rows."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = await session.scalars(stmt.limit(limit).offset(offset))
    return list(rows), total or 0
