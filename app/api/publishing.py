"""Publishing settings and the publishing queue of a site (SPEC §9)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import PageDep, SessionDep, SiteDep
from app.api.errors import ERROR_RESPONSES
from app.models.publishing import PublishingSettings
from app.models.tenancy import Site
from app.publishing import service
from app.publishing.schemas import (
    PublishingSettingsOut,
    PublishingSettingsUpdate,
    QueuePage,
    QueueStatus,
)

router = APIRouter(prefix="/api/v1/publishing", tags=["publishing"], responses=ERROR_RESPONSES)


@router.get(
    "/settings/",
    response_model=PublishingSettingsOut,
    summary="A site's publishing settings",
    description="Created with the defaults on first read: auto-approval and auto-publish off, "
    "`time_slots` mode at 09:00, 14:00 and 18:00 Monday to Friday, queue limit 100. Until a "
    "user turns auto-approval on, stage 7 only counts the content in review; until auto-publish "
    "is on, approved content waits unscheduled.",
)
async def get_settings(site: SiteDep, session: SessionDep) -> PublishingSettingsOut:
    return await _answer(session, site, await service.get_or_create_settings(session, site))


@router.put(
    "/settings/",
    response_model=PublishingSettingsOut,
    summary="Change a site's publishing settings",
    description="Partial update: fields left out keep their values. `time_slots` and `stagger` "
    "need at least one publish day, `time_slots` at least one slot; `stagger_start_time` must be "
    "before `stagger_end_time`. Days and slots are stored in order, each once. A bad value or an "
    "unknown field is a 400 naming it, and changes nothing. Content already scheduled keeps its "
    "slot: a new mode or new times apply to what is scheduled from then on.",
)
async def put_settings(
    body: PublishingSettingsUpdate, site: SiteDep, session: SessionDep
) -> PublishingSettingsOut:
    return await _answer(session, site, await service.update_settings(session, site, body))


@router.get(
    "/queue/",
    response_model=QueuePage,
    summary="The site's publishing queue",
    description="Content that is scheduled, being published or failed (`status` picks one), "
    "earliest slot first. Each slot is given in UTC and in the site's time zone. `summary` "
    "counts the scheduled items against `queue_limit` and the approved ones still waiting for "
    "a slot (they get one as the queue empties).",
)
async def get_queue(
    site: SiteDep, session: SessionDep, page: PageDep, status: QueueStatus | None = None
) -> QueuePage:
    items, total, summary = await service.queue(
        session, site, limit=page.limit, offset=page.offset, status=status
    )
    return QueuePage(
        items=items, total=total, limit=page.limit, offset=page.offset, summary=summary
    )


async def _answer(
    session: AsyncSession, site: Site, settings: PublishingSettings
) -> PublishingSettingsOut:
    answer = PublishingSettingsOut.model_validate(settings)
    answer.next_slots = await service.preview_slots(session, site, settings, datetime.now(UTC))
    return answer
