"""Stage 1: keywords → clusters. One AI call per batch of keywords; clusters are created, or
reused where one of the same name exists, and the keywords mapped to them."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.ai.base import Answer
from app.ai.schemas import ClusteringOut, KeywordBrief, normalised
from app.models.billing import Operation
from app.models.planner import Keyword, KeywordStatus
from app.pipeline.pending import pending_condition
from app.pipeline.results import Number
from app.stages.base import AIStage, Item
from app.stages.context import StageContext
from app.stages.work import InvalidOutput, Written, ai_item

# The answer's clusters, in one statement: each created, or the site's cluster of that name (any
# case) kept as it is but locked, as the insert locks a new one; their ids, and which are new.
# The names come in the order of their unique index: the calls of one run write at once, and two
# that took the same clusters in other orders would deadlock. (A row the statement inserted has
# no `xmax`; one it found has this transaction's, from the update that locked it.)
_CLUSTERS = text(
    """
    INSERT INTO clusters (account_id, site_id, name, description)
    SELECT CAST(:account_id AS bigint), CAST(:site_id AS bigint), given.name, given.description
    FROM unnest(CAST(:names AS text[]), CAST(:descriptions AS text[])) WITH ORDINALITY
         AS given(name, description, n)
    ORDER BY given.n
    ON CONFLICT (site_id, lower(name)) DO UPDATE SET updated_at = clusters.updated_at
    RETURNING id, lower(name) AS key, xmax = 0 AS created
    """
)
# The keywords mapped to their clusters (those still unmapped), and the clusters' counts raised by
# as many; returns how many were mapped.
_MAP_KEYWORDS = text(
    """
    WITH mapped AS (
        UPDATE keywords
        SET cluster_id = given.cluster_id, status = CAST(:mapped AS varchar), updated_at = now()
        FROM unnest(CAST(:keyword_ids AS bigint[]), CAST(:cluster_ids AS bigint[]))
             AS given(keyword_id, cluster_id)
        WHERE keywords.id = given.keyword_id AND keywords.cluster_id IS NULL
        RETURNING keywords.cluster_id
    ), counted AS (
        UPDATE clusters SET keywords_count = keywords_count + added.n, updated_at = now()
        FROM (SELECT cluster_id, count(*) AS n FROM mapped GROUP BY cluster_id) AS added
        WHERE clusters.id = added.cluster_id
    )
    SELECT count(*) FROM mapped
    """
)


class ClusteringStage(AIStage):
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

        async def write(connection: AsyncConnection, answer: Answer[ClusteringOut]) -> Written:
            return await _write_clusters(connection, ctx, briefs, answer.output)

        async def failed(connection: AsyncConnection, reason: str) -> dict[str, Number]:
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
    connection: AsyncConnection,
    ctx: StageContext,
    briefs: list[KeywordBrief],
    output: ClusteringOut,
) -> Written:
    ids = {normalised(brief.keyword): brief.id for brief in briefs}
    unknown = [k for c in output.clusters for k in c.keywords if normalised(k) not in ids]
    if unknown:
        raise InvalidOutput(f"the clustering named keywords it was not given: {unknown[:3]}")
    # In the order of the names' unique index (see _CLUSTERS). Clusters named alike (any case)
    # are one, and a keyword named in two goes to the first.
    named: dict[str, tuple[str, str]] = {}
    owner: dict[int, str] = {}
    for out in sorted(output.clusters, key=lambda c: _index_name(c.name)):
        key = _index_name(out.name)
        named.setdefault(key, (_stored_name(out.name), out.description))
        for keyword in out.keywords:
            owner.setdefault(ids[normalised(keyword)], key)
    created, mapped = await _map(connection, ctx, named, owner) if named else (0, 0)
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


async def _map(
    connection: AsyncConnection,
    ctx: StageContext,
    named: dict[str, tuple[str, str]],
    owner: dict[int, str],
) -> tuple[int, int]:
    """The clusters `named` (by their index name) made or found, and each keyword mapped to the
    cluster it is the `owner` of: (clusters created, keywords mapped)."""
    params = {
        "account_id": ctx.run.account_id,
        "site_id": ctx.run.site_id,
        "names": [name for name, _ in named.values()],
        "descriptions": [description for _, description in named.values()],
    }
    cluster_ids: dict[str, int] = {}
    created = 0
    for row in await connection.execute(_CLUSTERS, params):
        cluster_ids[row.key] = row.id
        created += row.created
    keyword_ids = sorted(owner)
    mapped = await connection.scalar(
        _MAP_KEYWORDS,
        {
            "keyword_ids": keyword_ids,
            "cluster_ids": [cluster_ids[owner[keyword_id]] for keyword_id in keyword_ids],
            "mapped": KeywordStatus.MAPPED.value,
        },
    )
    return created, int(mapped or 0)


def _stored_name(name: str) -> str:
    return name.strip()[:300]


def _index_name(name: str) -> str:
    return _stored_name(name).lower()
