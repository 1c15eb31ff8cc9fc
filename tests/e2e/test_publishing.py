"""The publishing page (settings, publisher, queue), the AI budget form and the run notification
fields, in the browser.

The live server refuses private and plain-http URLs, as in production; nothing is sent while a
URL is only saved, so the URLs below point at a public address literal that is never called.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.writer import Content, ContentStatus, SiteStatus
from tests.builders import create_content
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
PUBLIC_URL = "https://93.184.215.14/hooks/automation"
SIGNING_KEY = "whsec-0123456789abcdef-signing"


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, name="Acme", site_timezone="Europe/Paris")


async def sign_in(page: Page, live_server: str, tenant: Tenant, path: str) -> None:
    await page.goto(f"{live_server}{path}")
    await page.get_by_label("Email").fill(tenant.email)
    await page.get_by_label("Password").fill(tenant.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


class TestSettings:
    async def test_a_bad_value_is_shown_at_its_field_and_a_good_save_survives_a_reload(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant, "/automation")
        await (
            page.get_by_role("navigation", name="Main")
            .get_by_role("link", name="Publishing")
            .click()
        )
        form = page.get_by_role("form", name="Publishing settings")
        await expect(form.get_by_label("Time slots")).to_be_checked()
        await expect(form.get_by_label("Time slot 3", exact=True)).to_have_value("18:00")
        await expect(form.get_by_label("Start time")).to_have_count(0)
        await expect(page.get_by_test_id("queue-count")).to_have_text("0 of 100 scheduled")

        await form.get_by_role("button", name="Add a time slot").click()
        await form.get_by_label("Time slot 4", exact=True).fill("07:30")
        await form.get_by_label("Queue limit").fill("-1")
        await form.get_by_role("button", name="Save settings").click()
        await expect(form.get_by_role("alert")).to_contain_text("Queue limit must be 0 or more")
        await expect(form.get_by_label("Queue limit")).to_have_attribute("aria-invalid", "true")
        await expect(form.get_by_text("Must be 0 or more.", exact=True)).to_be_visible()

        await form.get_by_label("Queue limit").fill("25")
        await form.get_by_label("Saturday").check()
        await form.get_by_label("Auto-publish approved content").uncheck()
        await form.get_by_role("button", name="Save settings").click()
        await expect(form.get_by_role("status")).to_have_text("Settings saved.")
        await expect(page.get_by_role("region", name="Queue", exact=True)).to_contain_text(
            "auto-publish is off"
        )
        # Stored in order: the new slot comes first.
        await expect(form.get_by_label("Time slot 1", exact=True)).to_have_value("07:30")

        await form.get_by_label("Stagger").check()
        await expect(form.get_by_label("Time slot 1", exact=True)).to_have_count(0)
        await form.get_by_label("Start time").fill("08:00")
        await form.get_by_label("End time").fill("07:00")
        await form.get_by_role("button", name="Save settings").click()
        await expect(
            form.get_by_text("Must be later than stagger_start_time.", exact=True)
        ).to_be_visible()
        await expect(form.get_by_role("alert")).to_contain_text("End time must be later")
        await form.get_by_label("End time").fill("12:00")
        await form.get_by_label("Minutes between articles").fill("30")
        await form.get_by_role("button", name="Save settings").click()
        await expect(form.get_by_role("status")).to_have_text("Settings saved.")

        await page.reload()
        await expect(form.get_by_label("Stagger")).to_be_checked()
        await expect(form.get_by_label("Start time")).to_have_value("08:00")
        await expect(form.get_by_label("End time")).to_have_value("12:00")
        await expect(form.get_by_label("Minutes between articles")).to_have_value("30")
        await expect(form.get_by_label("Saturday")).to_be_checked()
        await expect(form.get_by_label("Sunday")).not_to_be_checked()
        await expect(form.get_by_label("Queue limit")).to_have_value("25")
        await expect(form.get_by_label("Auto-publish approved content")).not_to_be_checked()
        await expect(page.get_by_test_id("queue-count")).to_have_text("0 of 25 scheduled")
        # The preview: five slots between 08:00 and 12:00 every 30 minutes, in the site's time.
        slot = r"[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}, (?:(?:0[89]|1[01]):[03]0|12:00)"
        await expect(page.get_by_test_id("next-slots")).to_have_text(
            re.compile(rf"^Next free slots \(as saved\): {slot}(?: · {slot}){{4}}$")
        )
        await form.get_by_label("Time slots").check()
        await expect(form.get_by_label("Time slot 1", exact=True)).to_have_value("07:30")


class TestPublisher:
    async def test_a_webhook_is_saved_and_its_secret_never_shown_back(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant, "/publishing")
        form = page.get_by_role("form", name="Publisher")
        await expect(form.get_by_label("Publish to")).to_have_value("none")
        await form.get_by_label("Publish to").select_option("webhook")
        await form.get_by_label("Webhook URL").fill("http://93.184.215.14/hooks/automation")
        await form.get_by_label("Signing secret").fill(SIGNING_KEY)
        await expect(form.get_by_label("Signing secret")).to_have_attribute("type", "password")
        await form.get_by_role("button", name="Save publisher").click()
        await expect(form.get_by_role("alert")).to_have_attribute("data-code", "invalid_url")
        await expect(form.get_by_role("alert")).to_contain_text("Webhook URL must use https")
        await expect(form.get_by_text("Must use https, not 'http'.", exact=True)).to_be_visible()

        await form.get_by_label("Webhook URL").fill(PUBLIC_URL)
        await form.get_by_role("button", name="Save publisher").click()
        await expect(form.get_by_role("status")).to_have_text("Publisher saved.")
        secret = form.get_by_label("Signing secret")
        await expect(secret).to_have_value("")
        await expect(secret).to_have_attribute("placeholder", "set: leave empty to keep it")

        await page.reload()
        await expect(form.get_by_label("Publish to")).to_have_value("webhook")
        await expect(form.get_by_label("Webhook URL")).to_have_value(PUBLIC_URL)
        await expect(secret).to_have_value("")
        await expect(secret).to_have_attribute("placeholder", "set: leave empty to keep it")
        assert SIGNING_KEY not in await page.content()
        # Kept while the URL stays: saving again without it is fine.
        await form.get_by_label("Active (off: due articles wait in the queue)").uncheck()
        await form.get_by_role("button", name="Save publisher").click()
        await expect(form.get_by_role("status")).to_have_text("Publisher saved.")
        # A new URL needs the secret again, and the field says so.
        await form.get_by_label("Webhook URL").fill("https://93.184.215.14/elsewhere")
        await expect(secret).to_have_attribute(
            "placeholder", "required again: the kind or URL changed"
        )


class TestQueue:
    async def test_a_failed_article_is_shown_with_its_error_and_retried(
        self, page: Page, live_server: str, tenant: Tenant, session_factory: SessionFactory
    ) -> None:
        approved = ContentStatus.APPROVED
        await create_content(
            session_factory,
            tenant,
            title="Trail shoes compared",
            status=approved,
            site_status=SiteStatus.SCHEDULED,
            scheduled_publish_at=datetime(2030, 1, 15, 8, 0, tzinfo=UTC),
        )
        failed = await create_content(
            session_factory,
            tenant,
            title="Road shoes compared",
            status=approved,
            site_status=SiteStatus.FAILED,
            scheduled_publish_at=datetime(2030, 1, 14, 8, 0, tzinfo=UTC),
            publish_attempts=3,
            publish_error="webhook answered 502 Bad Gateway",
        )

        await sign_in(page, live_server, tenant, "/publishing")
        queue = page.get_by_role("region", name="Queue", exact=True)
        await expect(page.get_by_test_id("queue-count")).to_have_text("1 of 100 scheduled")
        row = page.get_by_test_id(f"queue-item-{failed.id}")
        await expect(row).to_contain_text("failed")
        await expect(row).to_contain_text("webhook answered 502 Bad Gateway")
        # 08:00 UTC is 09:00 in Paris in January.
        await expect(row.get_by_role("cell").nth(1)).to_have_text("2030-01-14 09:00")
        await expect(row.get_by_role("cell").nth(3)).to_have_text("3")
        await expect(queue.get_by_role("button", name="Retry")).to_have_count(1)

        await row.get_by_role("button", name="Retry Road shoes compared").click()
        await expect(row).to_contain_text("scheduled")
        await expect(row).not_to_contain_text("502")
        await expect(queue.get_by_role("button", name="Retry")).to_have_count(0)
        await expect(page.get_by_test_id("queue-count")).to_have_text("2 of 100 scheduled")
        async with session_factory() as session:
            content = await session.get(Content, failed.id)
            assert content is not None
            assert content.site_status == SiteStatus.SCHEDULED
            assert content.publish_error is None

        await queue.get_by_label("Queue status").select_option("failed")
        await expect(queue.get_by_text("Nothing in the queue.")).to_be_visible()


class TestBudget:
    async def test_sliders_share_the_credit_cap_summing_to_100_and_are_kept(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant, "/sites")
        await page.get_by_role("link", name="AI budget of Main site").click()
        budget = page.get_by_role("region", name="AI budget")
        await expect(budget).to_contain_text("divides the run's credit cap")
        await expect(budget.get_by_test_id("budget-no-effect")).to_contain_text("no effect now")
        await expect(budget.get_by_label("Use the global defaults")).to_be_checked()
        await expect(budget.get_by_label("Clustering (%)")).to_be_disabled()
        await expect(budget.get_by_test_id("budget-total")).to_have_text("100%")

        await budget.get_by_label("Use the global defaults").uncheck()
        # 15/10/40/5/30: clustering to 20 takes 5 from the others in their proportions.
        await budget.get_by_label("Clustering (%)").fill("20")
        await expect(budget.get_by_test_id("budget-total")).to_have_text("100%")
        await expect(budget.get_by_label("Content (%)")).to_have_value("38")
        await expect(budget.get_by_label("Images (%)")).to_have_value("28")
        # The keyboard moves a slider one percent a step; the total stays 100.
        images = budget.get_by_role("slider", name="Images share")
        await images.focus()
        await page.keyboard.press("ArrowRight")
        await expect(images).to_have_attribute("aria-valuenow", "29")
        await expect(budget.get_by_test_id("budget-total")).to_have_text("100%")
        await expect(
            budget.get_by_role("img", name=re.compile(r"^Allocation: Clustering \d+%"))
        ).to_be_visible()
        await budget.get_by_role("button", name="Save allocation").click()
        await expect(budget.get_by_role("status")).to_have_text("Allocation saved.")
        saved = {
            label: await budget.get_by_label(f"{label} (%)").input_value()
            for label in ("Clustering", "Ideas", "Content", "Image prompts", "Images")
        }
        assert sum(int(v) for v in saved.values()) == 100
        assert saved["Images"] == "29"

        await page.reload()
        await expect(budget.get_by_label("Use the global defaults")).not_to_be_checked()
        for label, value in saved.items():
            await expect(budget.get_by_label(f"{label} (%)")).to_have_value(value)

    async def test_with_a_credit_cap_each_share_shows_its_credits(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant, "/automation")
        await page.get_by_role("button", name="Configure").click()
        dialog = page.get_by_role("dialog", name="Automation configuration")
        await dialog.get_by_label("Credit cap per run (0 = no cap)").fill("50")
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(dialog).to_be_hidden()
        await page.get_by_role("link", name="AI budget allocation").click()
        budget = page.get_by_role("region", name="AI budget")
        await expect(budget).to_contain_text("now 50 credits")
        await expect(budget.get_by_test_id("budget-no-effect")).to_have_count(0)
        # Content's 40 % of 50 credits.
        await expect(budget).to_contain_text("20 credits")


class TestNotifications:
    async def test_a_notification_url_needs_a_secret_which_is_never_shown_back(
        self, page: Page, live_server: str, tenant: Tenant
    ) -> None:
        await sign_in(page, live_server, tenant, "/automation")
        await page.get_by_role("button", name="Configure").click()
        dialog = page.get_by_role("dialog", name="Automation configuration")
        secret = dialog.get_by_label("Notification signing secret")
        await expect(secret).to_have_attribute("placeholder", "not set: 16 characters or more")
        await dialog.get_by_label("Notification URL").fill(PUBLIC_URL)
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(secret).to_have_attribute("aria-invalid", "true")
        await expect(
            dialog.get_by_text(
                "Required with notification_url, at least 16 characters.", exact=True
            )
        ).to_be_visible()

        await secret.fill(SIGNING_KEY)
        await dialog.get_by_role("button", name="Save configuration").click()
        await expect(dialog).to_be_hidden()
        await page.reload()
        await page.get_by_role("button", name="Configure").click()
        await expect(dialog.get_by_label("Notification URL")).to_have_value(PUBLIC_URL)
        await expect(secret).to_have_value("")
        await expect(secret).to_have_attribute("placeholder", "set: leave empty to keep it")
