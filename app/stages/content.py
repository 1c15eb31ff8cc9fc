"""Stage 4: tasks → content. One AI call per task, given the idea's stored outline and target
length; the HTML is sanitised and the draft stored with its real word count."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import Answer
from app.ai.html import sanitize_html, word_count
from app.ai.schemas import ArticleOut, ContentBrief, OutlineSection
from app.models.billing import Operation
from app.models.planner import ContentIdea
from app.models.writer import Content, Task, TaskStatus
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import AIStage, Item
from app.stages.context import StageContext
from app.stages.work import InvalidOutput, Written, ai_item

DEFAULT_WORD_COUNT = 1500
# The hold covers an article up to this many times its target length, and at least
# `MIN_HOLD_WORDS` (a model asked for 100 words may well write 210); a longer one is charged
# the rest as far as the balance allows (`settle`).
HOLD_LENGTH_FACTOR = 2
MIN_HOLD_WORDS = 1000

# Every article runs these: built once.
_TASKS = cast(Table, Task.__table__)
_INSERT_CONTENT = insert(cast(Table, Content.__table__)).on_conflict_do_nothing(
    index_elements=[Content.task_id]
)
_TASK_COMPLETED = (
    update(_TASKS)
    .where(_TASKS.c.id == bindparam("task_id"))
    .values(status=TaskStatus.COMPLETED, error=None)
)
_TASK_FAILED = (
    update(_TASKS)
    .where(_TASKS.c.id == bindparam("task_id"))
    .values(status=TaskStatus.FAILED, error=bindparam("error"))
)


class ContentStage(AIStage):
    number = 4
    name = "Tasks → Content"
    operation = Operation.CONTENT_GENERATION
    batch_size_field = "stage_4_batch_size"
    limit_field = "max_tasks_per_run"
    taken_counters = ("tasks_processed", "errors")

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        rows = await session.execute(
            select(Task, ContentIdea)
            .outerjoin(ContentIdea, ContentIdea.id == Task.idea_id)
            .where(Task.site_id == ctx.run.site_id, pending_condition(4), Task.id > after_id)
            .order_by(Task.id)
            .limit(limit)
        )
        return [Item(task.id, task.title, _brief(task, idea)) for task, idea in rows]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        brief: ContentBrief = item.data
        task_id = item.id

        async def write(connection: AsyncConnection, answer: Answer[ArticleOut]) -> Written:
            article = answer.output
            html = sanitize_html(article.html)
            words = word_count(html)
            if words == 0:
                raise InvalidOutput("the article has no text")
            await connection.execute(
                _INSERT_CONTENT,
                {
                    "account_id": ctx.run.account_id,
                    "site_id": ctx.run.site_id,
                    "task_id": task_id,
                    "title": article.title[:500],
                    "html": html,
                    "word_count": words,
                    "meta_title": article.meta_title[:300],
                    "meta_description": article.meta_description[:500],
                },
            )
            await connection.execute(_TASK_COMPLETED, {"task_id": task_id})
            return Written(
                units=words,
                deltas={"tasks_processed": 1, "content_created": 1, "total_words": words},
                message=f"Wrote '{article.title}' ({words} words)",
                data={"task_id": task_id, "words": words},
            )

        async def failed(connection: AsyncConnection, reason: str) -> dict[str, Number]:
            await connection.execute(_TASK_FAILED, {"task_id": task_id, "error": reason[:2000]})
            return {"errors": 1}

        price = ctx.price(Operation.CONTENT_GENERATION)
        await ai_item(
            ctx,
            item=item,
            item_key=f"task:{task_id}",
            operation=Operation.CONTENT_GENERATION,
            hold=price.hold(max(brief.target_word_count * HOLD_LENGTH_FACTOR, MIN_HOLD_WORDS)),
            call=lambda: ctx.deps.provider.generate_content(brief),
            write=write,
            failed=failed,
        )


def _brief(task: Task, idea: ContentIdea | None) -> ContentBrief:
    """What the writer gets: the idea's outline and target (the task alone if the idea is gone)."""
    if idea is None:
        return ContentBrief(
            title=task.title,
            description=task.description,
            outline=[
                OutlineSection(heading=task.title[:300], covers=task.description or task.title)
            ],
            content_type="post",
            content_structure="article",
            target_keywords=[],
            target_word_count=DEFAULT_WORD_COUNT,
        )
    return ContentBrief(
        title=idea.title,
        description=idea.description,
        outline=[OutlineSection.model_validate(section) for section in idea.outline]
        or [OutlineSection(heading=idea.title[:300], covers=idea.description or idea.title)],
        content_type=idea.content_type,
        content_structure=idea.content_structure,
        target_keywords=list(idea.target_keywords),
        target_word_count=idea.target_word_count or DEFAULT_WORD_COUNT,
    )
