"""The writer API: reading articles with their images, reviewing them by hand, lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models.writer import Content
from tests.builders import create_content, create_image, create_task
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


async def _stored(session_factory: SessionFactory, content_id: int) -> Content:
    async with session_factory() as session:
        content = await session.get(Content, content_id)
    assert content is not None
    return content


def _columns(content: Content) -> dict[str, Any]:
    return {c.key: getattr(content, c.key) for c in Content.__table__.columns}


class TestContentDetail:
    async def test_shows_html_meta_status_and_images_featured_first_then_by_position(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(
            session_factory,
            tenant,
            title="Best trail shoes",
            html="<h2>Grip</h2><p>Lugs matter on mud.</p>",
            word_count=4,
            meta_title="Best trail shoes 2026",
            meta_description="How to choose trail shoes.",
        )
        # Inserted out of order: the answer orders them, not the insertion.
        second = await create_image(session_factory, tenant, content_id=content.id, position=2)
        featured = await create_image(
            session_factory, tenant, content_id=content.id, image_type="featured", position=0
        )
        first = await create_image(
            session_factory,
            tenant,
            content_id=content.id,
            position=1,
            status="generated",
            url="/media/sites/1/images/1.png",
        )

        response = await client.get(f"/api/v1/writer/content/{content.id}/", headers=tenant.headers)

        assert response.status_code == 200
        body = response.json()
        assert body["title"] == "Best trail shoes"
        assert body["html"] == "<h2>Grip</h2><p>Lugs matter on mud.</p>"
        assert body["word_count"] == 4
        assert body["meta_title"] == "Best trail shoes 2026"
        assert body["meta_description"] == "How to choose trail shoes."
        assert body["status"] == "review"
        assert body["site_status"] == "not_published"
        assert [i["id"] for i in body["images"]] == [featured.id, first.id, second.id]
        assert [(i["image_type"], i["position"]) for i in body["images"]] == [
            ("featured", 0),
            ("in_article", 1),
            ("in_article", 2),
        ]
        assert body["images"][1]["url"] == "/media/sites/1/images/1.png"
        assert body["images"][1]["status"] == "generated"

    async def test_an_article_without_images_has_an_empty_image_list(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(session_factory, tenant)
        response = await client.get(f"/api/v1/writer/content/{content.id}/", headers=tenant.headers)
        assert response.status_code == 200
        assert response.json()["images"] == []

    async def test_the_list_leaves_the_html_out(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await create_content(session_factory, tenant)
        response = await client.get(
            "/api/v1/writer/content/", params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        assert response.status_code == 200
        assert "html" not in response.json()["items"][0]


class TestReviewByHand:
    async def test_approving_an_article_in_review_makes_it_approved(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(session_factory, tenant, status="review")
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/approve/", headers=tenant.headers
        )
        assert response.status_code == 200
        assert response.json()["status"] == "approved"
        assert (await _stored(session_factory, content.id)).status == "approved"

    async def test_rejecting_a_scheduled_article_takes_it_off_the_queue(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=datetime.now(UTC) + timedelta(days=1),
        )
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/reject/", headers=tenant.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "rejected"
        assert body["site_status"] == "not_published"
        assert body["scheduled_publish_at"] is None
        stored = await _stored(session_factory, content.id)
        assert (stored.status, stored.site_status, stored.scheduled_publish_at) == (
            "rejected",
            "not_published",
            None,
        )

    async def test_the_answer_is_the_full_article_with_its_images(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        content = await create_content(session_factory, tenant, html="<p>Body</p>")
        image = await create_image(session_factory, tenant, content_id=content.id)
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/approve/", headers=tenant.headers
        )
        assert response.json()["html"] == "<p>Body</p>"
        assert [i["id"] for i in response.json()["images"]] == [image.id]

    @pytest.mark.parametrize("decision", ["approve", "reject"])
    async def test_a_draft_cannot_be_reviewed_and_stays_as_it_was(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
        decision: str,
    ) -> None:
        content = await create_content(session_factory, tenant, status="draft")
        before = _columns(await _stored(session_factory, content.id))
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/{decision}/", headers=tenant.headers
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_transition"
        assert "draft" in error["message"]
        assert error["details"] == {"status": "draft", "site_status": "not_published"}
        assert _columns(await _stored(session_factory, content.id)) == before

    @pytest.mark.parametrize("decision", ["approve", "reject"])
    async def test_a_published_article_cannot_be_reviewed_again(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
        decision: str,
    ) -> None:
        content = await create_content(
            session_factory,
            tenant,
            status="published",
            site_status="published",
            published_at=datetime.now(UTC),
            external_url="https://blog.example.com/best-trail-shoes",
        )
        before = _columns(await _stored(session_factory, content.id))
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/{decision}/", headers=tenant.headers
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_transition"
        assert _columns(await _stored(session_factory, content.id)) == before

    @pytest.mark.parametrize("decision", ["approve", "reject"])
    async def test_an_approved_article_being_published_cannot_be_reviewed(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
        decision: str,
    ) -> None:
        content = await create_content(
            session_factory, tenant, status="approved", site_status="publishing"
        )
        response = await client.post(
            f"/api/v1/writer/content/{content.id}/{decision}/", headers=tenant.headers
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_transition"
        stored = await _stored(session_factory, content.id)
        assert (stored.status, stored.site_status) == ("approved", "publishing")


class TestLists:
    async def test_content_filtered_by_status_and_site_status(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        draft = await create_content(session_factory, tenant, status="draft")
        review = await create_content(session_factory, tenant, status="review")
        scheduled = await create_content(
            session_factory,
            tenant,
            status="approved",
            site_status="scheduled",
            scheduled_publish_at=datetime.now(UTC) + timedelta(hours=3),
        )
        approved = await create_content(session_factory, tenant, status="approved")

        async def ids(**filters: str) -> list[int]:
            response = await client.get(
                "/api/v1/writer/content/",
                params={"site_id": tenant.site_id, **filters},
                headers=tenant.headers,
            )
            assert response.status_code == 200
            body = response.json()
            assert body["total"] == len(body["items"])
            return [item["id"] for item in body["items"]]

        assert await ids() == [draft.id, review.id, scheduled.id, approved.id]
        assert await ids(status="review") == [review.id]
        assert await ids(status="approved") == [scheduled.id, approved.id]
        assert await ids(site_status="scheduled") == [scheduled.id]
        assert await ids(status="approved", site_status="not_published") == [approved.id]
        assert await ids(status="published") == []

    async def test_content_list_pages_with_limit_and_offset(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        contents = [await create_content(session_factory, tenant) for _ in range(3)]
        response = await client.get(
            "/api/v1/writer/content/",
            params={"site_id": tenant.site_id, "limit": 1, "offset": 1},
            headers=tenant.headers,
        )
        body = response.json()
        assert [item["id"] for item in body["items"]] == [contents[1].id]
        assert (body["total"], body["limit"], body["offset"]) == (3, 1, 1)

    async def test_images_filtered_by_content(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        one = await create_content(session_factory, tenant)
        other = await create_content(session_factory, tenant)
        inline = await create_image(session_factory, tenant, content_id=one.id, position=1)
        featured = await create_image(
            session_factory, tenant, content_id=one.id, image_type="featured", position=0
        )
        elsewhere = await create_image(session_factory, tenant, content_id=other.id)

        response = await client.get(
            "/api/v1/writer/images/",
            params={"site_id": tenant.site_id, "content_id": one.id},
            headers=tenant.headers,
        )
        assert response.status_code == 200
        assert [i["id"] for i in response.json()["items"]] == [featured.id, inline.id]
        everything = await client.get(
            "/api/v1/writer/images/", params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        assert [i["id"] for i in everything.json()["items"]] == [
            featured.id,
            inline.id,
            elsewhere.id,
        ]

    async def test_tasks_filtered_by_status(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        queued = await create_task(session_factory, tenant, status="queued")
        failed = await create_task(session_factory, tenant, status="failed", error="AI gave up")
        response = await client.get(
            "/api/v1/writer/tasks/",
            params={"site_id": tenant.site_id, "status": "failed"},
            headers=tenant.headers,
        )
        assert response.status_code == 200
        assert [(t["id"], t["error"]) for t in response.json()["items"]] == [
            (failed.id, "AI gave up")
        ]
        everything = await client.get(
            "/api/v1/writer/tasks/", params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        assert [t["id"] for t in everything.json()["items"]] == [queued.id, failed.id]

    @pytest.mark.parametrize(
        ("path", "filters", "field"),
        [
            ("/api/v1/writer/content/", {"status": "finished"}, "status"),
            ("/api/v1/writer/content/", {"site_status": "gone"}, "site_status"),
            ("/api/v1/writer/images/", {"content_id": "abc"}, "content_id"),
            ("/api/v1/writer/tasks/", {"limit": "501"}, "limit"),
        ],
    )
    async def test_a_bad_filter_is_400_naming_it(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        path: str,
        filters: dict[str, str],
        field: str,
    ) -> None:
        response = await client.get(
            path, params={"site_id": tenant.site_id, **filters}, headers=tenant.headers
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_input"
        assert field in response.json()["error"]["message"]
