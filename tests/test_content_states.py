"""The content-status door (`app.writer.states`): every (from, to) pair of both tables against a
copy written here, compare-and-set over many rows, and claims that never share a row however
many run at once, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.models.writer import Content, ContentStatus, SiteStatus
from app.writer import states
from app.writer.states import ForbiddenMove, Step, move
from tests.builders import create_content
from tests.factories import Tenant, create_tenant

SessionFactory = async_sessionmaker[AsyncSession]

DRAFT, REVIEW, APPROVED, REJECTED, PUBLISHED = (
    ContentStatus.DRAFT,
    ContentStatus.REVIEW,
    ContentStatus.APPROVED,
    ContentStatus.REJECTED,
    ContentStatus.PUBLISHED,
)
NOT_PUBLISHED, SCHEDULED, PUBLISHING, SITE_PUBLISHED, FAILED = (
    SiteStatus.NOT_PUBLISHED,
    SiteStatus.SCHEDULED,
    SiteStatus.PUBLISHING,
    SiteStatus.PUBLISHED,
    SiteStatus.FAILED,
)
# SPEC §4 and §9, written out here rather than read from the module under test.
STATUS_TRANSITIONS = {
    (DRAFT, REVIEW),  # stage 6: its images are done
    (REVIEW, APPROVED),  # stage 7 or the reviewer
    (REVIEW, REJECTED),
    (APPROVED, REJECTED),  # the reviewer changes their mind before publishing starts
    (REJECTED, APPROVED),
    (APPROVED, PUBLISHED),  # the publisher
}
SITE_STATUS_TRANSITIONS = {
    (NOT_PUBLISHED, SCHEDULED),  # given a slot
    (NOT_PUBLISHED, NOT_PUBLISHED),  # rejected before it had a slot
    (SCHEDULED, PUBLISHING),  # claimed
    (SCHEDULED, NOT_PUBLISHED),  # rejected: off the queue
    (PUBLISHING, PUBLISHING),  # a stale claim claimed again
    (PUBLISHING, SCHEDULED),  # a stale claim handed back (site switched off)
    (PUBLISHING, SITE_PUBLISHED),
    (PUBLISHING, FAILED),
    (FAILED, SCHEDULED),  # retried
    (FAILED, NOT_PUBLISHED),  # rejected after it failed
}
STATUS_PAIRS = list(itertools.product(ContentStatus, ContentStatus))
SITE_STATUS_PAIRS = list(itertools.product(SiteStatus, SiteStatus))
# An article in each status, and in each site status, as the pipeline leaves one.
WITH_STATUS = {
    DRAFT: (DRAFT, NOT_PUBLISHED),
    REVIEW: (REVIEW, NOT_PUBLISHED),
    APPROVED: (APPROVED, NOT_PUBLISHED),
    REJECTED: (REJECTED, NOT_PUBLISHED),
    PUBLISHED: (PUBLISHED, SITE_PUBLISHED),
}
WITH_SITE_STATUS = {
    NOT_PUBLISHED: (APPROVED, NOT_PUBLISHED),
    SCHEDULED: (APPROVED, SCHEDULED),
    PUBLISHING: (APPROVED, PUBLISHING),
    FAILED: (APPROVED, FAILED),
    SITE_PUBLISHED: (PUBLISHED, SITE_PUBLISHED),
}


def as_params(pairs: list[tuple[Any, Any]], allowed: set[tuple[Any, Any]]) -> list[Any]:
    return [pytest.param(f, t, (f, t) in allowed, id=f"{f.value}->{t.value}") for f, t in pairs]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


async def article_in(
    session_factory: SessionFactory, tenant: Tenant, state: tuple[ContentStatus, SiteStatus]
) -> int:
    status, site_status = state
    content = await create_content(session_factory, tenant, status=status, site_status=site_status)
    return content.id


async def states_of(session_factory: SessionFactory, ids: list[int]) -> dict[int, tuple[str, str]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Content.id, Content.status, Content.site_status).where(Content.id.in_(ids))
        )
        return {row.id: (row.status, row.site_status) for row in rows}


class TestTheTablesAreTheSpecs:
    def test_the_status_table_has_exactly_the_specs_pairs(self) -> None:
        table = {(f, t) for f, tos in states.STATUS_MOVES.items() for t in tos}
        assert table == STATUS_TRANSITIONS
        assert set(states.STATUS_MOVES) == set(ContentStatus)

    def test_the_site_status_table_has_exactly_the_specs_pairs(self) -> None:
        table = {(f, t) for f, tos in states.SITE_STATUS_MOVES.items() for t in tos}
        assert table == SITE_STATUS_TRANSITIONS
        assert set(states.SITE_STATUS_MOVES) == set(SiteStatus)


class TestEveryStatusPair:
    """One article in each status; a move from `from_` to `to` over all of them moves exactly
    the one in `from_` when the pair is allowed, and is refused, touching nothing, when not."""

    @pytest.mark.parametrize(
        ("from_", "to", "allowed"), as_params(STATUS_PAIRS, STATUS_TRANSITIONS)
    )
    async def test_status_pair(
        self,
        session_factory: SessionFactory,
        tenant: Tenant,
        from_: ContentStatus,
        to: ContentStatus,
        allowed: bool,
    ) -> None:
        ids = {s: await article_in(session_factory, tenant, WITH_STATUS[s]) for s in ContentStatus}
        before = await states_of(session_factory, list(ids.values()))

        async with unit_of_work(session_factory) as session:
            step = Step.of({from_}, to)
            if allowed:
                moved = await move(session, Content.site_id == tenant.site_id, status=step)
            else:
                with pytest.raises(ForbiddenMove) as refused:
                    await move(session, Content.site_id == tenant.site_id, status=step)
                assert (refused.value.column, refused.value.from_, refused.value.to) == (
                    "status",
                    from_,
                    to,
                )
                moved = []

        after = await states_of(session_factory, list(ids.values()))
        expected = dict(before)
        if allowed:
            assert moved == [ids[from_]]
            expected[ids[from_]] = (to, before[ids[from_]][1])
        assert after == expected

    @pytest.mark.parametrize(
        ("from_", "to", "allowed"), as_params(SITE_STATUS_PAIRS, SITE_STATUS_TRANSITIONS)
    )
    async def test_site_status_pair(
        self,
        session_factory: SessionFactory,
        tenant: Tenant,
        from_: SiteStatus,
        to: SiteStatus,
        allowed: bool,
    ) -> None:
        ids = {
            s: await article_in(session_factory, tenant, WITH_SITE_STATUS[s]) for s in SiteStatus
        }
        before = await states_of(session_factory, list(ids.values()))

        async with unit_of_work(session_factory) as session:
            step = Step.of({from_}, to)
            if allowed:
                moved = await move(session, Content.site_id == tenant.site_id, site_status=step)
            else:
                with pytest.raises(ForbiddenMove, match="site_status cannot move"):
                    await move(session, Content.site_id == tenant.site_id, site_status=step)
                moved = []

        after = await states_of(session_factory, list(ids.values()))
        expected = dict(before)
        if allowed:
            assert moved == [ids[from_]]
            expected[ids[from_]] = (before[ids[from_]][0], to)
        assert after == expected


class TestManyRowsAtOnce:
    async def test_one_move_takes_every_matching_row_and_returns_them(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        in_review = [
            await article_in(session_factory, tenant, (REVIEW, NOT_PUBLISHED)) for _ in "abcd"
        ]
        draft = await article_in(session_factory, tenant, (DRAFT, NOT_PUBLISHED))
        chosen = in_review[:3]

        async with unit_of_work(session_factory) as session:
            moved = await states.approve(session, Content.id.in_([*chosen, draft]))

        assert moved == sorted(chosen)
        after = await states_of(session_factory, [*in_review, draft])
        assert [after[i][0] for i in chosen] == ["approved"] * 3
        assert after[in_review[3]][0] == "review"
        assert after[draft][0] == "draft", "not in the from-status: not moved"

    async def test_a_row_already_moved_by_another_writer_is_not_moved_again(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        article = await article_in(session_factory, tenant, (REVIEW, NOT_PUBLISHED))
        this = Content.id == article
        async with unit_of_work(session_factory) as session:
            assert await states.reject(session, this) == [article]
        async with unit_of_work(session_factory) as session:
            assert await states.approve(session, this) == [], "stage 7 approves only reviews"
        assert (await states_of(session_factory, [article]))[article] == (
            "rejected",
            "not_published",
        )

    async def test_statuses_are_not_set_through_values(
        self, session_factory: SessionFactory
    ) -> None:
        async with session_factory() as session:
            with pytest.raises(ValueError, match="steps"):
                await move(
                    session,
                    Content.id == 0,
                    status=Step.of({REVIEW}, APPROVED),
                    values={"site_status": "scheduled"},
                )


class TestClaims:
    async def scheduled(
        self, session_factory: SessionFactory, tenant: Tenant, count: int
    ) -> list[int]:
        return [
            await article_in(session_factory, tenant, (APPROVED, SCHEDULED)) for _ in range(count)
        ]

    async def claim(self, session: AsyncSession, tenant: Tenant, limit: int) -> list[int]:
        return await states.claim(
            session,
            Content.site_id == tenant.site_id,
            Content.site_status == SCHEDULED,
            now=datetime.now(UTC),
            limit=limit,
        )

    async def test_a_claim_takes_at_most_its_limit(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        articles = await self.scheduled(session_factory, tenant, 5)
        async with unit_of_work(session_factory) as session:
            claimed = await self.claim(session, tenant, 2)
        assert claimed == articles[:2], "in the order asked for"
        after = await states_of(session_factory, articles)
        assert [after[i][1] for i in articles] == ["publishing"] * 2 + ["scheduled"] * 3

    async def test_two_open_claims_take_different_rows_and_a_third_finds_none(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        articles = await self.scheduled(session_factory, tenant, 6)
        async with session_factory() as first, session_factory() as second:
            taken_first = await self.claim(first, tenant, 3)
            async with asyncio.timeout(10):  # SKIP LOCKED: never waits for the first
                taken_second = await self.claim(second, tenant, 3)
                async with session_factory() as third:
                    assert await self.claim(third, tenant, 3) == []
            await first.commit()
            await second.commit()

        assert set(taken_first).isdisjoint(taken_second)
        assert sorted(taken_first + taken_second) == articles
        async with session_factory() as session:
            attempts = await session.scalars(
                select(Content.publish_attempts).where(Content.id.in_(articles))
            )
            assert list(attempts) == [1] * 6

    async def test_of_many_concurrent_claims_none_takes_a_row_another_took(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        articles = await self.scheduled(session_factory, tenant, 10)
        claimers = 8
        all_in_a_transaction = asyncio.Barrier(claimers)

        async def one_claim() -> list[int]:
            async with unit_of_work(session_factory) as session:
                await session.execute(select(1))
                await all_in_a_transaction.wait()
                return await self.claim(session, tenant, 2)

        taken = await asyncio.gather(*(one_claim() for _ in range(claimers)))

        flat = [article for claim in taken for article in claim]
        assert len(flat) == len(set(flat)), f"a row was claimed twice: {taken}"
        assert flat, "someone claimed something"
        async with session_factory() as session:
            rows = await session.execute(
                select(Content.id, Content.site_status, Content.publish_attempts).where(
                    Content.id.in_(articles)
                )
            )
            for row in rows:
                claimed = row.id in flat
                assert (row.site_status, row.publish_attempts) == (
                    ("publishing", 1) if claimed else ("scheduled", 0)
                )

    async def test_a_claim_skips_a_row_another_transaction_holds(
        self, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        held, free = await self.scheduled(session_factory, tenant, 2)
        async with session_factory() as holder:
            await holder.execute(select(Content.id).where(Content.id == held).with_for_update())
            async with asyncio.timeout(10), unit_of_work(session_factory) as session:
                assert await self.claim(session, tenant, 2) == [free]
            await holder.rollback()
