"""Writer logic: listing tasks, articles and images; reviewing articles by hand."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import fetch_page
from app.errors import InvalidTransition, NotFound
from app.models.tenancy import Site
from app.models.writer import Content, ContentStatus, Image, ImageType, Task
from app.writer import states


async def list_tasks(
    session: AsyncSession, site: Site, *, limit: int, offset: int, status: str | None = None
) -> tuple[list[Task], int]:
    stmt = select(Task).where(Task.site_id == site.id)
    if status is not None:
        stmt = stmt.where(Task.status == status)
    return await fetch_page(session, stmt.order_by(Task.id), limit=limit, offset=offset)


async def list_content(
    session: AsyncSession,
    site: Site,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    site_status: str | None = None,
) -> tuple[list[Content], int]:
    stmt = select(Content).where(Content.site_id == site.id)
    if status is not None:
        stmt = stmt.where(Content.status == status)
    if site_status is not None:
        stmt = stmt.where(Content.site_status == site_status)
    return await fetch_page(session, stmt.order_by(Content.id), limit=limit, offset=offset)


async def list_images(
    session: AsyncSession,
    site: Site,
    *,
    limit: int,
    offset: int,
    content_id: int | None = None,
    status: str | None = None,
) -> tuple[list[Image], int]:
    stmt = select(Image).where(Image.site_id == site.id)
    if content_id is not None:
        stmt = stmt.where(Image.content_id == content_id)
    if status is not None:
        stmt = stmt.where(Image.status == status)
    order = (Image.content_id, Image.image_type != ImageType.FEATURED, Image.position)
    return await fetch_page(session, stmt.order_by(*order), limit=limit, offset=offset)


async def get_content(session: AsyncSession, account_id: int, content_id: int) -> Content:
    content = await session.scalar(
        select(Content).where(Content.id == content_id, Content.account_id == account_id)
    )
    if content is None:
        raise NotFound(f"content {content_id} not found")
    return content


async def content_images(session: AsyncSession, content: Content) -> list[Image]:
    rows = await session.scalars(
        select(Image)
        .where(Image.content_id == content.id)
        .order_by(Image.image_type != ImageType.FEATURED, Image.position)
    )
    return list(rows)


async def review(
    session: AsyncSession, account_id: int, content_id: int, decision: ContentStatus
) -> Content:
    """Approve or reject an article by hand; a rejected article leaves the publishing queue."""
    mine = (Content.id == content_id, Content.account_id == account_id)
    if decision is ContentStatus.APPROVED:
        moved = await states.approve(session, *mine, by_hand=True)
    elif decision is ContentStatus.REJECTED:
        moved = await states.reject(session, *mine)
    else:
        raise ValueError(f"{decision.value} is not a review decision")
    content = await session.scalar(
        select(Content).where(*mine).execution_options(populate_existing=True)
    )
    if content is None:
        raise NotFound(f"content {content_id} not found")
    if not moved:
        raise InvalidTransition(
            f"content {content_id} is {content.status} (site status {content.site_status}) "
            f"and cannot be {decision.value}",
            details={"status": content.status, "site_status": content.site_status},
        )
    return content
