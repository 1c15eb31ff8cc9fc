"""The run history's filters and a run's stage results, at a desktop's width and a phone's.

The filters live in the page's query string (a reload or a shared link shows the same runs),
and their days are days of the site's calendar.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import AutomationRun, RunStatus, TriggerType
from app.runs.events import RunLog
from tests.builders import create_automation_run
from tests.engine import configure, feed, start, work
from tests.factories import Tenant, create_tenant

from .test_layout import WIDTHS, check, open_page

# New York is UTC-5 in January: "b" started on 19 January there, "c" on 20 January, although
# in UTC "b" started on the 20th and "c" on the 21st.
RUNS = (
    ("a", RunStatus.COMPLETED, TriggerType.MANUAL, "2026-01-10T12:00:00+00:00"),
    ("b", RunStatus.CANCELLED, TriggerType.MANUAL, "2026-01-20T03:00:00+00:00"),
    ("c", RunStatus.FAILED, TriggerType.SCHEDULED, "2026-01-21T04:30:00+00:00"),
    ("d", RunStatus.COMPLETED, TriggerType.SCHEDULED, "2026-01-25T08:30:00+00:00"),
)


# Sets the status select, then the first day's input (through the native setter, as typing
# does, so that React sees the change), each with the event React listens to.
CHANGE_TWO_AT_ONCE = """history => {
    const status = history.querySelector("select");
    status.value = "failed";
    status.dispatchEvent(new Event("change", { bubbles: true }));
    const day = history.querySelector('input[type="date"]');
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
    setter.call(day, "2026-01-19");
    day.dispatchEvent(new Event("input", { bubbles: true }));
}"""


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory, name="Acme", site_timezone="America/New_York")


@pytest.fixture
async def runs(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant
) -> dict[str, str]:
    """The four runs of RUNS: run_id → name."""
    names = {}
    for name, status, trigger, started in RUNS:
        run = await create_automation_run(
            session_factory, tenant, RunLog(settings.log_path), status=status
        )
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(AutomationRun)
                .where(AutomationRun.id == run.id)
                .values(trigger_type=trigger, started_at=datetime.fromisoformat(started))
            )
        names[run.run_id] = name
    return names


async def shown(page: Page, runs: dict[str, str], count: int) -> list[str]:
    """The names of the runs the history lists, once it lists `count` of them."""
    rows = page.get_by_role("table", name="Run history").locator("tbody tr")
    await expect(rows).to_have_count(count)
    ids = [await row.get_attribute("data-testid") or "" for row in await rows.all()]
    return [runs[i.removeprefix("history-")] for i in ids]


class TestHistoryFilters:
    async def test_filter_by_status_trigger_and_days_and_keep_them_in_the_url(
        self,
        browser: Browser,
        live_server: str,
        tenant: Tenant,
        runs: dict[str, str],
        screens: list[Path],
    ) -> None:
        for width in WIDTHS:
            page = await open_page(browser, width, tenant.api_key)
            try:
                await page.goto(f"{live_server}/automation")
                history = page.get_by_role("region", name="Run history", exact=True)
                status = history.get_by_label("Status")
                trigger = history.get_by_label("Started by")
                first_day = history.get_by_label("Started from")
                last_day = history.get_by_label("Started until")
                assert await shown(page, runs, 4) == ["d", "c", "b", "a"]
                await expect(history.get_by_role("button", name="Clear filters")).to_have_count(0)

                await status.select_option(label="Completed")
                assert await shown(page, runs, 2) == ["d", "a"]
                await expect(history.get_by_test_id("history-count")).to_have_text(
                    "2 runs match the filters."
                )
                await trigger.select_option(label="Schedule")
                assert await shown(page, runs, 1) == ["d"]
                assert re.search(r"[?&]status=completed&trigger=scheduled$", page.url)

                # A reload keeps them, in the controls as in the list.
                await page.reload()
                assert await shown(page, runs, 1) == ["d"]
                await expect(status).to_have_value("completed")
                await expect(trigger).to_have_value("scheduled")

                await history.get_by_role("button", name="Clear filters").click()
                assert await shown(page, runs, 4) == ["d", "c", "b", "a"]
                assert "?" not in page.url

                # Days of the site's calendar (New York), the last one included whole.
                await first_day.fill("2026-01-20")
                await last_day.fill("2026-01-20")
                assert await shown(page, runs, 1) == ["c"]
                await expect(history).to_contain_text("Days in the site's time zone")
                await first_day.fill("2026-01-19")
                assert await shown(page, runs, 2) == ["c", "b"]
                await check(page, "history-filters", width, screens)

                await first_day.fill("2026-01-21")
                await expect(history.get_by_role("alert")).to_have_text(
                    "The first day is after the last day: no run can match."
                )
                await expect(page.get_by_role("table", name="Run history")).to_have_count(0)

                await status.select_option(label="Running")
                await first_day.fill("")
                await last_day.fill("")
                await expect(history.get_by_test_id("history-count")).to_have_text(
                    "No run matches the filters."
                )
                await expect(page.get_by_role("table", name="Run history")).to_have_count(0)
                await check(page, "history-no-match", width, screens)

                # A link names its filters; what the history cannot filter by is ignored.
                await page.goto(f"{live_server}/automation?status=cancelled")
                assert await shown(page, runs, 1) == ["b"]
                await page.goto(f"{live_server}/automation?status=done&from=2026-02-30")
                assert await shown(page, runs, 4) == ["d", "c", "b", "a"]
                await expect(status).to_have_value("")
            finally:
                await page.context.close()

    async def test_two_changes_made_before_the_page_renders_again_both_stay(
        self, browser: Browser, live_server: str, tenant: Tenant, runs: dict[str, str]
    ) -> None:
        """A status chosen, then a day typed at once, in one task: the router renders the
        first change later (in a transition), so the second must start from the address as it
        is, not from the page as last rendered, or it drops the status."""
        page = await open_page(browser, WIDTHS[0], tenant.api_key)
        try:
            await page.goto(f"{live_server}/automation")
            history = page.get_by_role("region", name="Run history", exact=True)
            assert await shown(page, runs, 4) == ["d", "c", "b", "a"]
            await history.evaluate(CHANGE_TWO_AT_ONCE)
            assert await shown(page, runs, 1) == ["c"]
            assert re.search(r"[?&]status=failed&from=2026-01-19$", page.url)
            await expect(history.get_by_label("Status")).to_have_value("failed")
        finally:
            await page.context.close()


class TestStageResults:
    async def test_articles_left_in_review_then_a_run_with_only_approvals_to_do(
        self,
        browser: Browser,
        live_server: str,
        session_factory: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        settings: Settings,
        screens: list[Path],
    ) -> None:
        tenant = await create_tenant(session_factory, name="Acme", credits=Decimal(1000))
        await feed(client, tenant, 3)
        await configure(client, tenant, max_in_article_images=0)
        await auto_approval(client, tenant, on=False)
        reviewed = await start(client, tenant)
        await work(settings)
        # The articles wait in review; with auto-approval on, a run has only stage 7 to do.
        await auto_approval(client, tenant, on=True)
        approving = await start(client, tenant)
        await work(settings)
        ids = await handled(client, tenant, reviewed)
        assert len(ids) > 6, "enough articles to fold the list"
        # Approved concurrently: in the order they were done.
        assert sorted(await handled(client, tenant, approving)) == sorted(ids)

        for width in WIDTHS:
            page = await open_page(browser, width, tenant.api_key)
            try:
                await page.goto(f"{live_server}/automation/runs/{reviewed}")
                stage_7 = page.get_by_role("table", name="Stage 7 result")
                await expect(stage_7.get_by_role("row", name="Awaiting review")).to_contain_text(
                    str(len(ids))
                )
                # No row is named by its key.
                rows = page.get_by_role("region", name="Stage results").get_by_role("row")
                await expect(rows.filter(has_text=re.compile("[a-z]_[a-z]"))).to_have_count(0)
                articles = page.get_by_test_id("detail-stage-7-articles")
                links = articles.get_by_role("link")
                await expect(links.filter(visible=True)).to_have_count(5)
                await articles.get_by_text(f"Show all {len(ids)}").click()
                await expect(links.filter(visible=True)).to_have_count(len(ids))
                await check(page, "run-detail-review", width, screens)
                await links.first.click()
                await expect(page).to_have_url(f"{live_server}/content/{ids[0]}")

                await page.goto(f"{live_server}/automation/runs/{approving}")
                for n in range(1, 7):
                    await expect(page.get_by_test_id(f"detail-stage-{n}-skipped")).to_contain_text(
                        "Skipped: nothing to do"
                    )
                    await expect(page.get_by_test_id(f"detail-stage-{n}-status")).to_have_text(
                        "skipped"
                    )
                stage_7 = page.get_by_role("table", name="Stage 7 result")
                await expect(stage_7.get_by_role("row", name="Approved")).to_contain_text(
                    str(len(ids))
                )
                await check(page, "run-detail-skipped", width, screens)
            finally:
                await page.context.close()


async def auto_approval(client: httpx.AsyncClient, tenant: Tenant, *, on: bool) -> None:
    answer = await client.put(
        "/api/v1/publishing/settings/",
        params={"site_id": tenant.site_id},
        json={"auto_approval_enabled": on},
        headers=tenant.headers,
    )
    assert answer.status_code == 200, answer.text


async def handled(client: httpx.AsyncClient, tenant: Tenant, run_id: str) -> list[int]:
    """The articles stage 7 of the run lists."""
    answer = await client.get(f"/api/v1/automation/runs/{run_id}/", headers=tenant.headers)
    ids: list[int] = answer.json()["stage_7_result"]["content_ids"]
    return ids
