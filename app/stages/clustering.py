"""Stage 1: keywords → clusters. One AI call per batch of keywords; clusters are created, or
reused where one of the same name exists, and the keywords mapped to them."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.base import Answer
from app.ai.schemas import ClusteringOut, KeywordBrief, normalised
from app.models.billing import Operation
from app.models.planner import Cluster, Keyword, KeywordStatus
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import Item, Stage
from app.stages.context import StageContext
from app.stages.work import InvalidOutput, Written, ai_item


class ClusteringStage(Stage):
    number = 1
    name = "Keywords → Clusters"
    operation = Operation.CLUSTERING
    batch_size_field = "stage_1_batch_size"
    limit_field = "max_keywords_per_run"
    taken_counters = ("keywords_processed", "errors")

    async def load(
        self, session: AsyncSession, ctx: StageContext, after_id: int, limit: int
    ) -> list[Item]:
        """The batch as one item: one call clusters all its keywords."""
        rows = await session.scalars(
            select(Keyword)
            .where(Keyword.site_id == ctx.run.site_id, pending_condition(1), Keyword.id > after_id)
            .order_by(Keyword.id)
            .limit(limit)
        )
        briefs = [
            KeywordBrief(id=row.id, keyword=row.keyword, volume=row.volume, intent=row.intent)
            for row in rows
        ]
        if not briefs:
            return []
        return [Item(briefs[-1].id, f"{len(briefs)} keywords", briefs, units=len(briefs))]

    async def process_item(self, ctx: StageContext, item: Item) -> None:
        briefs: list[KeywordBrief] = item.data

        async def write(session: AsyncSession, answer: Answer[ClusteringOut]) -> Written:
            return await _write_clusters(session, ctx, briefs, answer.output)

        async def failed(session: AsyncSession, reason: str) -> dict[str, Number]:
            return {"errors": len(briefs)}

        await ai_item(
            ctx,
            item=item,
            item_key=f"keywords:{briefs[0].id}-{briefs[-1].id}",
            operation=Operation.CLUSTERING,
            hold=ctx.price(Operation.CLUSTERING).hold(len(briefs)),
            call=lambda: ctx.deps.provider.cluster_keywords(briefs),
            write=write,
            failed=failed,
        )


async def _write_clusters(
    session: AsyncSession, ctx: StageContext, briefs: list[KeywordBrief], output: ClusteringOut
) -> Written:
    ids = {normalised(brief.keyword): brief.id for brief in briefs}
    unknown = [k for c in output.clusters for k in c.keywords if normalised(k) not in ids]
    if unknown:
        raise InvalidOutput(f"the clustering named keywords it was not given: {unknown[:3]}")
    mapped = 0
    created = 0
    # In the order of the names' unique index: calls of one run write at once, and two that
    # create or update the same clusters in another order would deadlock.
    for out in sorted(output.clusters, key=lambda c: _index_name(c.name)):
        keyword_ids = sorted({ids[normalised(k)] for k in out.keywords})
        cluster_id, is_new = await _cluster_named(session, ctx, out.name, out.description)
        created += is_new
        result = await session.execute(
            update(Keyword)
            .where(Keyword.id.in_(keyword_ids), Keyword.cluster_id.is_(None))
            .values(cluster_id=cluster_id, status=KeywordStatus.MAPPED)
        )
        count = int(getattr(result, "rowcount", 0))
        await session.execute(
            update(Cluster)
            .where(Cluster.id == cluster_id)
            .values(keywords_count=Cluster.keywords_count + count)
        )
        mapped += count
    left = len(briefs) - mapped
    # A keyword the answer left out stays pending: the next run offers it again.
    unclustered = f"; {left} left for the next run" if left > 0 else ""
    return Written(
        units=len(briefs),
        deltas={"keywords_processed": mapped, "clusters_created": created},
        message=f"Clustered {mapped} keywords into {len(output.clusters)} clusters "
        f"({created} new){unclustered}",
        data={"keywords": mapped, "clusters": len(output.clusters)},
    )


async def _cluster_named(
    session: AsyncSession, ctx: StageContext, name: str, description: str
) -> tuple[int, bool]:
    """The site's cluster of this name (any case), created if there is none: (id, created)."""
    name = _stored_name(name)
    created = await session.scalar(
        insert(Cluster)
        .values(
            account_id=ctx.run.account_id,
            site_id=ctx.run.site_id,
            name=name,
            description=description,
        )
        .on_conflict_do_nothing()
        .returning(Cluster.id)
    )
    if created is not None:
        return created, True
    existing = await session.scalar(
        select(Cluster.id).where(
            Cluster.site_id == ctx.run.site_id, func.lower(Cluster.name) == name.lower()
        )
    )
    assert existing is not None, "the insert conflicted with this cluster"
    return existing, False


def _stored_name(name: str) -> str:
    return name.strip()[:300]


def _index_name(name: str) -> str:
    return _stored_name(name).lower()
