"""The automation page: configure, start, steer and watch a run, then read it back.

The live server runs no worker: a test that needs the run to progress runs a burst worker in
this process (`tests.engine.work`), on the same event loop as the server.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.ledger import top_up
from app.db import unit_of_work
from tests.engine import configure, feed, start, work
from tests.factories import Tenant, create_tenant

from .test_layout import WIDTHS, check, open_page

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

        await (
            page.get_by_role("navigation", name="Main")
            .get_by_role("link", name="Automation")
            .click()
        )
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
        await expect(dialog.get_by_text("Must be 1 or more.", exact=True)).to_be_visible()
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
        await expect(page.get_by_test_id("run-announcer")).to_have_text("Run running")
        # The action's message shows, then fades on its own.
        toast = page.get_by_test_id("toast")
        await expect(toast).to_have_text("Automation started")
        await expect(page.get_by_role("button", name="Run now")).to_be_disabled()
        await expect(page.get_by_test_id("log-mode")).to_have_text("live")
        await expect(page.get_by_test_id("run-spent")).to_have_text("0 credits")
        await work(settings)
        await expect(page.get_by_test_id("run-status")).to_have_text("completed")
        await expect(page.get_by_test_id("run-announcer")).to_have_text("Run completed")
        await expect(page.get_by_test_id("global-percentage")).to_have_text("100%")
        await expect(page.get_by_role("progressbar", name="Overall progress")).to_have_attribute(
            "aria-valuenow", "100"
        )
        # The log is no live region: the announcer says the status once per change.
        log = page.get_by_role("log", name="Activity log")
        await expect(log).to_have_attribute("aria-live", "off")
        for n in STAGES:
            await expect(page.get_by_test_id(f"stage-{n}-status")).to_have_text("completed")
        await expect(page.get_by_test_id("stage-1-keywords_processed")).to_have_text("2")
        await expect(log).to_contain_text("Stage 7")
        await expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
        # Run now is back, unless nothing is left to do (then it says why).
        run_now = page.get_by_role("button", name="Run now")
        if await page.get_by_test_id("run-now-why").count():
            await expect(run_now).to_be_disabled()
        else:
            await expect(run_now).to_be_enabled()
        await expect(toast).to_be_hidden(timeout=15_000)
        rows = page.get_by_role("table", name="Run history").get_by_role("row")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(1)).to_contain_text("completed")
        await expect(rows.nth(1)).to_contain_text("manual")

        # One screen, one set of numbers: the top bar's credits, the balance, the run's spend
        # and its history row agree without a reload.
        spent = (await page.get_by_test_id("run-credits").text_content() or "").split()[0]
        await expect(page.get_by_test_id("history-credits")).to_have_text(spent)
        await expect(page.get_by_test_id("credits")).not_to_have_text("Acme · 100 credits")
        balance = await page.get_by_test_id("balance").text_content() or ""
        await expect(page.get_by_test_id("credits")).to_have_text(f"Acme · {balance}")
        assert float(spent) > 0

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
        # 3 topics make 9 articles: with 3 images each the estimate (97 credits, 116 with the
        # buffer) is more than the 100 credits; with 2, 75 (89). The delays stay the defaults,
        # so that the run is still on when it is paused.
        await configure(
            client, tenant, max_in_article_images=1, within_stage_delay=3, between_stage_delay=5
        )
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


class TestConfigDialog:
    async def test_schedule_fields_follow_the_frequency_and_unsaved_edits_are_guarded(
        self, page: Page, live_server: str, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        await feed(client, tenant, 3)
        await sign_in(page, live_server, tenant, "/automation")
        await expect(page.get_by_test_id("next-run")).to_have_text("none scheduled")
        await page.get_by_role("button", name="Configure").click()
        dialog = page.get_by_role("dialog", name="Automation configuration")
        weekday = dialog.get_by_label("Day of the week")
        month_day = dialog.get_by_label("Day of the month")
        await expect(weekday).to_have_count(0)
        await expect(month_day).to_have_count(0)
        await dialog.get_by_label("Frequency").select_option("monthly")
        await expect(month_day).to_be_visible()
        await expect(weekday).to_have_count(0)
        await dialog.get_by_label("Frequency").select_option("weekly")
        await expect(weekday).to_be_visible()
        await expect(month_day).to_have_count(0)

        # Stage rows carry their names, what waits, and how many runs a limit takes.
        stage_1 = dialog.get_by_test_id("config-stage-1")
        await expect(stage_1).to_contain_text("Keywords → Clusters")
        hint = dialog.get_by_test_id("config-stage-1-hint")
        await expect(hint).to_have_text("Current pending: 3 keywords · all in one run")
        await dialog.get_by_label("Stage 1 per-run limit").fill("2")
        await expect(hint).to_have_text("Current pending: 3 keywords · ≈ 2 runs to process all")

        # Escape with unsaved edits asks; keep editing keeps them.
        await page.keyboard.press("Escape")
        bar = dialog.get_by_role("alertdialog", name="Unsaved changes")
        await expect(bar).to_be_visible()
        await bar.get_by_role("button", name="Keep editing").click()
        await expect(bar).to_be_hidden()
        await expect(dialog.get_by_label("Stage 1 per-run limit")).to_have_value("2")
        # Close asks too; discarding drops the edits.
        await dialog.get_by_role("button", name="Close").click()
        await bar.get_by_role("button", name="Discard changes").click()
        await expect(dialog).to_be_hidden()
        await page.get_by_role("button", name="Configure").click()
        await expect(dialog.get_by_label("Stage 1 per-run limit")).to_have_value("0")

        await dialog.get_by_label("Run on a schedule").check()
        await dialog.get_by_label("Frequency").select_option("weekly")
        await weekday.select_option("Tuesday")
        await dialog.get_by_label("Time (site time zone)").fill("03:30")
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(dialog).to_be_hidden()
        await expect(page.get_by_test_id("schedule")).to_contain_text(
            "Scheduled weekly on Tuesday at 03:30 (UTC time)"
        )
        await expect(page.get_by_test_id("next-run")).to_contain_text("03:30")
        await page.get_by_role("button", name="Configure").click()
        await expect(dialog.get_by_test_id("config-next-run")).to_contain_text("03:30 (UTC time)")
        # Nothing changed: Close closes at once.
        await dialog.get_by_role("button", name="Close").click()
        await expect(dialog).to_be_hidden()


class TestLiveNumbers:
    async def test_a_progress_event_updates_the_history_row_of_the_run(
        self, page: Page, live_server: str, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        await feed(client, tenant, 2)
        run_id = await start(client, tenant)
        answer = await client.get(
            f"/api/v1/automation/run_progress/?site_id={tenant.site_id}", headers=tenant.headers
        )
        progress = answer.json()
        progress["metrics"]["credits_used"] = 12.5
        progress["metrics"]["duration_seconds"] = 246
        progress["run"]["current_stage"] = 4
        # The stream as the server sends it, one progress event (no worker runs here).
        event = f"id: 1\nevent: progress\ndata: {json.dumps(progress)}\n\n"

        async def one_event(route: Route) -> None:
            await route.fulfill(status=200, content_type="text/event-stream", body=event)

        await page.route("**/automation/runs/*/events", one_event)
        await sign_in(page, live_server, tenant, "/automation")
        # The history is not polled: only the event can have put these figures in its row.
        row = page.get_by_test_id(f"history-{run_id}")
        await expect(row.get_by_test_id("history-credits")).to_have_text("12.5")
        await expect(row).to_contain_text("4 of 7")
        # Its time so far is the run's own (the server's clock), as the run card says it.
        await expect(row).to_contain_text("4 min 6 s so far")
        await expect(page.get_by_test_id("run-duration")).to_have_text("4 min 6 s")

    async def test_a_progress_event_that_spends_refreshes_the_top_bars_credits(
        self,
        page: Page,
        live_server: str,
        tenant: Tenant,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        await feed(client, tenant, 2)
        run_id = await start(client, tenant)
        answer = await client.get(
            f"/api/v1/automation/run_progress/?site_id={tenant.site_id}", headers=tenant.headers
        )
        progress = answer.json()
        progress["metrics"]["credits_used"] = 12.5
        event = f"id: 1\nevent: progress\ndata: {json.dumps(progress)}\n\n"
        # Each page's stream answers only once the balance has changed behind the page's back.
        gate = {"open": asyncio.Event()}

        async def held_event(route: Route) -> None:
            await gate["open"].wait()
            await route.fulfill(status=200, content_type="text/event-stream", body=event)

        await page.route("**/automation/runs/*/events", held_event)
        await sign_in(page, live_server, tenant, "/automation")
        credits = page.get_by_test_id("credits")
        for n, path in enumerate(("/automation", f"/automation/runs/{run_id}")):
            gate["open"] = asyncio.Event()
            await page.goto(f"{live_server}{path}")
            await expect(credits).to_have_text(re.compile(r"^Acme · [\d,.]+ credits$"))
            shown = Decimal(re.sub(r"[^\d.]", "", await credits.text_content() or ""))
            async with unit_of_work(session_factory) as session:
                await top_up(
                    session,
                    account_id=tenant.account_id,
                    amount=Decimal(50),
                    idempotency_key=f"e2e-top-up-{n}",
                )
            # Nothing else reads the account again: only the event can bring the new balance.
            gate["open"].set()
            await expect(credits).to_have_text(f"Acme · {shown + 50:f} credits")

    async def test_the_time_left_shows_under_the_progress_bar(
        self,
        browser: Browser,
        live_server: str,
        tenant: Tenant,
        client: httpx.AsyncClient,
        screens: list[Path],
    ) -> None:
        await feed(client, tenant, 2)
        await start(client, tenant)
        answer = await client.get(
            f"/api/v1/automation/run_progress/?site_id={tenant.site_id}", headers=tenant.headers
        )
        progress = answer.json()
        progress["global_progress"]["eta_seconds"] = 230
        event = f"id: 1\nevent: progress\ndata: {json.dumps(progress)}\n\n"
        gate = {"open": asyncio.Event()}

        async def held_event(route: Route) -> None:
            await gate["open"].wait()
            await route.fulfill(status=200, content_type="text/event-stream", body=event)

        for width in WIDTHS:
            gate["open"] = asyncio.Event()
            page = await open_page(browser, width, tenant.api_key)
            try:
                await page.route("**/automation/runs/*/events", held_event)
                await page.goto(f"{live_server}/automation")
                eta = page.get_by_test_id("run-eta")
                bar = page.get_by_role("progressbar", name="Overall progress")
                # Until the server has an estimate, the page says it is making one.
                await expect(eta).to_contain_text("estimating…")
                gate["open"].set()
                await expect(eta).to_contain_text("about 4 min left")
                await expect(bar).to_have_attribute("aria-valuetext", "0%, about 4 min left")
                await check(page, "running-time-left", width, screens)
            finally:
                await page.context.close()
