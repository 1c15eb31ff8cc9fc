"""Stage 3: ideas → tasks, locally: a queued task per idea, no AI call, no credits."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.planner import ContentIdea, IdeaStatus
from app.models.writer import Task
from app.pipeline.pending import pending_condition
from app.stages.base import Item, Stage
from app.stages.context import StageContext
from app.stages.work import Written, local_item


class TasksStage(Stage):
    number = 3
    name = "Ideas → Tasks"
    batch_size_field = "stage_3_batch_size"
    limit_field = "max_ideas_per_run"
    taken_counters = ("ideas_processed",)

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        rows = await session.scalars(
            select(ContentIdea)
            .where(
                ContentIdea.site_id == ctx.run.site_id,
                pending_condition(3),
                ContentIdea.id > after_id,
            )
            .order_by(ContentIdea.id)
            .limit(limit)
        )
        return [Item(row.id, row.title, row) for row in rows]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        idea: ContentIdea = item.data

        async def write(session: AsyncSession) -> Written:
            created = await session.scalar(
                insert(Task)
                .values(
                    account_id=idea.account_id,
                    site_id=idea.site_id,
                    idea_id=idea.id,
                    cluster_id=idea.cluster_id,
                    title=idea.title,
                    description=idea.description,
                )
                .on_conflict_do_nothing(index_elements=[Task.idea_id])
                .returning(Task.id)
            )
            await session.execute(
                update(ContentIdea)
                .where(ContentIdea.id == idea.id)
                .values(status=IdeaStatus.QUEUED)
            )
            return Written(
                units=0,
                deltas={"ideas_processed": 1, "tasks_created": int(created is not None)},
                message=f"Queued task for idea '{idea.title}'",
                data={"idea_id": idea.id, "task_id": created},
            )

        await local_item(ctx, item, write)
