"""The dashboard in headless Chromium (Debian's), against the API served by a real uvicorn."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from app.config import Settings
from app.main import WEB_DIR, create_app
from tests.console import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# axe-core, the npm package (a devDependency of the dashboard), injected into pages under test.
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "frontend/node_modules/axe-core/axe.min.js"
# Without these, Chromium reaches for Google's services, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def live_server(settings: Settings) -> AsyncIterator[str]:
    if not (WEB_DIR / "index.html").is_file():
        pytest.fail("the dashboard is not built: run `make web` (make test does)")
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    # uvicorn offers a flag, not an event, for "listening".
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
def screens(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> list[Path]:
    """Where a test keeps its screenshots: pytest's base temporary folder, and
    `.test-output/screens/` of the checkout (gitignored), where a person looks at them."""
    folders = [
        tmp_path_factory.getbasetemp() / "screens",
        request.config.rootpath / ".test-output" / "screens",
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).is_file():  # noqa: ASYNC240  (a stat, once per session)
        pytest.fail("Debian's chromium is not installed (make test installs it)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    yield page
    await context.close()
