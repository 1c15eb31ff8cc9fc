"""The automation page: configure, start, steer and watch a run, then read it back.

The live server runs no worker: a test that needs the run to progress runs a burst worker in
this process (`tests.engine.work`), on the same event loop as the server.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.engine import feed, work
from tests.factories import Tenant, create_tenant

STAGES = range(1, 8)


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory, name="Acme")


async def sign_in(page: Page, live_server: str, tenant: Tenant, path: str) -> None:
    await page.goto(f"{live_server}{path}")
    await page.get_by_label("Email").fill(tenant.email)
    await page.get_by_label("Password").fill(tenant.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


class TestRunToTheEnd:
    async def test_configure_run_and_follow_a_run_to_its_detail_page(
        self, page: Page, live_server: str, tenant: Tenant, settings: Settings
    ) -> None:
        await sign_in(page, live_server, tenant, "/keywords")
        # One topic, so that the run writes a few articles and stays within the 100 credits.
        pasted = "best running shoes\nrunning shoes for beginners"
        await page.get_by_label("Keywords, one per line").fill(pasted)
        await page.get_by_role("button", name="Add keywords").click()
        await expect(page.get_by_test_id("import-result")).to_contain_text("2 added")

        await page.get_by_role("link", name="Automation").click()
        await expect(page.get_by_role("heading", name="Automation", exact=True)).to_be_visible()
        await expect(page.get_by_text("AI provider: local (built in, no network)")).to_be_visible()
        await expect(page.get_by_test_id("stage-1-pending")).to_have_text("2")
        await expect(page.get_by_test_id("run-status")).to_have_text("never run")
        await expect(page.get_by_test_id("estimate-sufficient")).to_have_text("Sufficient")
        await expect(page.get_by_role("button", name="Pause")).to_be_disabled()

        await page.get_by_role("button", name="Configure").click()
        dialog = page.get_by_role("dialog", name="Automation configuration")
        await dialog.get_by_label("Stage 1 batch size").fill("0")
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(dialog.get_by_role("alert")).to_contain_text(
            "Batch size of stage 1 must be 1 or more"
        )
        await expect(dialog.get_by_text("Must be 1 or more.")).to_be_visible()
        await dialog.get_by_label("Stage 1 batch size").fill("20")
        await dialog.get_by_label("Delay between batches (seconds)").fill("0")
        await dialog.get_by_label("Delay between stages (seconds)").fill("0")
        await dialog.get_by_label("In-article images per article").fill("1")
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(dialog).to_be_hidden()
        await page.get_by_role("button", name="Configure").click()
        await expect(dialog.get_by_label("Delay between stages (seconds)")).to_have_value("0")
        await dialog.get_by_role("button", name="Close").click()
        await expect(dialog).to_be_hidden()

        await page.get_by_role("button", name="Run now").click()
        await expect(page.get_by_test_id("run-status")).to_have_text("running")
        await expect(page.get_by_role("button", name="Run now")).to_be_disabled()
        await expect(page.get_by_test_id("log-mode")).to_have_text("live")
        await work(settings)
        await expect(page.get_by_test_id("run-status")).to_have_text("completed")
        await expect(page.get_by_test_id("global-percentage")).to_have_text("100%")
        for n in STAGES:
            await expect(page.get_by_test_id(f"stage-{n}-status")).to_have_text("completed")
        await expect(page.get_by_test_id("stage-1-keywords_processed")).to_have_text("2")
        await expect(page.get_by_role("log", name="Activity log")).to_contain_text("Stage 7")
        await expect(page.get_by_role("button", name="Run now")).to_be_enabled()
        await expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
        rows = page.get_by_role("table", name="Run history").get_by_role("row")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(1)).to_contain_text("completed")
        await expect(rows.nth(1)).to_contain_text("manual")

        await page.get_by_label("Log lines").select_option("50")
        await expect(page.get_by_role("log", name="Activity log")).to_contain_text("Stage 7")

        await rows.nth(1).get_by_role("link").click()
        await expect(page.get_by_test_id("stopped-reason")).to_contain_text("Stopped: completed")
        await expect(page.get_by_test_id("detail-status")).to_have_text("completed")
        stage_1 = page.get_by_role("table", name="Stage 1 result")
        await expect(stage_1.get_by_role("row", name="Keywords clustered")).to_contain_text("2")
        for n in STAGES:
            await expect(page.get_by_test_id(f"detail-stage-{n}-status")).to_have_text("completed")
        await expect(page.get_by_role("log", name="Activity log")).to_contain_text("Stage 7")


class TestSteering:
    async def test_pause_resume_then_cancel_frees_the_site(
        self, page: Page, live_server: str, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        await feed(client, tenant, 3)
        await sign_in(page, live_server, tenant, "/automation")
        run_now = page.get_by_role("button", name="Run now")
        pause = page.get_by_role("button", name="Pause")
        resume = page.get_by_role("button", name="Resume")
        cancel = page.get_by_role("button", name="Cancel")
        status = page.get_by_test_id("run-status")

        await run_now.click()
        await expect(status).to_have_text("running")
        await expect(pause).to_be_enabled()
        await expect(resume).to_be_disabled()
        await expect(cancel).to_be_enabled()

        await pause.click()
        await expect(status).to_have_text("paused")
        await expect(resume).to_be_enabled()
        await expect(pause).to_be_disabled()
        await expect(run_now).to_be_disabled()
        await expect(page.get_by_role("log", name="Activity log")).to_contain_text("paused")

        await resume.click()
        await expect(status).to_have_text("running")
        await expect(pause).to_be_enabled()

        await cancel.click()
        question = page.get_by_role("alertdialog", name="Cancel this run?")
        await question.get_by_role("button", name="Keep running").click()
        await expect(question).to_be_hidden()
        await expect(status).to_have_text("running")
        await cancel.click()
        await question.get_by_role("button", name="Cancel the run").click()
        await expect(status).to_have_text("cancelled")
        await expect(run_now).to_be_enabled()
        await expect(cancel).to_be_disabled()
        await expect(page.get_by_role("log", name="Activity log")).to_contain_text("cancel")

        await page.get_by_role("table", name="Run history").get_by_role("link").click()
        await expect(page.get_by_test_id("stopped-reason")).to_contain_text("Stopped: cancelled")

    async def test_run_now_without_enough_credits_shows_the_reason(
        self,
        page: Page,
        live_server: str,
        session_factory: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
    ) -> None:
        poor = await create_tenant(session_factory, credits=Decimal(1))
        await feed(client, poor, 10)
        await sign_in(page, live_server, poor, "/automation")
        await expect(page.get_by_test_id("estimate-sufficient")).to_contain_text("Insufficient")
        await page.get_by_role("button", name="Run now").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("Insufficient credits: a run needs")
        await expect(alert).to_have_attribute("data-code", "insufficient_credits")
        await expect(page.get_by_test_id("run-status")).to_have_text("never run")
