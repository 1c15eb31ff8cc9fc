"""The automation config (SPEC §5, §6): created on first read, partial updates validated field by
field, and `next_run_at` in the site's time zone; the schedule function on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationConfig
from app.runs.next_due import next_run_at
from tests.factories import Tenant, create_tenant

CONFIG = "/api/v1/automation/config/"
UPDATE = "/api/v1/automation/update_config/"

DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "frequency": "daily",
    "scheduled_time": "02:00",
    "weekly_day": 0,
    "monthly_day": 1,
    "stage_1_batch_size": 20,
    "stage_2_batch_size": 1,
    "stage_3_batch_size": 20,
    "stage_4_batch_size": 1,
    "stage_5_batch_size": 1,
    "stage_6_batch_size": 1,
    "within_stage_delay": 3,
    "between_stage_delay": 5,
    **{f"stage_{n}_enabled": True for n in range(1, 8)},
    **{
        f"max_{name}_per_run": 0
        for name in ("keywords", "clusters", "ideas", "tasks", "content", "images", "approvals")
    },
    "max_credits_per_run": 0,
    "ai_concurrency": 4,
    "max_in_article_images": 2,
    "last_run_at": None,
    "next_run_at": None,
    "notification_url": None,
    "notification_secret_set": False,
}


async def get_config(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.get(CONFIG, params={"site_id": tenant.site_id}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_config(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        UPDATE, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
    )


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TestTheConfigIsCreatedOnFirstRead:
    async def test_the_first_read_answers_the_reference_defaults(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        config = await get_config(client, tenant)
        assert config == {"site_id": tenant.site_id, **DEFAULTS}

    async def test_reads_racing_each_other_make_one_config(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        answers = await asyncio.gather(*(get_config(client, tenant) for _ in range(8)))
        assert all(answer == answers[0] for answer in answers)
        async with session_factory() as session:
            count = await session.scalar(
                select(func.count()).where(AutomationConfig.site_id == tenant.site_id)
            )
        assert count == 1

    async def test_the_update_of_a_site_never_read_creates_it_with_the_change(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_config(client, tenant, {"ai_concurrency": 8})
        assert response.status_code == 200, response.text
        assert response.json() == {"site_id": tenant.site_id, **DEFAULTS, "ai_concurrency": 8}


class TestPartialUpdate:
    async def test_only_the_fields_sent_change(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_config(
            client, tenant, {"stage_1_batch_size": 50, "within_stage_delay": 0}
        )
        assert response.status_code == 200, response.text
        expected = {
            "site_id": tenant.site_id,
            **DEFAULTS,
            "stage_1_batch_size": 50,
            "within_stage_delay": 0,
        }
        assert response.json() == expected
        assert await get_config(client, tenant) == expected

    async def test_every_field_can_be_set_at_once(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        changes: dict[str, Any] = {
            "frequency": "monthly",
            "scheduled_time": "23:45",
            "weekly_day": 6,
            "monthly_day": 31,
            **{f"stage_{n}_batch_size": 1000 for n in range(1, 7)},
            "within_stage_delay": 3600,
            "between_stage_delay": 0,
            **{f"stage_{n}_enabled": False for n in range(1, 8)},
            **{
                f"max_{name}_per_run": 7
                for name in ("keywords", "clusters", "ideas", "tasks", "content", "images")
            },
            "max_approvals_per_run": 0,
            "max_credits_per_run": 12.5,
            "ai_concurrency": 64,
            "max_in_article_images": 10,
        }
        response = await put_config(client, tenant, changes)
        assert response.status_code == 200, response.text
        assert response.json() == {"site_id": tenant.site_id, **DEFAULTS, **changes}

    async def test_an_empty_update_changes_nothing(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_config(client, tenant, {})
        assert response.status_code == 200
        assert response.json() == {"site_id": tenant.site_id, **DEFAULTS}


class TestWhatReferenceClientsSend:
    """The reference's clients talked to Django REST, which took a read body back and numbers as
    text: the same bodies are taken here, and still validated."""

    async def test_the_body_read_sent_back_as_it_is_changes_nothing(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await put_config(client, tenant, {"enabled": True, "frequency": "weekly"})
        read = await get_config(client, tenant)
        assert read["next_run_at"] is not None

        response = await put_config(client, tenant, read)

        assert response.status_code == 200, response.text
        assert response.json() == read
        assert await get_config(client, tenant) == read

    async def test_read_only_fields_are_ignored_whatever_they_say(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        other = await create_tenant(session_factory)

        response = await put_config(
            client,
            tenant,
            {
                "site_id": other.site_id,
                "last_run_at": "2020-01-01T00:00:00Z",
                "next_run_at": None,
                "notification_secret_set": True,
                "stage_2_batch_size": 3,
            },
        )

        assert response.status_code == 200, response.text
        expected = {"site_id": tenant.site_id, **DEFAULTS, "stage_2_batch_size": 3}
        assert response.json() == expected
        assert await get_config(client, other) == {"site_id": other.site_id, **DEFAULTS}

    async def test_numbers_as_text_and_a_time_with_seconds_are_taken(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)

        response = await put_config(
            client,
            tenant,
            {
                "scheduled_time": "03:30:00",
                "stage_1_batch_size": "50",
                "within_stage_delay": "0",
                "max_keywords_per_run": "100",
                "weekly_day": "4",
                "monthly_day": "15",
                "ai_concurrency": "8",
                "max_in_article_images": "3",
                "max_credits_per_run": "12.50",
            },
        )

        assert response.status_code == 200, response.text
        assert response.json() == {
            "site_id": tenant.site_id,
            **DEFAULTS,
            "scheduled_time": "03:30",
            "stage_1_batch_size": 50,
            "within_stage_delay": 0,
            "max_keywords_per_run": 100,
            "weekly_day": 4,
            "monthly_day": 15,
            "ai_concurrency": 8,
            "max_in_article_images": 3,
            "max_credits_per_run": 12.5,
        }


BAD_VALUES = [
    ({"stage_1_batch_size": 0}, "stage_1_batch_size"),
    ({"stage_6_batch_size": 1001}, "stage_6_batch_size"),
    ({"stage_2_batch_size": "twenty"}, "stage_2_batch_size"),
    ({"stage_2_batch_size": "1001"}, "stage_2_batch_size"),
    ({"stage_2_batch_size": "0"}, "stage_2_batch_size"),
    ({"stage_2_batch_size": "2.5"}, "stage_2_batch_size"),
    ({"stage_2_batch_size": " 20"}, "stage_2_batch_size"),
    ({"stage_2_batch_size": ""}, "stage_2_batch_size"),
    ({"max_tasks_per_run": "-1"}, "max_tasks_per_run"),
    ({"weekly_day": "7"}, "weekly_day"),
    ({"ai_concurrency": "9" * 5000}, "ai_concurrency"),
    ({"stage_3_batch_size": 2.5}, "stage_3_batch_size"),
    ({"within_stage_delay": -1}, "within_stage_delay"),
    ({"between_stage_delay": 3601}, "between_stage_delay"),
    ({"max_keywords_per_run": -1}, "max_keywords_per_run"),
    ({"max_approvals_per_run": -5}, "max_approvals_per_run"),
    ({"max_credits_per_run": -0.01}, "max_credits_per_run"),
    ({"max_credits_per_run": 1.234}, "max_credits_per_run"),
    ({"max_credits_per_run": "lots"}, "max_credits_per_run"),
    ({"ai_concurrency": 0}, "ai_concurrency"),
    ({"ai_concurrency": 65}, "ai_concurrency"),
    ({"max_in_article_images": 11}, "max_in_article_images"),
    ({"weekly_day": 7}, "weekly_day"),
    ({"monthly_day": 0}, "monthly_day"),
    ({"monthly_day": 32}, "monthly_day"),
    ({"frequency": "hourly"}, "frequency"),
    ({"scheduled_time": "25:00"}, "scheduled_time"),
    ({"scheduled_time": "02:60"}, "scheduled_time"),
    ({"scheduled_time": "2:00"}, "scheduled_time"),
    ({"scheduled_time": "02:00:30"}, "scheduled_time"),
    ({"scheduled_time": "24:00:00"}, "scheduled_time"),
    ({"scheduled_time": "02:00:00.000"}, "scheduled_time"),
    ({"enabled": "true"}, "enabled"),
    ({"scheduled_time": "noon"}, "scheduled_time"),
    ({"scheduled_time": 200}, "scheduled_time"),
    ({"enabled": "yes"}, "enabled"),
    ({"stage_4_enabled": 1}, "stage_4_enabled"),
    ({"enabled": None}, "enabled"),
    ({"scheduled_time": None}, "scheduled_time"),
    ({"stage_1_batch_size": None}, "stage_1_batch_size"),
    ({"colour": "blue"}, "colour"),
    ({"notification_secret": "too short"}, "notification_secret"),
    ({"notification_secret": "x" * 201}, "notification_secret"),
    ({"notification_secret": None}, "notification_secret"),
    ({"notification_secret": "sixteen chars \x00 and a NUL"}, "notification_secret"),
    ({"notification_url": 42}, "notification_url"),
    ({"notification_url": "https://example.com/" + "a" * 2000}, "notification_url"),
    # A valid field next to a bad one is not applied either.
    ({"stage_1_batch_size": 10, "enabled": True, "frequency": "yearly"}, "frequency"),
]


class TestBadValuesAreRefusedAndChangeNothing:
    @pytest.mark.parametrize(("body", "field"), BAD_VALUES, ids=lambda v: str(v))
    async def test_a_bad_value_is_a_400_naming_the_field(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        body: dict[str, Any],
        field: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        before = await get_config(client, tenant)

        response = await put_config(client, tenant, body)

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"]
        assert field in [problem["field"] for problem in error["details"]]
        assert await get_config(client, tenant) == before

    @pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"enabled"'])
    async def test_a_body_that_is_not_a_json_object_is_a_400(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        content: bytes,
    ) -> None:
        tenant = await create_tenant(session_factory)
        before = await get_config(client, tenant)
        response = await client.put(
            UPDATE,
            params={"site_id": tenant.site_id},
            content=content,
            headers={**tenant.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_input"
        assert await get_config(client, tenant) == before

    async def test_a_missing_site_id_is_a_400(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await client.get(CONFIG, headers=tenant.headers)
        assert response.status_code == 400
        assert "site_id" in response.json()["error"]["message"]


class TestNextRunAtFollowsTheSchedule:
    async def test_enabling_schedules_the_next_run_at_the_local_time_of_the_site(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="Asia/Tokyo")
        response = await put_config(client, tenant, {"enabled": True, "scheduled_time": "09:15"})
        assert response.status_code == 200, response.text

        due = parse(response.json()["next_run_at"])
        local = due.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (local.hour, local.minute) == (9, 15)
        assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=1)

    async def test_a_weekly_schedule_falls_on_its_weekday(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="America/New_York")
        response = await put_config(
            client,
            tenant,
            {"enabled": True, "frequency": "weekly", "weekly_day": 2, "scheduled_time": "18:00"},
        )
        due = parse(response.json()["next_run_at"])
        local = due.astimezone(ZoneInfo("America/New_York"))
        assert (local.weekday(), local.hour, local.minute) == (2, 18, 0)
        assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=7)

    async def test_disabling_clears_the_next_run(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        enabled = await put_config(client, tenant, {"enabled": True})
        assert enabled.json()["next_run_at"] is not None
        disabled = await put_config(client, tenant, {"enabled": False})
        assert disabled.json()["next_run_at"] is None

    async def test_a_change_of_schedule_reschedules_but_resending_it_keeps_a_due_run(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, site_timezone="Europe/Berlin")
        await put_config(client, tenant, {"enabled": True, "scheduled_time": "02:00"})
        overdue = datetime(2020, 1, 1, 1, 0, tzinfo=UTC)
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(AutomationConfig)
                .where(AutomationConfig.site_id == tenant.site_id)
                .values(next_run_at=overdue)
            )

        # Saving the dialog again with the same schedule (and another change) keeps the due run.
        same = await put_config(
            client, tenant, {"enabled": True, "scheduled_time": "02:00", "ai_concurrency": 2}
        )
        assert parse(same.json()["next_run_at"]) == overdue

        moved = await put_config(client, tenant, {"scheduled_time": "04:30"})
        due = parse(moved.json()["next_run_at"])
        local = due.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (4, 30)
        assert due > datetime.now(UTC)


SECRET = "a-secret-of-more-than-16-characters"


@pytest.fixture
def open_urls(app: FastAPI, settings: Settings) -> Iterator[None]:
    """The API allows private and plain-http URLs, as for a receiver on 127.0.0.1."""
    # Not monkeypatch.setattr: its undo deletes an attribute of starlette's `State`.
    app.state.settings = settings.model_copy(
        update={"allow_private_urls": True, "allow_http_urls": True}
    )
    yield
    app.state.settings = settings


class TestRunNotificationSettings:
    async def test_the_secret_is_write_only(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        open_urls: None,
    ) -> None:
        tenant = await create_tenant(session_factory)
        url = "http://127.0.0.1:9/hooks/runs"
        response = await put_config(
            client, tenant, {"notification_url": url, "notification_secret": SECRET}
        )
        assert response.status_code == 200, response.text
        expected = {
            "site_id": tenant.site_id,
            **DEFAULTS,
            "notification_url": url,
            "notification_secret_set": True,
        }
        assert response.json() == expected
        assert await get_config(client, tenant) == expected
        assert SECRET not in response.text
        async with session_factory() as session:
            stored = await session.scalar(
                select(AutomationConfig.notification_secret).where(
                    AutomationConfig.site_id == tenant.site_id
                )
            )
        assert stored == SECRET

    async def test_a_new_url_keeps_the_secret_and_a_new_secret_rotates_it(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        open_urls: None,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await put_config(
            client,
            tenant,
            {"notification_url": "http://127.0.0.1:9/a", "notification_secret": SECRET},
        )
        moved = await put_config(client, tenant, {"notification_url": "http://127.0.0.1:9/b"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["notification_secret_set"] is True
        rotated = await put_config(client, tenant, {"notification_secret": "another-secret-0123"})
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["notification_url"] == "http://127.0.0.1:9/b"

    @pytest.mark.parametrize("cleared", [None, ""])
    async def test_null_or_empty_clears_the_url_and_forgets_the_secret(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        open_urls: None,
        cleared: str | None,
    ) -> None:
        tenant = await create_tenant(session_factory)
        await put_config(
            client,
            tenant,
            {"notification_url": "http://127.0.0.1:9/a", "notification_secret": SECRET},
        )
        response = await put_config(client, tenant, {"notification_url": cleared})
        assert response.status_code == 200, response.text
        assert response.json() == {"site_id": tenant.site_id, **DEFAULTS}

    async def test_a_url_without_any_secret_is_refused(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        open_urls: None,
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_config(client, tenant, {"notification_url": "http://127.0.0.1:9/a"})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [problem["field"] for problem in error["details"]] == ["notification_secret"]
        assert await get_config(client, tenant) == {"site_id": tenant.site_id, **DEFAULTS}

    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hooks",
            "https://10.1.2.3/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hooks",
            "https://localhost/hooks",
            "http://example.com/hooks",
            "ftp://example.com/hooks",
            "https://user:pass@example.com/hooks",
            "not a url",
        ],
    )
    async def test_a_url_that_is_not_public_https_is_refused_naming_the_field(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        url: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_config(
            client,
            tenant,
            {"notification_url": url, "notification_secret": SECRET, "ai_concurrency": 2},
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_url"
        assert "notification_url" in error["message"]
        assert [problem["field"] for problem in error["details"]] == ["notification_url"]
        assert await get_config(client, tenant) == {"site_id": tenant.site_id, **DEFAULTS}


@dataclass(frozen=True)
class Schedule:
    enabled: bool = True
    frequency: str = "daily"
    scheduled_time: time = time(2, 0)
    weekly_day: int = 0
    monthly_day: int = 1


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class TestNextRunAt:
    def test_a_disabled_schedule_has_no_next_run(self) -> None:
        assert next_run_at(Schedule(enabled=False), "UTC", utc(2024, 6, 1)) is None

    def test_daily_is_today_when_the_time_is_still_ahead(self) -> None:
        assert next_run_at(Schedule(), "UTC", utc(2024, 6, 1, 1, 59)) == utc(2024, 6, 1, 2, 0)

    @pytest.mark.parametrize("now", [utc(2024, 6, 1, 2, 0), utc(2024, 6, 1, 13, 0)])
    def test_daily_is_tomorrow_once_the_time_is_reached(self, now: datetime) -> None:
        assert next_run_at(Schedule(), "UTC", now) == utc(2024, 6, 2, 2, 0)

    def test_the_answer_is_an_aware_utc_datetime(self) -> None:
        schedule = Schedule(scheduled_time=time(9, 0))
        due = next_run_at(schedule, "Asia/Tokyo", utc(2024, 5, 31, 23, 0))
        assert due == utc(2024, 6, 1, 0, 0)
        assert due is not None
        assert due.tzinfo == UTC

    def test_the_local_time_is_read_in_the_sites_time_zone(self) -> None:
        # 02:00 in Tokyo (UTC+9) is 17:00 UTC the day before.
        due = next_run_at(Schedule(), "Asia/Tokyo", utc(2024, 6, 1, 12, 0))
        assert due == utc(2024, 6, 1, 17, 0)

    @pytest.mark.parametrize(
        ("weekly_day", "expected"),
        [(0, utc(2024, 6, 10, 2, 0)), (4, utc(2024, 6, 7, 2, 0)), (6, utc(2024, 6, 9, 2, 0))],
    )
    def test_weekly_runs_on_its_weekday(self, weekly_day: int, expected: datetime) -> None:
        # 2024-06-03 is a Monday, after 02:00.
        schedule = Schedule(frequency="weekly", weekly_day=weekly_day)
        assert next_run_at(schedule, "UTC", utc(2024, 6, 3, 10, 0)) == expected

    def test_monthly_runs_on_the_first_by_default(self) -> None:
        schedule = Schedule(frequency="monthly")
        assert next_run_at(schedule, "UTC", utc(2024, 1, 15)) == utc(2024, 2, 1, 2, 0)

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (utc(2024, 2, 1), utc(2024, 2, 29, 2, 0)),
            (utc(2023, 2, 1), utc(2023, 2, 28, 2, 0)),
            (utc(2024, 2, 29, 3, 0), utc(2024, 3, 31, 2, 0)),
            (utc(2024, 4, 1), utc(2024, 4, 30, 2, 0)),
        ],
    )
    def test_day_31_is_the_last_day_of_a_shorter_month(
        self, now: datetime, expected: datetime
    ) -> None:
        schedule = Schedule(frequency="monthly", monthly_day=31)
        assert next_run_at(schedule, "UTC", now) == expected

    @pytest.mark.parametrize(
        ("zone", "day", "expected"),
        [
            # Berlin jumps from 02:00 to 03:00 CEST (01:00 UTC) on 2024-03-31.
            ("Europe/Berlin", (2024, 3, 31), utc(2024, 3, 31, 1, 0)),
            # New York jumps from 02:00 to 03:00 EDT (07:00 UTC) on 2024-03-10.
            ("America/New_York", (2024, 3, 10), utc(2024, 3, 10, 7, 0)),
        ],
    )
    def test_a_time_in_the_spring_forward_gap_runs_when_the_gap_ends(
        self, zone: str, day: tuple[int, int, int], expected: datetime
    ) -> None:
        schedule = Schedule(scheduled_time=time(2, 30))
        assert next_run_at(schedule, zone, utc(*day) - timedelta(hours=12)) == expected
        # The day after, 02:30 exists again.
        local_next = datetime(*day, 2, 30, tzinfo=ZoneInfo(zone)) + timedelta(days=1)
        assert next_run_at(schedule, zone, expected) == local_next.astimezone(UTC)

    @pytest.mark.parametrize(
        ("zone", "at", "day", "first", "next_day"),
        [
            # Berlin: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
            (
                "Europe/Berlin",
                time(2, 30),
                (2024, 10, 27),
                utc(2024, 10, 27, 0, 30),
                utc(2024, 10, 28, 1, 30),
            ),
            # New York: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
            (
                "America/New_York",
                time(1, 30),
                (2024, 11, 3),
                utc(2024, 11, 3, 5, 30),
                utc(2024, 11, 4, 6, 30),
            ),
        ],
    )
    def test_an_ambiguous_fall_back_time_runs_once_at_its_first_occurrence(
        self,
        zone: str,
        at: time,
        day: tuple[int, int, int],
        first: datetime,
        next_day: datetime,
    ) -> None:
        schedule = Schedule(scheduled_time=at)
        assert next_run_at(schedule, zone, utc(*day) - timedelta(hours=12)) == first
        # Between the two occurrences the next run is the next day's, not the repeat.
        assert next_run_at(schedule, zone, first + timedelta(minutes=30)) == next_day

    def test_a_weekly_run_keeps_its_local_time_across_a_dst_change(self) -> None:
        schedule = Schedule(frequency="weekly", weekly_day=0, scheduled_time=time(9, 0))
        # Monday 2024-03-25 09:00 CET is 08:00 UTC; a week later 09:00 CEST is 07:00 UTC.
        assert next_run_at(schedule, "Europe/Berlin", utc(2024, 3, 25, 8, 0)) == utc(
            2024, 4, 1, 7, 0
        )

    def test_now_must_be_aware(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            next_run_at(Schedule(), "UTC", datetime(2024, 6, 1))
