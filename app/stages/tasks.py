"""Stage 3: ideas → tasks, locally: a queued task per idea, no AI call, no credits. A batch of
ideas is one INSERT ... SELECT of their tasks and one UPDATE of their status."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.planner import ContentIdea, IdeaStatus
from app.models.writer import Task
from app.pipeline.pending import pending_condition
from app.stages.base import Item, LocalStage
from app.stages.context import StageContext
from app.stages.work import WrittenBatch, local_batch

# A task's columns, and its idea's that fill them.
_FROM_IDEA = {
    "account_id": ContentIdea.account_id,
    "site_id": ContentIdea.site_id,
    "idea_id": ContentIdea.id,
    "cluster_id": ContentIdea.cluster_id,
    "title": ContentIdea.title,
    "description": ContentIdea.description,
}


class TasksStage(LocalStage):
    number = 3
    name = "Ideas → Tasks"
    batch_size_field = "stage_3_batch_size"
    limit_field = "max_ideas_per_run"
    taken_counters = ("ideas_processed",)

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        rows = await session.execute(
            select(ContentIdea.id, ContentIdea.title)
            .where(
                ContentIdea.site_id == ctx.run.site_id,
                pending_condition(3),
                ContentIdea.id > after_id,
            )
            .order_by(ContentIdea.id)
            .limit(limit)
        )
        return [Item(row.id, row.title) for row in rows]

    async def process_batch(self, ctx: StageContext, items: list[Item]) -> None:
        ids = [item.id for item in items]

        async def write(session: AsyncSession) -> WrittenBatch:
            # In the ideas' order, so that stage 4 takes their tasks in it too.
            ideas = (
                select(*_FROM_IDEA.values()).where(ContentIdea.id.in_(ids)).order_by(ContentIdea.id)
            )
            # An idea that has a task already keeps it: `tasks_created` counts the new ones.
            created = await session.execute(
                insert(Task)
                .from_select(list(_FROM_IDEA), ideas)
                .on_conflict_do_nothing(index_elements=[Task.idea_id])
                .returning(Task.idea_id, Task.id)
            )
            task_of: dict[int | None, int] = {idea: task for idea, task in created}
            await session.execute(
                update(ContentIdea).where(ContentIdea.id.in_(ids)).values(status=IdeaStatus.QUEUED)
            )
            return WrittenBatch(
                deltas={"ideas_processed": len(items), "tasks_created": len(task_of)},
                lines=[
                    (
                        f"Queued task for idea '{item.title}'",
                        {"idea_id": item.id, "task_id": task_of.get(item.id)},
                    )
                    for item in items
                ],
            )

        await local_batch(ctx, items, write)
