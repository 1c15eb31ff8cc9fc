"""The automation page's live log across a dropped connection: like a browser's EventSource, it
reconnects with `Last-Event-ID` and misses nothing (a deploy ends every live stream)."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, Request, Route, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.e2e.test_automation import sign_in
from tests.engine import configure, feed, work
from tests.factories import Tenant, create_tenant


async def test_the_live_log_reconnects_where_the_dropped_stream_stopped(
    page: Page,
    live_server: str,
    session_factory: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    tenant: Tenant = await create_tenant(session_factory, name="Acme")
    await feed(client, tenant, 2)
    await configure(client, tenant)
    asked: list[Request] = []

    async def first_stream_drops(route: Route, request: Request) -> None:
        asked.append(request)
        if len(asked) == 1:
            # One log line, then the server goes away without the run's `end` event.
            body = "id: 1\nevent: log\ndata: before the drop\n\n"
            await route.fulfill(status=200, content_type="text/event-stream", body=body)
        else:
            await route.continue_()

    await page.route("**/automation/runs/*/events", first_stream_drops)
    await sign_in(page, live_server, tenant, "/automation")
    await page.get_by_role("button", name="Run now").click()
    log = page.get_by_role("log", name="Activity log")
    await expect(log).to_contain_text("before the drop")
    await expect(page.get_by_test_id("log-mode")).to_have_text("live")
    await work(settings)

    await expect(page.get_by_test_id("run-status")).to_have_text("completed")
    await expect(log).to_contain_text("Stage 7")
    assert len(asked) >= 2, "the page did not reconnect"
    assert await asked[1].header_value("last-event-id") == "1"
