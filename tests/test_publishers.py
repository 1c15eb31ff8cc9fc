"""The publishers on their own, against real HTTP servers on 127.0.0.1: WordPress (media, featured
media, the post, never twice), the signed webhook, and how failures are retried or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import Settings
from app.outbound.client import OutboundClient
from app.publishing.publishers.base import (
    Article,
    ArticleImage,
    Destination,
    PublishError,
    RetryPolicy,
    Transport,
)
from app.publishing.publishers.webhook import WebhookPublisher, delivery_id
from app.publishing.publishers.wordpress import WordPressPublisher, post_slug, with_images
from tests.builders import png_bytes
from tests.servers.webhook_receiver import serve_webhook_receiver
from tests.servers.wordpress import WordPress, serve_wordpress

FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
SIGNING_KEY = "a-signing-key-of-32-characters!!"
HTML = "<p>Intro.</p><h2>First</h2><p>One.</p><h2>Second</h2><p>Two.</p>"


@pytest.fixture
def open_settings(settings: Settings) -> Settings:
    """The tests' peers listen on 127.0.0.1 over plain http."""
    return settings.model_copy(update={"allow_private_urls": True, "allow_http_urls": True})


@pytest.fixture
async def transport(open_settings: Settings) -> AsyncIterator[Transport]:
    async with OutboundClient(open_settings) as client:
        yield Transport(client, FAST)


@pytest.fixture
async def wordpress() -> AsyncIterator[WordPress]:
    async with serve_wordpress() as site:
        yield site


def stored_image(
    folder: Path, image_id: int, image_type: str, position: int, rgb: tuple[int, int, int]
) -> ArticleImage:
    path = folder / f"{image_id}.png"
    path.write_bytes(png_bytes(rgb=rgb))
    return ArticleImage(
        image_id=image_id,
        image_type=image_type,
        position=position,
        url=f"/media/1/1/7/{image_id}.png",
        path=path,
        media_type="image/png",
    )


def article(tmp_path: Path, *, images: bool = True) -> Article:
    return Article(
        content_id=7,
        site_id=1,
        title="Trail Running Shoes: A Guide",
        html=HTML,
        meta_title="Trail shoes | Example",
        meta_description="How to pick trail running shoes.",
        word_count=6,
        scheduled_publish_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        published_at=datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC),
        images=(
            stored_image(tmp_path, 11, "featured", 0, (10, 20, 30)),
            stored_image(tmp_path, 12, "in_article", 1, (40, 50, 60)),
            stored_image(tmp_path, 13, "in_article", 2, (70, 80, 90)),
        )
        if images
        else (),
    )


def destination_of(wordpress: WordPress, password: str | None = None) -> Destination:
    return Destination(
        endpoint_url=wordpress.url,
        username=wordpress.username,
        secret=password or wordpress.password,
    )


class TestWordPressPublisher:
    async def test_uploads_the_images_and_creates_the_post_with_its_featured_media(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        piece = article(tmp_path)

        published = await WordPressPublisher(transport).publish(piece, destination_of(wordpress))

        stored = [(tmp_path / f"{i.image_id}.png").read_bytes() for i in piece.images]
        assert [m.data for m in wordpress.media] == stored
        assert {m.content_type for m in wordpress.media} == {"image/png"}
        [post] = wordpress.posts
        assert published.external_id == str(post["id"])
        assert published.external_url == post["link"]
        assert post["status"] == "publish"
        assert post["title"] == piece.title
        assert post["excerpt"] == piece.meta_description
        assert post["slug"] == post_slug(piece)
        assert post["featured_media"] == wordpress.media[0].id
        first, second = wordpress.media[1].source_url, wordpress.media[2].source_url
        assert post["content"] == (
            f'<p>Intro.</p><h2>First</h2><figure class="wp-block-image"><img src="{first}" '
            f'alt="{piece.title}"/></figure><p>One.</p><h2>Second</h2>'
            f'<figure class="wp-block-image"><img src="{second}" alt="{piece.title}"/></figure>'
            "<p>Two.</p>"
        )

    async def test_a_post_made_by_an_earlier_attempt_is_found_not_made_again(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        piece = article(tmp_path)
        earlier = wordpress.add_post(post_slug(piece))

        published = await WordPressPublisher(transport).publish(piece, destination_of(wordpress))

        assert published.external_id == str(earlier["id"])
        assert wordpress.posts == [earlier]
        assert wordpress.media == []

    async def test_a_lost_answer_to_the_create_is_not_a_second_post(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wordpress.fail(502, path="/posts", method="POST", after=True)

        published = await WordPressPublisher(transport).publish(
            article(tmp_path), destination_of(wordpress)
        )

        [post] = wordpress.posts
        assert published.external_id == str(post["id"])
        assert len(wordpress.calls("POST", "/posts")) == 1

    async def test_a_500_is_retried_and_then_succeeds(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wordpress.fail(500, path="/media")

        await WordPressPublisher(transport).publish(article(tmp_path), destination_of(wordpress))

        assert len(wordpress.calls("POST", "/media")) == 4
        assert len(wordpress.media) == 3
        assert len(wordpress.posts) == 1

    async def test_a_503_is_retried_after_the_time_it_asks_for(
        self, open_settings: Settings, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wordpress.fail(503, path="/posts", method="GET", retry_after=0.3)
        patient = RetryPolicy(attempts=2, initial=0.001, maximum=5)

        async with OutboundClient(open_settings) as client:
            await WordPressPublisher(Transport(client, patient)).publish(
                article(tmp_path, images=False), destination_of(wordpress)
            )

        first, second = wordpress.calls("GET", "/posts")[:2]
        assert second.at - first.at >= 0.3
        assert len(wordpress.posts) == 1

    async def test_a_wrong_password_fails_at_once_with_the_reason_and_without_it(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wrong = "wxyz wxyz wxyz wxyz wxyz wxyz"

        with pytest.raises(PublishError) as failed:
            await WordPressPublisher(transport).publish(
                article(tmp_path), destination_of(wordpress, wrong)
            )

        assert not failed.value.retryable
        assert failed.value.describe() == (
            "WordPress (post lookup) answered HTTP 401: incorrect_password: "
            "The provided password is incorrect."
        )
        assert len(wordpress.requests) == 1
        assert wordpress.posts == []

    async def test_a_slow_answer_times_out_and_is_tried_again(
        self, open_settings: Settings, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wordpress.slow(2, path="/posts", method="GET")

        async with OutboundClient(open_settings, timeout=0.3) as client:
            published = await WordPressPublisher(Transport(client, FAST)).publish(
                article(tmp_path, images=False), destination_of(wordpress)
            )

        assert published.external_id == str(wordpress.posts[0]["id"])
        assert len(wordpress.calls("GET", "/posts")) >= 2

    async def test_always_500_fails_after_the_attempts_with_the_status_in_the_reason(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        wordpress.fail(500, times=3)

        with pytest.raises(PublishError) as failed:
            await WordPressPublisher(transport).publish(
                article(tmp_path), destination_of(wordpress)
            )

        assert failed.value.describe() == (
            "WordPress (post lookup) answered HTTP 500: scripted_fault: Scripted fault 500 "
            "(after 3 attempts)"
        )
        assert wordpress.posts == []

    async def test_a_private_address_is_refused_before_any_request(
        self, settings: Settings, wordpress: WordPress, tmp_path: Path
    ) -> None:
        guarded = settings.model_copy(update={"allow_http_urls": True})

        async with OutboundClient(guarded) as client:
            with pytest.raises(PublishError) as failed:
                await WordPressPublisher(Transport(client, FAST)).publish(
                    article(tmp_path), destination_of(wordpress)
                )

        assert "does not resolve to a public address" in failed.value.reason
        assert failed.value.attempts == 1
        assert wordpress.requests == []

    async def test_a_missing_image_file_fails_the_publication(
        self, transport: Transport, wordpress: WordPress, tmp_path: Path
    ) -> None:
        piece = article(tmp_path)
        (tmp_path / "12.png").unlink()

        with pytest.raises(PublishError, match="the file of image 12 is missing"):
            await WordPressPublisher(transport).publish(piece, destination_of(wordpress))
        assert wordpress.posts == []


class TestWebhookPublisher:
    async def test_the_receiver_verifies_the_signed_article(
        self, transport: Transport, tmp_path: Path
    ) -> None:
        piece = article(tmp_path)
        async with serve_webhook_receiver(SIGNING_KEY) as receiver:
            published = await WebhookPublisher(transport).publish(
                piece, Destination(endpoint_url=receiver.url, secret=SIGNING_KEY)
            )

        [delivery] = receiver.deliveries
        assert delivery.verified
        assert delivery.delivery_id == "content:7:publish"
        assert delivery.payload == {
            "event": "content.published",
            "delivery_id": "content:7:publish",
            "id": 7,
            "site_id": 1,
            "title": piece.title,
            "html": HTML,
            "meta_title": piece.meta_title,
            "meta_description": piece.meta_description,
            "word_count": 6,
            "scheduled_publish_at": "2026-03-02T09:00:00+00:00",
            "published_at": "2026-03-02T09:00:05+00:00",
            "images": [
                {"type": "featured", "position": 0, "url": "/media/1/1/7/11.png"},
                {"type": "in_article", "position": 1, "url": "/media/1/1/7/12.png"},
                {"type": "in_article", "position": 2, "url": "/media/1/1/7/13.png"},
            ],
        }
        assert published.external_id == "article-7"
        assert published.external_url == f"{receiver.url}/7"

    async def test_failed_deliveries_are_retried_with_the_same_delivery_id(
        self, transport: Transport, tmp_path: Path
    ) -> None:
        async with serve_webhook_receiver(SIGNING_KEY, script=[500, 429]) as receiver:
            await WebhookPublisher(transport).publish(
                article(tmp_path), Destination(endpoint_url=receiver.url, secret=SIGNING_KEY)
            )

        assert [d.delivery_id for d in receiver.deliveries] == [delivery_id(7)] * 3
        assert all(d.verified for d in receiver.deliveries)
        assert list(receiver.articles) == [delivery_id(7)]

    async def test_a_4xx_fails_at_once_and_never_shows_the_key(
        self, transport: Transport, tmp_path: Path
    ) -> None:
        async with serve_webhook_receiver("another-key-the-receiver-has") as receiver:
            with pytest.raises(PublishError) as failed:
                await WebhookPublisher(transport).publish(
                    article(tmp_path), Destination(endpoint_url=receiver.url, secret=SIGNING_KEY)
                )

        assert failed.value.describe() == 'the webhook answered HTTP 401: {"error":"bad signature"}'
        assert len(receiver.deliveries) == 1
        assert SIGNING_KEY not in failed.value.describe()


class TestArticleHtml:
    def test_in_article_images_go_after_the_headings_in_order_and_the_rest_at_the_end(
        self,
    ) -> None:
        html = "<h2>A</h2><p>a</p>"

        placed = with_images(html, [("https://x/1.png", "T"), ("https://x/2.png", "T & U")])

        assert placed == (
            '<h2>A</h2><figure class="wp-block-image"><img src="https://x/1.png" alt="T"/>'
            '</figure><p>a</p><figure class="wp-block-image"><img src="https://x/2.png" '
            'alt="T &amp; U"/></figure>'
        )

    def test_the_slug_is_the_title_in_ascii_and_names_the_content(self, tmp_path: Path) -> None:
        piece = article(tmp_path, images=False)
        accented = Article(**{**piece.__dict__, "title": "Café & Crème: 10 Tips!"})
        blank = Article(**{**piece.__dict__, "title": "???"})

        assert post_slug(piece) == "trail-running-shoes-a-guide-ca7"
        assert post_slug(accented) == "cafe-creme-10-tips-ca7"
        assert post_slug(blank) == "ca7"
