"""Publishing settings (created on first read, validated partial updates), the publishing queue,
and scheduling approved content: on manual approval, serialised per site, within the queue limit
(SPEC §9)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from arq.constants import default_queue_name
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.models.publishing import PublishingSettings
from app.models.tenancy import Site
from app.models.writer import Content
from app.publishing.service import schedule_approved
from app.writer import states as content_states
from tests.builders import create_content, walk_content
from tests.engine import work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
SETTINGS = "/api/v1/publishing/settings/"
QUEUE = "/api/v1/publishing/queue/"

DEFAULTS: dict[str, Any] = {
    "auto_approval_enabled": True,
    "auto_publish_enabled": True,
    "scheduling_mode": "time_slots",
    "publish_days": ["mon", "tue", "wed", "thu", "fri"],
    "publish_time_slots": ["09:00", "14:00", "18:00"],
    "stagger_start_time": "09:00",
    "stagger_end_time": "18:00",
    "stagger_interval_minutes": 15,
    "daily_publish_target": 3,
    "weekly_publish_target": 15,
    "monthly_publish_target": 50,
    "queue_limit": 100,
}


async def get_settings(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.get(
        SETTINGS, params={"site_id": tenant.site_id}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_settings(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        SETTINGS, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
    )


async def configure(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> None:
    """Save settings with auto-approval and auto-publish on (as by default), unless `fields`
    says otherwise."""
    on = {"auto_approval_enabled": True, "auto_publish_enabled": True}
    response = await put_settings(client, tenant, {**on, **fields})
    assert response.status_code == 200, response.text


def without_timestamps(body: dict[str, Any]) -> dict[str, Any]:
    """The stored fields: no `updated_at`, and no `next_slots` (it follows the clock)."""
    return {k: v for k, v in body.items() if k not in ("updated_at", "next_slots")}


async def stored(session_factory: SessionFactory, content_id: int) -> Content:
    async with session_factory() as session:
        return await session.get_one(Content, content_id)


async def settings_rows(session_factory: SessionFactory) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(PublishingSettings)) or 0)


class TestSettingsAreCreatedOnFirstRead:
    async def test_first_read_answers_the_defaults(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        body = await get_settings(client, tenant)

        assert without_timestamps(body) == {"site_id": tenant.site_id, **DEFAULTS}

    async def test_concurrent_first_reads_make_one_row(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        answers = await asyncio.gather(*(get_settings(client, tenant) for _ in range(6)))

        assert len({a["updated_at"] for a in answers}) == 1
        assert await settings_rows(session_factory) == 1


class TestNextSlotsPreview:
    async def test_the_answer_previews_the_next_free_slots_and_skips_taken_ones(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        await configure(
            client, tenant, publish_days=every_day, publish_time_slots=["18:00", "09:00"]
        )

        first = await preview(client, tenant)

        assert len(first) == 5
        assert first == sorted(first)
        assert first[0] > datetime.now(UTC)
        assert {(t.astimezone(UTC).hour, t.minute) for t in first} == {(9, 0), (18, 0)}
        await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=first[0],
        )
        assert (await preview(client, tenant))[:4] == first[1:]


async def preview(client: httpx.AsyncClient, tenant: Tenant) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in (await get_settings(client, tenant))["next_slots"]]


class TestPartialUpdate:
    async def test_fields_left_out_keep_their_values(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        changes = {
            "scheduling_mode": "stagger",
            "stagger_start_time": "08:30",
            "stagger_end_time": "20:00",
            "stagger_interval_minutes": 45,
            "queue_limit": 0,
            "auto_approval_enabled": False,
        }

        response = await put_settings(client, tenant, changes)

        assert response.status_code == 200, response.text
        expected = {"site_id": tenant.site_id, **DEFAULTS, **changes}
        assert without_timestamps(response.json()) == expected
        assert without_timestamps(await get_settings(client, tenant)) == expected

    async def test_days_and_slots_are_stored_in_order_each_once(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        response = await put_settings(
            client,
            tenant,
            {
                "publish_days": ["sun", "mon", "sun", "wed"],
                "publish_time_slots": ["18:30", "07:05", "18:30", "12:00"],
            },
        )

        assert response.status_code == 200, response.text
        assert response.json()["publish_days"] == ["mon", "wed", "sun"]
        assert response.json()["publish_time_slots"] == ["07:05", "12:00", "18:30"]

    async def test_immediate_mode_needs_no_day_and_no_slot(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        response = await put_settings(
            client,
            tenant,
            {"scheduling_mode": "immediate", "publish_days": [], "publish_time_slots": []},
        )

        assert response.status_code == 200, response.text
        assert (response.json()["publish_days"], response.json()["publish_time_slots"]) == ([], [])

    async def test_changing_the_mode_does_not_move_scheduled_content(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        slot = datetime(2030, 1, 7, 9, tzinfo=UTC)
        article = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=slot,
        )

        await configure(client, tenant, scheduling_mode="immediate", publish_days=["sat"])

        assert (await stored(session_factory, article.id)).scheduled_publish_at == slot


BAD_VALUES = [
    ({"publish_days": ["mon", "someday"]}, "publish_days"),
    ({"publish_days": "mon"}, "publish_days"),
    ({"publish_days": []}, "publish_days"),
    ({"scheduling_mode": "stagger", "publish_days": []}, "publish_days"),
    ({"publish_time_slots": []}, "publish_time_slots"),
    ({"publish_time_slots": ["9:00"]}, "publish_time_slots"),
    ({"publish_time_slots": ["24:00"]}, "publish_time_slots"),
    ({"publish_time_slots": ["12:60"]}, "publish_time_slots"),
    ({"publish_time_slots": [900]}, "publish_time_slots"),
    ({"publish_time_slots": ["09:00"] * 97}, "publish_time_slots"),
    ({"stagger_start_time": "18:00"}, "stagger_end_time"),
    ({"stagger_start_time": "10:00", "stagger_end_time": "09:59"}, "stagger_end_time"),
    ({"stagger_end_time": "noon"}, "stagger_end_time"),
    ({"stagger_interval_minutes": 0}, "stagger_interval_minutes"),
    ({"stagger_interval_minutes": 1441}, "stagger_interval_minutes"),
    ({"stagger_interval_minutes": "15"}, "stagger_interval_minutes"),
    ({"queue_limit": -1}, "queue_limit"),
    ({"queue_limit": 10001}, "queue_limit"),
    ({"daily_publish_target": -1}, "daily_publish_target"),
    ({"weekly_publish_target": -1}, "weekly_publish_target"),
    ({"monthly_publish_target": 1.5}, "monthly_publish_target"),
    ({"scheduling_mode": "hourly"}, "scheduling_mode"),
    ({"auto_approval_enabled": "yes"}, "auto_approval_enabled"),
    ({"auto_publish_enabled": None}, "auto_publish_enabled"),
    ({"max_scheduled_queue": 5}, "max_scheduled_queue"),
    ({"publish_time_slots": ["09:00\x00"]}, "publish_time_slots"),
    # A valid field next to a bad one is not applied either.
    ({"queue_limit": 5, "auto_publish_enabled": False, "publish_days": ["xyz"]}, "publish_days"),
]


class TestBadValuesAreRefusedAndChangeNothing:
    @pytest.mark.parametrize(("body", "field"), BAD_VALUES, ids=lambda v: str(v)[:60])
    async def test_a_bad_value_is_a_400_naming_the_field(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        body: dict[str, Any],
        field: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        before = await get_settings(client, tenant)

        response = await put_settings(client, tenant, body)

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"]
        # A list item is named with its index: `publish_days.1`.
        assert field in [problem["field"].split(".")[0] for problem in error["details"]]
        assert await get_settings(client, tenant) == before

    async def test_switching_to_time_slots_with_no_slot_left_is_refused(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, scheduling_mode="stagger", publish_time_slots=[])

        response = await put_settings(client, tenant, {"scheduling_mode": "time_slots"})

        assert response.status_code == 400
        assert "publish_time_slots" in response.json()["error"]["message"]
        assert (await get_settings(client, tenant))["scheduling_mode"] == "stagger"

    async def test_a_missing_site_id_is_a_400(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        response = await client.put(SETTINGS, json={}, headers=tenant.headers)

        assert response.status_code == 400
        assert "site_id" in response.json()["error"]["message"]


class TestQueue:
    async def test_lists_scheduled_publishing_and_failed_content_by_slot_in_utc_and_local(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="America/New_York")
        at = datetime(2030, 1, 7, 14, tzinfo=UTC)
        late = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=at + timedelta(hours=4),
        )
        failed = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="failed",
            scheduled_publish_at=at - timedelta(days=1),
            publish_attempts=3,
            publish_error="WordPress answered 502",
        )
        early = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=at,
        )
        publishing = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="publishing",
            scheduled_publish_at=at + timedelta(hours=1),
            publish_attempts=1,
        )
        await create_content(session_factory, tenant, status="approved")  # waiting for a slot
        await create_content(session_factory, tenant, status="published", site_status="published")
        await create_content(session_factory, tenant)  # in review

        response = await client.get(
            QUEUE, params={"site_id": tenant.site_id}, headers=tenant.headers
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert [i["id"] for i in body["items"]] == [failed.id, early.id, publishing.id, late.id]
        assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
        assert body["items"][1] == {
            "id": early.id,
            "title": early.title,
            "status": "approved",
            "site_status": "scheduled",
            "scheduled_publish_at": "2030-01-07T14:00:00Z",
            "scheduled_local": "2030-01-07T09:00:00-05:00",
            "publish_attempts": 0,
            "publish_error": None,
            "external_url": None,
        }
        assert body["items"][0]["publish_error"] == "WordPress answered 502"
        assert body["summary"] == {
            "scheduled": 2,
            "queue_limit": 100,
            "waiting": 1,
            "auto_publish_enabled": True,
            "timezone": "America/New_York",
        }
        assert await settings_rows(session_factory) == 0, "reading the queue saves no settings"

    async def test_filters_by_status_and_pages(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, queue_limit=7)
        base = datetime(2030, 1, 7, 9, tzinfo=UTC)
        ids = [
            (
                await create_content(
                    session_factory,
                    tenant,
                    status="approved",
                    site_status="scheduled",
                    scheduled_publish_at=base + timedelta(days=n),
                )
            ).id
            for n in range(3)
        ]
        await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="failed",
            scheduled_publish_at=base,
        )

        response = await client.get(
            QUEUE,
            params={"site_id": tenant.site_id, "status": "scheduled", "limit": 2, "offset": 1},
            headers=tenant.headers,
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert [i["id"] for i in body["items"]] == ids[1:]
        assert (body["total"], body["limit"], body["offset"]) == (3, 2, 1)
        assert body["summary"]["queue_limit"] == 7
        assert body["summary"]["auto_publish_enabled"] is True

    async def test_an_unknown_status_is_a_400(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)

        response = await client.get(
            QUEUE, params={"site_id": tenant.site_id, "status": "published"}, headers=tenant.headers
        )

        assert response.status_code == 400
        assert "status" in response.json()["error"]["message"]


def assert_on_a_slot(instant: datetime, zone: str, days: list[str], times: list[str]) -> None:
    wall = instant.astimezone(ZoneInfo(zone))
    assert wall.strftime("%a").lower() in days
    assert wall.strftime("%H:%M") in times


async def approve(client: httpx.AsyncClient, tenant: Tenant, content_id: int) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/writer/content/{content_id}/approve/", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestManualApprovalSchedules:
    async def test_with_auto_publish_the_approved_article_gets_the_next_free_slot(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="Asia/Tokyo")
        await configure(client, tenant, publish_days=["tue", "sat"], publish_time_slots=["07:15"])
        article = await create_content(session_factory, tenant)
        before = datetime.now(UTC)

        body = await approve(client, tenant, article.id)

        assert (body["status"], body["site_status"]) == ("approved", "scheduled")
        slot = datetime.fromisoformat(body["scheduled_publish_at"])
        assert before < slot < before + timedelta(days=7)
        assert_on_a_slot(slot, "Asia/Tokyo", ["tue", "sat"], ["07:15"])
        assert (await stored(session_factory, article.id)).scheduled_publish_at == slot

    async def test_in_immediate_mode_the_approved_article_goes_out_at_once(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, settings: Settings
    ) -> None:
        """Approving queues a publish pass: a worker publishes the article without waiting for
        the cron's next tick (the site has no publisher: it is marked published here)."""
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, scheduling_mode="immediate")
        article = await create_content(session_factory, tenant)

        body = await approve(client, tenant, article.id)
        assert (body["status"], body["site_status"]) == ("approved", "scheduled")
        await work(settings)

        published = await stored(session_factory, article.id)
        assert (published.status, published.site_status) == ("published", "published")

    async def test_a_slot_to_come_queues_no_pass(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, redis: Redis
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, publish_days=["tue"], publish_time_slots=["07:15"])
        article = await create_content(session_factory, tenant)

        await approve(client, tenant, article.id)

        assert await redis.zcard(default_queue_name) == 0

    async def test_with_auto_publish_off_it_is_only_approved(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, auto_publish_enabled=False)
        article = await create_content(session_factory, tenant)

        body = await approve(client, tenant, article.id)

        assert (body["status"], body["site_status"]) == ("approved", "not_published")
        assert body["scheduled_publish_at"] is None

    async def test_a_site_that_never_saved_its_settings_schedules_by_default(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        article = await create_content(session_factory, tenant)

        body = await approve(client, tenant, article.id)

        assert (body["status"], body["site_status"]) == ("approved", "scheduled")
        assert body["scheduled_publish_at"] is not None
        assert without_timestamps(await get_settings(client, tenant)) == {
            "site_id": tenant.site_id,
            **DEFAULTS,
        }

    async def test_concurrent_approvals_take_distinct_slots_within_the_queue_limit(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, scheduling_mode="stagger", queue_limit=5)
        articles = [await create_content(session_factory, tenant) for _ in range(8)]

        answers = await asyncio.gather(*(approve(client, tenant, a.id) for a in articles))

        scheduled = [a for a in answers if a["site_status"] == "scheduled"]
        slots = {a["scheduled_publish_at"] for a in scheduled}
        assert len(scheduled) == len(slots) == 5
        assert all(a["status"] == "approved" for a in answers)
        queue = await client.get(QUEUE, params={"site_id": tenant.site_id}, headers=tenant.headers)
        assert queue.json()["summary"] | {"timezone": "UTC"} == {
            "scheduled": 5,
            "queue_limit": 5,
            "waiting": 3,
            "auto_publish_enabled": True,
            "timezone": "UTC",
        }


async def site_of(session: AsyncSession, tenant: Tenant) -> Site:
    return await session.get_one(Site, tenant.site_id)


class TestSchedulingIsSerialisedPerSite:
    async def test_a_second_scheduler_waits_for_the_first_and_takes_the_next_slot(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, publish_days=["mon"], publish_time_slots=["09:00"])
        first = await create_content(session_factory, tenant, status="approved")
        second = await create_content(session_factory, tenant)
        now = datetime.now(UTC)

        async def racing_approval() -> None:
            async with unit_of_work(session_factory) as session:
                await content_states.approve(session, Content.id == second.id)
                await schedule_approved(session, await site_of(session, tenant), now)

        async with unit_of_work(session_factory) as holder:
            outcome = await schedule_approved(holder, await site_of(holder, tenant), now)
            assert outcome is not None
            assert outcome.content_ids == (first.id,)
            contender = asyncio.create_task(racing_approval())
            await wait_for_a_lock_wait(holder)
            assert not contender.done()
        await contender

        slots = [
            (await stored(session_factory, c.id)).scheduled_publish_at for c in (first, second)
        ]
        assert slots[0] is not None
        assert slots[1] is not None
        assert slots[1] - slots[0] == timedelta(days=7), "two Mondays, one slot each"

    async def test_the_queue_limit_holds_for_racing_schedulers(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, queue_limit=3)
        for _ in range(10):
            await create_content(session_factory, tenant, status="approved")
        now = datetime.now(UTC)

        async def one_pass() -> int:
            async with unit_of_work(session_factory) as session:
                outcome = await schedule_approved(session, await site_of(session, tenant), now)
            assert outcome is not None
            return len(outcome.content_ids)

        counts = await asyncio.gather(*(one_pass() for _ in range(5)))

        assert sum(counts) == 3
        async with session_factory() as session:
            slots = list(
                await session.scalars(
                    select(Content.scheduled_publish_at).where(Content.site_status == "scheduled")
                )
            )
        assert len(set(slots)) == 3

    async def test_a_full_queue_is_back_filled_when_room_comes(
        self, client: httpx.AsyncClient, session_factory: SessionFactory
    ) -> None:
        tenant = await create_tenant(session_factory)
        await configure(client, tenant, queue_limit=1)
        first = await create_content(session_factory, tenant, status="approved")
        second = await create_content(session_factory, tenant, status="approved")
        now = datetime.now(UTC)
        async with unit_of_work(session_factory) as session:
            full = await schedule_approved(session, await site_of(session, tenant), now)
        assert full is not None
        assert (full.content_ids, full.waiting, full.queue_full) == ((first.id,), 1, True)

        async with unit_of_work(session_factory) as session:
            await walk_content(session, first.id, "published", "published")
        async with unit_of_work(session_factory) as session:
            later = await schedule_approved(session, await site_of(session, tenant), now)

        assert later is not None
        assert (later.content_ids, later.waiting, later.queue_full) == ((second.id,), 0, False)
        assert (await stored(session_factory, second.id)).site_status == "scheduled"


async def wait_for_a_lock_wait(session: AsyncSession) -> None:
    """Until another backend of this database waits for a lock (the racing scheduler)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(10):
        while True:
            # A transaction keeps one snapshot of the activity statistics unless it drops it.
            await session.execute(text("SELECT pg_stat_clear_snapshot()"))
            if await session.scalar(waiting):
                return
            await asyncio.sleep(0.01)
