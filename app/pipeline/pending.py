"""What each stage has left to do, as SQL conditions: the stages select by them, the estimate,
the run's initial snapshot and the pipeline overview count by them.

A stage's pending items are defined by their state in Postgres only, so a resumed or repeated run
picks up exactly what is left.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.planner import (
    Cluster,
    ClusterStatus,
    ContentIdea,
    IdeaStatus,
    Keyword,
    KeywordStatus,
)
from app.models.writer import Content, ContentStatus, Image, ImageStatus, Task, TaskStatus
from app.pipeline.catalog import STAGE_NUMBERS

# The row each stage works on.
STAGE_MODELS: dict[int, type[Keyword | Cluster | ContentIdea | Task | Content | Image]] = {
    1: Keyword,
    2: Cluster,
    3: ContentIdea,
    4: Task,
    5: Content,
    6: Image,
    7: Content,
}


def pending_condition(stage: int) -> ColumnElement[bool]:
    """The WHERE clause (besides the site) of the rows stage `stage` still has to process."""
    match stage:
        case 1:
            return (
                (Keyword.status == KeywordStatus.NEW)
                & Keyword.cluster_id.is_(None)
                & Keyword.disabled.is_(False)
            )
        case 2:
            has_ideas = exists().where(ContentIdea.cluster_id == Cluster.id)
            return (Cluster.status == ClusterStatus.NEW) & ~has_ideas
        case 3:
            return ContentIdea.status == IdeaStatus.NEW
        case 4:
            has_content = exists().where(Content.task_id == Task.id)
            return (Task.status == TaskStatus.QUEUED) & ~has_content
        case 5:
            has_images = exists().where(Image.content_id == Content.id)
            return (Content.status == ContentStatus.DRAFT) & ~has_images
        case 6:
            return Image.status == ImageStatus.PENDING
        case 7:
            return Content.status == ContentStatus.REVIEW
    raise ValueError(f"no stage {stage}")


async def count_pending(
    session: AsyncSession, stage: int, site_id: int, *, after_id: int = 0
) -> int:
    """How many rows stage `stage` still has to process, with ids above `after_id`."""
    model = STAGE_MODELS[stage]
    count = await session.scalar(
        select(func.count())
        .select_from(model)
        .where(model.site_id == site_id, pending_condition(stage), model.id > after_id)
    )
    return int(count or 0)


async def pending_counts(session: AsyncSession, site_id: int) -> dict[int, int]:
    """{stage: how many rows it has pending} for stages 1..7, in one round trip."""
    columns = []
    for stage in STAGE_NUMBERS:
        model = STAGE_MODELS[stage]
        count = (
            select(func.count())
            .select_from(model)
            .where(model.site_id == site_id, pending_condition(stage))
            .scalar_subquery()
        )
        columns.append(count.label(f"stage_{stage}"))
    row = (await session.execute(select(*columns))).one()
    return {stage: int(value) for stage, value in zip(STAGE_NUMBERS, row, strict=True)}
