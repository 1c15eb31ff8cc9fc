"""Effects after commit (`app.effects`): registered on a unit of work's session, run once its
transaction has committed and never when it rolls back (nor when the savepoint they were
registered in rolls back); a failing effect is logged with its name and the others still run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import sqlalchemy.exc
from redis.asyncio import Redis
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.effects import after_commit
from app.models.tenancy import Account
from app.outage import Outage
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


class Boom(Exception):
    """What a test raises to roll a block back."""


class Ran:
    """Effects that note their name when they run."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def effect(self, name: str) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            self.names.append(name)

        return action


def register(session: AsyncSession, ran: Ran, name: str) -> None:
    after_commit(session, ran.effect(name), name=name)


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, name="Before")


async def rename(session: AsyncSession, tenant: Tenant, name: str) -> None:
    await session.execute(update(Account).where(Account.id == tenant.account_id).values(name=name))


async def account_name(session_factory: SessionFactory, tenant: Tenant) -> str | None:
    async with session_factory() as session:
        return await session.scalar(select(Account.name).where(Account.id == tenant.account_id))


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    """A real client of a port nothing listens on: every command fails as in an outage."""
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    yield client
    await client.aclose()


def effect_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and "effect" in record.msg
    ]


class TestAnEffectRunsOnlyAfterTheCommit:
    async def test_the_effect_runs_once_the_change_is_committed_and_sees_it(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        seen: list[str | None] = []

        async def read_from_another_connection() -> None:
            seen.append(await account_name(session_factory, tenant))

        async with unit_of_work(session_factory) as session:
            await rename(session, tenant, "After")
            after_commit(session, read_from_another_connection, name="read")
            await session.flush()
            assert seen == []

        assert seen == ["After"]

    async def test_effects_run_in_the_order_they_were_registered(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            for name in ("first", "second", "third"):
                register(session, ran, name)

        assert ran.names == ["first", "second", "third"]

    async def test_a_block_that_raises_rolls_back_and_drops_its_effects(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        ran = Ran()

        async def block() -> None:
            async with unit_of_work(session_factory) as session:
                await rename(session, tenant, "After")
                register(session, ran, "dropped")
                raise Boom

        with pytest.raises(Boom):
            await block()

        assert ran.names == []
        assert await account_name(session_factory, tenant) == "Before"

    async def test_a_commit_that_fails_drops_the_effects(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async def block() -> None:
            async with unit_of_work(session_factory) as session:
                # A deferred constraint: the duplicate is refused by the COMMIT itself.
                await session.execute(
                    text(
                        "CREATE TEMP TABLE pairs (n int, CONSTRAINT one_n UNIQUE (n) "
                        "DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
                    )
                )
                await session.execute(text("INSERT INTO pairs VALUES (1), (1)"))
                register(session, ran, "dropped")

        with pytest.raises(sqlalchemy.exc.IntegrityError):
            await block()

        assert ran.names == []

    async def test_a_session_rolled_back_by_hand_drops_what_it_registered_before(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            await rename(session, tenant, "Lost")
            register(session, ran, "dropped")
            await session.rollback()
            register(session, ran, "kept")

        assert ran.names == ["kept"]

    async def test_an_effect_registered_outside_a_unit_of_work_is_refused(
        self, session_factory: SessionFactory
    ) -> None:
        async with session_factory() as session:
            with pytest.raises(RuntimeError, match="outside a unit of work"):
                register(session, Ran(), "never")


class TestSavepoints:
    async def test_a_rolled_back_savepoint_drops_its_effects_and_keeps_the_others(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            register(session, ran, "before")
            with contextlib.suppress(Boom):
                async with session.begin_nested():
                    register(session, ran, "inside")
                    raise Boom
            register(session, ran, "after")

        assert ran.names == ["before", "after"]

    async def test_a_released_savepoint_runs_its_effects_only_after_the_commit(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            async with session.begin_nested():
                register(session, ran, "inside")
            assert ran.names == []

        assert ran.names == ["inside"]

    async def test_rolling_back_a_savepoint_drops_the_effects_of_savepoints_inside_it(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            with contextlib.suppress(Boom):
                async with session.begin_nested():
                    async with session.begin_nested():
                        register(session, ran, "released, then its outer one rolled back")
                    raise Boom
            register(session, ran, "kept")

        assert ran.names == ["kept"]

    async def test_a_rolled_back_transaction_drops_the_effects_of_released_savepoints(
        self, session_factory: SessionFactory
    ) -> None:
        ran = Ran()

        async def block() -> None:
            async with unit_of_work(session_factory) as session:
                async with session.begin_nested():
                    register(session, ran, "dropped")
                raise Boom

        with pytest.raises(Boom):
            await block()

        assert ran.names == []


# The app configures logging (structlog through the standard library, which caplog reads).
@pytest.mark.usefixtures("app")
class TestOneFailurePolicy:
    async def test_a_failing_effect_is_logged_by_name_and_the_next_one_still_runs(
        self, session_factory: SessionFactory, tenant: Tenant, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING)
        ran = Ran()

        async def broken() -> None:
            raise ValueError("a bug in the effect")

        async with unit_of_work(session_factory) as session:
            await rename(session, tenant, "After")
            after_commit(session, broken, name="broken effect")
            register(session, ran, "next")

        assert ran.names == ["next"]
        assert await account_name(session_factory, tenant) == "After"
        (logged,) = effect_logs(caplog)
        assert (logged["effect"], logged["level"], logged["exc_info"]) == (
            "broken effect",
            "error",
            True,  # with the traceback
        )

    async def test_an_unreachable_backend_is_logged_by_name_and_the_next_one_still_runs(
        self,
        session_factory: SessionFactory,
        unreachable_redis: Redis,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING)
        ran = Ran()

        async with unit_of_work(session_factory) as session:
            after_commit(session, partial(unreachable_redis.set, "k", "v"), name="set k")
            register(session, ran, "next")

        assert ran.names == ["next"]
        (logged,) = effect_logs(caplog)
        assert logged["effect"] == "set k"

    async def test_an_outage_goes_to_the_effects_outage_which_logs_it_once(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        unreachable_redis: Redis,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING)
        outage = Outage("test")

        for _ in range(3):
            async with unit_of_work(session_factory) as session:
                action = partial(unreachable_redis.set, "k", "v")
                after_commit(session, action, name="set k", outage=outage)

        assert outage.since is not None
        unreachable = [r for r in caplog.records if "backend unreachable" in r.getMessage()]
        assert len(unreachable) == 1

        async with unit_of_work(session_factory) as session:
            after_commit(session, partial(redis.set, "k", "v"), name="set k", outage=outage)

        assert outage.since is None
        assert await redis.get("k") == b"v"
