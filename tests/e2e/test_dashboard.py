"""What a person does in the dashboard: sign in, feed keywords, review an article."""

from __future__ import annotations

import pytest
from playwright.async_api import FilePayload, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.media import image_file, media_url
from app.models.writer import Image
from tests.builders import create_content, create_image, png_bytes
from tests.factories import Tenant, create_tenant


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory, name="Acme")


async def sign_in(page: Page, live_server: str, tenant: Tenant) -> None:
    await page.goto(f"{live_server}/keywords")
    await page.get_by_label("Email").fill(tenant.email)
    await page.get_by_label("Password").fill(tenant.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("credits")).to_have_text("Acme · 100 credits")


class TestSignIn:
    async def test_wrong_password_shows_the_error(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await page.goto(live_server)
        await page.get_by_label("Email").fill(tenant.email)
        await page.get_by_label("Password").fill("not it")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")

    async def test_sign_in_then_reload_a_deep_link_keeps_the_session(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant)
        await page.goto(f"{live_server}/sites")
        await expect(page.get_by_role("heading", name="Sites")).to_be_visible()
        await expect(page.get_by_role("cell", name="Main site", exact=True)).to_be_visible()


class TestKeywords:
    async def test_paste_and_import_keywords_then_list_them(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant)
        await page.get_by_label("Keywords, one per line").fill("alpha\nbeta\nALPHA\n")
        await page.get_by_role("button", name="Add keywords").click()
        await expect(page.get_by_test_id("import-result").first).to_contain_text(
            "2 added, 1 duplicate, 0 rows in error"
        )
        await page.get_by_label("CSV file").set_input_files(
            files=FilePayload(
                name="keywords.csv",
                mimeType="text/csv",
                buffer=b"keyword,volume\ngamma,10\nbad,lots\n",
            )
        )
        await page.get_by_role("button", name="Import").click()
        result = page.get_by_test_id("import-result").last
        await expect(result).to_contain_text("1 added, 0 duplicates, 1 row in error")
        await expect(result).to_contain_text("Row 3: volume must be a whole number")
        for keyword in ("alpha", "beta", "gamma"):
            await expect(page.get_by_role("cell", name=keyword, exact=True)).to_be_visible()
        await expect(page.get_by_text("1\u20133 of 3")).to_be_visible()

    async def test_disable_a_keyword(self, page: Page, live_server: str, tenant: Tenant) -> None:
        await sign_in(page, live_server, tenant)
        await page.get_by_label("Keywords, one per line").fill("solo")
        await page.get_by_role("button", name="Add keywords").click()
        await page.get_by_role("button", name="Disable").click()
        await expect(page.get_by_role("cell", name="disabled")).to_be_visible()
        await expect(page.get_by_role("button", name="Enable")).to_be_visible()


class TestReview:
    async def test_open_an_article_in_review_and_approve_it(
        self,
        page: Page,
        live_server: str,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        content = await create_content(
            session_factory,
            tenant,
            title="How to choose running shoes",
            html="<h2>Fit</h2><p>Start with the fit.</p>",
            word_count=5,
            meta_title="Choosing running shoes",
            meta_description="A short guide.",
            status="review",
        )
        await create_image(
            session_factory,
            tenant,
            content_id=content.id,
            image_type="featured",
            position=0,
            prompt="a pair of running shoes",
        )
        await sign_in(page, live_server, tenant)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Content").click()
        )
        await page.get_by_role("link", name="How to choose running shoes").click()
        await expect(
            page.get_by_role("heading", name="How to choose running shoes")
        ).to_be_visible()
        preview = page.frame_locator("iframe[title='Article preview']")
        await expect(preview.get_by_role("heading", name="Fit")).to_be_visible()
        await expect(page.get_by_text("Featured")).to_be_visible()
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_text("5 words · approved")).to_be_visible()
        await expect(page.get_by_role("button", name="Approve")).to_be_disabled()

    async def test_a_generated_image_shows_at_its_unguessable_url(
        self,
        page: Page,
        live_server: str,
        tenant: Tenant,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        content = await create_content(session_factory, tenant, title="Trail shoes")
        image = await create_image(
            session_factory,
            tenant,
            content_id=content.id,
            image_type="featured",
            position=0,
            status="generated",
            prompt="shoes on a trail",
        )
        relative = image_file(image, "png")
        file = settings.media_path.joinpath(*relative.parts)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(png_bytes(8, 6))
        async with unit_of_work(session_factory) as session:
            stored = await session.get_one(Image, image.id)
            stored.url = media_url(settings, relative)

        await sign_in(page, live_server, tenant)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Content").click()
        )
        await page.get_by_role("link", name="Trail shoes").click()

        picture = page.get_by_role("img", name="shoes on a trail")
        await expect(picture).to_have_attribute("src", media_url(settings, relative))
        await expect(picture).to_have_js_property("naturalWidth", 8)


class TestApiKeys:
    async def test_create_a_key_see_it_once_and_revoke_it(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant)
        await (
            page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
        )
        await page.get_by_label("Name").fill("reporting script")
        await page.get_by_role("button", name="Create key").click()
        await expect(page.get_by_test_id("new-key")).to_contain_text("ak_")
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await page.get_by_role("button", name="Copy").click()
        await expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert copied == await page.get_by_test_id("new-key").text_content()
        assert await page.title() == "API keys · Content automation"
        row = page.get_by_role("row").filter(has_text="reporting script")
        await row.get_by_role("button", name="Revoke").click()
        await expect(row).to_contain_text("revoked")
        session_row = page.get_by_role("row").filter(has_text="this session")
        await expect(session_row.get_by_role("button", name="Revoke")).to_be_disabled()

    async def test_sign_out_revokes_the_session_key(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant)
        key = await page.evaluate("localStorage.getItem('automation.apiKey')")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        response = await page.request.get(
            f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status == 401
