"""Stage 7 on a real worker: approval where the site's publishing settings turn it on, then
scheduling into distinct future slots within the queue limit (SPEC §7, §9)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.writer import Content
from tests.builders import create_content
from tests.engine import configure, feed, load_run, start, work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


async def publishing(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    """Publishing settings with auto-approval and auto-publish on (as by default), unless
    `fields` says otherwise."""
    on = {"auto_approval_enabled": True, "auto_publish_enabled": True}
    response = await client.put(
        f"/api/v1/publishing/settings/?site_id={tenant.site_id}",
        json={**on, **fields},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


async def run_once(
    client: httpx.AsyncClient,
    tenant: Tenant,
    settings: Settings,
    session_factory: SessionFactory,
) -> dict[str, Any]:
    """A whole run on a burst worker; the stage 7 result."""
    run_id = await start(client, tenant)
    await work(settings)
    run = await load_run(session_factory, run_id)
    assert run.status == "completed", run.error_message
    result = run.stage_7_result
    assert result is not None
    assert result["partial"] is False
    return result


async def articles(session_factory: SessionFactory, tenant: Tenant) -> list[Content]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(Content).where(Content.site_id == tenant.site_id).order_by(Content.id)
        )
        return list(rows)


class TestStageSevenSchedules:
    async def test_keywords_end_as_approved_articles_in_distinct_future_slots(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(
            session_factory, credits=Decimal(100000), site_timezone="America/New_York"
        )
        await feed(client, tenant, 6)
        await configure(
            client,
            tenant,
            stage_4_batch_size=4,
            stage_5_batch_size=4,
            stage_6_batch_size=8,
            max_in_article_images=0,
        )
        await publishing(
            client,
            tenant,
            scheduling_mode="stagger",
            publish_days=["mon", "wed", "fri"],
            stagger_start_time="10:00",
            stagger_end_time="12:00",
            stagger_interval_minutes=30,
        )
        before = datetime.now(UTC)

        result = await run_once(client, tenant, settings, session_factory)

        rows = await articles(session_factory, tenant)
        assert len(rows) >= 3
        assert result["ready_for_review"] == len(rows)
        assert result["approved_count"] == result["scheduled_count"] == len(rows)
        assert result["not_scheduled"] == 0
        assert {(r.status, r.site_status) for r in rows} == {("approved", "scheduled")}
        slots = [r.scheduled_publish_at for r in rows]
        assert all(s is not None and s > before for s in slots)
        assert len(set(slots)) == len(slots)
        zone = ZoneInfo("America/New_York")
        for slot in slots:
            assert slot is not None
            wall = slot.astimezone(zone)
            assert wall.strftime("%a") in {"Mon", "Wed", "Fri"}
            assert wall.strftime("%H:%M") in {"10:00", "10:30", "11:00", "11:30", "12:00"}

    async def test_max_approvals_per_run_is_respected(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, max_approvals_per_run=3)
        await publishing(client, tenant, scheduling_mode="immediate")
        for _ in range(5):
            await create_content(session_factory, tenant)

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["ready_for_review"], result["approved_count"]) == (5, 3)
        assert result["scheduled_count"] == 3
        rows = await articles(session_factory, tenant)
        # Immediate: the run queued a publish pass, which the worker ran before it stopped (the
        # site has no publisher, so the articles are marked published here).
        assert [(r.status, r.site_status) for r in rows] == [("published", "published")] * 3 + [
            ("review", "not_published")
        ] * 2

    async def test_the_queue_limit_leaves_the_rest_approved_and_waiting(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        await publishing(client, tenant, queue_limit=2)
        for _ in range(5):
            await create_content(session_factory, tenant)

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["approved_count"], result["scheduled_count"]) == (5, 2)
        assert result["not_scheduled"] == 3
        rows = await articles(session_factory, tenant)
        # The batch is approved at once and scheduled oldest first: the two oldest got the room.
        assert [r.site_status for r in rows] == ["scheduled"] * 2 + ["not_published"] * 3
        assert {r.status for r in rows} == {"approved"}
        queue = await client.get(
            f"/api/v1/publishing/queue/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert (queue.json()["summary"]["scheduled"], queue.json()["summary"]["waiting"]) == (2, 3)

    async def test_approved_content_already_waiting_is_scheduled_first(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        waiting = await create_content(session_factory, tenant, status="approved")
        fresh = await create_content(session_factory, tenant)
        await publishing(client, tenant, queue_limit=1)

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["approved_count"], result["scheduled_count"]) == (1, 1)
        assert result["not_scheduled"] == 1
        rows = {r.id: r for r in await articles(session_factory, tenant)}
        assert rows[waiting.id].site_status == "scheduled"
        assert (rows[fresh.id].status, rows[fresh.id].site_status) == ("approved", "not_published")


class TestStageSevenWithoutAutoPublish:
    async def test_auto_publish_off_approves_without_scheduling(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        await publishing(client, tenant, auto_publish_enabled=False)
        for _ in range(2):
            await create_content(session_factory, tenant)

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["approved_count"], result["scheduled_count"]) == (2, 0)
        rows = await articles(session_factory, tenant)
        assert [(r.status, r.site_status) for r in rows] == [("approved", "not_published")] * 2
        assert all(r.scheduled_publish_at is None for r in rows)

    async def test_a_site_that_never_saved_publishing_settings_approves_and_schedules(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        """Auto-approval and auto-publish are on by default, as in the reference."""
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        for _ in range(2):
            await create_content(session_factory, tenant)

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["ready_for_review"], result["approved_count"]) == (2, 2)
        assert result["scheduled_count"] == 2
        assert "awaiting_review" not in result
        rows = await articles(session_factory, tenant)
        assert [(r.status, r.site_status) for r in rows] == [("approved", "scheduled")] * 2


class TestStageSevenWithoutAutoApproval:
    async def test_a_completed_run_says_how_many_articles_await_review(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        await publishing(client, tenant, auto_approval_enabled=False)
        for _ in range(2):
            await create_content(session_factory, tenant)
        await create_content(session_factory, tenant, status="draft")  # reaches review in stage 6

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["ready_for_review"], result["approved_count"]) == (3, 0)
        assert result["awaiting_review"] == 3
        assert {r.status for r in await articles(session_factory, tenant)} == {"review"}
        history = await client.get(
            f"/api/v1/automation/history/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert history.json()["items"][0]["awaiting_review"] == 3
        logs = await client.get(
            "/api/v1/automation/logs/",
            params={"run_id": history.json()["items"][0]["run_id"]},
            headers=tenant.headers,
        )
        lines = logs.json()["lines"]
        assert lines[-1].endswith("INFO Run completed")
        assert lines[-2].endswith(
            "INFO [stage 7] 3 articles await review: auto-approval is off, so they are approved "
            "by hand (Content)"
        )


class TestANewSitePublishesHere:
    async def test_with_integration_none_due_articles_are_published_and_read_through_the_api(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        """A new site keeps the default publisher (`none`) and the default switches; only the
        mode is set to publish at once. The run approves its articles, and the publish pass it
        queues marks them published here, where the site reads them from the API."""
        tenant = await create_tenant(session_factory)
        await configure(client, tenant)
        response = await client.put(
            f"/api/v1/publishing/settings/?site_id={tenant.site_id}",
            json={"scheduling_mode": "immediate"},
            headers=tenant.headers,
        )
        assert response.status_code == 200, response.text
        assert (
            response.json()["auto_approval_enabled"],
            response.json()["auto_publish_enabled"],
        ) == (
            True,
            True,
        )
        integration = await client.get(
            f"/api/v1/publishing/integration/?site_id={tenant.site_id}", headers=tenant.headers
        )
        assert integration.json()["kind"] == "none"
        ids = [(await create_content(session_factory, tenant)).id for _ in range(2)]

        result = await run_once(client, tenant, settings, session_factory)

        assert (result["approved_count"], result["scheduled_count"]) == (2, 2)
        published = await client.get(
            "/api/v1/writer/content/",
            params={"site_id": tenant.site_id, "status": "published"},
            headers=tenant.headers,
        )
        assert published.status_code == 200, published.text
        items = published.json()["items"]
        assert sorted(item["id"] for item in items) == ids
        assert {item["site_status"] for item in items} == {"published"}
        for content_id in ids:
            article = await client.get(
                f"/api/v1/writer/content/{content_id}/", headers=tenant.headers
            )
            assert article.json()["html"]
            assert article.json()["published_at"] is not None
