"""What a stage's result says (SPEC §5, §7, the reference's 000 and 001): `batches_run` counts the
batches processed, a stage with nothing to do reports `skipped: true`, stage 7 lists the content
ids it handled. On a real worker, read through the API as a client reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ai import registry
from app.ai.base import Answer
from app.ai.gate import ProviderGate
from app.ai.local import LocalProvider
from app.ai.schemas import ClusteringOut, KeywordBrief
from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationRun, RunStatus
from app.models.writer import Content
from app.runs.events import RunLog
from app.runs.states import set_run_state
from app.workers.worker import build_worker, close_worker
from tests.builders import create_content, create_image
from tests.engine import configure, feed, load_run, start, until_holds, work
from tests.factories import Tenant, create_tenant

API = "/api/v1/automation"
SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


async def get(client: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> Any:
    response = await client.get(f"{API}/{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def publishing(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    response = await client.put(
        f"/api/v1/publishing/settings/?site_id={tenant.site_id}",
        json=fields,
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


@asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[None]:
    worker = build_worker(settings, poll_delay=0.01, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        await close_worker(worker)
        await asyncio.wait([task])


async def until(
    session_factory: SessionFactory,
    run_id: str,
    condition: Callable[[AutomationRun], bool],
    within: float = 60,
) -> AutomationRun:
    async with asyncio.timeout(within):
        while True:
            run = await load_run(session_factory, run_id)
            if condition(run):
                return run
            await asyncio.sleep(0.02)


def stage_1_stopped(run: AutomationRun) -> bool:
    """The slice saved stage 1 as stopped part-way: its worker is done with the run."""
    return bool(run.stage_1_result and run.stage_1_result.get("partial"))


def second_batch_loaded(run: AutomationRun) -> bool:
    return bool(run.stage_1_result and run.stage_1_result.get("batches_run") == 2)


@asynccontextmanager
async def permit_held(redis: Redis) -> AsyncIterator[asyncio.Event]:
    """The local provider's only permit, held for another site until the event is set."""
    release, taken = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with ProviderGate(redis, "local", 1).slot(site_id=0):
            taken.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    try:
        async with asyncio.timeout(10):
            await taken.wait()
        yield release
    finally:
        release.set()
        await holder


async def item_in_flight(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Until the live card shows an item in flight."""
    async with asyncio.timeout(30):
        while True:
            card = await get(client, tenant, "current_processing/", site_id=tenant.site_id)
            if card["items"]:
                return
            await asyncio.sleep(0.02)


class HeldClustering(LocalProvider):
    """The local provider, whose first clustering call waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(latency_ms=0)
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        if not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        return await super().cluster_keywords(keywords)


class TestBatchesRunCountsProcessedBatchesOnly:
    async def test_a_pause_the_runner_reads_from_the_run_row_counts_no_extra_batch(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The pause is committed while a batch is in flight and its Redis signal is lost. One
        slot: the second batch is loaded while the first call is held, and its item, admitted
        ahead, holds its credits and waits for the slot. When the slot frees, the feeder loads
        the third batch, whose transaction reads the run's row and finds it paused: the stage
        stops there. The item held before the pause is called if its permit comes before that
        read (the signal that would stop it is lost), else it stops with the stage, its batch
        uncounted: either way no batch is counted that was not processed."""
        provider = HeldClustering()
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        await feed(client, tenant, 4)
        await configure(client, tenant, stage_1_batch_size=1, ai_concurrency=1)
        run_id = await start(client, tenant)

        async with worker_running(settings):
            async with asyncio.timeout(30):
                await provider.reached.wait()
            run = await until(session_factory, run_id, second_batch_loaded)
            await until_holds(session_factory, run.id, 2)
            async with unit_of_work(session_factory) as session:
                await set_run_state(session, RunLog(settings.log_path), run.id, RunStatus.PAUSED)
            provider.release.set()
            await until(session_factory, run_id, stage_1_stopped)

        result = (await get(client, tenant, f"runs/{run_id}/"))["stage_1_result"]
        assert result["keywords_processed"] in (1, 2)
        assert result["batches_run"] == result["keywords_processed"]
        assert result["partial"] is True

    async def test_a_pause_while_the_first_item_waits_for_the_provider_counts_no_batch(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        redis: Redis,
        tenant: Tenant,
    ) -> None:
        """The batch's item is taken, then waits for a provider-wide permit (another site holds
        the only one); the pause comes meanwhile, so the item never starts."""
        await feed(client, tenant, 4)
        await configure(client, tenant)
        run_id = await start(client, tenant)

        one_permit = settings.model_copy(update={"ai_max_concurrency": 1})
        async with permit_held(redis) as release, worker_running(one_permit):
            await item_in_flight(client, tenant)
            response = await client.post(
                f"{API}/pause/", params={"run_id": run_id}, headers=tenant.headers
            )
            assert response.status_code == 200, response.text
            release.set()  # the item gets the permit, sees the pause and stops
            await until(session_factory, run_id, stage_1_stopped)

        result = (await get(client, tenant, f"runs/{run_id}/"))["stage_1_result"]
        assert (result["keywords_processed"], result["batches_run"]) == (0, 0)
        assert result["partial"] is True


class TestAStageWithNothingToDoIsSkipped:
    async def test_stages_with_nothing_pending_report_skipped_and_say_why(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """Two draft articles and nothing before them: stages 1-4 have nothing to do."""
        await configure(client, tenant)
        for _ in range(2):
            await create_content(session_factory, tenant, status="draft")
        run_id = await start(client, tenant)

        await work(settings)

        run = await get(client, tenant, f"runs/{run_id}/")
        assert run["status"] == "completed", run["error_message"]
        results = [run[f"stage_{n}_result"] for n in range(1, 8)]
        assert [r["skipped"] for r in results] == [True] * 4 + [False] * 3
        assert all(r["batches_run"] == 0 and r["completed_at"] for r in results[:4])
        assert results[4]["content_processed"] == 2
        progress = await get(client, tenant, "run_progress/", site_id=tenant.site_id)
        assert [s["status"] for s in progress["stages"]] == ["skipped"] * 4 + ["completed"] * 3
        lines = (await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]
        assert any("Stage 1 (Keywords → Clusters) skipped: no items to process" in x for x in lines)
        assert any("Stage 5 (Content → Image prompts) started: 2 pending" in x for x in lines)

    async def test_a_skipped_stage_is_not_followed_by_the_pause_between_stages(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """Articles in review and nothing before them, with 10 minutes between stages: stages
        1-6 have nothing to pace, so the run reaches stage 7 at once."""
        await configure(client, tenant, between_stage_delay=600)
        await create_content(session_factory, tenant)
        run_id = await start(client, tenant)

        async with asyncio.timeout(60):
            await work(settings)

        run = await get(client, tenant, f"runs/{run_id}/")
        assert run["status"] == "completed", run["error_message"]
        assert [run[f"stage_{n}_result"]["skipped"] for n in range(1, 8)] == [True] * 6 + [False]

    async def test_a_disabled_stage_says_so_rather_than_nothing_to_do(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        await configure(client, tenant, stage_5_enabled=False)
        content = await create_content(session_factory, tenant, status="draft")
        await create_image(session_factory, tenant, content_id=content.id)
        run_id = await start(client, tenant)

        await work(settings)

        run = await get(client, tenant, f"runs/{run_id}/")
        assert run["stage_5_result"]["skipped"] is True
        lines = (await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]
        assert any("Stage 5 (Content → Image prompts) skipped: disabled" in x for x in lines)


async def review_ids(session_factory: SessionFactory, tenant: Tenant, count: int) -> list[int]:
    """`count` articles in review, oldest first."""
    return [(await create_content(session_factory, tenant)).id for _ in range(count)]


async def statuses(session_factory: SessionFactory, tenant: Tenant) -> dict[int, str]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Content.id, Content.status).where(Content.site_id == tenant.site_id)
        )
        return {content_id: status for content_id, status in rows}


class TestStageSevenListsTheContentItHandled:
    async def test_with_auto_approval_the_articles_it_approved(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        await configure(client, tenant, max_approvals_per_run=3, ai_concurrency=4)
        await publishing(client, tenant, auto_approval_enabled=True, auto_publish_enabled=False)
        ids = await review_ids(session_factory, tenant, 5)
        run_id = await start(client, tenant)

        await work(settings)

        result = (await get(client, tenant, f"runs/{run_id}/"))["stage_7_result"]
        assert (result["ready_for_review"], result["approved_count"]) == (5, 3)
        assert sorted(result["content_ids"]) == ids[:3]
        assert [s for i, s in sorted((await statuses(session_factory, tenant)).items())] == [
            "approved"
        ] * 3 + ["review"] * 2

    async def test_without_auto_approval_the_articles_it_counted_for_review(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        await configure(client, tenant)
        await publishing(client, tenant, auto_approval_enabled=False)
        ids = await review_ids(session_factory, tenant, 2)
        # A draft for the run to work on: it reaches review in stage 6.
        draft = await create_content(session_factory, tenant, status="draft")
        run_id = await start(client, tenant)

        await work(settings)

        result = (await get(client, tenant, f"runs/{run_id}/"))["stage_7_result"]
        assert (result["ready_for_review"], result["approved_count"]) == (3, 0)
        assert result["content_ids"] == [*ids, draft.id]
        assert set((await statuses(session_factory, tenant)).values()) == {"review"}
