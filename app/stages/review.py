"""Stage 7: the review gate. Counts the content ready for review; where the site's publishing
settings turn auto-approval on, approves up to `max_approvals_per_run` of it, and where they turn
auto-publish on, schedules the approved content into its publishing slots.

Both are on by default, as in the reference; where auto-approval is off the stage ends saying
how many articles await review (`awaiting_review`, and a line of the log).

A batch of articles is approved in one statement and scheduled in one pass, in one transaction,
the site's scheduling lock serialising it with manual approvals and the publish cron; a batch
that made a slot due at once (immediate mode) has a publish pass queued as soon as that is
committed. `scheduled_count` counts every article this run gave a slot (older approved ones
waiting for room included, oldest first); `not_scheduled` counts the articles it approved that
found no slot (queue full, or 90 days without a free slot): they wait, approved, and the publish
cron schedules them later.
`content_ids` lists the articles the stage handled (000): those it approved, or where
auto-approval is off those it counted for review.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.automation import AutomationRun
from app.models.tenancy import Site
from app.models.writer import Content
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number, appended_in_result, result_column
from app.publishing.publish import publish_soon
from app.publishing.service import Scheduled, auto_approval_on, schedule_approved
from app.stages.base import Item, LocalStage
from app.stages.context import StageContext
from app.stages.handle import LeaseLost, fenced
from app.stages.work import WrittenBatch, local_batch
from app.writer.states import approve


class ReviewStage(LocalStage):
    number = 7
    name = "Review → Published"
    limit_field = "max_approvals_per_run"
    taken_counters = ("approved_count",)

    async def opening_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        """What is ready for review; `content_ids` lists the articles the stage handles: those
        it approves (added as it goes), or, where auto-approval is off, those it counts."""
        ready = await ready_ids(session, ctx.run.site_id)
        handled = [] if await auto_approval_on(session, ctx.run.site_id) else ready
        return {"ready_for_review": len(ready), "not_scheduled": 0, "content_ids": handled}

    async def closing_values(self, session: AsyncSession, ctx: StageContext) -> dict[str, Any]:
        if await auto_approval_on(session, ctx.run.site_id):
            return {}
        return {"awaiting_review": len(await ready_ids(session, ctx.run.site_id))}

    def closing_note(self, result: dict[str, Any]) -> str | None:
        waiting = int(result.get("awaiting_review") or 0)
        if not waiting:
            return None
        return (
            f"{waiting} articles await review: auto-approval is off, so they are approved by "
            "hand (Content)"
        )

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        if not await auto_approval_on(session, ctx.run.site_id):
            return []
        rows = await session.execute(
            select(Content.id, Content.title)
            .where(Content.site_id == ctx.run.site_id, pending_condition(7), Content.id > after_id)
            .order_by(Content.id)
            .limit(limit)
        )
        return [Item(row.id, row.title) for row in rows]

    async def process_batch(self, ctx: StageContext, items: list[Item]) -> None:
        async def write(session: AsyncSession) -> WrittenBatch:
            approved = await approve(session, Content.id.in_([item.id for item in items]))
            deltas: dict[str, Number] = {"approved_count": len(approved)}
            outcome = None
            if approved:
                listed = await session.scalar(
                    fenced(ctx.run)
                    .values({result_column(7): appended_in_result(7, "content_ids", approved)})
                    .returning(AutomationRun.id)
                )
                if listed is None:
                    raise LeaseLost(ctx.run.run_id)
                site = await session.get_one(Site, ctx.run.site_id)
                outcome = await schedule_approved(session, site, datetime.now(UTC))
            if outcome is not None:
                deltas["scheduled_count"] = len(outcome.content_ids)
                deltas["not_scheduled"] = len(set(approved) - set(outcome.content_ids))
                if outcome.due_now:
                    publish_soon(session, ctx.deps.queue)
            return WrittenBatch(
                deltas,
                [
                    (_note(item, item.id in approved, outcome), {"content_id": item.id})
                    for item in items
                ],
            )

        await local_batch(ctx, items, write)


def _note(item: Item, approved: bool, outcome: Scheduled | None) -> str:
    """The item's line of the log: approved (and scheduled, or waiting for a slot), or found out
    of review (a reviewer took it meanwhile)."""
    if not approved:
        return f"'{item.title}' was no longer in review: not approved"
    note = f"Approved '{item.title}'"
    if outcome is None:
        return note
    if item.id in outcome.content_ids:
        return note + " and scheduled it"
    if outcome.queue_full:
        return note + "; it waits for room in the publishing queue"
    return note + "; no free publishing slot in the next 90 days, it waits"


async def ready_ids(session: AsyncSession, site_id: int) -> list[int]:
    ready = await session.scalars(
        select(Content.id)
        .where(Content.site_id == site_id, pending_condition(7))
        .order_by(Content.id)
    )
    return list(ready)
