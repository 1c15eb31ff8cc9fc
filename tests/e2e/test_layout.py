"""Every page at a desktop's width (1280 px) and a phone's (390 px): no sideways scroll of the
page, no serious or critical axe-core violation, and a screenshot of each kept as test output.

Screenshots go to pytest's base temporary folder (`screens/`, kept for the last runs) and to
`.test-output/screens/` of the checkout (gitignored), where a person looks at them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from tests.engine import configure, feed, start, work
from tests.factories import Tenant, create_tenant

from .conftest import AXE_SCRIPT

DESKTOP = 1280
PHONE = 390
WIDTHS = (DESKTOP, PHONE)
HEIGHT = {DESKTOP: 900, PHONE: 844}
BAD_IMPACTS = {"serious", "critical"}
# The elements reaching past the right edge, outermost first: what makes a page too wide.
WIDER_THAN = """(width) => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > width + 0.5)
  .slice(0, 8)
  .map((el) => {
    const right = Math.round(el.getBoundingClientRect().right);
    return `${el.tagName.toLowerCase()}.${el.className} ${right}`;
  })"""


async def open_page(browser: Browser, width: int, api_key: str | None) -> Page:
    context = await browser.new_context(
        viewport={"width": width, "height": HEIGHT[width]},
        device_scale_factor=1,
        is_mobile=width == PHONE,
        has_touch=width == PHONE,
    )
    if api_key:
        # Signed in as the dashboard keeps a session: the key in localStorage.
        await context.add_init_script(
            f"localStorage.setItem('automation.apiKey', {json.dumps(api_key)})"
        )
    return await context.new_page()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE_SCRIPT))
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, { resultTypes: ['violations'] })"
    )
    return [v for v in result["violations"] if v.get("impact") in BAD_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(node["target"]) for node in v["nodes"][:5]]
        lines.append(f"{v['impact']} {v['id']}: {v['help']} at {targets}")
    return "\n".join(lines)


async def check(page: Page, name: str, width: int, screens: list[Path]) -> None:
    """The page as it is now: saved as a screenshot, then measured and checked by axe."""
    # Let the last answers and fonts settle: a screenshot of a half-drawn page helps no one.
    await page.wait_for_timeout(300)
    # With a dialog open, the screen as it is (the page behind is fixed in place).
    dialogs = await page.locator("[role=dialog], [role=alertdialog]").count()
    shot = await page.screenshot(full_page=dialogs == 0)
    for folder in screens:
        (folder / f"{name}-{width}.png").write_bytes(shot)
    # Against the device's width, not innerWidth: a phone zooms out to show an overflowing
    # page whole, and innerWidth grows with it.
    scroll = await page.evaluate("() => document.scrollingElement.scrollWidth")
    inner = await page.evaluate("() => window.innerWidth")
    if scroll > width or inner > width:
        wide = await page.evaluate(WIDER_THAN, width)
        pytest.fail(f"{name} at {width} px lays out {max(scroll, inner)} px wide: {wide}")
    violations = await axe_violations(page)
    assert not violations, f"{name} at {width} px:\n{describe(violations)}"


async def inside_viewport(page: Page, locator: Locator) -> None:
    box = await locator.bounding_box()
    assert box is not None
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= width + 0.5, f"{box} overflows {width} px"


Visit = Callable[[Page], Awaitable[None]]


async def visit_all(
    browser: Browser,
    live_server: str,
    api_key: str | None,
    pages: list[tuple[str, str, Visit]],
    screens: list[Path],
) -> None:
    for width in WIDTHS:
        page = await open_page(browser, width, api_key)
        try:
            for name, path, ready in pages:
                await page.goto(f"{live_server}{path}")
                await ready(page)
                await check(page, name, width, screens)
        finally:
            await page.context.close()


def heading(name: str, exact: bool = True) -> Visit:
    async def ready(page: Page) -> None:
        await expect(page.get_by_role("heading", name=name, exact=exact)).to_be_visible()

    return ready


class TestANewAccount:
    async def test_every_first_run_page_fits_a_phone_and_passes_axe(
        self,
        browser: Browser,
        live_server: str,
        tenant: Tenant,
        screens: list[Path],
    ) -> None:
        async def login_ready(page: Page) -> None:
            await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            assert await page.title() == "Sign in · Content automation"
            icon = page.locator("link[rel=icon]")
            await expect(icon).to_have_attribute("type", "image/svg+xml")

        await visit_all(browser, live_server, None, [("login", "/", login_ready)], screens)

        async def automation_ready(page: Page) -> None:
            await expect(page.get_by_test_id("first-run-guide")).to_contain_text("add keywords")
            await expect(page.get_by_role("button", name="Run now")).to_be_disabled()
            await expect(page.get_by_test_id("run-now-why")).to_contain_text("Add keywords first")
            assert await page.title() == "Automation · Content automation"

        def guide(step: str) -> Visit:
            async def ready(page: Page) -> None:
                guide = page.get_by_test_id("first-run-guide")
                await expect(guide.locator("[aria-current=step]")).to_contain_text(step)

            return ready

        await visit_all(
            browser,
            live_server,
            tenant.api_key,
            [
                ("new-keywords", "/keywords", guide("Keywords")),
                ("new-automation", "/automation", automation_ready),
                ("new-content", "/content", guide("Content")),
                ("new-publishing", "/publishing", guide("Publishing")),
            ],
            screens,
        )


class TestAnAccountWithARun:
    async def test_every_page_fits_a_phone_and_passes_axe(
        self,
        browser: Browser,
        live_server: str,
        tenant: Tenant,
        client: httpx.AsyncClient,
        settings: Settings,
        screens: list[Path],
    ) -> None:
        await feed(client, tenant, 3)
        await configure(client, tenant, max_in_article_images=1)
        run_id = await start(client, tenant)

        # The run is on (no worker yet): the running screen, the Cancel question, the dialog.
        async def running(page: Page) -> None:
            await expect(page.get_by_test_id("run-status")).to_have_text("running")
            await expect(
                page.get_by_role("progressbar", name="Overall progress")
            ).to_have_attribute("aria-valuenow", "0")
            await expect(page.get_by_test_id("run-spent")).to_have_text("0 credits")

        async def cancel_question(page: Page) -> None:
            await running(page)
            await page.get_by_role("button", name="Cancel").click()
            question = page.get_by_role("alertdialog", name="Cancel this run?")
            await expect(question).to_be_visible()
            await inside_viewport(page, question)

        async def config_dialog(page: Page) -> None:
            await page.get_by_role("button", name="Configure").click()
            dialog = page.get_by_role("dialog", name="Automation configuration")
            await expect(dialog.get_by_test_id("config-stage-1-hint")).to_contain_text(
                "Current pending: 3 keywords"
            )
            await inside_viewport(page, dialog)

        await visit_all(
            browser,
            live_server,
            tenant.api_key,
            [
                ("running", "/automation", running),
                ("cancel-question", "/automation", cancel_question),
                ("config-dialog", "/automation", config_dialog),
            ],
            screens,
        )

        await work(settings)
        listed = await client.get(
            f"/api/v1/writer/content/?site_id={tenant.site_id}", headers=tenant.headers
        )
        content_id = listed.json()["items"][0]["id"]

        async def completed(page: Page) -> None:
            await expect(page.get_by_test_id("run-status")).to_have_text("completed")
            await expect(page.get_by_test_id("global-percentage")).to_have_text("100%")
            await expect(page.get_by_test_id("run-duration")).to_have_text(
                re.compile(r"^\d+ (s|min|h)")
            )
            # A metric's tooltip opens on a tap as on a click, and is shown in the screenshot.
            about = page.get_by_role("button", name="About Credits spent").first
            if page.viewport_size and page.viewport_size["width"] == PHONE:
                await about.tap()
            else:
                await about.click()
            await expect(page.get_by_role("tooltip")).to_contain_text("Credits charged")

        async def run_detail(page: Page) -> None:
            await expect(page.get_by_test_id("detail-status")).to_have_text("completed")
            assert (await page.title()).startswith("Run of ")

        async def article(page: Page) -> None:
            await expect(page.get_by_role("button", name="Approve")).to_be_visible()
            preview = page.frame_locator("iframe[title='Article preview']")
            await expect(preview.get_by_role("img")).to_have_count(1)

        async def keys(page: Page) -> None:
            await page.get_by_label("Name").fill("reporting")
            await page.get_by_role("button", name="Create key").click()
            await expect(page.get_by_test_id("new-key")).to_contain_text("ak_")
            await expect(page.get_by_role("button", name="Copy")).to_be_visible()
            await inside_viewport(page, page.get_by_test_id("new-key-box"))

        async def site_settings(page: Page) -> None:
            await expect(page.get_by_role("region", name="AI budget")).to_be_visible()
            await expect(page.get_by_test_id("budget-no-effect")).to_be_visible()
            await expect(page.get_by_role("img", name=re.compile("^Allocation:"))).to_be_visible()

        async def menu(page: Page) -> None:
            await expect(page.get_by_role("heading", name="Keywords", exact=True)).to_be_visible()
            toggle = page.get_by_role("button", name="Menu")
            if page.viewport_size and page.viewport_size["width"] == PHONE:
                await expect(page.get_by_role("link", name="Automation")).to_be_hidden()
                await toggle.click()
                await expect(toggle).to_have_attribute("aria-expanded", "true")
            await expect(page.get_by_role("link", name="Automation")).to_be_visible()

        await visit_all(
            browser,
            live_server,
            tenant.api_key,
            [
                ("keywords", "/keywords", menu),
                ("automation", "/automation", completed),
                ("run-detail", f"/automation/runs/{run_id}", run_detail),
                ("content", "/content", heading("Content")),
                ("article", f"/content/{content_id}", article),
                ("publishing", "/publishing", heading("Publishing")),
                ("sites", "/sites", heading("Sites")),
                ("site-settings", f"/sites/{tenant.site_id}/settings", site_settings),
                ("keys", "/keys", keys),
            ],
            screens,
        )


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory, name="Acme")
