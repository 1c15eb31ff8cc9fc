"""The scheduler (SPEC §9): due configs start one scheduled run each, however many workers look at
once; the schedule moves on in the site's time zone; a busy site skips its turn, a poor one gets a
failed run that says why. `now` is passed explicitly: no test waits for a minute to pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from arq import cron
from arq.constants import default_queue_name
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationConfig, AutomationRun, RunEvent, RunStatus
from app.models.tenancy import Site
from app.runs import service
from app.runs import start_due as scheduler
from app.runs.config import get_or_create_config
from app.runs.events import RunLog
from app.workers.cron import CRON_JOBS, SCHEDULER_TIMEOUT_SECONDS, start_scheduled_runs
from app.workers.queue import ArqQueue, notify_job_id, run_job_id
from app.workers.worker import build_worker, close_worker
from tests.builders import create_automation_run
from tests.engine import FAST, feed, load_run, work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
NOW = datetime(2024, 6, 12, 9, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


async def schedule(
    session_factory: SessionFactory, tenant: Tenant, due: datetime | None, **fields: Any
) -> None:
    """Enable the site's schedule with `next_run_at` set to `due` (as if computed earlier)."""
    async with unit_of_work(session_factory) as session:
        site = await session.get_one(Site, tenant.site_id)
        config = await get_or_create_config(session, site, for_update=True)
        for name, value in {"enabled": True, **FAST, **fields}.items():
            setattr(config, name, value)
        config.next_run_at = due


async def load_config(session_factory: SessionFactory, tenant: Tenant) -> AutomationConfig:
    async with session_factory() as session:
        config = await session.scalar(
            select(AutomationConfig).where(AutomationConfig.site_id == tenant.site_id)
        )
    assert config is not None
    return config


async def runs_of(session_factory: SessionFactory, site_id: int) -> list[AutomationRun]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(AutomationRun)
                .where(AutomationRun.site_id == site_id)
                .order_by(AutomationRun.id)
            )
        )


async def start_due_runs(
    session_factory: SessionFactory, redis: Redis, run_log: RunLog, now: datetime
) -> scheduler.Tick:
    """The scheduler's pass, queueing on arq over `redis`."""
    return await scheduler.start_due_runs(session_factory, redis, ArqQueue(redis), run_log, now)


async def queued(redis: Redis) -> list[str]:
    return [job_id.decode() for job_id in await redis.zrange(default_queue_name, 0, -1)]


async def cancel(session_factory: SessionFactory, run_log: RunLog, run: AutomationRun) -> None:
    async with unit_of_work(session_factory) as session:
        await service.cancel_run(session, run_log, run)


class TestDueConfigsStartOneScheduledRun:
    async def test_a_due_config_starts_a_scheduled_run_and_moves_its_schedule_on(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        await schedule(session_factory, tenant, NOW - timedelta(minutes=1))

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        (run,) = await runs_of(session_factory, tenant.site_id)
        assert tick.started == [run.run_id]
        assert (run.status, run.trigger_type) == ("running", "scheduled")
        assert run.initial_snapshot is not None
        config = await load_config(session_factory, tenant)
        assert config.last_run_at == run.started_at
        assert config.next_run_at == datetime(2024, 6, 13, 2, 0, tzinfo=UTC)
        assert await queued(redis) == [run_job_id(run.run_id, 0)]

    async def test_the_same_tick_again_starts_nothing_more(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        await schedule(session_factory, tenant, NOW - timedelta(minutes=1))
        await start_due_runs(session_factory, redis, run_log, NOW)
        (run,) = await runs_of(session_factory, tenant.site_id)
        await cancel(session_factory, run_log, run)

        again = await start_due_runs(session_factory, redis, run_log, NOW + timedelta(minutes=1))

        assert again.started == []
        assert len(await runs_of(session_factory, tenant.site_id)) == 1

    async def test_a_config_not_yet_due_starts_nothing(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        due = NOW + timedelta(seconds=1)
        await schedule(session_factory, tenant, due)

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        assert tick.started == []
        assert await runs_of(session_factory, tenant.site_id) == []
        assert (await load_config(session_factory, tenant)).next_run_at == due
        assert await queued(redis) == []

    async def test_a_disabled_config_starts_nothing_even_with_a_past_next_run(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        await schedule(session_factory, tenant, NOW - timedelta(days=1), enabled=False)

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        assert tick.started == []
        assert await runs_of(session_factory, tenant.site_id) == []

    async def test_a_site_never_configured_starts_nothing(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        tick = await start_due_runs(session_factory, redis, run_log, NOW)
        assert tick.started == []
        assert await runs_of(session_factory, tenant.site_id) == []


class TestABusySiteSkipsItsTurn:
    async def test_a_paused_run_skips_the_due_time_and_a_cancel_then_starts_nothing(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        paused = await create_automation_run(
            session_factory, tenant, run_log, status=RunStatus.PAUSED
        )
        due = NOW - timedelta(hours=2)
        await schedule(session_factory, tenant, due)

        busy = await start_due_runs(session_factory, redis, run_log, NOW)

        assert busy.started == []
        assert busy.skipped == [tenant.site_id]
        config = await load_config(session_factory, tenant)
        assert config.next_run_at == datetime(2024, 6, 13, 2, 0, tzinfo=UTC)
        assert config.last_run_at is None
        async with session_factory() as session:
            skipped = await session.scalar(
                select(RunEvent).where(
                    RunEvent.run_pk == paused.id, RunEvent.kind == "scheduled_run_skipped"
                )
            )
        assert skipped is not None
        assert skipped.message == (
            "The scheduled run due at 2024-06-12T07:30+00:00 was skipped: this run was still paused"
        )

        # Cancelling the paused run stops work; it does not start the skipped run.
        await cancel(session_factory, run_log, paused)
        later = await start_due_runs(session_factory, redis, run_log, NOW + timedelta(minutes=5))
        assert later.started == []
        assert len(await runs_of(session_factory, tenant.site_id)) == 1

        # The next due time starts as usual.
        next_day = datetime(2024, 6, 13, 2, 0, tzinfo=UTC)
        free = await start_due_runs(session_factory, redis, run_log, next_day)
        assert len(free.started) == 1
        runs = await runs_of(session_factory, tenant.site_id)
        assert [(r.status, r.trigger_type) for r in runs] == [
            ("cancelled", "manual"),
            ("running", "scheduled"),
        ]
        config = await load_config(session_factory, tenant)
        assert config.last_run_at == runs[1].started_at
        assert config.next_run_at == datetime(2024, 6, 14, 2, 0, tzinfo=UTC)


class TestSeveralWorkersAtOnce:
    SITES = 20

    async def due_tenants(self, session_factory: SessionFactory) -> list[Tenant]:
        tenants = [await create_tenant(session_factory) for _ in range(self.SITES)]
        for tenant in tenants:
            await schedule(session_factory, tenant, NOW - timedelta(minutes=1))
        return tenants

    async def assert_one_run_each(
        self, session_factory: SessionFactory, tenants: list[Tenant]
    ) -> list[AutomationRun]:
        async with session_factory() as session:
            rows = await session.execute(
                select(AutomationRun.site_id, func.count()).group_by(AutomationRun.site_id)
            )
            per_site = {site_id: count for site_id, count in rows}
            runs = list(await session.scalars(select(AutomationRun)))
        assert per_site == {tenant.site_id: 1 for tenant in tenants}
        return runs

    async def test_concurrent_passes_start_each_due_run_exactly_once(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenants = await self.due_tenants(session_factory)

        ticks = await asyncio.gather(
            *(start_due_runs(session_factory, redis, run_log, NOW) for _ in range(4))
        )

        started = [run_id for tick in ticks for run_id in tick.started]
        assert len(started) == len(set(started)) == self.SITES
        assert not any(tick.errors for tick in ticks)
        runs = await self.assert_one_run_each(session_factory, tenants)
        assert sorted(await queued(redis)) == sorted(run_job_id(r.run_id, 0) for r in runs)

    async def test_a_pass_that_read_the_due_list_late_starts_nothing_once_another_started_it(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        # Pass B read the site as due; pass A then started its run, which has already ended.
        # B must see the schedule has moved on (the re-check under the row lock), not the free
        # site: without it the site would get a second run for the same due time.
        (tenant,) = [await create_tenant(session_factory)]
        await schedule(session_factory, tenant, NOW - timedelta(minutes=1))
        (run_id,) = (await start_due_runs(session_factory, redis, run_log, NOW)).started
        await cancel(session_factory, run_log, await load_run(session_factory, run_id))

        outcome, run = await scheduler._start_site(
            session_factory, redis, ArqQueue(redis), run_log, tenant.site_id, NOW
        )

        assert (outcome, run) == (scheduler.Outcome.TAKEN, None)
        assert len(await runs_of(session_factory, tenant.site_id)) == 1

    async def test_two_real_workers_running_the_cron_job_start_each_run_once(
        self, session_factory: SessionFactory, settings: Settings
    ) -> None:
        tenants = await self.due_tenants(session_factory)
        # Due now on the real clock, which the cron job reads.
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(AutomationConfig).values(
                    next_run_at=datetime.now(UTC) - timedelta(minutes=1)
                )
            )
        # Not unique, and at startup: each worker queues its own pass, so two passes run.
        # (A cron job keeps its next run time: each worker needs its own.)
        workers = [
            build_worker(
                settings,
                burst=True,
                poll_delay=0,
                handle_signals=False,
                cron_jobs=[
                    cron(
                        start_scheduled_runs,
                        second=0,
                        unique=False,
                        run_at_startup=True,
                        timeout=SCHEDULER_TIMEOUT_SECONDS,
                    )
                ],
            )
            for _ in range(2)
        ]
        try:
            await asyncio.gather(*(worker.async_run() for worker in workers))
        finally:
            for worker in workers:
                await close_worker(worker)

        assert sum(worker.jobs_complete for worker in workers) >= 2 + self.SITES
        runs = await self.assert_one_run_each(session_factory, tenants)
        # The workers went on to work the runs (the sites have nothing pending).
        assert {run.status for run in runs} == {"completed"}


class TestMissedRuns:
    async def test_a_run_missed_for_three_days_starts_once_and_the_schedule_jumps_ahead(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        await schedule(session_factory, tenant, datetime(2024, 6, 9, 2, 0, tzinfo=UTC))

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        assert len(tick.started) == 1
        config = await load_config(session_factory, tenant)
        assert config.next_run_at == datetime(2024, 6, 13, 2, 0, tzinfo=UTC)
        (run,) = await runs_of(session_factory, tenant.site_id)
        await cancel(session_factory, run_log, run)
        assert (await start_due_runs(session_factory, redis, run_log, NOW)).started == []


class TestTheScheduleMovesOnInTheSitesTimeZone:
    async def start_at(
        self,
        session_factory: SessionFactory,
        redis: Redis,
        run_log: RunLog,
        tenant: Tenant,
        now: datetime,
    ) -> datetime | None:
        """Start the due run at `now`, end it, and answer the next due time."""
        tick = await start_due_runs(session_factory, redis, run_log, now)
        assert len(tick.started) == 1, tick
        for run in await runs_of(session_factory, tenant.site_id):
            if run.status == "running":
                await cancel(session_factory, run_log, run)
        return (await load_config(session_factory, tenant)).next_run_at

    async def test_a_daily_0230_run_in_new_york_crosses_the_spring_forward_day(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="America/New_York")
        new_york = ZoneInfo("America/New_York")
        first = datetime(2024, 3, 9, 2, 30, tzinfo=new_york)  # EST, UTC-5
        await schedule(session_factory, tenant, first, scheduled_time=time(2, 30))

        # 02:30 does not exist on March 10: the run is due when the clocks jump, 03:00 EDT.
        gap_day = await self.start_at(session_factory, redis, run_log, tenant, first)
        assert gap_day == datetime(2024, 3, 10, 3, 0, tzinfo=new_york)
        assert gap_day == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)

        after = await self.start_at(session_factory, redis, run_log, tenant, gap_day)
        assert after == datetime(2024, 3, 11, 6, 30, tzinfo=UTC)  # 02:30 EDT, UTC-4
        assert after is not None
        assert after.astimezone(new_york).time() == time(2, 30)
        assert len(await runs_of(session_factory, tenant.site_id)) == 2

    async def test_weekly_defaults_to_monday(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        await schedule(session_factory, tenant, NOW - timedelta(hours=1), frequency="weekly")

        due = await self.start_at(session_factory, redis, run_log, tenant, NOW)

        assert due == datetime(2024, 6, 17, 2, 0, tzinfo=UTC)
        assert due.weekday() == 0

    async def test_monthly_defaults_to_the_first(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="Europe/Berlin")
        await schedule(session_factory, tenant, NOW - timedelta(hours=1), frequency="monthly")

        due = await self.start_at(session_factory, redis, run_log, tenant, NOW)

        assert due == datetime(2024, 7, 1, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))

    async def test_monthly_on_the_31st_runs_on_the_last_day_of_a_short_month(
        self, session_factory: SessionFactory, redis: Redis, run_log: RunLog
    ) -> None:
        tenant = await create_tenant(session_factory)
        now = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
        await schedule(
            session_factory, tenant, now - timedelta(hours=1), frequency="monthly", monthly_day=31
        )

        due = await self.start_at(session_factory, redis, run_log, tenant, now)

        assert due == datetime(2024, 2, 29, 2, 0, tzinfo=UTC)


class TestInsufficientCredits:
    async def test_a_due_run_the_balance_cannot_cover_is_recorded_failed_and_rescheduled(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
        run_log: RunLog,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(0))
        await feed(client, tenant, 10)
        await schedule(session_factory, tenant, NOW - timedelta(minutes=1))

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        assert tick.started == []
        (run,) = await runs_of(session_factory, tenant.site_id)
        assert tick.not_started == [run.run_id]
        assert (run.status, run.trigger_type, run.stopped_reason) == (
            "failed",
            "scheduled",
            "insufficient_credits",
        )
        assert run.error_message is not None
        assert run.error_message.startswith("scheduled run not started: insufficient credits")
        assert run.completed_at is not None
        config = await load_config(session_factory, tenant)
        assert (config.last_run_at, config.next_run_at) == (
            run.started_at,
            datetime(2024, 6, 13, 2, 0, tzinfo=UTC),
        )
        # No work is queued, and no notification either: the site has no URL.
        assert await queued(redis) == []
        async with session_factory() as session:
            kinds = list(
                await session.scalars(
                    select(RunEvent.kind).where(RunEvent.run_pk == run.id).order_by(RunEvent.id)
                )
            )
        assert kinds == ["run_started", "run_failed"]
        # The site is free: after a top-up, `run_now` works at once.
        async with session_factory() as session:
            assert await service.active_run(session, tenant.site_id) is None

    async def test_a_site_with_a_notification_url_has_the_run_that_did_not_start_notified(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
        run_log: RunLog,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(0))
        await feed(client, tenant, 10)
        await schedule(
            session_factory,
            tenant,
            NOW - timedelta(minutes=1),
            notification_url="https://hooks.example.com/runs",
            notification_secret="a-signing-secret-of-the-site",
        )

        tick = await start_due_runs(session_factory, redis, run_log, NOW)

        (run_id,) = tick.not_started
        assert await queued(redis) == [notify_job_id(run_id)]


class TestTheSiteTimeZone:
    async def test_changing_the_time_zone_reschedules_to_the_same_local_time(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        enabled = await client.put(
            f"/api/v1/automation/update_config/?site_id={tenant.site_id}",
            json={"enabled": True, "scheduled_time": "02:00"},
            headers=tenant.headers,
        )
        assert enabled.status_code == 200, enabled.text

        renamed = await client.patch(
            f"/api/v1/sites/{tenant.site_id}/", json={"name": "Renamed"}, headers=tenant.headers
        )
        assert renamed.status_code == 200, renamed.text
        kept = (await load_config(session_factory, tenant)).next_run_at
        assert kept is not None
        assert kept.astimezone(UTC).time() == time(2, 0)

        moved = await client.patch(
            f"/api/v1/sites/{tenant.site_id}/",
            json={"timezone": "Asia/Tokyo"},
            headers=tenant.headers,
        )
        assert moved.status_code == 200, moved.text
        due = (await load_config(session_factory, tenant)).next_run_at
        assert due is not None
        assert due.astimezone(ZoneInfo("Asia/Tokyo")).time() == time(2, 0)
        assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=1)

    async def test_a_bad_time_zone_changes_nothing(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await client.put(
            f"/api/v1/automation/update_config/?site_id={tenant.site_id}",
            json={"enabled": True},
            headers=tenant.headers,
        )
        before = (await load_config(session_factory, tenant)).next_run_at

        response = await client.patch(
            f"/api/v1/sites/{tenant.site_id}/",
            json={"timezone": "Mars/Olympus"},
            headers=tenant.headers,
        )

        assert response.status_code == 400
        assert (await load_config(session_factory, tenant)).next_run_at == before


class TestTheScheduledRunIsWorked:
    async def test_a_scheduled_run_is_worked_to_completion_by_a_real_worker(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        redis: Redis,
        run_log: RunLog,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 3)
        await schedule(session_factory, tenant, NOW - timedelta(minutes=1))
        (run_id,) = (await start_due_runs(session_factory, redis, run_log, NOW)).started

        await work(settings)

        run = await load_run(session_factory, run_id)
        assert (run.status, run.stopped_reason, run.trigger_type) == (
            "completed",
            "completed",
            "scheduled",
        )
        assert run.stage_1_result is not None
        assert run.stage_1_result["keywords_processed"] == 3
        assert run.total_credits_used > 0


class TestTheCronEntry:
    def test_the_scheduler_looks_every_minute_once_per_tick(self) -> None:
        (job,) = [job for job in CRON_JOBS if job.name == "cron:start_scheduled_runs"]
        assert job.second == 0
        assert job.minute is None
        assert job.unique
        assert not job.run_at_startup
        assert job.timeout_s is not None
        assert job.timeout_s < 60, "one tick ends before the next"
