"""Writer endpoints: tasks, articles and images; review by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import PageDep, PrincipalDep, QueueDep, SessionDep, SiteDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import id_path, id_query
from app.models.writer import Content, ContentStatus, ImageStatus, SiteStatus, TaskStatus
from app.publishing import service as publishing
from app.publishing.publish import publish_soon
from app.schemas import Page, page_of
from app.tenancy import service as tenancy
from app.writer import service
from app.writer.schemas import ContentOut, ContentSummaryOut, ImageOut, TaskOut

router = APIRouter(prefix="/api/v1/writer", tags=["writer"], responses=ERROR_RESPONSES)

ContentIdPath = Annotated[int, id_path("The article's id.")]


async def _detail(session: AsyncSession, content: Content) -> ContentOut:
    images = await service.content_images(session, content)
    summary = ContentSummaryOut.model_validate(content).model_dump()
    return ContentOut(
        **summary, html=content.html, images=[ImageOut.model_validate(i) for i in images]
    )


@router.get("/tasks/", response_model=Page[TaskOut], summary="List a site's tasks")
async def list_tasks(
    site: SiteDep, session: SessionDep, page: PageDep, status: TaskStatus | None = None
) -> Page[TaskOut]:
    rows, total = await service.list_tasks(
        session, site, limit=page.limit, offset=page.offset, status=status
    )
    return page_of(TaskOut, rows, total, page)


@router.get("/content/", response_model=Page[ContentSummaryOut], summary="List a site's articles")
async def list_content(
    site: SiteDep,
    session: SessionDep,
    page: PageDep,
    status: ContentStatus | None = None,
    site_status: SiteStatus | None = None,
) -> Page[ContentSummaryOut]:
    rows, total = await service.list_content(
        session,
        site,
        limit=page.limit,
        offset=page.offset,
        status=status,
        site_status=site_status,
    )
    return page_of(ContentSummaryOut, rows, total, page)


@router.get("/content/{content_id}/", response_model=ContentOut, summary="One article")
async def get_content(
    content_id: ContentIdPath, principal: PrincipalDep, session: SessionDep
) -> ContentOut:
    content = await service.get_content(session, principal.account_id, content_id)
    return await _detail(session, content)


@router.post(
    "/content/{content_id}/approve/",
    response_model=ContentOut,
    summary="Approve an article",
    description="Where the site's publishing settings turn auto-publish on, approved articles "
    "(this one included, oldest first) are scheduled into the next free slots at once, while "
    "the queue has room; one left waiting gets its slot when the queue empties. An immediate "
    "slot is published right away.",
)
async def approve_content(
    content_id: ContentIdPath, principal: PrincipalDep, session: SessionDep, queue: QueueDep
) -> ContentOut:
    content = await service.review(
        session, principal.account_id, content_id, ContentStatus.APPROVED
    )
    site = await tenancy.get_site(session, principal.account_id, content.site_id)
    scheduled = await publishing.schedule_approved(session, site, datetime.now(UTC))
    if scheduled is not None:
        await session.refresh(content)
        if scheduled.due_now:
            publish_soon(session, queue)
    return await _detail(session, content)


@router.post(
    "/content/{content_id}/reject/", response_model=ContentOut, summary="Reject an article"
)
async def reject_content(
    content_id: ContentIdPath, principal: PrincipalDep, session: SessionDep
) -> ContentOut:
    content = await service.review(
        session, principal.account_id, content_id, ContentStatus.REJECTED
    )
    return await _detail(session, content)


@router.get("/images/", response_model=Page[ImageOut], summary="List a site's images")
async def list_images(
    site: SiteDep,
    session: SessionDep,
    page: PageDep,
    content_id: Annotated[int | None, id_query("Only this article's images.")] = None,
    status: ImageStatus | None = None,
) -> Page[ImageOut]:
    rows, total = await service.list_images(
        session, site, limit=page.limit, offset=page.offset, content_id=content_id, status=status
    )
    return page_of(ImageOut, rows, total, page)
