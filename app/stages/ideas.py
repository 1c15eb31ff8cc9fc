"""Stage 2: clusters → ideas. One AI call per cluster gives 3 to 7 ideas, each with its whole
outline, stored for the content stage."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import Answer
from app.ai.schemas import ClusterBrief, IdeasOut
from app.models.billing import Operation
from app.models.planner import Cluster, ClusterStatus, ContentIdea, Keyword
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import AIStage, Item
from app.stages.context import StageContext
from app.stages.work import Written, ai_item

# The keywords of a cluster the idea prompt sees.
BRIEF_KEYWORDS = 50

# Every cluster runs these (its ideas as the parameters' list): built once.
_INSERT_IDEAS = insert(cast(Table, ContentIdea.__table__))
_CLUSTERS = cast(Table, Cluster.__table__)
_MAPPED = (
    update(_CLUSTERS)
    .where(_CLUSTERS.c.id == bindparam("cluster_id"))
    .values(status=ClusterStatus.MAPPED)
)


class IdeasStage(AIStage):
    number = 2
    name = "Clusters → Ideas"
    operation = Operation.IDEA_GENERATION
    batch_size_field = "stage_2_batch_size"
    limit_field = "max_clusters_per_run"
    taken_counters = ("clusters_processed", "errors")

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        clusters = list(
            await session.scalars(
                select(Cluster)
                .where(
                    Cluster.site_id == ctx.run.site_id, pending_condition(2), Cluster.id > after_id
                )
                .order_by(Cluster.id)
                .limit(limit)
            )
        )
        items = []
        for cluster in clusters:
            keywords = await session.scalars(
                select(Keyword.keyword)
                .where(Keyword.cluster_id == cluster.id)
                .order_by(Keyword.volume.desc().nulls_last(), Keyword.id)
                .limit(BRIEF_KEYWORDS)
            )
            brief = ClusterBrief(
                name=cluster.name, description=cluster.description, keywords=list(keywords)
            )
            items.append(Item(cluster.id, cluster.name, brief))
        return items

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        brief: ClusterBrief = item.data

        async def write(connection: AsyncConnection, answer: Answer[IdeasOut]) -> Written:
            ideas = [
                {
                    "account_id": ctx.run.account_id,
                    "site_id": ctx.run.site_id,
                    "cluster_id": item.id,
                    "title": idea.title,
                    "description": idea.description,
                    "outline": [section.model_dump() for section in idea.outline],
                    "content_type": idea.content_type,
                    "content_structure": idea.content_structure,
                    "target_keywords": [idea.primary_keyword, *idea.covered_keywords],
                    "target_word_count": idea.target_word_count,
                }
                for idea in answer.output.ideas
            ]
            await connection.execute(_INSERT_IDEAS, ideas)  # IdeasOut holds 3 to 7
            await connection.execute(_MAPPED, {"cluster_id": item.id})
            count = len(answer.output.ideas)
            return Written(
                units=1,
                deltas={"clusters_processed": 1, "ideas_created": count},
                message=f"{count} ideas for cluster '{item.title}'",
                data={"cluster_id": item.id, "ideas": count},
            )

        async def failed(connection: AsyncConnection, reason: str) -> dict[str, Number]:
            return {"errors": 1}

        await ai_item(
            ctx,
            item=item,
            item_key=f"cluster:{item.id}",
            operation=Operation.IDEA_GENERATION,
            hold=ctx.price(Operation.IDEA_GENERATION).hold(1),
            call=lambda: ctx.deps.provider.generate_ideas(brief),
            write=write,
            failed=failed,
        )
