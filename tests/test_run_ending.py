"""The end of a run on the worker side (`app.runs.ending`): the transition, the release of the
holds the run left and the effects (live state cleared, the notification queued) come together
or not at all; a fence that moved on is refused; a lost race is answered, not raised."""

from __future__ import annotations

from decimal import Decimal

import pytest
from arq.constants import default_queue_name
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.charges import Charge, reserve
from app.db import unit_of_work
from app.errors import InvalidTransition
from app.models.automation import AutomationRun, RunStatus, StoppedReason
from app.models.billing import CreditTransaction, Operation, TransactionKind
from app.models.tenancy import Account, Site
from app.runs import service
from app.runs.config import get_or_create_config
from app.runs.ending import Lost, RunTaken, end_run, end_run_unless_moved, settle_cancelled
from app.runs.events import RunLog
from app.runs.signals import publish_live, read_live
from app.workers.queue import ArqQueue, notify_job_id
from tests.builders import create_automation_run
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
HOLD = Decimal(7)
CREDITS = Decimal(100)


class Boom(Exception):
    """What a test raises to roll the transaction back."""


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=CREDITS)


@pytest.fixture
async def run(
    session_factory: SessionFactory, redis: Redis, tenant: Tenant, run_log: RunLog
) -> AutomationRun:
    """A running run with one credit hold its worker never settled, and live state in Redis."""
    run = await create_automation_run(session_factory, tenant, run_log)
    charge = Charge(
        tenant.account_id, tenant.site_id, run.id, Operation.CLUSTERING, "cluster-1", run.fence
    )
    async with unit_of_work(session_factory) as session:
        await reserve(session, charge, HOLD)
    await publish_live(redis, run.run_id, {"stage": 1, "items": [{"id": 1}]})
    return run


async def notify_to(session_factory: SessionFactory, tenant: Tenant) -> None:
    async with unit_of_work(session_factory) as session:
        site = await session.get_one(Site, tenant.site_id)
        config = await get_or_create_config(session, site, for_update=True)
        config.notification_url = "https://hooks.example.com/runs"
        config.notification_secret = "a-signing-secret-of-the-site"


async def reload(session_factory: SessionFactory, run: AutomationRun) -> AutomationRun:
    async with session_factory() as session:
        return await session.get_one(AutomationRun, run.id)


async def releases(session_factory: SessionFactory, run: AutomationRun) -> int:
    async with session_factory() as session:
        rows = await session.scalars(
            select(CreditTransaction).where(
                CreditTransaction.run_pk == run.id,
                CreditTransaction.kind == TransactionKind.RELEASE,
            )
        )
        return len(list(rows))


async def balance(session_factory: SessionFactory, tenant: Tenant) -> Decimal:
    async with session_factory() as session:
        account = await session.get_one(Account, tenant.account_id)
        return account.credits


async def queued(redis: Redis) -> list[str]:
    return [job_id.decode() for job_id in await redis.zrange(default_queue_name, 0, -1)]


async def end(
    session: AsyncSession,
    run_log: RunLog,
    redis: Redis,
    run: AutomationRun,
    *,
    fence: int | None = None,
) -> AutomationRun:
    return await end_run(
        session,
        run_log,
        run.id,
        RunStatus.COMPLETED,
        fence=run.fence if fence is None else fence,
        redis=redis,
        queue=ArqQueue(redis),
    )


async def end_unless_moved(
    session: AsyncSession,
    run_log: RunLog,
    redis: Redis,
    run: AutomationRun,
    *,
    fence: int | None = None,
) -> AutomationRun | Lost:
    return await end_run_unless_moved(
        session,
        run_log,
        run.id,
        RunStatus.FAILED,
        fence=run.fence if fence is None else fence,
        redis=redis,
        queue=ArqQueue(redis),
        stopped_reason=StoppedReason.FAILED,
        error_message="the provider refused the key",
    )


class TestTheEndComesInOneTransaction:
    async def test_the_end_releases_the_holds_then_clears_the_live_state_and_queues_the_notice(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
        run_log: RunLog,
        run: AutomationRun,
    ) -> None:
        await notify_to(session_factory, tenant)
        assert await balance(session_factory, tenant) == CREDITS - HOLD

        async with unit_of_work(session_factory) as session:
            ended = await end(session, run_log, redis, run)
            # Nothing outside the transaction happens before its commit.
            assert await read_live(redis, run.run_id) is not None
            assert await queued(redis) == []

        assert ended.status == RunStatus.COMPLETED
        stored = await reload(session_factory, run)
        assert (stored.status, stored.stopped_reason) == ("completed", "completed")
        assert stored.completed_at is not None
        assert await releases(session_factory, run) == 1
        assert await balance(session_factory, tenant) == CREDITS
        assert await read_live(redis, run.run_id) is None
        assert await queued(redis) == [notify_job_id(run.run_id)]

    async def test_a_rolled_back_end_leaves_the_status_the_holds_and_redis_as_they_were(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
        run_log: RunLog,
        run: AutomationRun,
    ) -> None:
        await notify_to(session_factory, tenant)

        async def end_then_fail() -> None:
            async with unit_of_work(session_factory) as session:
                await end(session, run_log, redis, run)
                raise Boom

        with pytest.raises(Boom):
            await end_then_fail()

        assert (await reload(session_factory, run)).status == "running"
        assert await releases(session_factory, run) == 0
        assert await balance(session_factory, tenant) == CREDITS - HOLD
        assert await read_live(redis, run.run_id) is not None
        assert await queued(redis) == []

    async def test_a_site_without_a_notification_url_gets_no_notification_job(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog, run: AutomationRun
    ) -> None:
        async with unit_of_work(session_factory) as session:
            await end(session, run_log, redis, run)

        assert (await reload(session_factory, run)).status == "completed"
        assert await read_live(redis, run.run_id) is None
        assert await queued(redis) == []

    async def test_a_run_ends_completed_or_failed_only(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog, run: AutomationRun
    ) -> None:
        async with unit_of_work(session_factory) as session:
            with pytest.raises(ValueError, match="completed or failed"):
                await end_run(
                    session,
                    run_log,
                    run.id,
                    RunStatus.CANCELLED,
                    fence=run.fence,
                    redis=redis,
                    queue=ArqQueue(redis),
                )

        assert (await reload(session_factory, run)).status == "running"


class TestTheFence:
    async def test_a_worker_whose_fence_moved_on_cannot_end_the_run(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
        run_log: RunLog,
        run: AutomationRun,
    ) -> None:
        await notify_to(session_factory, tenant)

        async with unit_of_work(session_factory) as session:
            with pytest.raises(RunTaken):
                await end(session, run_log, redis, run, fence=run.fence - 1)
        async with unit_of_work(session_factory) as session:
            lost = await end_unless_moved(session, run_log, redis, run, fence=run.fence + 1)

        assert lost is Lost.TAKEN
        assert (await reload(session_factory, run)).status == "running"
        assert await releases(session_factory, run) == 0
        assert await read_live(redis, run.run_id) is not None
        assert await queued(redis) == []


class TestALostRace:
    async def test_a_run_paused_first_is_answered_moved_and_left_paused_with_its_holds(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        run_log: RunLog,
        run: AutomationRun,
    ) -> None:
        async with unit_of_work(session_factory) as session:
            await service.pause_run(session, run_log, run)

        async with unit_of_work(session_factory) as session:
            lost = await end_unless_moved(session, run_log, redis, run)
        async with unit_of_work(session_factory) as session:
            with pytest.raises(InvalidTransition):
                await end(session, run_log, redis, run)

        assert lost is Lost.MOVED
        assert (await reload(session_factory, run)).status == "paused"
        assert await releases(session_factory, run) == 0
        assert await read_live(redis, run.run_id) is not None

    async def test_the_winner_of_the_race_ends_the_run_once(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog, run: AutomationRun
    ) -> None:
        async with unit_of_work(session_factory) as session:
            first = await end_unless_moved(session, run_log, redis, run)
        async with unit_of_work(session_factory) as session:
            second = await end_unless_moved(session, run_log, redis, run)

        assert isinstance(first, AutomationRun)
        assert (first.status, first.error_message) == ("failed", "the provider refused the key")
        assert second is Lost.MOVED
        assert await releases(session_factory, run) == 1


class TestACancelFromTheApi:
    async def test_the_api_keeps_the_transition_and_the_worker_settles_the_rest(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        tenant: Tenant,
        run_log: RunLog,
        run: AutomationRun,
    ) -> None:
        await notify_to(session_factory, tenant)
        async with unit_of_work(session_factory) as session:
            await service.cancel_run(session, run_log, run)
        assert await releases(session_factory, run) == 0

        async with unit_of_work(session_factory) as session:
            assert not await settle_cancelled(session, run.id, fence=run.fence + 1, redis=redis)
        assert await releases(session_factory, run) == 0
        assert await read_live(redis, run.run_id) is not None

        async with unit_of_work(session_factory) as session:
            assert await settle_cancelled(session, run.id, fence=run.fence, redis=redis)

        assert (await reload(session_factory, run)).status == "cancelled"
        assert await releases(session_factory, run) == 1
        assert await balance(session_factory, tenant) == CREDITS
        assert await read_live(redis, run.run_id) is None
        # A cancelled run is not notified.
        assert await queued(redis) == []
