"""A site's publishing settings, scheduling its approved content into slots, and its queue.
Services flush; the caller's unit of work commits.

Scheduling is serialised per site by the lock on its `PublishingSettings` row, so stage 7, a
manual approval and the publish cron's back-fill never give two articles one slot nor overfill
the queue. Content rows are taken with SKIP LOCKED under that lock: whoever holds an article's
row (a reviewer rejecting it) is never waited for, and the article is picked up next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import fetch_page
from app.errors import InvalidInput
from app.models.publishing import PublishingSettings, SchedulingMode
from app.models.tenancy import Site
from app.models.writer import Content, ContentStatus, SiteStatus
from app.publishing.schemas import PublishingSettingsUpdate, QueueItemOut, QueueSummary
from app.publishing.slots import next_slots
from app.writer import states

QUEUE_STATUSES = (SiteStatus.SCHEDULED, SiteStatus.PUBLISHING, SiteStatus.FAILED)
# How many upcoming free slots the settings answer previews.
PREVIEW_SLOTS = 5
# Content whose slot is held: a slot being published is not free either.
_HOLDING_SLOTS = (SiteStatus.SCHEDULED, SiteStatus.PUBLISHING)
_DEFAULT_QUEUE_LIMIT = int(PublishingSettings.__table__.c.queue_limit.default.arg)
# What a site whose settings row is not created yet has.
_DEFAULT_AUTO_APPROVAL = bool(PublishingSettings.__table__.c.auto_approval_enabled.default.arg)
_DEFAULT_AUTO_PUBLISH = bool(PublishingSettings.__table__.c.auto_publish_enabled.default.arg)


async def find_settings(
    session: AsyncSession, site_id: int, *, for_update: bool = False
) -> PublishingSettings | None:
    query = select(PublishingSettings).where(PublishingSettings.site_id == site_id)
    if for_update:
        query = query.with_for_update()
    settings: PublishingSettings | None = await session.scalar(
        query.execution_options(populate_existing=True)
    )
    return settings


async def auto_approval_on(session: AsyncSession, site_id: int) -> bool:
    """Whether stage 7 approves the site's content in review, or only counts it."""
    enabled = await session.scalar(
        select(PublishingSettings.auto_approval_enabled).where(
            PublishingSettings.site_id == site_id
        )
    )
    return _DEFAULT_AUTO_APPROVAL if enabled is None else enabled


async def get_or_create_settings(
    session: AsyncSession, site: Site, *, for_update: bool = False
) -> PublishingSettings:
    """The site's settings, inserted with the defaults if it has none yet (two first reads
    racing both end with the one row: INSERT ... ON CONFLICT DO NOTHING, then read again)."""
    settings = await find_settings(session, site.id, for_update=for_update)
    if settings is None:
        await session.execute(
            insert(PublishingSettings)
            .values(account_id=site.account_id, site_id=site.id)
            .on_conflict_do_nothing(index_elements=[PublishingSettings.site_id])
        )
        settings = await find_settings(session, site.id, for_update=for_update)
    assert settings is not None, "the row was inserted or already there"
    return settings


async def update_settings(
    session: AsyncSession, site: Site, changes: PublishingSettingsUpdate
) -> PublishingSettings:
    """Apply the fields sent, then check the settings as a whole. Content already scheduled
    keeps its slot: a new mode or new times apply to content scheduled from now on."""
    settings = await get_or_create_settings(session, site, for_update=True)
    for field, value in changes.changes().items():
        setattr(settings, field, value)
    _check(settings)
    await session.flush()
    await session.refresh(settings)
    return settings


def _check(settings: PublishingSettings) -> None:
    """The rules that span fields: what the mode needs to find any slot at all."""
    problems: list[dict[str, str]] = []
    mode = SchedulingMode(settings.scheduling_mode)
    if mode is not SchedulingMode.IMMEDIATE and not settings.publish_days:
        problems.append(
            {"field": "publish_days", "message": f"at least one day is needed in {mode} mode"}
        )
    if mode is SchedulingMode.TIME_SLOTS and not settings.publish_time_slots:
        problems.append(
            {
                "field": "publish_time_slots",
                "message": "at least one slot is needed in time_slots mode",
            }
        )
    if settings.stagger_start_time >= settings.stagger_end_time:
        problems.append(
            {"field": "stagger_end_time", "message": "must be later than stagger_start_time"}
        )
    if problems:
        fields = ", ".join(p["field"] for p in problems)
        raise InvalidInput(f"invalid input: {fields}", details=problems)


@dataclass(frozen=True)
class Scheduled:
    """What a scheduling pass did: the articles it gave a slot, how many approved ones still
    wait for one, whether the queue limit is what keeps them waiting, and whether a slot it gave
    is due already (immediate mode: a publish pass should run now, not at the next tick)."""

    content_ids: tuple[int, ...]
    waiting: int
    queue_full: bool
    due_now: bool = False


async def schedule_approved(session: AsyncSession, site: Site, now: datetime) -> Scheduled | None:
    """Give the site's approved, unpublished content (oldest first) the next free slots while
    the queue has room; None (nothing done) where the site's settings (created with the
    defaults if it has none yet) turn auto-publish off.

    Articles left without a slot (the queue is full, or 90 days hold no free slot) stay approved
    and `not_published`; calling this again later (the publish cron does, every minute) gives
    them the slots that have come free.
    """
    settings = await get_or_create_settings(session, site, for_update=True)
    if not settings.auto_publish_enabled:
        return None
    in_queue = await _count(session, site.id, Content.site_status == SiteStatus.SCHEDULED)
    room = max(settings.queue_limit - in_queue, 0)
    waiting_ids: list[int] = []
    slots: list[datetime] = []
    moved: list[int] = []
    if room:
        waiting_ids = list(
            await session.scalars(
                select(Content.id)
                .where(Content.site_id == site.id, *_waiting())
                .order_by(Content.id)
                .limit(room)
                .with_for_update(skip_locked=True)
            )
        )
    if waiting_ids:
        taken = await _taken_slots(session, site.id, now)
        slots = next_slots(settings, site.timezone, now, taken, len(waiting_ids))
        # Fewer slots than articles: the newest ones wait for the next pass.
        moved = await states.schedule(session, dict(zip(waiting_ids, slots, strict=False)))
    waiting = await _count(session, site.id, *_waiting())
    full = in_queue + len(moved) >= settings.queue_limit
    return Scheduled(
        tuple(moved),
        waiting,
        queue_full=waiting > 0 and full,
        due_now=any(slot <= now for slot in slots),
    )


async def preview_slots(
    session: AsyncSession, site: Site, settings: PublishingSettings, now: datetime
) -> list[datetime]:
    """The free slots the next approved articles would get, by these settings."""
    taken = await _taken_slots(session, site.id, now)
    return next_slots(settings, site.timezone, now, taken, PREVIEW_SLOTS)


async def _taken_slots(session: AsyncSession, site_id: int, now: datetime) -> list[datetime]:
    taken = await session.scalars(
        select(Content.scheduled_publish_at).where(
            Content.site_id == site_id,
            Content.site_status.in_(_HOLDING_SLOTS),
            Content.scheduled_publish_at >= now,
        )
    )
    return [t for t in taken if t is not None]


def _waiting() -> tuple[Any, ...]:
    return (
        Content.status == ContentStatus.APPROVED,
        Content.site_status == SiteStatus.NOT_PUBLISHED,
    )


async def _count(session: AsyncSession, site_id: int, *conditions: Any) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Content).where(Content.site_id == site_id, *conditions)
    )
    return int(count or 0)


async def queue(
    session: AsyncSession,
    site: Site,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
) -> tuple[list[QueueItemOut], int, QueueSummary]:
    """The site's content that is scheduled, being published or failed, by slot."""
    statuses = [status] if status is not None else list(QUEUE_STATUSES)
    stmt = (
        select(Content)
        .where(Content.site_id == site.id, Content.site_status.in_(statuses))
        .order_by(Content.scheduled_publish_at.asc().nulls_last(), Content.id)
    )
    rows, total = await fetch_page(session, stmt, limit=limit, offset=offset)
    zone = ZoneInfo(site.timezone)
    items = [
        QueueItemOut(
            id=row.id,
            title=row.title,
            status=row.status,
            site_status=row.site_status,
            scheduled_publish_at=row.scheduled_publish_at,
            scheduled_local=row.scheduled_publish_at.astimezone(zone)
            if row.scheduled_publish_at
            else None,
            publish_attempts=row.publish_attempts,
            publish_error=row.publish_error,
            external_url=row.external_url,
        )
        for row in rows
    ]
    settings = await find_settings(session, site.id)
    summary = QueueSummary(
        scheduled=await _count(session, site.id, Content.site_status == SiteStatus.SCHEDULED),
        queue_limit=settings.queue_limit if settings else _DEFAULT_QUEUE_LIMIT,
        waiting=await _count(session, site.id, *_waiting()),
        auto_publish_enabled=settings.auto_publish_enabled if settings else _DEFAULT_AUTO_PUBLISH,
        timezone=site.timezone,
    )
    return items, total, summary
