"""Backend outages met by the worker and the runner, in process: the worker outlives Redis going
away, a run's state changes are answered once committed, and the runner learns of them from the
run row when their signal is lost. (`tests/blackbox/` puts the real processes through the same.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ai import registry
from app.config import Settings
from app.errors import is_backend_down
from app.models.automation import AutomationRun
from app.runs.reaper import UNTAKEN_GRACE
from app.runs.signals import read_signal, send_signal
from app.stages.control import Control, StopReason
from app.stages.handle import RunHandle
from app.workers.jobs import resume_stalled_runs
from app.workers.queue import run_job_id
from app.workers.worker import build_worker, close_worker
from tests.engine import configure, feed, load_run, start, work
from tests.factories import Tenant, create_tenant
from tests.servers.tcp_proxy import CuttableProxy, cuttable_proxy
from tests.test_faults import api_client
from tests.test_run_faults import GatedProvider, reaper_context, until

SessionFactory = async_sessionmaker[AsyncSession]
AppOn = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_on(settings: Settings) -> AppOn:
    """An API of its own on another Redis (one the test can cut off)."""

    def on(redis_url: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return api_client(settings.model_copy(update={"redis_url": redis_url}))

    return on


def _dbapi_error(cause: BaseException, *, invalidated: bool = False) -> Exception:
    """A DBAPIError as SQLAlchemy's asyncpg dialect raises it: the driver's error as the cause
    of the adapter's."""
    adapted = Exception(str(cause))
    adapted.__cause__ = cause
    return sqlalchemy.exc.DBAPIError("SELECT 1", {}, adapted, connection_invalidated=invalidated)


class TestWhatCountsAsAnOutage:
    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "refused"),
            FileNotFoundError(2, "no socket"),
            _dbapi_error(asyncpg.exceptions.CannotConnectNowError("shutting down")),
            _dbapi_error(asyncpg.exceptions.AdminShutdownError("terminating connection")),
            _dbapi_error(asyncpg.exceptions.TooManyConnectionsError("too many clients")),
            _dbapi_error(Exception("connection was closed"), invalidated=True),
            sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        ],
        ids=repr,
    )
    def test_a_server_away_or_restarting_is_an_outage(self, error: Exception) -> None:
        assert is_backend_down(error)

    @pytest.mark.parametrize(
        "error",
        [
            _dbapi_error(asyncpg.exceptions.QueryCanceledError("statement timeout")),
            _dbapi_error(asyncpg.exceptions.UniqueViolationError("duplicate key")),
            ValueError("a bug"),
        ],
        ids=repr,
    )
    def test_a_statement_the_server_refused_is_not(self, error: Exception) -> None:
        assert not is_backend_down(error)


class TestSignals:
    async def test_a_signal_stops_the_slice_it_was_sent_to_and_later_ones_not_earlier(
        self, redis: Redis
    ) -> None:
        await send_signal(redis, "run_x", "pause", 3)

        assert await read_signal(redis, "run_x", 2) == "pause"
        assert await read_signal(redis, "run_x", 3) == "pause"
        assert await read_signal(redis, "run_x", 4) is None, "a resume moved the run on"


class TestTheRunnerWithoutRedis:
    async def test_a_paused_run_is_seen_paused_from_its_row_while_redis_is_unreachable(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis_url: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await feed(client, tenant, 2)
        run = await load_run(session_factory, await start(client, tenant))
        handle = RunHandle(run.id, run.run_id, run.account_id, run.site_id, run.fence)
        async with cuttable_proxy(redis_url) as proxy:
            unreachable = Redis.from_url(proxy.url(), socket_connect_timeout=0.5)
            proxy.cut()
            try:
                control = Control(
                    unreachable, session_factory, handle, run.slice, time.monotonic() + 60
                )
                assert await control.check() is None
                paused = await client.post(
                    f"/api/v1/automation/pause/?run_id={run.run_id}", headers=tenant.headers
                )
                assert paused.status_code == 200
                assert await control.check() == StopReason.PAUSE
            finally:
                await unreachable.aclose()


class TestTheRunRowSeenByASlice:
    """What the run's row says to the slice that holds the run under fence 5 (read while Redis
    is down, and by every credit hold)."""

    @pytest.mark.parametrize(
        ("status", "fence", "stop"),
        [
            ("running", 5, None),
            ("paused", 5, StopReason.PAUSE),
            ("cancelled", 5, StopReason.CANCEL),
            ("running", 6, StopReason.LEASE_LOST),
            ("paused", 6, StopReason.LEASE_LOST),
            ("failed", 5, StopReason.LEASE_LOST),
        ],
    )
    def test_the_slice_stops_for_a_stop_another_holder_or_an_end(
        self,
        redis: Redis,
        session_factory: SessionFactory,
        status: str,
        fence: int,
        stop: StopReason | None,
    ) -> None:
        handle = RunHandle(1, "run_x", 1, 1, fence=5)
        control = Control(redis, session_factory, handle, 0, time.monotonic() + 60)
        assert control.note_row(status, fence) == stop
        assert control.stop == stop


class TestALostSignal:
    async def test_a_pause_whose_signal_redis_lost_stops_the_run_at_the_next_batch(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        provider = GatedProvider(gate_at=2)
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 8)
        await configure(client, tenant, stage_4_batch_size=1, ai_concurrency=1)
        run_id = await start(client, tenant)

        worker = asyncio.create_task(work(settings))
        await provider.reached.wait()

        async def batches_loaded() -> int:
            run = await load_run(session_factory, run_id)
            return int((run.stage_4_result or {}).get("batches_run", 0))

        # The third item's batch loads while the second's call is out, before the pause.
        await until(batches_loaded, at_least=3)
        paused = await client.post(
            f"/api/v1/automation/pause/?run_id={run_id}", headers=tenant.headers
        )
        assert paused.status_code == 200, paused.text
        signal = f"run:{run_id}:signal"
        await until(lambda: redis.exists(signal), at_least=1)  # sent once the pause committed
        await redis.delete(signal)  # lost, as in a Redis restart
        provider.release.set()
        await worker

        run = await load_run(session_factory, run_id)
        assert (run.status, run.current_stage) == ("paused", 4)
        assert run.stage_4_result is not None
        # The third item goes out if it was admitted before the signal was sent (then the
        # fourth batch's load reads the pause from the run's row), not if after; either way no
        # later item goes out, and the batch whose item did not is not counted.
        created = run.stage_4_result["content_created"]
        assert created in (2, 3), "stopped at the next batch loaded"
        assert run.stage_4_result["batches_run"] == created
        assert provider.calls["content"] == created


class TestStateChangesWhileRedisIsDown:
    async def test_pause_and_resume_are_answered_once_committed_and_the_slice_queued_later(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        redis: Redis,
        redis_url: str,
        app_on: AppOn,
    ) -> None:
        tenant = await create_tenant(session_factory)
        async with cuttable_proxy(redis_url) as proxy, app_on(proxy.url()) as client:
            await feed(client, tenant, 2)
            run_id = await start(client, tenant)
            proxy.cut()

            for action, status in (("pause", "paused"), ("resume", "running")):
                answered = await client.post(
                    f"/api/v1/automation/{action}/?run_id={run_id}", headers=tenant.headers
                )
                assert answered.status_code == 200, answered.text
                assert answered.json()["status"] == status
                assert (await load_run(session_factory, run_id)).status == status
            proxy.restore()

        resumed = await load_run(session_factory, run_id)
        job = Job(run_job_id(run_id, resumed.slice), redis)
        assert await job.status() == JobStatus.not_found, "Redis was down when it was queued"
        ctx = await reaper_context(session_factory, redis, settings)
        async with session_factory() as session, session.begin():
            # As if the resume happened a while ago.
            assert resumed.resumed_at is not None
            earlier = resumed.resumed_at - UNTAKEN_GRACE * 2
            await session.execute(
                update(AutomationRun)
                .where(AutomationRun.id == resumed.id)
                .values(started_at=earlier, resumed_at=earlier)
            )
        await resume_stalled_runs(ctx)
        assert await job.status() == JobStatus.queued

    async def test_a_cancel_while_redis_is_down_ends_the_run(
        self, session_factory: SessionFactory, redis_url: str, app_on: AppOn
    ) -> None:
        tenant = await create_tenant(session_factory)
        async with cuttable_proxy(redis_url) as proxy, app_on(proxy.url()) as client:
            await feed(client, tenant, 2)
            run_id = await start(client, tenant)
            proxy.cut()
            cancelled = await client.post(
                f"/api/v1/automation/cancel/?run_id={run_id}", headers=tenant.headers
            )
        assert cancelled.status_code == 200, cancelled.text
        assert (await load_run(session_factory, run_id)).status == "cancelled"


class TestTheWorkerThroughARedisOutage:
    async def test_the_worker_waits_for_redis_then_runs_what_is_queued(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        redis_url: str,
    ) -> None:
        tenant: Tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 3)
        await configure(client, tenant)
        async with cuttable_proxy(redis_url) as proxy:
            through = settings.model_copy(update={"redis_url": proxy.url()})
            worker = build_worker(through, poll_delay=0.01, handle_signals=False)
            running = asyncio.create_task(worker.async_run())
            try:
                await until(lambda: passed(proxy), at_least=1)
                for _ in range(3):
                    proxy.cut()
                    await until(lambda: refused(proxy), at_least=proxy.refused + 2)
                    assert not running.done(), "the worker outlives the outage"
                    proxy.restore()
                    await until(lambda: passed(proxy), at_least=proxy.passed + 1)

                run_id = await start(client, tenant)
                await until(lambda: is_over(session_factory, run_id), at_least=1)
                assert (await load_run(session_factory, run_id)).status == "completed"
            finally:
                await close_worker(worker)
                await asyncio.wait([running])


async def refused(proxy: CuttableProxy) -> int:
    return proxy.refused


async def passed(proxy: CuttableProxy) -> int:
    return proxy.passed


async def is_over(session_factory: SessionFactory, run_id: str) -> int:
    return int((await load_run(session_factory, run_id)).status not in ("running", "paused"))
