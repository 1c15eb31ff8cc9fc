"""The engine under interruption: a pause mid-stage, a worker killed with SIGKILL, two runs of
one account charging at once. Nothing is done twice, no credit is lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.constants import default_queue_name
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import config
from app.ai import registry
from app.ai.base import AIFatalError, Answer
from app.ai.gate import ProviderGate
from app.ai.local import LocalProvider
from app.ai.schemas import ArticleOut, ClusteringOut, ContentBrief, KeywordBrief
from app.config import Settings
from app.models.automation import RunEvent
from app.models.billing import CreditTransaction
from app.models.tenancy import Account
from app.models.writer import Content, Task
from app.runs.events import RunLog
from app.runs.lease import lease_key
from app.runs.reaper import MAX_RECLAIMS_WITHOUT_PROGRESS
from app.stages.context import WorkerDeps
from app.workers.jobs import resume_stalled_runs
from app.workers.queue import ArqQueue, run_job_id
from tests.builders import create_site
from tests.console import AUTOMATION, environment_without_settings
from tests.engine import charged, configure, feed, load_run, start, work, work_until_over
from tests.factories import Tenant, create_tenant


class GatedProvider(LocalProvider):
    """The local provider, counting calls; the `gate_at`-th article waits for `release`."""

    def __init__(self, gate_at: int) -> None:
        super().__init__(latency_ms=0)
        self.calls: Counter[str] = Counter()
        self.gate_at = gate_at
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        self.calls["content"] += 1
        if self.calls["content"] == self.gate_at:
            self.reached.set()
            await self.release.wait()
        return await super().generate_content(brief)


async def ledger_rows(
    session_factory: async_sessionmaker[AsyncSession], run_pk: int
) -> list[CreditTransaction]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(CreditTransaction).where(CreditTransaction.run_pk == run_pk)
            )
        )


def assert_each_item_charged_once(rows: list[CreditTransaction]) -> None:
    """One hold, at most one settle and one release per item key; nothing still held."""
    by_item: Counter[tuple[str, str]] = Counter(
        (row.idempotency_key.rsplit(":", 1)[0], row.kind) for row in rows
    )
    assert all(count == 1 for count in by_item.values()), by_item.most_common(3)
    holds = sum(r.amount for r in rows if r.kind in ("reserve", "release"))
    assert holds == 0, "every hold was released"


class TestPauseMidStage:
    async def test_pause_takes_effect_after_the_item_in_flight_and_resume_redoes_nothing(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        provider = GatedProvider(gate_at=3)
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 12)
        await configure(
            client, tenant, stage_4_batch_size=2, stage_6_batch_size=8, ai_concurrency=2
        )
        run_id = await start(client, tenant)

        worker = asyncio.create_task(work(settings))
        await provider.reached.wait()
        paused = await client.post(
            f"/api/v1/automation/pause/?run_id={run_id}", headers=tenant.headers
        )
        assert paused.status_code == 200, paused.text
        provider.release.set()
        await worker

        run = await load_run(session_factory, run_id)
        assert run.status == "paused"
        assert run.current_stage == 4
        assert run.stage_4_result is not None
        assert run.stage_4_result["partial"] is True
        written_before = run.stage_4_result["content_created"]
        assert 3 <= written_before < (await count(session_factory, Task, tenant))

        resumed = await client.post(
            f"/api/v1/automation/resume/?run_id={run_id}", headers=tenant.headers
        )
        assert resumed.status_code == 200, resumed.text
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        tasks = await count(session_factory, Task, tenant)
        assert provider.calls["content"] == tasks, "no article was written twice"
        assert await count(session_factory, Content, tenant) == tasks
        assert run.stage_4_result is not None
        assert run.stage_4_result["content_created"] == tasks
        assert run.stage_4_result["partial"] is False
        rows = await ledger_rows(session_factory, run.id)
        assert_each_item_charged_once(rows)
        assert await charged(session_factory, run.id) == run.total_credits_used


class CountingProvider(LocalProvider):
    """The local provider, counting its clustering calls; with `hang_first_article`, the first
    article it is asked for never comes."""

    def __init__(self, *, hang_first_article: bool = False) -> None:
        super().__init__(latency_ms=0)
        self.clusterings = 0
        self.articles = 0
        self.hang_first_article = hang_first_article

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        self.clusterings += 1
        return await super().cluster_keywords(keywords)

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        self.articles += 1
        if self.hang_first_article and self.articles == 1:
            await asyncio.Event().wait()
        return await super().generate_content(brief)


async def balance(session_factory: async_sessionmaker[AsyncSession], tenant: Tenant) -> Decimal:
    async with session_factory() as session:
        credits = await session.scalar(
            select(Account.credits).where(Account.id == tenant.account_id)
        )
    assert credits is not None
    return credits


class TestAStopWhileWaitingForTheProvider:
    @pytest.fixture
    def provider(self, monkeypatch: pytest.MonkeyPatch) -> CountingProvider:
        provider = CountingProvider()
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        return provider

    @pytest.fixture
    async def tenant(self, session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
        return await create_tenant(session_factory, credits=Decimal(100000))

    async def stopped_in_line(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        redis: Redis,
        tenant: Tenant,
        stop: str,
    ) -> tuple[Settings, str]:
        """Every permit is taken (by other sites' calls): the run is paused or cancelled while
        its first item, its credits held, waits in line; the permit comes after the stop."""
        await feed(client, tenant, 6)
        await configure(client, tenant)
        run_id = await start(client, tenant)
        capped = settings.model_copy(update={"ai_max_concurrency": 1})
        elsewhere = ProviderGate(redis, "local", 1)

        async with elsewhere.slot(site_id=0):
            worker = asyncio.create_task(work(capped))
            await until(lambda: redis.zcard("aigate:{local}:line"), at_least=1)
            stopped = await client.post(
                f"/api/v1/automation/{stop}/?run_id={run_id}", headers=tenant.headers
            )
            assert stopped.status_code == 200, stopped.text
        await worker
        return capped, run_id

    async def test_a_paused_item_is_not_called_and_its_hold_serves_it_once_resumed(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
        provider: CountingProvider,
        tenant: Tenant,
    ) -> None:
        """When the permit comes, the paused item calls nothing; its hold stays with the paused
        run and, resumed, the item reuses it: one hold, one call, one charge."""
        capped, run_id = await self.stopped_in_line(client, settings, redis, tenant, "pause")

        run = await load_run(session_factory, run_id)
        assert (run.status, run.current_stage) == ("paused", 1)
        assert provider.clusterings == 0
        (held,) = await ledger_rows(session_factory, run.id)
        assert (held.kind, held.amount < 0) == ("reserve", True)
        assert await balance(session_factory, tenant) == Decimal(100000) + held.amount

        resumed = await client.post(
            f"/api/v1/automation/resume/?run_id={run_id}", headers=tenant.headers
        )
        assert resumed.status_code == 200, resumed.text
        run = await work_until_over(capped, session_factory, run_id)
        assert run.status == "completed", run.error_message
        assert provider.clusterings == 1
        assert_each_item_charged_once(await ledger_rows(session_factory, run.id))
        assert await balance(session_factory, tenant) == Decimal(100000) - run.total_credits_used

    async def test_a_cancelled_item_is_not_called_and_its_hold_is_given_back(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
        provider: CountingProvider,
        tenant: Tenant,
    ) -> None:
        _, run_id = await self.stopped_in_line(client, settings, redis, tenant, "cancel")

        run = await load_run(session_factory, run_id)
        assert run.status == "cancelled"
        assert provider.clusterings == 0
        rows = await ledger_rows(session_factory, run.id)
        assert sorted(row.kind for row in rows) == ["release", "reserve"]
        assert_each_item_charged_once(rows)
        assert await balance(session_factory, tenant) == Decimal(100000)


class TestAnItemPastItsDeadline:
    async def test_a_call_that_never_ends_fails_its_item_and_the_run_goes_on(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        provider = CountingProvider(hang_first_article=True)
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        monkeypatch.setattr(config, "AI_SDK_LONGEST_PAUSE_SECONDS", 0)
        # Long enough for every other call on a loaded machine (at 0.2 s a clustering call
        # stalled past it now and then), short enough to wait out the one that never ends.
        quick = settings.model_copy(update={"ai_timeout_seconds": 1, "ai_max_retries": 0})
        assert quick.ai_item_deadline_seconds == pytest.approx(2)
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 4)
        await configure(client, tenant)
        run_id = await start(client, tenant)

        run = await work_until_over(quick, session_factory, run_id)

        assert run.status == "completed", run.error_message
        assert run.stage_4_result is not None
        assert run.stage_4_result["errors"] == 1
        tasks = await count(session_factory, Task, tenant)
        assert run.stage_4_result["content_created"] == tasks - 1
        async with session_factory() as session:
            failed = list(await session.scalars(select(Task).where(Task.status == "failed")))
        assert [task.error for task in failed] == ["the AI call did not finish within 2 s"]
        assert_each_item_charged_once(await ledger_rows(session_factory, run.id))


async def count(
    session_factory: async_sessionmaker[AsyncSession], model: Any, tenant: Tenant
) -> int:
    async with session_factory() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).where(model.site_id == tenant.site_id)
        )
    return int(total or 0)


class TestWorkerKilled:
    async def test_a_run_whose_worker_is_killed_resumes_elsewhere_and_charges_nothing_twice(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
        tmp_path: Path,
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 40)
        await configure(client, tenant, stage_4_batch_size=2, stage_6_batch_size=4)
        run_id = await start(client, tenant)
        quick = settings.model_copy(update={"run_lease_seconds": 1.5})
        env = environment_without_settings(
            DATABASE_URL=str(settings.database_url),
            REDIS_URL=str(settings.redis_url),
            DATA_DIR=str(settings.data_dir),
            LOCAL_AI_LATENCY_MS="40",
            RUN_LEASE_SECONDS=str(quick.run_lease_seconds),
            LOG_JSON="false",
        )
        process = await asyncio.create_subprocess_exec(
            AUTOMATION,
            "worker",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await until(lambda: stage_4_done(session_factory, run_id), at_least=3)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()

        killed = await load_run(session_factory, run_id)
        assert killed.status == "running"
        assert killed.current_stage == 4
        # The dead worker's lease lapses; the reaper then queues the run for any worker.
        await until(lambda: lease_gone(redis, tenant.site_id), at_least=1)
        await asyncio.sleep(quick.run_lease_seconds)  # the heartbeat must also be stale
        ctx = await reaper_context(session_factory, redis, quick)
        assert await resume_stalled_runs(ctx) == 1
        # The worker taking over has the usual lease: a short one lapses whenever a loaded
        # machine stalls the event loop that long, and the run then waits for a reaper pass
        # (30 s apart), which failed this suite now and then.
        run = await work_until_over(settings, session_factory, run_id)

        assert run.status == "completed", run.error_message
        assert run.fence >= 2, "a second worker took the run over"
        tasks = await count(session_factory, Task, tenant)
        assert await count(session_factory, Content, tenant) == tasks
        rows = await ledger_rows(session_factory, run.id)
        assert_each_item_charged_once(rows)
        assert await charged(session_factory, run.id) == run.total_credits_used
        assert await balance(session_factory, tenant) == Decimal(100000) - run.total_credits_used


class TestRunWaitingForAWorker:
    async def test_a_run_whose_slice_is_still_queued_is_left_to_wait_not_reclaimed(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
    ) -> None:
        # Every worker busy: the run's first slice sits in the queue past the lease period.
        quick = settings.model_copy(update={"run_lease_seconds": 0.2})
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 4)
        await configure(client, tenant)
        run_id = await start(client, tenant)
        await asyncio.sleep(quick.run_lease_seconds)  # older than the lease, never picked up
        ctx = await reaper_context(session_factory, redis, quick)

        assert await resume_stalled_runs(ctx) == 0
        run = await load_run(session_factory, run_id)
        assert (run.status, run.slice) == ("running", 0)
        assert "run_reclaimed" not in await event_kinds(session_factory, run.id)

        # The queued job is lost (Redis restarted without it): now the reaper queues it again.
        await redis.zrem(default_queue_name, run_job_id(run_id, 0))
        assert await resume_stalled_runs(ctx) == 1
        # The worker has the usual lease (see TestWorkerKilled).
        run = await work_until_over(settings, session_factory, run_id)
        assert run.status == "completed", run.error_message


async def event_kinds(session_factory: async_sessionmaker[AsyncSession], run_pk: int) -> list[str]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(RunEvent.kind).where(RunEvent.run_pk == run_pk).order_by(RunEvent.id)
            )
        )


async def stage_4_done(session_factory: async_sessionmaker[AsyncSession], run_id: str) -> int:
    run = await load_run(session_factory, run_id)
    return int((run.stage_4_result or {}).get("content_created", 0))


async def lease_gone(redis: Redis, site_id: int) -> int:
    return int(not await redis.exists(lease_key(site_id)))


async def until(probe: Any, *, at_least: int, within: float = 60) -> None:
    """Poll `probe()` (another process does the work, so there is no event to wait on)."""
    async with asyncio.timeout(within):
        while True:
            if await probe() >= at_least:
                return
            await asyncio.sleep(0.05)


async def reaper_context(
    session_factory: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> dict[str, Any]:
    deps = WorkerDeps(
        session_factory=session_factory,
        redis=redis,
        provider=LocalProvider(),
        log=RunLog(settings.log_path),
        settings=settings,
        queue=ArqQueue(redis),
    )
    return {"deps": deps, "redis": redis}


class TestConcurrentCharges:
    async def test_two_runs_of_one_account_charge_at_once_and_the_balance_stays_exact(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        # Each run of 25 keywords is estimated at 485 credits (582 with the buffer): each may
        # start, both together cannot finish.
        tenant = await create_tenant(session_factory, credits=Decimal(600))
        other = await create_site(session_factory, tenant, name="Second site")
        second = Tenant(**{**tenant.__dict__, "site_id": other.id})
        for site in (tenant, second):
            await feed(client, site, 25)
            await configure(client, site, stage_4_batch_size=4, stage_6_batch_size=4)
        runs = [await start(client, tenant), await start(client, second)]

        await work(settings)

        finished = [await load_run(session_factory, run_id) for run_id in runs]
        async with session_factory() as session:
            left = await session.scalar(
                select(Account.credits).where(Account.id == tenant.account_id)
            )
            lowest = await session.scalar(
                select(func.min(CreditTransaction.balance_after)).where(
                    CreditTransaction.account_id == tenant.account_id
                )
            )
        spent = sum((run.total_credits_used for run in finished), Decimal(0))
        assert left == Decimal(600) - spent
        assert lowest is not None
        assert lowest >= 0
        assert left is not None
        assert left >= 0
        assert any(run.stopped_reason == "insufficient_credits" for run in finished), [
            (run.status, run.stopped_reason, run.total_credits_used) for run in finished
        ]
        for run in finished:
            assert_each_item_charged_once(await ledger_rows(session_factory, run.id))
            assert await charged(session_factory, run.id) == run.total_credits_used


class RejectedKeyProvider(LocalProvider):
    """A provider whose key is refused: every article call fails for good."""

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        raise AIFatalError("the provider rejected the API key (401)")


class TestProviderFailsForGood:
    async def test_the_run_fails_once_with_the_reason_and_frees_the_site_and_its_holds(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: RejectedKeyProvider())
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 10)
        await configure(client, tenant, stage_4_batch_size=4, ai_concurrency=4)
        run_id = await start(client, tenant)

        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "failed"
        assert run.stopped_reason == "failed"
        assert run.error_message == "the provider rejected the API key (401)"
        assert run.current_stage == 4
        assert not await redis.exists(lease_key(tenant.site_id))
        rows = await ledger_rows(session_factory, run.id)
        assert_each_item_charged_once(rows)
        assert await charged(session_factory, run.id) == run.total_credits_used
        again = await client.post(
            f"/api/v1/automation/run_now/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert again.status_code == 200, again.text


class BrokenProvider(LocalProvider):
    """A bug, not a provider error: every article call raises, so every slice job dies."""

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        raise RuntimeError("boom")


async def reclaim_or_give_up(
    ctx: dict[str, Any], session_factory: async_sessionmaker[AsyncSession], run_id: str
) -> bool:
    """Run the reaper until it resumes the run (True) or the run ends (False)."""
    async with asyncio.timeout(10):
        while True:
            if await resume_stalled_runs(ctx):
                return True
            if (await load_run(session_factory, run_id)).status != "running":
                return False
            await asyncio.sleep(0.05)


async def reclaims_since_progress(
    session_factory: async_sessionmaker[AsyncSession], run_pk: int
) -> int:
    kinds = await event_kinds(session_factory, run_pk)
    progress = [
        i for i, kind in enumerate(kinds) if kind in ("item_done", "item_failed", "stage_completed")
    ]
    return kinds[progress[-1] + 1 :].count("run_reclaimed")


class TestSlicesThatKeepDying:
    async def test_the_run_fails_after_five_reclaims_without_progress_and_says_why(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        redis: Redis,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: BrokenProvider())
        quick = settings.model_copy(update={"run_lease_seconds": 0.3})
        tenant = await create_tenant(session_factory, credits=Decimal(100000))
        await feed(client, tenant, 6)
        await configure(client, tenant)
        run_id = await start(client, tenant)
        ctx = await reaper_context(session_factory, redis, quick)

        # Each slice dies in stage 4; the reaper resumes it once the dead slice's heartbeat is
        # older than the lease, until it gives up. A slice that lost its lease under load
        # before reaching stage 4 makes progress, which restarts the count: the test follows
        # the run's events rather than counting loop turns.
        for _ in range(3 * MAX_RECLAIMS_WITHOUT_PROGRESS):
            await work(quick)
            if not await reclaim_or_give_up(ctx, session_factory, run_id):
                break

        run = await load_run(session_factory, run_id)
        assert await reclaims_since_progress(session_factory, run.id) == (
            MAX_RECLAIMS_WITHOUT_PROGRESS
        )
        assert (run.status, run.stopped_reason, run.current_stage) == ("failed", "failed", 4)
        assert run.error_message == (
            "the run's worker stopped 5 times in a row without finishing an item; the last one "
            "failed with RuntimeError: boom"
        )
        assert not await redis.exists(lease_key(tenant.site_id))
        assert_each_item_charged_once(await ledger_rows(session_factory, run.id))
        again = await client.post(
            f"/api/v1/automation/run_now/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert again.status_code == 200, again.text
