"""Stage 7: the review gate. Counts the content ready for review; where the site's publishing
settings turn auto-approval on, approves up to `max_approvals_per_run` of it. (Scheduling the
approved content for publishing belongs to the publishing module.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.publishing import PublishingSettings
from app.models.writer import Content, ContentStatus
from app.stages.base import Item, Stage
from app.stages.context import StageContext
from app.stages.pending import pending_condition
from app.stages.work import Written, local_item


class ReviewStage(Stage):
    number = 7
    name = "Review → Published"
    limit_field = "max_approvals_per_run"
    taken_counters = ("approved_count",)

    async def opening_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        return {"ready_for_review": await count_ready(session, ctx.run.site_id)}

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
            approved = await session.scalar(
                update(Content)
                .where(Content.id == item.id, Content.status == ContentStatus.REVIEW.value)
                .values(status=ContentStatus.APPROVED.value)
                .returning(Content.id)
            )
            return Written(
                units=0,
                deltas={"approved_count": int(approved is not None)},
                message=f"Approved '{item.title}'",
                data={"content_id": item.id},
            )

        await local_item(ctx, item, write)


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
