"""The publish job on real PostgreSQL, against real WordPress and webhook servers on 127.0.0.1:
due content is claimed, published and recorded; failures are recorded with their reason and
retried by hand; nothing is published twice, also when the job runs twice at once or a worker
died mid-publish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.testing
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.media import image_file, media_url
from app.models.publishing import PublishingIntegration, PublishingSettings
from app.models.writer import Content, ContentStatus, ImageStatus, ImageType, SiteStatus
from app.publishing.publish import MAX_ATTEMPTS, STALE_CLAIM, publish_due
from app.publishing.publishers.base import Article, RetryPolicy
from app.publishing.publishers.webhook import WebhookPublisher
from app.publishing.publishers.wordpress import post_slug
from app.workers.jobs import publish_due_content
from tests.builders import create_content, create_image, insert, png_bytes
from tests.engine import work
from tests.factories import Tenant, create_tenant
from tests.servers.webhook_receiver import serve_webhook_receiver
from tests.servers.wordpress import WordPress, serve_wordpress

FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
SIGNING_KEY = "a-signing-key-of-32-characters!!"
SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    """The tests' peers listen on 127.0.0.1 over plain http."""
    return settings.model_copy(update={"allow_private_urls": True, "allow_http_urls": True})


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


@pytest.fixture
async def wordpress() -> AsyncIterator[WordPress]:
    async with serve_wordpress() as site:
        yield site


@dataclass(frozen=True)
class Due:
    content: Content
    files: list[Path]  # featured first, then in-article by position


async def due_content(
    session_factory: SessionFactory,
    settings: Settings,
    tenant: Tenant,
    *,
    images: int = 2,
    **overrides: Any,
) -> Due:
    """An approved article scheduled a minute ago, with a featured and in-article images whose
    PNG files are stored the way stage 6 stores them."""
    fields: dict[str, Any] = {
        "status": ContentStatus.APPROVED,
        "site_status": SiteStatus.SCHEDULED,
        "scheduled_publish_at": datetime.now(UTC) - timedelta(minutes=1),
        "html": "<p>Intro.</p><h2>One</h2><p>a</p><h2>Two</h2><p>b</p>",
    }
    content = await create_content(session_factory, tenant, **{**fields, **overrides})
    files = []
    for position in range(images):
        kind = ImageType.FEATURED if position == 0 else ImageType.IN_ARTICLE
        image = await create_image(
            session_factory,
            tenant,
            content_id=content.id,
            image_type=kind,
            position=position,
            status=ImageStatus.GENERATED,
        )
        relative = image_file(image, "png")
        path = settings.media_path.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(rgb=(position * 40, 100, 200)))
        async with unit_of_work(session_factory) as session:
            await session.execute(
                update(type(image))
                .where(type(image).id == image.id)
                .values(url=media_url(settings, relative))
            )
        files.append(path)
    return Due(content, files)


async def integrate(
    session_factory: SessionFactory, tenant: Tenant, kind: str, **fields: Any
) -> None:
    await insert(
        session_factory,
        PublishingIntegration(
            account_id=tenant.account_id, site_id=tenant.site_id, kind=kind, **fields
        ),
    )


async def integrate_wordpress(
    session_factory: SessionFactory, tenant: Tenant, wordpress: WordPress, **fields: Any
) -> None:
    await integrate(
        session_factory,
        tenant,
        "wordpress",
        endpoint_url=wordpress.url,
        username=wordpress.username,
        secret=wordpress.password,
        **fields,
    )


async def load(session_factory: SessionFactory, content_id: int) -> Content:
    async with session_factory() as session:
        return await session.get_one(Content, content_id)


class TestWordPress:
    async def test_due_content_is_published_with_its_images_and_recorded(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(session_factory, open_settings, tenant, images=3)

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert (report.published, report.failed) == (1, 0)
        assert [m.data for m in wordpress.media] == [f.read_bytes() for f in due.files]
        [post] = wordpress.posts
        assert post["featured_media"] == wordpress.media[0].id
        assert post["title"] == due.content.title
        assert wordpress.media[1].source_url in post["content"]
        assert wordpress.media[2].source_url in post["content"]
        content = await load(session_factory, due.content.id)
        assert content.status == ContentStatus.PUBLISHED
        assert content.site_status == SiteStatus.PUBLISHED
        assert (content.external_id, content.external_url) == (str(post["id"]), post["link"])
        assert content.published_at is not None
        assert content.publish_error is None
        assert content.publish_attempts == 1
        assert content.publish_claimed_at is None

    async def test_content_not_yet_due_waits(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        later = datetime.now(UTC) + timedelta(minutes=5)
        due = await due_content(session_factory, open_settings, tenant, scheduled_publish_at=later)

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert report.published == 0
        assert wordpress.requests == []
        assert (await load(session_factory, due.content.id)).site_status == "scheduled"

    async def test_a_switched_off_integration_holds_the_content_in_the_queue(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress, is_active=False)
        due = await due_content(session_factory, open_settings, tenant)

        await publish_due(session_factory, open_settings, retry=FAST)

        assert wordpress.requests == []
        assert (await load(session_factory, due.content.id)).site_status == "scheduled"

    async def test_a_stale_claim_of_a_switched_off_integration_goes_back_to_the_queue(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        """Its worker died, then the user switched publishing off: the article waits with the
        others (it can be reviewed again), not in `publishing` for ever."""
        await integrate_wordpress(session_factory, tenant, wordpress, is_active=False)
        due = await due_content(
            session_factory,
            open_settings,
            tenant,
            site_status=SiteStatus.PUBLISHING,
            publish_claimed_at=datetime.now(UTC) - STALE_CLAIM - timedelta(minutes=1),
            publish_attempts=1,
        )

        await publish_due(session_factory, open_settings, retry=FAST)

        assert wordpress.requests == []
        content = await load(session_factory, due.content.id)
        assert (content.site_status, content.publish_claimed_at) == ("scheduled", None)
        assert content.scheduled_publish_at == due.content.scheduled_publish_at


class TestNeverTwice:
    async def test_two_passes_at_once_make_one_post(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        articles = [await due_content(session_factory, open_settings, tenant) for _ in range(6)]

        reports = await asyncio.gather(
            publish_due(session_factory, open_settings, retry=FAST),
            publish_due(session_factory, open_settings, retry=FAST),
        )

        assert sum(r.published for r in reports) == 6
        assert len(wordpress.posts) == 6
        assert len({p["slug"] for p in wordpress.posts}) == 6
        assert len(wordpress.media) == 12
        for due in articles:
            assert (await load(session_factory, due.content.id)).publish_attempts == 1

    async def test_a_worker_that_died_after_creating_the_post_leaves_no_second_post(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        died_at = datetime.now(UTC) - STALE_CLAIM - timedelta(minutes=1)
        due = await due_content(
            session_factory,
            open_settings,
            tenant,
            site_status=SiteStatus.PUBLISHING,
            publish_claimed_at=died_at,
            publish_attempts=1,
        )
        made = wordpress.add_post(post_slug_of(due.content))

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert report.published == 1
        assert wordpress.posts == [made]
        assert wordpress.media == []
        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.PUBLISHED
        assert content.external_id == str(made["id"])
        assert content.publish_attempts == 2

    async def test_a_publication_interrupted_three_times_fails_and_says_why(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        """Its workers keep dying on it: it is failed (and can be retried), not claimed again
        every quarter of an hour for ever."""
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(
            session_factory,
            open_settings,
            tenant,
            site_status=SiteStatus.PUBLISHING,
            publish_claimed_at=datetime.now(UTC) - STALE_CLAIM - timedelta(minutes=1),
            publish_attempts=MAX_ATTEMPTS,
        )

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert (report.published, report.failed) == (0, 0)
        assert wordpress.requests == []
        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.FAILED
        assert content.publish_error == (
            "the publication was interrupted 3 times before it finished (the worker publishing "
            "it stopped); retry it once the cause is fixed"
        )

    async def test_a_live_claim_is_left_to_its_worker(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(
            session_factory,
            open_settings,
            tenant,
            site_status=SiteStatus.PUBLISHING,
            publish_claimed_at=datetime.now(UTC) - timedelta(minutes=1),
        )

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert report.published == 0
        assert wordpress.requests == []
        assert (await load(session_factory, due.content.id)).site_status == "publishing"


class TestFailures:
    async def test_a_500_then_success_publishes(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(session_factory, open_settings, tenant)
        wordpress.fail(500, path="/posts", method="POST")

        await publish_due(session_factory, open_settings, retry=FAST)

        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.PUBLISHED
        assert len(wordpress.posts) == 1

    async def test_a_401_fails_at_once_with_its_reason_shown_in_the_queue(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate(
            session_factory,
            tenant,
            "wordpress",
            endpoint_url=wordpress.url,
            username=wordpress.username,
            secret="a revoked application password",
        )
        due = await due_content(session_factory, open_settings, tenant)

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert (report.published, report.failed) == (0, 1)
        assert len(wordpress.requests) == 1
        content = await load(session_factory, due.content.id)
        reason = (
            "WordPress (post lookup) answered HTTP 401: incorrect_password: "
            "The provided password is incorrect."
        )
        assert (content.site_status, content.publish_error) == ("failed", reason)
        assert content.status == ContentStatus.APPROVED
        queue = await client.get(
            "/api/v1/publishing/queue/", params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        assert queue.status_code == 200, queue.text
        [item] = queue.json()["items"]
        assert (item["id"], item["site_status"], item["publish_error"]) == (
            due.content.id,
            "failed",
            reason,
        )

    async def test_always_500_fails_with_the_reason_and_the_retry_endpoint_publishes_it_again(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(session_factory, open_settings, tenant, images=0)
        wordpress.fail(500, times=FAST.attempts)

        await publish_due(session_factory, open_settings, retry=FAST)

        failed = await load(session_factory, due.content.id)
        assert failed.site_status == SiteStatus.FAILED
        assert failed.publish_error == (
            "WordPress (post lookup) answered HTTP 500: scripted_fault: Scripted fault 500 "
            "(after 3 attempts)"
        )
        assert failed.publish_attempts == 1
        assert len(wordpress.requests) == FAST.attempts

        retried = await client.post(
            f"/api/v1/publishing/content/{due.content.id}/retry/", headers=tenant.headers
        )
        assert retried.status_code == 200, retried.text
        body = retried.json()
        # A retry starts the publication afresh: its attempts count from none again.
        assert (body["site_status"], body["publish_error"], body["publish_attempts"]) == (
            "scheduled",
            None,
            0,
        )

        # The retry queued a publish pass: a worker sends the article at once, no cron tick.
        await work(open_settings)

        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.PUBLISHED
        assert content.publish_attempts == 1
        assert content.external_id == str(wordpress.posts[0]["id"])

    # The app configures logging (structlog through the standard library, which caplog reads).
    @pytest.mark.usefixtures("app")
    async def test_a_peer_that_echoes_the_password_has_it_blanked_in_the_reason_and_logs(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(session_factory, open_settings, tenant)
        wordpress.fail(403, message=f"user editor with password {wordpress.password} may not")

        await publish_due(session_factory, open_settings, retry=FAST)

        content = await load(session_factory, due.content.id)
        assert content.publish_error == (
            "WordPress (post lookup) answered HTTP 403: scripted_fault: user editor with "
            "password [redacted] may not"
        )
        assert "publication failed" in caplog.text
        assert wordpress.password not in caplog.text

    async def test_only_a_failed_publication_can_be_retried(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
    ) -> None:
        due = await due_content(session_factory, open_settings, tenant, images=0)

        response = await client.post(
            f"/api/v1/publishing/content/{due.content.id}/retry/", headers=tenant.headers
        )

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_transition"
        assert (await load(session_factory, due.content.id)).site_status == "scheduled"

    async def test_a_url_that_became_private_fails_at_publish_time(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        guarded = settings.model_copy(update={"allow_http_urls": True})
        await integrate_wordpress(session_factory, tenant, wordpress)
        due = await due_content(session_factory, guarded, tenant)

        await publish_due(session_factory, guarded, retry=FAST)

        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.FAILED
        assert content.publish_error is not None
        assert "does not resolve to a public address" in (content.publish_error)
        assert wordpress.requests == []

    async def test_an_answer_that_does_not_decode_fails_that_article_only(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        wordpress: WordPress,
    ) -> None:
        await integrate_wordpress(session_factory, tenant, wordpress)
        broken = await due_content(session_factory, open_settings, tenant, images=0)
        wordpress.fail(200, garbled=True, path="/posts", method="GET")
        other = await create_tenant(session_factory)
        fine = await due_content(session_factory, open_settings, other, images=0)

        report = await publish_due(session_factory, open_settings, retry=FAST)

        assert (report.published, report.failed) == (1, 1)
        failed = await load(session_factory, broken.content.id)
        assert failed.site_status == SiteStatus.FAILED
        assert failed.publish_error is not None
        assert failed.publish_error.startswith(
            "WordPress (post lookup) answered unreadably: DecodingError"
        )
        assert (await load(session_factory, fine.content.id)).site_status == "published"

    async def test_a_bug_met_by_one_article_fails_it_and_the_others_go_out(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def crash(*_: object) -> None:
            raise RuntimeError("a case nobody foresaw")

        monkeypatch.setattr(WebhookPublisher, "publish", crash)
        await integrate(
            session_factory,
            tenant,
            "webhook",
            endpoint_url="http://127.0.0.1:9/hook",
            secret=SIGNING_KEY,
        )
        crashed = await due_content(session_factory, open_settings, tenant, images=0)
        others = [await create_tenant(session_factory) for _ in range(4)]
        fine = [await due_content(session_factory, open_settings, t, images=0) for t in others]

        with structlog.testing.capture_logs() as logs:
            report = await publish_due(session_factory, open_settings, retry=FAST)

        assert (report.published, report.failed) == (4, 1)
        failed = await load(session_factory, crashed.content.id)
        assert (failed.site_status, failed.publish_claimed_at) == ("failed", None)
        assert failed.publish_error == (
            "an internal error stopped the publication (logged by the service); retry it"
        )
        (crash_log,) = [entry for entry in logs if entry["event"] == "publication crashed"]
        assert (crash_log["content_id"], crash_log["exc_info"]) == (crashed.content.id, True)
        for due in fine:
            assert (await load(session_factory, due.content.id)).site_status == "published"


class TestOtherPublishers:
    async def test_a_webhook_receives_the_signed_article(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
    ) -> None:
        due = await due_content(session_factory, open_settings, tenant)
        async with serve_webhook_receiver(SIGNING_KEY, script=[503]) as receiver:
            await integrate(
                session_factory, tenant, "webhook", endpoint_url=receiver.url, secret=SIGNING_KEY
            )
            public = open_settings.model_copy(update={"public_url": "https://ca.example.com/"})
            await publish_due(session_factory, public, retry=FAST)

        assert [d.verified for d in receiver.deliveries] == [True, True]
        delivery_ids = {d.delivery_id for d in receiver.deliveries}
        assert delivery_ids == {f"content:{due.content.id}:publish"}
        [article] = receiver.articles.values()
        assert (article["id"], article["title"]) == (due.content.id, due.content.title)
        assert [i["type"] for i in article["images"]] == ["featured", "in_article"]
        # PUBLIC_URL makes the stored images' URLs absolute for the receiver, which may show
        # them to its readers: they answer with the images.
        for image, file in zip(article["images"], due.files, strict=True):
            assert image["url"].startswith("https://ca.example.com/media/")
            served = await client.get(image["url"].removeprefix("https://ca.example.com"))
            assert (served.status_code, served.content) == (200, file.read_bytes())
        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.PUBLISHED
        assert content.external_id == f"article-{due.content.id}"

    async def test_a_webhook_that_moved_fails_instead_of_losing_the_article(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
    ) -> None:
        """A 301 would turn the POST into a GET without the article, answered 200: it would
        count as published while the receiver never got it."""
        due = await due_content(session_factory, open_settings, tenant, images=0)
        async with serve_webhook_receiver(SIGNING_KEY) as receiver:
            await integrate(
                session_factory,
                tenant,
                "webhook",
                endpoint_url=receiver.moved_url,
                secret=SIGNING_KEY,
            )
            await publish_due(session_factory, open_settings, retry=FAST)

        assert receiver.deliveries == []
        content = await load(session_factory, due.content.id)
        assert content.site_status == SiteStatus.FAILED
        assert content.publish_error == (
            f"the webhook answered 301, moved to {receiver.url}: the POST was not sent there; "
            "update the URL"
        )

    async def test_without_a_publisher_due_content_is_marked_published(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
    ) -> None:
        due = await due_content(session_factory, open_settings, tenant)

        published = await publish_due_content(
            {"session_factory": session_factory, "settings": open_settings}
        )

        assert published == 1
        content = await load(session_factory, due.content.id)
        assert (content.status, content.site_status) == ("published", "published")
        assert (content.external_id, content.external_url) == (None, None)


class TestBackfill:
    async def test_approved_content_of_an_auto_publishing_site_gets_a_slot(
        self,
        session_factory: SessionFactory,
        open_settings: Settings,
        tenant: Tenant,
    ) -> None:
        await insert(
            session_factory,
            PublishingSettings(
                account_id=tenant.account_id,
                site_id=tenant.site_id,
                scheduling_mode="immediate",
                auto_publish_enabled=True,
            ),
        )
        waiting = await create_content(session_factory, tenant, status=ContentStatus.APPROVED)

        report = await publish_due(session_factory, open_settings, retry=FAST)

        # Immediate: the pass that gives the slot publishes it (no publisher: marked here).
        assert (report.scheduled, report.published) == (1, 1)
        content = await load(session_factory, waiting.id)
        assert (content.status, content.site_status) == ("published", "published")
        assert content.scheduled_publish_at is not None


def post_slug_of(content: Content) -> str:
    """The slug the WordPress publisher gives this content's post."""
    return post_slug(
        Article(
            content_id=content.id,
            site_id=content.site_id,
            title=content.title,
            html="",
            meta_title="",
            meta_description="",
            word_count=0,
            scheduled_publish_at=None,
            published_at=datetime.now(UTC),
        )
    )
