"""The stages with no AI call (3 and 7) write each batch whole, in one transaction, batch after
batch (issue 13): a batch's log lines share their transaction's time. Their results, limits,
pause and resume stay as they were. On a real worker."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.automation import AutomationRun, RunEvent
from app.models.planner import ContentIdea
from app.models.writer import Content, Task
from app.stages.base import Item
from app.stages.context import StageContext
from app.stages.registry import STAGES
from app.stages.review import ReviewStage
from tests.builders import create_cluster, create_content, create_idea
from tests.engine import configure, load_run, start, work
from tests.factories import Tenant, create_tenant
from tests.test_stage_results import get, until, worker_running

SessionFactory = async_sessionmaker[AsyncSession]
IDEAS = 45
BATCH = 20


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


async def ideas(session_factory: SessionFactory, tenant: Tenant, count: int = IDEAS) -> list[int]:
    """`count` new ideas of one cluster, oldest first: work for stage 3 only (stage 4, which
    would write their articles, is turned off by `tasks_only`)."""
    cluster = await create_cluster(session_factory, tenant)
    return [
        (await create_idea(session_factory, tenant, cluster_id=cluster.id)).id for _ in range(count)
    ]


async def tasks_only(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    await configure(client, tenant, stage_3_batch_size=BATCH, stage_4_enabled=False, **fields)


async def item_lines(
    session_factory: SessionFactory, run_pk: int, stage: int
) -> list[list[dict[str, Any]]]:
    """The stage's `item_done` lines, in order, grouped by the transaction that wrote them (a
    line's time is its transaction's start)."""
    async with session_factory() as session:
        rows = await session.execute(
            select(RunEvent.at, RunEvent.data)
            .where(RunEvent.run_pk == run_pk, RunEvent.stage == stage)
            .where(RunEvent.kind == "item_done")
            .order_by(RunEvent.id)
        )
        return [
            [data for _, data in lines]
            for _, lines in itertools.groupby(rows.all(), key=lambda row: row.at)
        ]


async def idea_tasks(session_factory: SessionFactory, tenant: Tenant) -> list[tuple[int, int]]:
    """(idea id, task id) of the site's tasks, by task id."""
    async with session_factory() as session:
        rows = await session.execute(
            select(Task.idea_id, Task.id).where(Task.site_id == tenant.site_id).order_by(Task.id)
        )
        return [(idea, task) for idea, task in rows if idea is not None]


async def new_ideas(session_factory: SessionFactory, tenant: Tenant) -> list[int]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(ContentIdea.id)
            .where(ContentIdea.site_id == tenant.site_id, ContentIdea.status == "new")
            .order_by(ContentIdea.id)
        )
        return list(rows)


class TestABatchIsWrittenInOneTransaction:
    async def test_stage_3_queues_each_batch_of_ideas_at_once_with_a_line_per_idea(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        idea_ids = await ideas(session_factory, tenant)
        await tasks_only(client, tenant)
        run_id = await start(client, tenant)

        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        result = run.stage_3_result
        assert result is not None
        assert (result["ideas_processed"], result["tasks_created"]) == (IDEAS, IDEAS)
        assert (result["batches_run"], result["partial"]) == (3, False)
        pairs = await idea_tasks(session_factory, tenant)
        assert [idea for idea, _ in pairs] == idea_ids, "a task per idea, in the ideas' order"
        batches = await item_lines(session_factory, run.id, 3)
        assert [len(lines) for lines in batches] == [BATCH, BATCH, IDEAS - 2 * BATCH]
        assert [(line["idea_id"], line["task_id"]) for lines in batches for line in lines] == pairs
        assert await new_ideas(session_factory, tenant) == []
        folder = settings.log_path / "automation" / str(tenant.account_id)
        stage_log = (folder / str(tenant.site_id) / run_id / "stage_3.log").read_text("utf-8")
        assert stage_log.count("INFO Queued task for idea 'Idea ") == IDEAS

    async def test_stage_7_approves_and_schedules_each_batch_at_once_oldest_first(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """Stage 7's batches are of 20. The queue has room for 23: the second batch's two
        newest articles wait, approved."""
        await configure(client, tenant)
        response = await client.put(
            f"/api/v1/publishing/settings/?site_id={tenant.site_id}",
            json={"queue_limit": 23},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        article_ids = [(await create_content(session_factory, tenant)).id for _ in range(25)]
        run_id = await start(client, tenant)

        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        result = run.stage_7_result
        assert result is not None
        assert (result["ready_for_review"], result["approved_count"]) == (25, 25)
        assert (result["scheduled_count"], result["not_scheduled"]) == (23, 2)
        assert result["content_ids"] == article_ids
        batches = await item_lines(session_factory, run.id, 7)
        assert [[line["content_id"] for line in lines] for lines in batches] == [
            article_ids[:20],
            article_ids[20:],
        ]
        async with session_factory() as session:
            rows = await session.execute(
                select(Content.id, Content.status, Content.site_status)
                .where(Content.site_id == tenant.site_id)
                .order_by(Content.id)
            )
            states = [(status, site_status) for _, status, site_status in rows]
        assert states == [("approved", "scheduled")] * 23 + [("approved", "not_published")] * 2
        lines = (await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]
        assert any(line.endswith(" and scheduled it") for line in lines)
        assert sum(line.endswith("waits for room in the publishing queue") for line in lines) == 2


class ReviewerRejectsOne(ReviewStage):
    """Stage 7 with a reviewer who rejects the batch's second article by hand after the batch
    was loaded, before it is approved."""

    def __init__(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        self.client = client
        self.tenant = tenant

    async def process_batch(self, ctx: StageContext, items: list[Item]) -> None:
        response = await self.client.post(
            f"/api/v1/writer/content/{items[1].id}/reject/", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        await super().process_batch(ctx, items)


class TestAnArticleRejectedMeanwhile:
    async def test_is_left_rejected_and_its_line_says_it_was_not_approved(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(STAGES, 7, ReviewerRejectsOne(client, tenant))
        await configure(client, tenant)
        first, second, third = [(await create_content(session_factory, tenant)) for _ in range(3)]
        run_id = await start(client, tenant)

        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        result = run.stage_7_result
        assert result is not None
        assert (result["ready_for_review"], result["approved_count"]) == (3, 2)
        assert (result["scheduled_count"], result["not_scheduled"]) == (2, 0)
        assert result["content_ids"] == [first.id, third.id]
        lines = (await get(client, tenant, "logs/", run_id=run_id, lines=5000))["lines"]
        assert [line.split("INFO [stage 7] ")[-1] for line in lines if "'Article" in line] == [
            f"Approved '{first.title}' and scheduled it",
            f"'{second.title}' was no longer in review: not approved",
            f"Approved '{third.title}' and scheduled it",
        ]


class TestStageThreeLimit:
    async def test_max_ideas_per_run_cuts_the_last_batch_and_the_next_run_goes_on(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        idea_ids = await ideas(session_factory, tenant)
        await tasks_only(client, tenant, max_ideas_per_run=25)

        first = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, first)
        assert run.stage_3_result is not None
        assert (run.stage_3_result["ideas_processed"], run.stage_3_result["batches_run"]) == (25, 2)
        assert await new_ideas(session_factory, tenant) == idea_ids[25:]

        second = await start(client, tenant)
        await work(settings)

        again = await load_run(session_factory, second)
        assert again.stage_3_result is not None
        assert again.stage_3_result["ideas_processed"] == IDEAS - 25
        assert await new_ideas(session_factory, tenant) == []


def stage_3_paused(run: AutomationRun) -> bool:
    return bool(run.stage_3_result and run.stage_3_result.get("partial"))


class TestAPauseBetweenBatches:
    async def test_stage_3_stops_after_the_batch_written_and_resumes_with_the_next(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
    ) -> None:
        """A long delay within the stage: the pause comes after the first batch."""
        idea_ids = await ideas(session_factory, tenant)
        await tasks_only(client, tenant, within_stage_delay=600)
        run_id = await start(client, tenant)

        async with worker_running(settings):
            await until(
                session_factory,
                run_id,
                lambda run: bool(run.stage_3_result and run.stage_3_result["ideas_processed"]),
            )
            response = await client.post(
                "/api/v1/automation/pause/", params={"run_id": run_id}, headers=tenant.headers
            )
            assert response.status_code == 200, response.text
            paused = await until(session_factory, run_id, stage_3_paused)

        assert paused.status == "paused"
        assert paused.stage_3_result is not None
        assert (paused.stage_3_result["ideas_processed"], paused.stage_3_result["batches_run"]) == (
            BATCH,
            1,
        )
        assert await new_ideas(session_factory, tenant) == idea_ids[BATCH:]

        await tasks_only(client, tenant)
        response = await client.post(
            "/api/v1/automation/resume/", params={"run_id": run_id}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        assert run.stage_3_result is not None
        assert (run.stage_3_result["ideas_processed"], run.stage_3_result["batches_run"]) == (
            IDEAS,
            3,
        )
        assert [idea for idea, _ in await idea_tasks(session_factory, tenant)] == idea_ids
