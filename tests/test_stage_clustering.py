"""Stage 1 writes an answer's clusters and maps its keywords in two statements: a name the site
already has (any case) is reused, names alike in one answer are one cluster, a keyword named in
two clusters goes to the first, and calls of one run that write the same clusters at once, in
other orders, neither deadlock nor make a name twice. A real worker, the local provider told what
to answer."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.ai import registry
from app.ai.base import Answer
from app.ai.local import LocalProvider
from app.ai.schemas import ClusteringOut, ClusterOut, KeywordBrief
from app.config import Settings
from app.models.planner import Cluster, Keyword, KeywordStatus
from tests.engine import configure, feed, load_run, start, work
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]
STAGE_1_ONLY = {f"stage_{n}_enabled": False for n in range(2, 8)}


class ToldClustering(LocalProvider):
    """Answers each clustering call with `answer(keywords)`, once `together` calls have come
    (so that their writes meet)."""

    def __init__(self, answer: Any, together: int = 1) -> None:
        super().__init__(latency_ms=0)
        self.answer = answer
        self.arrived = asyncio.Barrier(together)

    async def cluster_keywords(self, keywords: list[KeywordBrief]) -> Answer[ClusteringOut]:
        await self.arrived.wait()
        return Answer(ClusteringOut(clusters=self.answer(keywords)))


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory, credits=Decimal(100000))


async def site_clusters(session_factory: SessionFactory, site_id: int) -> dict[str, int]:
    """Each of the site's clusters' name, with its `keywords_count`."""
    async with session_factory() as session:
        rows = await session.execute(
            select(Cluster.name, Cluster.keywords_count).where(Cluster.site_id == site_id)
        )
        return {name: count for name, count in rows}


async def mapping(session_factory: SessionFactory, site_id: int) -> dict[str, str | None]:
    """Each keyword of the site, with the name of its cluster (None: not mapped)."""
    async with session_factory() as session:
        rows = await session.execute(
            select(Keyword.keyword, Cluster.name, Keyword.status)
            .outerjoin(Cluster, Cluster.id == Keyword.cluster_id)
            .where(Keyword.site_id == site_id)
        )
        found: dict[str, str | None] = {}
        for keyword, cluster, status in rows:
            assert (status == KeywordStatus.MAPPED) == (cluster is not None), keyword
            found[keyword] = cluster
        return found


class TestOneAnswer:
    async def test_names_alike_are_one_cluster_and_a_keyword_in_two_goes_to_the_first(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with session_factory() as session, session.begin():
            session.add(
                Cluster(account_id=tenant.account_id, site_id=tenant.site_id, name="Garden Tools")
            )

        given: list[str] = []

        def answer(keywords: list[KeywordBrief]) -> list[ClusterOut]:
            k = [brief.keyword for brief in keywords]
            given.extend(k)
            return [
                ClusterOut(name="lawn care", description="", keywords=[k[2]]),
                ClusterOut(name="  garden tools ", description="", keywords=[k[0], k[1]]),
                ClusterOut(name="LAWN CARE", description="", keywords=[k[3], k[0]]),
            ]

        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: ToldClustering(answer))
        await feed(client, tenant, 5)
        await configure(client, tenant, stage_1_batch_size=5, **STAGE_1_ONLY)
        run_id = await start(client, tenant)
        await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        assert run.stage_1_result is not None
        assert run.stage_1_result["keywords_processed"] == 4
        assert run.stage_1_result["clusters_created"] == 1
        assert await site_clusters(session_factory, tenant.site_id) == {
            "Garden Tools": 2,
            "lawn care": 2,
        }
        assert await mapping(session_factory, tenant.site_id) == {
            given[0]: "Garden Tools",
            given[1]: "Garden Tools",
            given[2]: "lawn care",
            given[3]: "lawn care",
            given[4]: None,
        }


class TestCallsWritingAtOnce:
    async def test_the_same_clusters_in_other_orders_neither_deadlock_nor_double(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        settings: Settings,
        tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Four calls answered at once, each spreading its keywords over the same six names in
        an order of its own and in a case of its own: one cluster per name, every keyword
        mapped once, the counts adding up."""
        names = [f"Topic {letter}" for letter in "ABCDEF"]
        chance = random.Random(13)  # noqa: S311 - orders, not secrets

        def answer(keywords: list[KeywordBrief]) -> list[ClusterOut]:
            order = chance.sample(names, len(names))
            return [
                ClusterOut(
                    name=name.upper() if n % 2 else name,
                    description="",
                    keywords=[brief.keyword for brief in keywords[n :: len(order)]],
                )
                for n, name in enumerate(order)
            ]

        provider = ToldClustering(answer, together=4)
        monkeypatch.setitem(registry.PROVIDERS, "local", lambda _: provider)
        await feed(client, tenant, 48)
        await configure(client, tenant, stage_1_batch_size=12, ai_concurrency=4, **STAGE_1_ONLY)
        run_id = await start(client, tenant)
        async with asyncio.timeout(60):
            await work(settings)

        run = await load_run(session_factory, run_id)
        assert run.status == "completed", run.error_message
        assert run.stage_1_result is not None
        assert run.stage_1_result["keywords_processed"] == 48
        assert run.stage_1_result["clusters_created"] == len(names)
        clusters = await site_clusters(session_factory, tenant.site_id)
        assert sorted(name.lower() for name in clusters) == sorted(n.lower() for n in names)
        assert sum(clusters.values()) == 48
        mapped = await mapping(session_factory, tenant.site_id)
        assert None not in mapped.values()
        async with session_factory() as session:
            per_cluster = dict(
                (
                    await session.execute(
                        select(Cluster.name, func.count(Keyword.id))
                        .join(Keyword, Keyword.cluster_id == Cluster.id)
                        .where(Cluster.site_id == tenant.site_id)
                        .group_by(Cluster.name)
                    )
                ).all()
            )
        assert per_cluster == clusters
