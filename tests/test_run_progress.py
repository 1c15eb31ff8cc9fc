"""A run's progress as a client reads it (SPEC §5, issue 12): never backwards during a real run
and 100 at its end, an ETA from the site's history, figures frozen once the run is over, the live
card naming the stage the run is in, and a read that counts no table."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.ai import registry
from app.ai.base import Answer
from app.ai.local import LocalProvider
from app.ai.schemas import (
    ArticleBrief,
    ArticleOut,
    ClusterBrief,
    ClusteringOut,
    ClusterOut,
    ContentBrief,
    IdeasOut,
    ImageOut,
    ImagePromptsOut,
    KeywordBrief,
)
from app.config import Settings
from app.models.automation import AutomationRun
from app.runs import progress
from app.runs.states import ACTIVE
from app.workers.worker import build_worker, close_worker
from tests.builders import create_content
from tests.engine import MODIFIERS, TOPICS, configure, feed, keywords, load_run, start, work
from tests.factories import Tenant, create_tenant

API = "/api/v1/automation"
SessionFactory = async_sessionmaker[AsyncSession]
Sample = Callable[[], Awaitable[None]]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


async def get(client: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> Any:
    response = await client.get(f"{API}/{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def post(client: httpx.AsyncClient, tenant: Tenant, path: str, **params: Any) -> None:
    response = await client.post(f"{API}/{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text


class SamplingProvider(LocalProvider):
    """The local provider, calling `sample` before each of its calls: the run's progress is read
    at every AI call of every stage, while the item waits for its answer."""

    def __init__(self) -> None:
        super().__init__(latency_ms=0)
        self.sample: Sample | None = None
        # Cluster as a hosted model may, otherwise than the text similarity the estimate
        # foresees stage 1 with: every keyword a topic of its own.
        self.one_cluster_a_keyword = False

    async def _sample(self) -> None:
        if self.sample is not None:
            await self.sample()

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        await self._sample()
        if self.one_cluster_a_keyword:
            clusters = [
                ClusterOut(name=k.keyword.title(), description=k.keyword, keywords=[k.keyword])
                for k in keywords
            ]
            return Answer(ClusteringOut(clusters=clusters))
        return await super().cluster_keywords(keywords)

    async def generate_ideas(self, cluster: ClusterBrief) -> Answer[IdeasOut]:
        await self._sample()
        return await super().generate_ideas(cluster)

    async def generate_content(self, brief: ContentBrief) -> Answer[ArticleOut]:
        await self._sample()
        return await super().generate_content(brief)

    async def generate_image_prompts(
        self, article: ArticleBrief, in_article_count: int
    ) -> Answer[ImagePromptsOut]:
        await self._sample()
        return await super().generate_image_prompts(article, in_article_count)

    async def generate_image(self, prompt: str, *, featured: bool) -> Answer[ImageOut]:
        await self._sample()
        return await super().generate_image(prompt, featured=featured)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> SamplingProvider:
    sampling = SamplingProvider()
    monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: sampling)
    return sampling


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


async def sampled_run(
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    tenant: Tenant,
    provider: SamplingProvider,
) -> tuple[str, list[dict[str, Any]]]:
    """A run started now, its progress read at each AI call and between them until it is over,
    then once more; the reads one after another."""
    run_id = await start(client, tenant)
    samples: list[dict[str, Any]] = []
    # One read at a time, each sent once the one before was answered, as a client polls: reads
    # that overlap (the items in flight each sample, beside the poller) were listed in the order
    # of their answers, and one read late answered an older state after a newer one.
    one_at_a_time = asyncio.Lock()

    async def sample() -> None:
        async with one_at_a_time:
            samples.append(await get(client, tenant, "run_progress/", site_id=tenant.site_id))

    async def poll() -> None:
        while (await load_run(session_factory, run_id)).status in ACTIVE:
            await sample()
            await asyncio.sleep(0.02)

    provider.sample = sample
    poller = asyncio.create_task(poll())
    try:
        async with worker_running(settings):
            await until(session_factory, run_id, lambda run: run.status not in ACTIVE)
    finally:
        provider.sample = None
        await poller
    await sample()
    return run_id, samples


def went_back(samples: list[dict[str, Any]]) -> str:
    """Where the percentage first fell, with the two reads in full: a failure to act on."""
    percentages = [s["global_progress"]["percentage"] for s in samples]
    fell = next(i for i, (a, b) in enumerate(itertools.pairwise(percentages)) if b < a)
    return f"{percentages}\nfell after read {fell}:\n{samples[fell]}\n{samples[fell + 1]}"


class TestARunsProgressNeverGoesBack:
    async def test_sampled_throughout_a_real_run_it_only_rises_and_ends_at_100(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        provider: SamplingProvider,
    ) -> None:
        """20 keywords of two topics, which the estimate foresees as a few clusters, made into
        20 by the provider: the re-plan after stage 1 raises the total, where the bar of the
        earlier code ran back at each stage that created work. Six ideas go on past stage 3, to
        keep the run short."""
        two_topics = [f"{m} {t}" for t in TOPICS[:2] for m in MODIFIERS[:10]]
        response = await client.post(
            f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
            json={"keywords": [{"keyword": k} for k in two_topics]},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        provider.one_cluster_a_keyword = True
        await configure(client, tenant, max_ideas_per_run=6)

        run_id, samples = await sampled_run(client, session_factory, settings, tenant, provider)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        percentages = [s["global_progress"]["percentage"] for s in samples]
        totals = [s["global_progress"]["total_items"] for s in samples]
        assert len(samples) > 50
        assert all(a <= b for a, b in itertools.pairwise(percentages)), went_back(samples)
        assert percentages[-1] == 100
        assert any(b > a for a, b in itertools.pairwise(totals)), "no re-plan raised the total"
        last = samples[-1]
        assert last["global_progress"]["completed_items"] == last["global_progress"]["total_items"]
        lines = (await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]
        assert any("Re-estimate after stage 1: stage 2 " in line for line in lines), lines
        # The foresight made at the start stays through the re-plans, for the site's later
        # estimates to learn that its provider made 20 clusters where fewer were foreseen.
        assert Decimal(run.progress_plan["foreseen"]["clusters_per_keyword"]) < 1

    async def test_the_next_run_of_the_site_has_an_eta_from_its_first_call(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        provider: SamplingProvider,
    ) -> None:
        await configure(client, tenant, max_clusters_per_run=2, max_ideas_per_run=3)
        await feed(client, tenant, 20)
        _, first = await sampled_run(client, session_factory, settings, tenant, provider)
        more = [{**k, "keyword": f"{k['keyword']} again"} for k in keywords(20)]
        response = await client.post(
            f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
            json={"keywords": more},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text

        _, second = await sampled_run(client, session_factory, settings, tenant, provider)

        # The first run knows no pace for its later AI stages until it reaches them.
        assert first[0]["global_progress"]["eta_seconds"] is None
        running = [s for s in second if s["run"]["status"] == "running"]
        assert running
        assert all(s["global_progress"]["eta_seconds"] is not None for s in running)
        assert second[-1]["global_progress"]["eta_seconds"] is None  # over


async def cancelled_at_once(client: httpx.AsyncClient, tenant: Tenant) -> str:
    await feed(client, tenant, 10)
    run_id = await start(client, tenant)
    await post(client, tenant, "cancel/", run_id=run_id)
    return run_id


async def more_work(
    client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
) -> None:
    """What a site gets after a run: new keywords, and articles in review."""
    more = [{**k, "keyword": f"{k['keyword']} later"} for k in keywords(15)]
    response = await client.post(
        f"/api/v1/planner/keywords/?site_id={tenant.site_id}",
        json={"keywords": more},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    for _ in range(3):
        await create_content(session_factory, tenant, status="review")
    for _ in range(2):
        await create_content(session_factory, tenant, status="draft")


class TestAnEndedRunsFiguresAreFrozen:
    async def test_a_cancelled_run_reads_the_same_after_the_site_gets_more_work(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await configure(client, tenant)
        run_id = await cancelled_at_once(client, tenant)
        before = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)

        await more_work(client, session_factory, tenant)

        after = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)
        assert after == before
        assert after["stages"][0]["input_count"] == 10

    async def test_a_completed_run_reads_the_same_after_the_site_gets_more_work(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        await feed(client, tenant, 20)
        await configure(client, tenant, max_clusters_per_run=1)
        run_id = await start(client, tenant)
        await work(settings)
        before = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)

        await more_work(client, session_factory, tenant)

        after = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)
        assert after == before
        assert before["run"]["status"] == "completed"
        assert before["global_progress"]["percentage"] == 100

    async def test_a_run_cancelled_in_stage_2_reads_the_same_after_the_site_gets_more_work(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """Cancelled in the delay after stage 1: the later stages keep the run's plan."""
        await feed(client, tenant, 20)
        await configure(client, tenant, between_stage_delay=600)
        run_id = await start(client, tenant)
        async with worker_running(settings):
            await until(session_factory, run_id, lambda run: run.current_stage == 2)
            await post(client, tenant, "cancel/", run_id=run_id)
        before = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)

        await more_work(client, session_factory, tenant)

        after = await get(client, tenant, "run_progress/", site_id=tenant.site_id, run_id=run_id)
        assert after == before
        assert after["run"]["status"] == "cancelled"
        assert [s["status"] for s in after["stages"]][:2] == ["completed", "pending"]


class TestCurrentProcessingNamesTheStageTheRunIsIn:
    async def test_in_the_delay_after_a_stage_it_names_the_next_one(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """The runner moves the run to stage 2, then waits out the delay between stages before
        it publishes stage 2's live card: the card of stage 1 is still in Redis."""
        await feed(client, tenant, 20)
        await configure(client, tenant, between_stage_delay=600)
        run_id = await start(client, tenant)
        async with worker_running(settings):
            run = await until(session_factory, run_id, lambda run: run.current_stage == 2)
            card = await get(client, tenant, "current_processing/", site_id=tenant.site_id)
            await post(client, tenant, "cancel/", run_id=run_id)

        assert run.stage_1_result is not None
        clusters = run.stage_1_result["clusters_created"]
        assert clusters > 0
        assert {k: card[k] for k in ("stage", "stage_name", "batch", "items", "processed")} == {
            "stage": 2,
            "stage_name": "Clusters → Ideas",
            "batch": 0,
            "items": [],
            "processed": 0,
        }
        assert card["total"] == clusters


class TestReadingAProgressCountsNoTable:
    async def test_run_progress_of_a_loaded_run_sends_no_query(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        await feed(client, tenant, 20)
        await configure(client, tenant, max_clusters_per_run=1)
        run_id = await start(client, tenant)
        await work(settings)
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        async with session_factory() as session:
            run = await session.scalar(select(AutomationRun).where(AutomationRun.run_id == run_id))
            assert run is not None
            event.listen(engine.sync_engine, "before_cursor_execute", count)
            try:
                state = progress.run_progress(run)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", count)

        assert statements == []
        assert state.global_progress.percentage == 100
