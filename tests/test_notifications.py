"""Run notifications: a signed POST to the site's receiver when a run completes, fails or stops
on its budget; retried on network errors, timeouts, 429 and 5xx; the outcome in the run's log.
The receiver is a real HTTP server on 127.0.0.1 that verifies each signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import wait_none

from app.ai import registry
from app.ai.local import LocalProvider
from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationConfig, AutomationRun, RunEvent, RunStatus
from app.models.tenancy import Site
from app.notifications import service as notify
from app.runs.config import get_or_create_config
from app.runs.events import RunLog
from app.stages.context import WorkerDeps
from app.workers import notifications
from app.workers.jobs import resume_stalled_runs
from app.workers.queue import ArqQueue
from tests.builders import create_automation_run
from tests.engine import configure, feed, load_run, start, start_fed, work
from tests.factories import Tenant, create_tenant
from tests.servers.notify_receiver import Receiver, serve_receiver
from tests.test_run_faults import RejectedKeyProvider

SessionFactory = async_sessionmaker[AsyncSession]
SECRET = "receiver-secret-0123456789"


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    """The receiver listens on 127.0.0.1 over plain http; PUBLIC_URL makes links absolute."""
    return settings.model_copy(
        update={
            "allow_private_urls": True,
            "allow_http_urls": True,
            "public_url": "https://ca.example.com",
        }
    )


@pytest.fixture
def run_log(settings: Settings) -> RunLog:
    return RunLog(settings.log_path)


async def notify_to(session_factory: SessionFactory, tenant: Tenant, url: str) -> None:
    async with unit_of_work(session_factory) as session:
        site = await session.get_one(Site, tenant.site_id)
        config = await get_or_create_config(session, site, for_update=True)
        config.notification_url = url
        config.notification_secret = SECRET


async def events(session_factory: SessionFactory, run_pk: int) -> list[RunEvent]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(RunEvent).where(RunEvent.run_pk == run_pk).order_by(RunEvent.id)
            )
        )


async def notification_events(session_factory: SessionFactory, run_pk: int) -> list[RunEvent]:
    return [
        event
        for event in await events(session_factory, run_pk)
        if event.kind.startswith("notification")
    ]


def reaper_context(
    session_factory: SessionFactory, redis: Redis, run_log: RunLog, settings: Settings
) -> dict[str, Any]:
    deps = WorkerDeps(
        session_factory=session_factory,
        redis=redis,
        provider=LocalProvider(),
        log=run_log,
        settings=settings,
        queue=ArqQueue(redis),
    )
    return {"deps": deps, "redis": redis}


async def finished_run(
    session_factory: SessionFactory, run_log: RunLog, receiver: Receiver
) -> tuple[Tenant, AutomationRun]:
    tenant = await create_tenant(session_factory)
    await notify_to(session_factory, tenant, receiver.url)
    run = await create_automation_run(session_factory, tenant, run_log, status=RunStatus.COMPLETED)
    return tenant, run


class TestRunEndsAreNotified:
    async def test_a_completed_run_notifies_once_with_a_signed_summary(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        redis: Redis,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 3)
        await configure(client, tenant)
        async with serve_receiver(SECRET) as receiver:
            await notify_to(session_factory, tenant, receiver.url)
            run_id = await start(client, tenant)
            await work(open_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed"
        (delivery,) = receiver.received
        assert delivery.verified
        assert delivery.delivery_id == f"run-notification:{run_id}"
        payload = delivery.payload
        assert payload["event"] == "run.completed"
        assert {
            key: payload[key]
            for key in (
                "run_id",
                "site_id",
                "site_name",
                "status",
                "stopped_reason",
                "error_message",
                "trigger_type",
                "link",
            )
        } == {
            "run_id": run_id,
            "site_id": tenant.site_id,
            "site_name": "Main site",
            "status": "completed",
            "stopped_reason": "completed",
            "error_message": None,
            "trigger_type": "manual",
            "link": f"https://ca.example.com/automation/runs/{run_id}",
        }
        assert payload["total_credits_used"] == float(run.total_credits_used) > 0
        assert datetime.fromisoformat(payload["started_at"]) == run.started_at
        assert datetime.fromisoformat(payload["completed_at"]) == run.completed_at
        stages = {stage["stage"]: stage for stage in payload["stages"]}
        assert sorted(stages) == [1, 2, 3, 4, 5, 6, 7]
        assert stages[1]["counts"]["keywords_processed"] == 3
        assert stages[1]["skipped"] is False
        (sent,) = await notification_events(session_factory, run.id)
        assert sent.kind == "notification_sent"
        assert sent.message == "Notification run.completed sent to 127.0.0.1 (HTTP 200, 1 attempt)"
        # Delivered again (arq delivers at least once), the job sends nothing more.
        await ArqQueue(redis).enqueue_notification(run_id)
        await work(open_settings)
        assert len(receiver.received) == 1
        assert len(await notification_events(session_factory, run.id)) == 1

    async def test_a_failed_run_notifies_run_failed_with_its_error(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: RejectedKeyProvider())
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 5)
        await configure(client, tenant)
        async with serve_receiver(SECRET) as receiver:
            await notify_to(session_factory, tenant, receiver.url)
            run_id = await start(client, tenant)
            await work(open_settings)

        (delivery,) = receiver.verified
        assert delivery.payload["event"] == "run.failed"
        assert delivery.payload["status"] == "failed"
        assert delivery.payload["stopped_reason"] == "failed"
        assert delivery.payload["error_message"] == "the provider rejected the API key (401)"
        run = await load_run(session_factory, run_id)
        assert [e.kind for e in await notification_events(session_factory, run.id)] == [
            "notification_sent"
        ]

    async def test_a_run_stopped_by_its_credit_budget_notifies_budget_reached(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 20)
        await configure(client, tenant, max_credits_per_run=1)
        async with serve_receiver(SECRET) as receiver:
            await notify_to(session_factory, tenant, receiver.url)
            run_id = await start(client, tenant)
            await work(open_settings)

        run = await load_run(session_factory, run_id)
        assert (run.status, run.stopped_reason) == ("completed", "credit_budget_reached")
        (delivery,) = receiver.verified
        assert delivery.payload["event"] == "run.budget_reached"
        assert delivery.payload["stopped_reason"] == "credit_budget_reached"

    async def test_a_site_without_a_url_queues_and_sends_nothing(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        redis: Redis,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await configure(client, tenant)
        run_id = await start_fed(client, tenant)

        await work(open_settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed"
        assert await redis.keys("*notify:*") == []
        assert await notification_events(session_factory, run.id) == []
        assert (
            await notify.notify_run(
                session_factory, RunLog(open_settings.log_path), open_settings, run_id
            )
            == "no_url"
        )

    async def test_a_cancelled_run_is_not_notified(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET) as receiver:
            tenant = await create_tenant(session_factory)
            await notify_to(session_factory, tenant, receiver.url)
            run = await create_automation_run(
                session_factory, tenant, run_log, status=RunStatus.CANCELLED
            )
            outcome = await notify.notify_run(session_factory, run_log, open_settings, run.run_id)
        assert outcome == "not_notified"
        assert receiver.received == []


class TestDelivery:
    async def test_a_receiver_failing_twice_gets_the_same_delivery_a_third_time(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET, [503, 429]) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            outcome = await notify.notify_run(
                session_factory, run_log, open_settings, run.run_id, backoff=wait_none()
            )

        assert outcome == "notification_sent"
        assert len(receiver.verified) == 3
        assert {d.delivery_id for d in receiver.received} == {f"run-notification:{run.run_id}"}
        assert len({d.body for d in receiver.received}) == 1
        (sent,) = await notification_events(session_factory, run.id)
        assert sent.kind == "notification_sent"
        assert "3 attempts" in sent.message

    async def test_a_receiver_always_failing_is_recorded_and_the_run_is_untouched(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET, [500, 502, 503, 504]) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            outcome = await notify.notify_run(
                session_factory, run_log, open_settings, run.run_id, backoff=wait_none()
            )

        assert outcome == "notification_failed"
        assert len(receiver.received) == open_settings.publish_max_attempts == 3
        (failed,) = await notification_events(session_factory, run.id)
        assert (failed.kind, failed.level) == ("notification_failed", "warning")
        assert failed.message == (
            "Notification run.completed to 127.0.0.1 failed after 3 attempts: HTTP 503"
        )
        after = await load_run(session_factory, run.run_id)
        assert (after.status, after.stopped_reason, after.error_message, after.completed_at) == (
            run.status,
            run.stopped_reason,
            run.error_message,
            run.completed_at,
        )

    async def test_a_client_error_is_final(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET, [401]) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            outcome = await notify.notify_run(
                session_factory, run_log, open_settings, run.run_id, backoff=wait_none()
            )

        assert outcome == "notification_failed"
        assert len(receiver.received) == 1
        (failed,) = await notification_events(session_factory, run.id)
        assert failed.message.endswith("failed after 1 attempt: HTTP 401")

    async def test_a_receiver_that_does_not_answer_times_out_and_is_retried(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        quick = open_settings.model_copy(
            update={"publish_timeout_seconds": 0.3, "publish_max_attempts": 2}
        )
        async with serve_receiver(SECRET, ["hang"]) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            outcome = await notify.notify_run(
                session_factory, run_log, quick, run.run_id, backoff=wait_none()
            )

        assert outcome == "notification_sent"
        assert len(receiver.verified) == 2
        (sent,) = await notification_events(session_factory, run.id)
        assert "2 attempts" in sent.message

    async def test_a_second_delivery_of_the_job_sends_nothing_more(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            first = await notify.notify_run(session_factory, run_log, open_settings, run.run_id)
            again = await notify.notify_run(session_factory, run_log, open_settings, run.run_id)

        assert (first, again) == ("notification_sent", "already_notified")
        assert len(receiver.received) == 1

    async def test_a_private_address_is_refused_at_delivery_when_not_allowed(
        self, session_factory: SessionFactory, settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            allow_http = settings.model_copy(update={"allow_http_urls": True})
            outcome = await notify.notify_run(session_factory, run_log, allow_http, run.run_id)

        assert outcome == "notification_failed"
        assert receiver.received == []
        (failed,) = await notification_events(session_factory, run.id)
        assert "does not resolve to a public address" in failed.message
        assert "1 attempt:" in failed.message

    async def test_the_secret_is_in_no_event_and_no_log_file(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET, [500]) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            await notify.notify_run(
                session_factory, run_log, open_settings, run.run_id, backoff=wait_none()
            )

        rows: list[dict[str, Any]] = [
            {"message": e.message, "data": e.data} for e in await events(session_factory, run.id)
        ]
        assert SECRET not in repr(rows)
        log_file = run_log.folder(run) / "automation_run.log"
        assert "Notification run.completed sent" in log_file.read_text()
        assert SECRET not in log_file.read_text()


class TestTheConfiguredSecretSigns:
    async def test_a_receiver_with_another_secret_cannot_verify(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver("not-the-secret-at-all") as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            await notify.notify_run(session_factory, run_log, open_settings, run.run_id)
        assert len(receiver.received) == 1
        assert receiver.verified == []

    async def test_a_url_cleared_after_the_run_ended_sends_nothing(
        self, session_factory: SessionFactory, open_settings: Settings, run_log: RunLog
    ) -> None:
        async with serve_receiver(SECRET) as receiver:
            tenant, run = await finished_run(session_factory, run_log, receiver)
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(AutomationConfig)
                    .where(AutomationConfig.site_id == tenant.site_id)
                    .values(notification_url=None, notification_secret=None)
                )
            outcome = await notify.notify_run(session_factory, run_log, open_settings, run.run_id)
        assert outcome == "no_url"
        assert receiver.received == []


class TestALostNotificationJob:
    async def test_the_reaper_queues_it_again_and_it_is_sent_once(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        run_log: RunLog,
        redis: Redis,
    ) -> None:
        """Redis lost the job between the run's last commit and the enqueue: a quarter of an
        hour later the reaper queues it again; later passes add nothing."""
        async with serve_receiver(SECRET) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(AutomationRun)
                    .where(AutomationRun.id == run.id)
                    .values(completed_at=datetime.now(UTC) - timedelta(minutes=20))
                )
            ctx = reaper_context(session_factory, redis, run_log, open_settings)
            for _ in range(2):
                await resume_stalled_runs(ctx)
                await work(open_settings)

        assert [d.payload["run_id"] for d in receiver.received] == [run.run_id]
        assert [e.kind for e in await notification_events(session_factory, run.id)] == [
            "notification_sent"
        ]


class UnreachableDatabase:
    """Stands in for the job's read of the run: the first `failures` reads fail as asyncpg does
    when PostgreSQL is unreachable (a plain OSError); later ones read for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
        self.failures = failures
        self.tried: list[str] = []
        self._real = notify._pending
        monkeypatch.setattr(notify, "_pending", self._read)

    async def _read(self, session: AsyncSession, run_id: str, settings: Settings) -> Any:
        self.tried.append(run_id)
        if len(self.tried) <= self.failures:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        return await self._real(session, run_id, settings)


class TestABackendFaultDuringTheJob:
    @pytest.fixture(autouse=True)
    def no_pause_between_tries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(notifications, "RETRY_STEP_SECONDS", 0)

    async def test_the_job_is_tried_again_and_sends_once(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        run_log: RunLog,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        database = UnreachableDatabase(monkeypatch, failures=2)
        async with serve_receiver(SECRET) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            await ArqQueue(redis).enqueue_notification(run.run_id)
            await work(open_settings)

        assert database.tried == [run.run_id] * 3
        assert [d.delivery_id for d in receiver.verified] == [f"run-notification:{run.run_id}"]
        assert [e.kind for e in await notification_events(session_factory, run.id)] == [
            "notification_sent"
        ]

    async def test_a_job_out_of_tries_is_queued_again_by_the_reaper(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        run_log: RunLog,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        database = UnreachableDatabase(monkeypatch, failures=1000)
        async with serve_receiver(SECRET) as receiver:
            _, run = await finished_run(session_factory, run_log, receiver)
            await ArqQueue(redis).enqueue_notification(run.run_id)
            await work(open_settings)
            assert len(database.tried) == 5, "arq's tries"
            assert receiver.received == []

            # The database is back; a quarter of an hour on, the reaper queues the job again.
            database.failures = 0
            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(AutomationRun)
                    .where(AutomationRun.id == run.id)
                    .values(completed_at=datetime.now(UTC) - timedelta(minutes=20))
                )
            ctx = reaper_context(session_factory, redis, run_log, open_settings)
            await resume_stalled_runs(ctx)
            await work(open_settings)

        assert len(receiver.verified) == 1
        assert [e.kind for e in await notification_events(session_factory, run.id)] == [
            "notification_sent"
        ]
