"""Stage 5: content → image prompts. One AI call per draft gives a featured prompt and
`max_in_article_images` in-article prompts; each becomes a pending image."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import Answer
from app.ai.schemas import ArticleBrief, ImagePromptsOut
from app.models.billing import Operation
from app.models.writer import Content, Image, ImageType
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import AIStage, Item
from app.stages.context import StageContext
from app.stages.work import Written, ai_item

# Every draft runs it (its rows as the parameters' list): built once.
_INSERT_IMAGES = insert(cast(Table, Image.__table__)).on_conflict_do_nothing()


class PromptsStage(AIStage):
    number = 5
    name = "Content → Image prompts"
    operation = Operation.IMAGE_PROMPT_EXTRACTION
    batch_size_field = "stage_5_batch_size"
    limit_field = "max_content_per_run"
    taken_counters = ("content_processed", "errors")

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        rows = await session.scalars(
            select(Content)
            .where(Content.site_id == ctx.run.site_id, pending_condition(5), Content.id > after_id)
            .order_by(Content.id)
            .limit(limit)
        )
        return [
            Item(row.id, row.title, ArticleBrief(title=row.title, html=row.html)) for row in rows
        ]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        article: ArticleBrief = item.data
        in_article = ctx.config.max_in_article_images

        async def write(connection: AsyncConnection, answer: Answer[ImagePromptsOut]) -> Written:
            prompts = [(ImageType.FEATURED, 0, answer.output.featured)] + [
                (ImageType.IN_ARTICLE, position, prompt)
                for position, prompt in enumerate(answer.output.in_article[:in_article], start=1)
            ]
            await connection.execute(
                _INSERT_IMAGES,
                [
                    {
                        "account_id": ctx.run.account_id,
                        "site_id": ctx.run.site_id,
                        "content_id": item.id,
                        "image_type": kind,
                        "position": position,
                        "prompt": prompt,
                    }
                    for kind, position, prompt in prompts
                ],
            )
            return Written(
                units=len(prompts),
                deltas={"content_processed": 1, "prompts_created": len(prompts)},
                message=f"{len(prompts)} image prompts for '{item.title}'",
                data={"content_id": item.id, "prompts": len(prompts)},
            )

        async def failed(connection: AsyncConnection, reason: str) -> dict[str, Number]:
            return {"errors": 1}

        await ai_item(
            ctx,
            item=item,
            item_key=f"content:{item.id}",
            operation=Operation.IMAGE_PROMPT_EXTRACTION,
            hold=ctx.price(Operation.IMAGE_PROMPT_EXTRACTION).hold(
                1 + in_article, input_chars=len(article.html)
            ),
            call=lambda: ctx.deps.provider.generate_image_prompts(article, in_article),
            write=write,
            failed=failed,
        )
