"""The arq worker and its cron jobs, on the test Redis and Postgres."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, create_worker
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.ai import registry
from app.ai.base import Answer
from app.ai.local import LocalProvider
from app.ai.schemas import ClusteringOut, KeywordBrief
from app.config import Settings, get_settings
from app.models.tenancy import ApiKey
from app.tenancy.usage import USAGE_KEY, note_key_used
from app.workers.cron import CRON_JOBS, flush_api_key_usage
from app.workers.queue import ArqQueue
from app.workers.wakeups import wake_channel
from app.workers.worker import build_worker, close_worker, worker_options
from tests.engine import feed, start
from tests.factories import create_tenant

FLUSH_JOB = "cron:flush_api_key_usage"
SOME_TIME = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def arq_pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def api_key_id(session_factory: async_sessionmaker[AsyncSession], account_id: int) -> int:
    async with session_factory() as session:
        key_id = await session.scalar(select(ApiKey.id).where(ApiKey.account_id == account_id))
    assert key_id is not None
    return key_id


async def last_used_at(
    session_factory: async_sessionmaker[AsyncSession], key_id: int
) -> datetime | None:
    async with session_factory() as session:
        return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


async def noted_uses(redis: Redis) -> dict[str, str]:
    """The key uses noted in Redis and not yet flushed: key id -> time."""
    noted: dict[bytes, bytes] = await redis.hgetall(USAGE_KEY)  # type: ignore[misc]
    return {k.decode(): v.decode() for k, v in noted.items()}


def burst_worker(settings: Settings) -> Worker:
    return build_worker(settings, burst=True, poll_delay=0, handle_signals=False)


class TestFlushApiKeyUsage:
    async def test_noted_use_is_written_to_the_key_and_forgotten_in_redis(
        self, session_factory: async_sessionmaker[AsyncSession], redis: Redis
    ) -> None:
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)
        await note_key_used(redis, key_id, SOME_TIME)

        flushed = await flush_api_key_usage({"session_factory": session_factory, "redis": redis})

        assert flushed == 1
        assert await last_used_at(session_factory, key_id) == SOME_TIME
        assert await noted_uses(redis) == {}

    async def test_nothing_noted_writes_nothing(
        self, session_factory: async_sessionmaker[AsyncSession], redis: Redis
    ) -> None:
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)

        flushed = await flush_api_key_usage({"session_factory": session_factory, "redis": redis})

        assert flushed == 0
        assert await last_used_at(session_factory, key_id) is None

    async def test_use_noted_while_the_flush_runs_stays_for_the_next_one(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
    ) -> None:
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)
        await note_key_used(redis, key_id, SOME_TIME)
        later = SOME_TIME + timedelta(seconds=5)

        # Holding the key's row makes the flush wait after it has read Redis.
        async with engine.connect() as blocker:
            await blocker.execute(
                text("SELECT 1 FROM api_keys WHERE id = :id FOR UPDATE"), {"id": key_id}
            )
            flush = asyncio.create_task(
                flush_api_key_usage({"session_factory": session_factory, "redis": redis})
            )
            await wait_until_a_query_waits_for_a_lock(engine)
            await note_key_used(redis, key_id, later)
            await blocker.rollback()
        assert await flush == 1

        assert await last_used_at(session_factory, key_id) == SOME_TIME
        assert await noted_uses(redis) == {str(key_id): later.isoformat()}

        await flush_api_key_usage({"session_factory": session_factory, "redis": redis})
        assert await last_used_at(session_factory, key_id) == later
        assert await noted_uses(redis) == {}


async def wait_until_a_query_waits_for_a_lock(engine: AsyncEngine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(200):
        async with engine.connect() as conn:
            if await conn.scalar(query):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the flush never waited for the locked row")


class TestWorkerRunsTheFlush:
    async def test_worker_runs_the_flush_job_and_the_time_reaches_postgres(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
        arq_pool: ArqRedis,
    ) -> None:
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)
        await note_key_used(redis, key_id, SOME_TIME)
        await arq_pool.enqueue_job(FLUSH_JOB)

        worker = burst_worker(settings)
        try:
            assert await worker.run_check() >= 1  # a due cron tick may run too
        finally:
            await close_worker(worker)

        assert await last_used_at(session_factory, key_id) == SOME_TIME
        assert await noted_uses(redis) == {}

    async def test_the_api_marks_the_key_used_and_the_worker_records_it(
        self,
        settings: Settings,
        client: Any,
        session_factory: async_sessionmaker[AsyncSession],
        arq_pool: ArqRedis,
    ) -> None:
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)
        before = datetime.now(UTC)
        response = await client.get("/api/v1/me", headers=tenant.headers)
        assert response.status_code == 200
        await arq_pool.enqueue_job(FLUSH_JOB)

        worker = burst_worker(settings)
        try:
            await worker.run_check()
        finally:
            await close_worker(worker)

        used = await last_used_at(session_factory, key_id)
        assert used is not None
        assert before <= used <= datetime.now(UTC)


class TestSchedule:
    def test_flush_runs_every_minute_once_per_tick_and_not_at_startup(self) -> None:
        (job,) = [job for job in CRON_JOBS if job.name == FLUSH_JOB]
        assert (job.month, job.day, job.weekday, job.hour, job.minute, job.second) == (
            None,
            None,
            None,
            None,
            None,
            0,
        )
        assert job.unique
        assert not job.run_at_startup

    def test_the_reaper_looks_for_stalled_runs_twice_a_minute_once_per_tick(self) -> None:
        (job,) = [job for job in CRON_JOBS if job.name == "cron:resume_stalled_runs"]
        assert job.second == {15, 45}
        assert job.minute is None
        assert job.unique
        assert job.timeout_s is not None
        assert job.timeout_s < 60, "one tick ends before the next"

    def test_every_function_has_its_own_timeout(self, settings: Settings) -> None:
        worker = burst_worker(settings)
        assert worker.functions
        for function in worker.functions.values():
            assert function.timeout_s is not None, function.name

    def test_the_worker_polls_often_enough_to_start_a_job_within_100_ms(
        self, settings: Settings
    ) -> None:
        assert worker_options(settings)["poll_delay"] <= 0.05


async def listening_workers(redis: Redis) -> int:
    """How many workers are subscribed to this database's announcements of new jobs."""
    counts: list[tuple[bytes, int]] = await redis.pubsub_numsub(wake_channel(redis))
    return counts[0][1]


async def until_listened(redis: Redis) -> None:
    async with asyncio.timeout(10):
        while True:
            if await listening_workers(redis):
                return
            await asyncio.sleep(0.01)


async def cut_listeners(redis: Redis) -> None:
    """Close the connections that listen for this database's announcements, as a restart of
    Redis would (only this test database's: other sessions may share the server)."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    clients: list[dict[str, Any]] = await redis.client_list(_type="pubsub")
    cut = [await redis.client_kill_filter(_id=c["id"]) for c in clients if int(c["db"]) == db]
    assert cut


@asynccontextmanager
async def listening_worker(
    settings: Settings, redis: Redis, poll_delay: float = 30
) -> AsyncIterator[Worker]:
    """A worker running and listening for announcements; by default it polls twice a minute."""
    worker = build_worker(settings, poll_delay=poll_delay, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        await until_listened(redis)
        yield worker
    finally:
        await close_worker(worker)
        await asyncio.wait([running])


async def until_a_job_completed(worker: Worker) -> None:
    async with asyncio.timeout(10):
        while True:
            if worker.jobs_complete:
                return
            await asyncio.sleep(0.01)


class TestWakeups:
    async def test_an_idle_worker_takes_a_queued_slice_at_once_not_at_its_next_poll(
        self, settings: Settings, redis: Redis
    ) -> None:
        """A worker that polls twice a minute starts a run's slice as soon as it is queued (here
        a slice of no run, which ends at once)."""
        async with listening_worker(settings, redis) as worker:
            assert await ArqQueue(redis).enqueue_run("run_of_nobody", 0)
            await until_a_job_completed(worker)

    async def test_a_worker_whose_subscription_is_cut_hears_again_once_it_is_back(
        self, settings: Settings, redis: Redis
    ) -> None:
        """Redis drops the listening connection (a restart does so): the worker subscribes again
        and is woken as before."""
        async with listening_worker(settings, redis) as worker:
            await cut_listeners(redis)
            await until_listened(redis)

            assert await ArqQueue(redis).enqueue_run("run_of_nobody", 0)
            await until_a_job_completed(worker)

    async def test_a_slice_is_announced_once_however_often_it_is_queued(self, redis: Redis) -> None:
        queue = ArqQueue(redis)
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(wake_channel(redis))
            assert await queue.enqueue_run("run_x", 0)
            assert not await queue.enqueue_run("run_x", 0)
            assert await announcements(pubsub) == 1


class TestPolling:
    async def test_a_job_another_worker_runs_is_passed_over_without_arqs_checks(
        self, settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """arq keeps a job queued while a worker runs it, and checks its in-progress key under
        WATCH on every poll of every other worker (three round trips a job, 20 polls a second).
        A job running elsewhere is now found in one read of all such keys and passed over; once
        its key is gone (that worker died and the key expired), it is started here."""
        job = b"run:run_elsewhere:slice:0"
        tried: list[bytes] = []
        handed = asyncio.Event()
        arqs = Worker.start_jobs

        async def spied(worker: Worker, job_ids: list[bytes]) -> None:
            if job in job_ids:  # not a cron tick's
                tried.append(job)
                handed.set()
            await arqs(worker, job_ids)

        monkeypatch.setattr(Worker, "start_jobs", spied)
        polls = 0
        polled = asyncio.Event()
        poll = Worker._poll_iteration

        async def counted(worker: Worker) -> None:
            nonlocal polls
            await poll(worker)
            polls += 1
            if polls >= 10:
                polled.set()

        monkeypatch.setattr(Worker, "_poll_iteration", counted)
        queue = ArqQueue(redis)
        assert await queue.enqueue_run("run_elsewhere", 0)
        await redis.set(b"arq:in-progress:" + job, b"1")
        async with listening_worker(settings, redis, poll_delay=0.01):
            async with asyncio.timeout(10):
                await polled.wait()
            assert tried == [], "arq checked a job another worker runs"

            await redis.delete(b"arq:in-progress:" + job)
            async with asyncio.timeout(10):
                await handed.wait()
            assert tried == [job]


async def announcements(pubsub: PubSub) -> int:
    """The announcements heard until none came for a fifth of a second."""
    heard = 0
    while (message := await pubsub.get_message(timeout=0.2)) is not None:
        heard += message["type"] == "message"
    return heard


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str
) -> Iterator[None]:
    """DATABASE_URL and REDIS_URL in the environment, as a deployed worker has them."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delitem(sys.modules, "app.workers.settings", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class TestWorkerSettings:
    @pytest.mark.usefixtures("environment")
    async def test_arq_worker_settings_from_the_environment_run_the_flush(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
        arq_pool: ArqRedis,
    ) -> None:
        worker_settings = importlib.import_module("app.workers.settings").WorkerSettings
        tenant = await create_tenant(session_factory)
        key_id = await api_key_id(session_factory, tenant.account_id)
        await note_key_used(redis, key_id, SOME_TIME)
        await arq_pool.enqueue_job(FLUSH_JOB)

        worker = create_worker(worker_settings, burst=True, poll_delay=0, handle_signals=False)
        try:
            assert await worker.run_check() >= 1  # a due cron tick may run too
        finally:
            await close_worker(worker)

        assert await last_used_at(session_factory, key_id) == SOME_TIME


class StuckProvider(LocalProvider):
    """The local provider, whose clustering call never ends; it records being closed."""

    def __init__(self) -> None:
        super().__init__(latency_ms=0)
        self.reached = asyncio.Event()
        self.closed = False

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        self.reached.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


class TestStoppingWithAJobInFlight:
    async def test_the_worker_closes_all_it_opened_while_a_run_is_mid_item(
        self,
        client: Any,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A deploy stops the worker mid-item: the job is cancelled (arq queues it again), and
        the shutdown runs to its end (the provider closed, the health key gone)."""
        provider = StuckProvider()
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        tenant = await create_tenant(session_factory, credits=Decimal(1000))
        await feed(client, tenant, 3)
        await start(client, tenant)
        worker = build_worker(settings, poll_delay=0.01, handle_signals=False)
        running = asyncio.create_task(worker.async_run())
        async with asyncio.timeout(30):
            await provider.reached.wait()

        await close_worker(worker)
        await asyncio.wait([running])

        assert provider.closed
        assert not await redis.exists(worker.health_check_key)

    async def test_a_job_stopped_while_arq_records_its_end_does_not_cut_the_shutdown_short(
        self, settings: Settings, arq_pool: ArqRedis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """arq's close gathers the jobs it cancels; one caught while arq records its result
        ends cancelled, and that gather re-raised it before the worker's resources were
        closed."""
        worker = build_worker(settings, poll_delay=0.01, handle_signals=False)
        recording = asyncio.Event()
        held: list[asyncio.Task[Any]] = []

        async def finish_job_that_hangs(*_: Any, **__: Any) -> None:
            task = asyncio.current_task()
            assert task is not None
            held.append(task)
            recording.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(worker, "finish_job", finish_job_that_hangs)
        shut_down = asyncio.Event()
        real_shutdown = worker.on_shutdown
        assert real_shutdown is not None

        async def on_shutdown(ctx: dict[str, Any]) -> None:
            await real_shutdown(ctx)
            shut_down.set()

        monkeypatch.setattr(worker, "on_shutdown", on_shutdown)
        await arq_pool.enqueue_job(FLUSH_JOB)
        running = asyncio.create_task(worker.async_run())
        try:
            async with asyncio.timeout(30):
                await recording.wait()

            await close_worker(worker)

            assert shut_down.is_set()
        finally:
            for task in held:
                task.cancel()
            await asyncio.wait([running, *held])
