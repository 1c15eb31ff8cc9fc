"""Stage 7: the review gate. Counts the content ready for review; where the site's publishing
settings turn auto-approval on, approves up to `max_approvals_per_run` of it, and where they turn
auto-publish on, schedules the approved content into its publishing slots.

A site with no saved publishing settings only counts: nothing is approved or published before
its owner has seen the publishing settings. Each article is approved and scheduled in one
transaction, the site's scheduling lock serialising it with manual approvals and the publish
cron; an article whose slot is due at once (immediate mode) has a publish pass queued as soon
as that is committed. `scheduled_count` counts every article this run gave a slot (older
approved ones waiting for room included, oldest first); `not_scheduled` counts the articles it
approved that found no slot (queue full, or 90 days without a free slot): they wait, approved,
and the publish cron schedules them later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.publishing import PublishingSettings
from app.models.tenancy import Site
from app.models.writer import Content
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.publishing.publish import publish_soon
from app.publishing.service import schedule_approved
from app.stages.base import Item, Stage
from app.stages.context import StageContext
from app.stages.work import Written, local_item
from app.writer.states import approve


class ReviewStage(Stage):
    number = 7
    name = "Review → Published"
    limit_field = "max_approvals_per_run"
    taken_counters = ("approved_count",)

    async def opening_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        return {"ready_for_review": await count_ready(session, ctx.run.site_id), "not_scheduled": 0}

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        if not await _auto_approval(session, ctx.run.site_id):
            return []
        rows = await session.scalars(
            select(Content)
            .where(Content.site_id == ctx.run.site_id, pending_condition(7), Content.id > after_id)
            .order_by(Content.id)
            .limit(limit)
        )
        return [Item(row.id, row.title) for row in rows]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        async def write(session: AsyncSession) -> Written:
            approved = await approve(session, Content.id == item.id)
            deltas: dict[str, Number] = {"approved_count": len(approved)}
            message = f"Approved '{item.title}'"
            if approved:
                site = await session.get_one(Site, ctx.run.site_id)
                outcome = await schedule_approved(session, site, datetime.now(UTC))
                if outcome is not None:
                    waiting = item.id not in outcome.content_ids
                    deltas["scheduled_count"] = len(outcome.content_ids)
                    deltas["not_scheduled"] = int(waiting)
                    message += _slot_note(waiting, outcome.queue_full)
                    if outcome.due_now:
                        publish_soon(session, ctx.deps.queue)
            return Written(units=0, deltas=deltas, message=message, data={"content_id": item.id})

        await local_item(ctx, item, write)


def _slot_note(waiting: bool, queue_full: bool) -> str:
    if not waiting:
        return " and scheduled it"
    if queue_full:
        return "; it waits for room in the publishing queue"
    return "; no free publishing slot in the next 90 days, it waits"


async def count_ready(session: AsyncSession, site_id: int) -> int:
    ready = await session.scalar(
        select(func.count())
        .select_from(Content)
        .where(Content.site_id == site_id, pending_condition(7))
    )
    return int(ready or 0)


async def _auto_approval(session: AsyncSession, site_id: int) -> bool:
    enabled = await session.scalar(
        select(PublishingSettings.auto_approval_enabled).where(
            PublishingSettings.site_id == site_id
        )
    )
    return bool(enabled)
